"""PocketSphinx 5.x recognizer: US English with the model inside the wheel, no download.

Accuracy is modest (a 2010s statistical model), but it needs ~30 MB of RAM and runs
faster than real time even on a Raspberry Pi.

The final transcript comes from a second, whole-utterance ("batch") decode of the
buffered audio, exactly what `pocketsphinx.Decoder().process_raw(audio, full_utt=True)`
does: cepstral mean normalisation (CMN) then uses the mean of the utterance itself.
Decoding block by block, CMN starts from the model's initial mean (`cmninit`) and only
adapts at the end of an utterance, which on real recordings made about 40% more word
errors (LibriVox clips of pocketsphinx-testdata: WER 0.39 live, 0.28 batch). The live
decode still runs while the person speaks, for partial transcripts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.stt import PARTIAL_INTERVAL_SECONDS, RecognizedWord, SpeechRecognizer, Transcript

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # PocketSphinx's default frame rate (10 ms frames)


def default_model_dir() -> Path:
    """The US-English model folder shipped in the pocketsphinx wheel."""
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us"


def sphinx_model_files(model_dir: str | Path) -> dict[str, str]:
    """Decoder arguments (hmm, lm, dict) for a model folder laid out like the wheel's:
    `en-us/` (acoustic model), `en-us.lm.bin`, `cmudict-en-us.dict`. Raises
    `SpeechModelError` naming what is missing."""
    root = Path(model_dir).expanduser()
    if not root.is_dir():
        raise SpeechModelError(f"PocketSphinx model folder {root} does not exist")
    hmm = next((p for p in (root / "en-us", root) if (p / "mdef").exists()), None)
    # the wheel also ships en-us-phone.lm.bin, a phoneme model for allphone decoding
    lm = next(iter(sorted(p for p in root.glob("*.lm.bin") if "phone" not in p.name)), None)
    dictionary = next(iter(sorted(root.glob("*.dict"))), None)
    missing = [name for name, found in (("acoustic model (mdef)", hmm), ("language model "
               "(*.lm.bin)", lm), ("dictionary (*.dict)", dictionary)) if found is None]
    if missing:
        raise SpeechModelError(
            f"{root} is not a PocketSphinx model folder: no {', '.join(missing)}"
        )
    return {"hmm": str(hmm), "lm": str(lm), "dict": str(dictionary)}


def make_decoder(sample_rate: int = 16000, **options: Any) -> Any:
    """A pocketsphinx Decoder with its C logging silenced; errors become one line."""
    from pocketsphinx import Decoder

    try:
        return Decoder(samprate=sample_rate, loglevel="FATAL", **options)
    except (RuntimeError, ValueError, KeyError) as exc:
        where = options.get("hmm") or options.get("dict") or "the model"
        raise SpeechModelError(f"PocketSphinx cannot load {where}: {exc}") from None


def clean_word(word: str) -> str | None:
    """A recognizer token as a plain word; None for fillers like <sil> and [NOISE]."""
    if word.startswith(("<", "[", "+")) or not word:
        return None
    return word.split("(", 1)[0]  # "read(2)": an alternative pronunciation of "read"


class PocketSphinxRecognizer(SpeechRecognizer):
    """Streaming recognizer over a PocketSphinx n-gram language model.

    `bias_phrases` are accepted (every recognizer takes them) but not used: a JSGF
    search over the skills' phrases, decoded beside the general model, took 15-45 s per
    3 s request on this 2-core machine and never turned a misheard request into the
    right one (the general model's hypotheses were too far off to snap to the grammar).
    """

    name = "pocketsphinx"

    def __init__(self, model_dir: str | Path | None = None, sample_rate: int = 16000, *,
                 bias_phrases: Sequence[str] = ()) -> None:
        self.sample_rate = sample_rate
        files = sphinx_model_files(model_dir if model_dir is not None else default_model_dir())
        self._decoder = make_decoder(sample_rate, **files)
        self._utterance: list[bytes] = []
        self._in_utterance = False
        self._last_partial = ""
        self._unreported_frames = 0

    def accept(self, chunk: AudioChunk) -> Transcript | None:
        chunk.expect(self.sample_rate, consumer="PocketSphinx")
        if not self._in_utterance:
            self._decoder.start_utt()
            self._in_utterance = True
        data = chunk.to_bytes()
        self._utterance.append(data)
        self._decoder.process_raw(data, False, False)
        # a partial every PARTIAL_INTERVAL_SECONDS: hyp() costs a backtrace each call
        self._unreported_frames += chunk.frames
        if self._unreported_frames < self.sample_rate * PARTIAL_INTERVAL_SECONDS:
            return None
        self._unreported_frames = 0
        hyp = self._decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if text and text != self._last_partial:
            self._last_partial = text
            return Transcript(text=text, is_final=False)
        return None

    def finish(self) -> Transcript:
        if not self._in_utterance:
            return Transcript(text="")
        self._decoder.end_utt()
        self._in_utterance = False
        self._last_partial = ""
        self._unreported_frames = 0
        audio, self._utterance = b"".join(self._utterance), []
        # a fresh front end (noise estimate, CMN), as a new Decoder would have: what the
        # live decode left there costs accuracy (LibriVox WER 0.31 instead of 0.28)
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(audio, False, True)  # full_utt: CMN over the utterance
        self._decoder.end_utt()
        return self._transcript()

    def _transcript(self) -> Transcript:
        """The decoder's result for the utterance just ended."""
        hyp = self._decoder.hyp()
        if hyp is None:
            return Transcript(text="")
        words = []
        for seg in self._decoder.seg():
            word = clean_word(seg.word)
            if word is None:
                continue
            # the Python binding gives the lattice posterior as a plain probability
            # (slightly above 1 by rounding at times)
            confidence = float(seg.prob) if math.isfinite(seg.prob) else 0.0
            words.append(RecognizedWord(
                word=word,
                start_seconds=seg.start_frame / FRAMES_PER_SECOND,
                end_seconds=(seg.end_frame + 1) / FRAMES_PER_SECOND,
                confidence=min(1.0, max(0.0, confidence)),
            ))
        text = " ".join(w.word for w in words) or hyp.hypstr
        return Transcript(text=text, words=tuple(words))

    def reset(self) -> None:
        if self._in_utterance:
            self._decoder.end_utt()
            self._in_utterance = False
        self._utterance = []
        self._last_partial = ""
