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

With `skill_sentences` (the skills' `SentenceGrammar`), the final is decoded twice: with
the general model and with a small trigram model of the skills' sentences
(speech/phrase_lm.py; its search costs about a fifth of the general one, having a few
hundred words). The skills' transcript is taken only when its path score beats the
general one by `SKILL_MARGIN` and it is shaped like a skill sentence (every trigram of
it, slot values aside, is in the skills' sentences): a request Hearth can answer is
heard as one ("pause the timer", not "cause the timer"), while an open question, which
the small model can only force into ill-fitting skill words ("what is the cancel
percent"), keeps the general transcript.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.phrase_lm import PhraseModel, compile_apart
from speech.stt import PARTIAL_INTERVAL_SECONDS, RecognizedWord, SpeechRecognizer, Transcript

if TYPE_CHECKING:
    from speech.sentence_grammar import SentenceGrammar

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100  # PocketSphinx's default frame rate (10 ms frames)
SKILL_SEARCH = "skills"
SKILL_MARGIN = 0.03
"""How much higher (natural log of PocketSphinx's path score) the skill model's
hypothesis must score than the general model's to be taken..."""
SKILL_MAX_UNSEEN = 0
"""...and how many of its trigrams may be missing from the skills' sentences (slot
values of one class counting alike, `PhraseModel.unseen`). Both were calibrated on 80
sentences apart from the benches' (48 of the skills' grammar, 32 open questions; Piper
and espeak-ng voices, clean and at 10 dB SNR): the skill transcript was taken for 72 of
96 requests (WER 0.77 -> 0.31) and for 1 of 64 open questions (WER 0.616 -> 0.618)."""


@dataclass(frozen=True)
class SkillChoice:
    """What the last final compared, for logs and calibration."""

    general: str
    general_score: float
    """Natural log of the general search's path score."""
    skill: str
    skill_score: float
    unseen: int
    """Trigrams of the skill transcript that no skill sentence has."""
    chosen: bool
    """Whether the skill model's transcript was taken."""


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
    """Streaming recognizer over a PocketSphinx n-gram language model, with a second
    search over the skills' sentences when `skill_sentences` is given (module doc).

    `bias_phrases` are accepted (every recognizer takes them) but not used: short
    phrases make no sentences to learn from, and a JSGF search over them took 15-45 s
    per 3 s request on this 2-core machine.
    """

    name = "pocketsphinx"

    def __init__(self, model_dir: str | Path | None = None, sample_rate: int = 16000, *,
                 bias_phrases: Sequence[str] = (),
                 skill_sentences: SentenceGrammar | None = None,
                 skill_margin: float = SKILL_MARGIN) -> None:
        self.sample_rate = sample_rate
        files = sphinx_model_files(model_dir if model_dir is not None else default_model_dir())
        self._decoder = make_decoder(sample_rate, **files)
        self._dictionary = Path(files["dict"])
        self._utterance: list[bytes] = []
        self._in_utterance = False
        self._last_partial = ""
        self._unreported_frames = 0
        self.skill_margin = skill_margin
        self.skill_model: PhraseModel | None = None
        """The skills' compiled model (None without one)."""
        self.last_choice: SkillChoice | None = None
        """The latest final's comparison of the two searches (None without a skill model)."""
        if skill_sentences is not None:
            self._add_skill_model(skill_sentences)

    def _add_skill_model(self, grammar: SentenceGrammar) -> None:
        """Compile the skills' trigram model and add it as a second search."""
        try:
            model = compile_apart(grammar, self._dictionary)
        except ValueError as exc:  # no sentence in the dictionary's words, or no child
            log.warning("PocketSphinx: no skill language model (%s)", exc)
            return
        handle, path = tempfile.mkstemp(prefix="hearth-skills-", suffix=".arpa")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(model.arpa)
            self._decoder.add_lm_file(SKILL_SEARCH, path)
        except RuntimeError as exc:
            raise SpeechModelError(f"PocketSphinx cannot load the skills' model: {exc}") \
                from None
        finally:
            os.unlink(path)
        self.skill_model = model

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
        general, general_score = self._decode(audio)
        if self.skill_model is None:
            return general
        self._decoder.activate_search(SKILL_SEARCH)
        try:
            skill, skill_score = self._decode(audio)
        finally:
            self._decoder.activate_search()  # the general model, for the next live decode
        unseen = self.skill_model.unseen([w.word for w in skill.words])
        chosen = (bool(skill.words) and skill_score > general_score + self.skill_margin
                  and unseen <= SKILL_MAX_UNSEEN)
        self.last_choice = SkillChoice(general.text, general_score, skill.text, skill_score,
                                       unseen, chosen)
        log.debug("PocketSphinx final: %s", self.last_choice)
        return skill if chosen else general

    def _decode(self, audio: bytes) -> tuple[Transcript, float]:
        """Decode a whole utterance with the active search: its transcript and the
        natural log of its path score (-inf without a hypothesis)."""
        # a fresh front end (noise estimate, CMN), as a new Decoder would have: what the
        # live decode left there costs accuracy (LibriVox WER 0.31 instead of 0.28)
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(audio, False, True)  # full_utt: CMN over the utterance
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        # the binding gives the score as a probability; its log orders hypotheses as
        # the decoder's own integer score does
        score = math.log(hyp.score) if hyp is not None and hyp.score > 0 else -math.inf
        return self._transcript(), score

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
