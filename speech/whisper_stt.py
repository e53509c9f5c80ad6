"""Whisper recognizer on faster-whisper (CTranslate2), streaming with a fast final.

Whisper is not a streaming model: it transcribes a whole piece of audio at once. To
stream, a worker thread re-decodes the growing utterance whenever enough new audio has
come in (partials while the person speaks), decodes it once more as soon as a pause
follows the speech (`PAUSE_SECONDS`), and `finish()` reuses that decode when only quiet
audio came after it, so the final costs little or nothing after the last word. What
keeps the decode in the pause early:

- the encoder's input is the audio padded with silence to a window shorter than
  Whisper's fixed 30 s (`WhisperOptions.window_seconds`, 10 s; the encoder's cost
  grows with its input) while the speech stands well above the noise (in noise a
  short window made more errors, so there it stays 30 s). Partials use the short
  window too (`partial_window_seconds`): one that came after the last words needs
  no decode in the pause;
- no partial starts once the audio has gone quiet, so the pause's decode does not
  wait behind one;
- decoding is capped at a few tokens per second of audio, and never generates the
  same 8 tokens twice (a short window makes Whisper repeat itself; `without_repeats`
  drops a sentence said again).

Utterances longer than one Whisper window (about 28 s, e.g. `hearth transcribe` of a
long file) get their final from faster-whisper's own windowed `transcribe()`.

Recognition can be biased toward what Hearth understands: `bias_phrases` become
Whisper's initial prompt (the "previous text" it conditions on), which makes it
prefer those words and spellings without restricting what it can hear.

With `skill_sentences` (a `SentenceGrammar`), a second pass checks the transcript
against what the application understands: the grammar's sentences nearest to it
(`SentenceGrammar.nearest`) and the transcript itself are scored against the same
audio by Whisper (forced decoding, `Whisper.align`'s token probabilities), and the
best sentence replaces the transcript when its log-probability is at most
`second_pass_margin` below the transcript's. An open question is far from every
sentence of the grammar and stays as heard. The pass runs with the decode started in
a pause, so a final taken from it costs nothing more.

An open question (a transcript that is not a sentence of the grammar, and that none
replaced) decoded with the short window is checked once more: the decoder runs again
(greedy) on the same encoder output without the bias prompt, and when the two
transcripts disagree, the audio is decoded with Whisper's own 30 s window, whose
transcript is taken (`recheck_window_seconds`). Whisper was trained on 30 s windows;
with a shorter one, or with the skills' words as its "previous text", a word it hears as
marginal tips more often ("What is the capital of friends.", "What colors the sky.",
"the chemical symbol for goal"). bench/whisper_window.py (Piper renderings of the open
questions, as live turns): 56 wrong of 360 at 10 s, 61 at 8 s, 56 at 12 s, 50 at 20 s,
41 at 30 s, 98 with the audio plus 2 s; 44 with this check (110 and 93 of 720, 9 %
decoded at 30 s). The decode without the prompt (~45 ms on the way to the final) runs
only when the first transcript is doubtful: its decode's score (log-probability per
token) is below `recheck_below_score`, as for a third of the open questions (45 wrong of
360 instead of 44). The log-mel input does not depend on the window: it is normalised to
the loudest frame, and the padding is digital silence, clamped to the same floor however
long it is (the speech's frames are equal at 10, 15 and 30 s); what changes is how many
frames the encoder attends over.

The model is always a local folder (model.bin, config.json, tokenizer.json,
vocabulary.txt), never a hub name, and HF_HUB_OFFLINE is set before faster-whisper
is imported: nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.sentence_grammar import SentenceGrammar, spoken_words, written
from speech.stt import RecognizedWord, SpeechRecognizer, Transcript

log = logging.getLogger(__name__)

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
FRAMES_PER_SECOND = 100
"""Whisper's mel frames per second (10 ms hop)."""
WINDOW_SECONDS = 28.0
"""Longest audio decoded in one piece (Whisper's window is 30 s; a margin for the pad)."""
NO_SPEECH_THRESHOLD = 0.6
"""Above this probability of Whisper's no-speech token, the result is empty text."""
PAUSE_SECONDS = 0.1
"""Quiet audio after undecoded speech that starts a decode at once: the person may have
finished, and that decode is then the final, ready before the endpointer decides (its
quick end comes 0.25 s into the quiet; at a load average of 5 a decode took 0.15-0.4 s)."""
_PUNCTUATION = ".,;:!?\"()"
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_NON_WORD = re.compile(r"[^\w ]+")
REPEAT_SIMILARITY = 0.8
"""Word-sequence similarity (difflib's ratio) from which a sentence repeats an earlier one."""
SILENCE_RMS = 120.0
"""Frame RMS (16-bit units) under which audio counts as silence whatever the level."""


def _capitalized(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:] + "."


def _words(text: str) -> list[str]:
    """The words of a transcript, lower case, without punctuation."""
    return _NON_WORD.sub(" ", text.lower()).split()


def default_threads() -> int:
    """CTranslate2 threads: every core of the machine, at most 4 (more buys little for a
    model this size and starves the other stages)."""
    return max(1, min(4, os.cpu_count() or 1))


def check_model_dir(model_dir: str | Path) -> Path:
    """The folder, if it holds a CTranslate2 Whisper model; else `SpeechModelError`."""
    root = Path(model_dir).expanduser()
    if not root.is_dir():
        raise SpeechModelError(f"Whisper model folder {root} does not exist")
    missing = [name for name in MODEL_FILES if not (root / name).is_file()]
    if not any((root / name).is_file() for name in ("vocabulary.txt", "vocabulary.json")):
        missing.append("vocabulary.txt")
    if missing:
        raise SpeechModelError(
            f"{root} is not a faster-whisper model folder: no {', '.join(missing)} "
            "(install one with: hearth models install whisper-tiny.en)"
        )
    return root


def bias_prompt(phrases: Sequence[str], max_words: int = 60) -> str:
    """Whisper's initial prompt from bias phrases: the phrases as one run of text, first
    ones first, cut at `max_words` (the prompt shares the decoder's 448-token context)."""
    words: list[str] = []
    for phrase in phrases:
        cleaned = " ".join(phrase.split())
        if not cleaned:
            continue
        if len(words) + len(cleaned.split()) > max_words:
            break
        words += (cleaned[0].upper() + cleaned[1:] + ".").split()
    return " ".join(words)


def frame_rms(samples: np.ndarray, sample_rate: int, frame_seconds: float = 0.02) -> np.ndarray:
    """RMS of each `frame_seconds` frame of int16 mono `samples` (last partial frame dropped)."""
    size = max(1, int(sample_rate * frame_seconds))
    count = len(samples) // size
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    frames = samples[:count * size].astype(np.float64).reshape(count, size)
    return np.sqrt((frames * frames).mean(axis=1))


def without_repeats(text: str) -> str:
    """`text` without the sentences that say an earlier one again (the same words, or
    nearly: `REPEAT_SIMILARITY`; "What time is it? What day is it?" stays), nor an
    unfinished last one that starts like an earlier one. Given an encoder window
    shorter than its 30 s, Whisper's decoder often says the sentence twice or more, up
    to its token limit ("What time is it? What time is it?"; live: "Tell me, what is
    the weather like today? Tell me, what is the weather light today? Tell me, tell
    me, tell me")."""
    said: list[list[str]] = []
    pieces = _SENTENCE_END.split(text.strip())
    out = []
    for i, sentence in enumerate(pieces):
        words = _words(sentence)
        unfinished = i == len(pieces) - 1 and not sentence.rstrip().endswith((".", "?", "!"))
        if not any(SequenceMatcher(None, words, earlier).ratio() >= REPEAT_SIMILARITY
                   or (unfinished and words[:2] == earlier[:2]) for earlier in said):
            out.append(sentence)
        said.append(words)
    return " ".join(out)


@dataclass(frozen=True)
class WhisperOptions:
    """Load-time settings of the Whisper recognizer."""

    language: str = "en"
    """Spoken language (ignored by the English-only '.en' models)."""
    compute_type: str = "int8"
    """CTranslate2 weight type; int8 is the fastest on CPUs and what the catalog measures."""
    threads: int = 0
    """CTranslate2 intra-op threads; 0 = `default_threads()`."""
    beam_size: int = 5
    """Beam search costs little next to the encoder and made a quarter fewer errors on
    the noisy spoken requests of bench/stt.py (WER 0.26 against 0.33 greedy, 10 dB)."""
    partial_interval_seconds: float = 0.4
    """New audio between two partial decodes (the decode time adds to it on slow CPUs)."""
    pad_seconds: float = 0.5
    """Silence after the audio in the encoder's input, at least."""
    window_seconds: float = 10.0
    """The encoder's input for the decode in a pause and the final: the audio padded
    with silence to this length, and by `pad_seconds` at least (Whisper's own window
    is 30 s; shorter is faster; 0: the audio plus `pad_seconds`). Measured in
    bench/stt.py: 10 s made fewer errors than 30 s on clean requests and more in
    noise, hence `noisy_window_seconds`."""
    noisy_window_seconds: float = 30.0
    """The window instead while the speech stands less than `clean_snr_db` above the
    quietest audio of the utterance."""
    clean_snr_db: float = 26.0
    """Loudest against quietest chunk of the utterance (dB) from which it counts as clean:
    bench/stt.py's requests measure 18.6-24.6 dB with noise at 10 dB SNR, 28.5-34.6 at
    20 dB (30 ms chunks)."""
    partial_window_seconds: float = 10.0
    """The window of the partials while the person speaks. The audio plus the pad alone
    (0) encodes a little faster but garbled them ("What is the capital. What is
    capital. What is the capital."); with the final's window, a partial that covers
    the whole request is the final."""
    no_repeat_ngram_size: int = 8
    """No run of this many tokens is generated twice (0: no limit). Given less than its
    30 s window, Whisper's decoder tends to say the sentence again until `max_length`,
    which costs decode time; the prompt does not count."""
    second_pass_candidates: int = 20
    """Sentences of the skill grammar scored against the audio in the second pass (16 -> 20:
    one more request right at 10 dB and at 5 dB in bench/stt.py, none lost)."""
    second_pass_margin: float = 7.0
    """How much lower (natural log) a grammar sentence's probability may be than the
    transcript's and still replace it, after the penalties below (calibrated on
    bench/stt.py's requests, clean and at 10 dB: see README)."""
    second_pass_far_distance: float = 1.75
    """When even the nearest sentence is this far (word edits) from the transcript, as for
    open questions (1.8-2.2), only `second_pass_far_candidates` of them are scored: each
    costs ~5 ms of forced decoding on the way to the final, and a far sentence needs
    nearly as high a probability as the transcript's to replace it."""
    second_pass_far_candidates: int = 5
    second_pass_distance_weight: float = 2.0
    """Log-probability a sentence loses per word edit between it and the transcript."""
    second_pass_drop_weight: float = 1.0
    """...and per word it has fewer than the transcript."""
    second_pass_max_distance: float = 2.5
    """Grammar sentences farther than this (word edits) from the transcript are not
    considered."""
    recheck_window_seconds: float = 30.0
    """The window of the decode that settles an open question decoded with a shorter
    window, when its transcripts with and without the bias prompt disagree (0: no
    check; without bias phrases there is nothing to compare: no check either; see the
    module docstring)."""
    recheck_below_score: float = -0.18
    """Only an open question whose decode scored below this (the beam's length-normalised
    log-probability per token, natural log) is rechecked; 0: every one. The mishearings
    the recheck mends score low (-0.17 to -0.53; 'capital of friends' -0.22 and -0.32).
    bench/whisper_window.py, 360 turns (--renderings 4), wrong finals and share of open
    questions rechecked by threshold: 0 (all) 44 / 100 %, -0.15 44 / 50 %, -0.18 45 /
    32 %, -0.2 46 / 24 %, -0.25 48 / 13 %, -0.3 48 / 9 %; the 10 s window alone 56.
    Paced (--paced --renderings 1, 90 turns, load 2): finish() waited 42 ms median (p90
    174) against 76 (p90 195) rechecking every one, 11 wrong against 10."""


@dataclass(frozen=True)
class SecondPass:
    """What the second pass compared, for logs and calibration."""

    heard: str
    heard_score: float
    """Log-probability of the first pass's transcript under forced decoding."""
    sentence: str
    """The best grammar sentence as written, or "" when none was near."""
    sentence_score: float
    distance: float
    """Word edit cost of the transcript against the sentence."""
    replaced: bool
    candidates: tuple[tuple[str, float, float], ...] = ()
    """Every sentence scored: (as written, log-probability, distance)."""


@dataclass(frozen=True)
class _Decode:
    """One decode of the utterance's first `frames` samples."""

    generation: int
    frames: int
    text: str
    window: float = 0.0
    """The encoder window it was decoded with (the final may reuse a decode whose window
    is at least the final's)."""
    encoded: Any = None
    """The encoder's output (a CTranslate2 StorageView), kept for a second pass."""
    samples: np.ndarray | None = None
    """The audio decoded, kept for a decode with another window."""
    checked: bool = False
    """Whether the second pass and the recheck have seen `text` (or there are none to
    do)."""
    score: float = 0.0
    """The decoder's score of `text` (log-probability per token)."""


class WhisperRecognizer(SpeechRecognizer):
    """Streaming Whisper: partials from a worker thread, a final that reuses them."""

    name = "whisper"

    def __init__(self, model_dir: str | Path, sample_rate: int = 16000, *,
                 bias_phrases: Sequence[str] = (), language: str = "en",
                 compute_type: str = "int8", threads: int = 0,
                 options: WhisperOptions | None = None,
                 skill_sentences: SentenceGrammar | None = None) -> None:
        self.sample_rate = sample_rate
        self.model_dir = check_model_dir(model_dir)
        self.options = options or WhisperOptions(language=language,
                                                 compute_type=compute_type, threads=threads)
        self.threads = self.options.threads or default_threads()
        self.prompt = bias_prompt(bias_phrases)
        if skill_sentences is not None and importlib.util.find_spec("rapidfuzz") is None:
            log.warning("no second pass over the skill sentences: the Python package "
                        "'rapidfuzz' is missing (install Hearth with the 'whisper' extra)")
            skill_sentences = None
        self.skill_sentences = skill_sentences
        self.last_second_pass: SecondPass | None = None
        """The latest second pass's comparison (None before the first)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before faster_whisper imports the hub
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        try:
            self._model = WhisperModel(str(self.model_dir), device="cpu",
                                       compute_type=self.options.compute_type,
                                       cpu_threads=self.threads, num_workers=1,
                                       local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            raise SpeechModelError(
                f"faster-whisper cannot load the model in {self.model_dir}: {exc}") from None
        multilingual = self._model.model.is_multilingual
        self.language = self.options.language if multilingual else "en"
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, multilingual,
                                    task="transcribe", language=self.language)
        self._prompt_tokens = self._build_prompt()
        self._bare_prompt_tokens = self._prompt_tokens[self._prompt_tokens.index(
            self._tokenizer.sot_sequence[0]):]
        """The decoder's start without the bias prompt."""
        self._warm_up()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._samples: list[np.ndarray] = []
        self._frames = 0
        self._generation = 0
        self._pending: Future[_Decode] | None = None
        self._latest: _Decode | None = None
        self._requested_frames = 0
        self._final_requested_frames = 0
        self._reported: _Decode | None = None
        """The decode whose text `accept` last returned."""
        self._confirmed: _Decode | None = None
        """The decode last reported as covering all the speech in a pause."""
        self._loudest = 0.0
        """RMS of the loudest chunk of the utterance so far."""
        self._quietest = float("inf")
        """...and of the quietest (the noise, once the person pauses)."""
        self._quiet_frames = 0
        """Frames of quiet audio at the end of the utterance so far."""

    def _build_prompt(self) -> list[int]:
        tokens: list[int] = []
        if self.prompt:
            prompt_tokens = self._tokenizer.encode(" " + self.prompt)
            tokens += [self._tokenizer.sot_prev, *prompt_tokens[-(448 // 2 - 1):]]
        return [*tokens, *self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]

    def _warm_up(self) -> None:
        """One decode at load time: CTranslate2's first call allocates its buffers, which
        would otherwise land on the first request (measured: +1 s on 2 cores)."""
        import ctranslate2

        features = np.zeros((1, self._model.model.n_mels, 200), dtype=np.float32)
        self._model.model.generate(ctranslate2.StorageView.from_array(features),
                                   [self._prompt_tokens], beam_size=self.options.beam_size,
                                   max_length=len(self._prompt_tokens) + 4)

    # ------------------------------------------------------------------ decoding

    def _audio(self) -> np.ndarray:
        """The utterance so far as one int16 array (joined once, then kept joined)."""
        if len(self._samples) > 1:
            self._samples = [np.concatenate(self._samples)]
        return self._samples[0] if self._samples else np.zeros(0, dtype=np.int16)

    def _decode(self, samples: np.ndarray, generation: int, window: float,
                second_pass: bool = False) -> _Decode:
        """Transcribe `samples` (int16, at most one window long) in one encoder pass of
        `window` seconds; with `second_pass`, check the transcript against the skill
        sentences."""
        frames = len(samples)
        if generation != self._generation or frames == 0:
            return _Decode(generation, frames, "", window, checked=True)
        if not np.any(frame_rms(samples, self.sample_rate) >= SILENCE_RMS):
            return _Decode(generation, frames, "", window, checked=True)
        import ctranslate2

        audio = samples.astype(np.float32) / 32768.0
        if self.sample_rate != 16000:
            from speech.resample import resample

            audio = resample(AudioChunk(samples, self.sample_rate), 16000).to_float()
        # the pad is silence in the audio itself, so the log-mel normalisation (relative to
        # the loudest frame) treats it as Whisper's own 30 s padding would
        pad = int(max(self.options.pad_seconds, window - len(audio) / 16000) * 16000)
        features = self._model.feature_extractor(audio, padding=160 + pad)
        wanted = min(3000, features.shape[-1] - features.shape[-1] % 2)  # conv halves it
        features = np.ascontiguousarray(features[None, :, :wanted], dtype=np.float32)
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(features),
                                           to_cpu=True)
        text, score = self._generate(encoded, self._prompt_tokens, frames / self.sample_rate)
        if text is None:
            return _Decode(generation, frames, "", window, checked=True)
        decoded = _Decode(generation, frames, text, window, encoded, samples,
                          checked=not self._checks(window), score=score)
        return self._check(decoded) if second_pass else decoded

    def _generate(self, encoded: Any, prompt: list[int], seconds: float,
                  beam_size: int = 0) -> tuple[str | None, float]:
        """The text the decoder reads in `encoded` after `prompt` (with `beam_size`, 0: the
        options'; None when it hears no speech) and its score (log-probability per
        token)."""
        result = self._model.model.generate(
            encoded, [prompt], beam_size=beam_size or self.options.beam_size,
            # the limit counts the prompt too; a few tokens a second stops a runaway loop
            max_length=len(prompt) + int(16 + 10 * seconds),
            return_no_speech_prob=True, return_scores=True, suppress_blank=True,
            no_repeat_ngram_size=self.options.no_repeat_ngram_size,
        )[0]
        score = float(result.scores[0])
        if result.no_speech_prob > NO_SPEECH_THRESHOLD:
            return None, score
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return without_repeats(self._tokenizer.decode(tokens)), score

    def _checks(self, window: float) -> bool:
        """Whether a decode with `window` gets a second pass or a recheck."""
        return self.skill_sentences is not None or self._rechecks(window)

    def _rechecks(self, window: float) -> bool:
        """Whether an open question decoded with `window` is checked again."""
        recheck = self.options.recheck_window_seconds
        return bool(self.prompt) and 0 < window < recheck

    def _check(self, decoded: _Decode) -> _Decode:
        """`decoded` after the second pass and, if it is an open question, the recheck
        (see the module docstring)."""
        if decoded.checked or decoded.generation != self._generation:
            return decoded
        text, skill_sentence = decoded.text, False
        if self.skill_sentences is not None and text and decoded.encoded is not None:
            text, skill_sentence = self._second_pass(
                decoded.encoded, decoded.frames / self.sample_rate, text)
        if not skill_sentence and text and self._rechecks(decoded.window):
            text = self._recheck(decoded)
        return replace(decoded, text=text, checked=True)

    def _recheck(self, decoded: _Decode) -> str:
        """An open question's transcript, or Whisper's with its own window when the
        decoder hears other words without the bias prompt (see the module docstring)."""
        threshold = self.options.recheck_below_score
        if threshold and decoded.score >= threshold:
            return decoded.text
        seconds = decoded.frames / self.sample_rate
        # greedy: as good a judge here as the beam (28 against 26 wrong of 240 renderings),
        # and this decode is on the way to the final (45 against 78 ms)
        bare, _ = self._generate(decoded.encoded, self._bare_prompt_tokens, seconds,
                                 beam_size=1)
        if bare is not None and _words(bare) == _words(decoded.text):
            return decoded.text
        assert decoded.samples is not None
        log.debug("recheck: %r, without the prompt %r", decoded.text, bare)
        return self._decode(decoded.samples, decoded.generation,
                            self.options.recheck_window_seconds).text

    def _second_pass(self, encoded: Any, seconds: float, heard: str) -> tuple[str, bool]:
        """The grammar sentence that replaces `heard`, or `heard` itself; and whether that
        is a sentence of the grammar (a request, which the recheck leaves alone: its
        decode without the bias prompt hears the skills' words worse)."""
        assert self.skill_sentences is not None
        options = self.options
        candidates = self.skill_sentences.nearest(
            heard, options.second_pass_candidates,
            max_distance=options.second_pass_max_distance)
        heard_words = spoken_words(heard)
        if not candidates or candidates[0].text.split() == heard_words:
            # already a sentence of the grammar (or nothing near it)
            return heard, bool(candidates)
        if candidates[0].distance >= options.second_pass_far_distance:
            candidates = candidates[:options.second_pass_far_candidates]
        # each sentence written in the transcript's own style (Whisper writes "12" or
        # "twelve" by what it heard, and scores the other spelling lower)
        digits = any(ch.isdigit() for ch in heard)
        written_forms = [(c, written(c.text) if digits else _capitalized(c.text))
                         for c in candidates]
        scores = self._score(encoded, seconds, [heard, *(f for _, f in written_forms)])
        # a sentence far from what was heard needs more evidence from the audio, and so
        # does a shorter one (fewer tokens cost less log-probability)
        adjusted = [score - options.second_pass_distance_weight * c.distance
                    - options.second_pass_drop_weight
                    * max(0, len(heard_words) - len(c.text.split()))
                    for (c, _), score in zip(written_forms, scores[1:], strict=True)]
        best = int(np.argmax(adjusted))
        candidate, sentence = written_forms[best]
        replaced = adjusted[best] + options.second_pass_margin >= scores[0]
        self.last_second_pass = SecondPass(
            heard, scores[0], sentence, scores[1 + best], candidate.distance, replaced,
            tuple((f, score, c.distance)
                  for (c, f), score in zip(written_forms, scores[1:], strict=True)))
        log.debug("second pass: %s", self.last_second_pass)
        return (sentence, True) if replaced else (heard, False)

    def _score(self, encoded: Any, seconds: float, texts: Sequence[str]) -> list[float]:
        """Log-probability of each text given the audio (forced decoding). The decoder
        attends only to the audio's own frames plus a second (the padding says little,
        and costs most), without the bias prompt (which costs more than the texts)."""
        import ctranslate2

        audio = np.asarray(encoded)[:, :min(1500, int((seconds + 1.0) * 50))]
        frames = audio.shape[1]  # (a short window may hold less than the second)
        batch = np.ascontiguousarray(np.repeat(audio, len(texts), axis=0))
        tokens = [self._tokenizer.encode(" " + text.strip()) for text in texts]
        start = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        results = self._model.model.align(ctranslate2.StorageView.from_array(batch), start,
                                          tokens, frames)
        return [float(np.log(np.maximum(np.asarray(r.text_token_probs), 1e-12)).sum())
                for r in results]

    def _decode_long(self, samples: np.ndarray) -> str:
        """The whole of a long utterance, with faster-whisper's 30 s windows."""
        segments, _ = self._model.transcribe(
            samples.astype(np.float32) / 32768.0, language=self.language,
            beam_size=self.options.beam_size, initial_prompt=self.prompt or None,
            condition_on_previous_text=False, vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments if s.text.strip())

    def _collect(self) -> None:
        """Take the pending decode's result if it is done (caller holds no lock)."""
        pending = self._pending
        if pending is not None and pending.done():
            self._pending = None
            decoded = pending.result()
            if decoded.generation == self._generation:
                self._latest = decoded

    def _submit(self, window: float) -> Future[_Decode]:
        """Decode the utterance so far (its last `WINDOW_SECONDS`) in the background."""
        self._requested_frames = self._frames
        if window >= self._final_window():
            self._final_requested_frames = self._frames
        samples = self._audio()[-int(WINDOW_SECONDS * self.sample_rate):]
        return self._executor.submit(self._decode, samples, self._generation, window)

    @property
    def _speech_end(self) -> int:
        """Frames of the utterance up to the end of its last loud chunk."""
        return self._frames - self._quiet_frames

    def _final_window(self) -> float:
        """The encoder window of a decode the final may be: the clean one while the
        speech stands well above the utterance's quietest audio, else the noisy one."""
        options = self.options
        clean = self._loudest >= self._quietest * 10 ** (options.clean_snr_db / 20)
        return options.window_seconds if clean else options.noisy_window_seconds

    def _covers_speech(self, decoded: _Decode | None) -> TypeGuard[_Decode]:
        """Whether `decoded` may be the final: decoded with the final's window (or a
        longer one), of every frame up to the end of the speech (only quiet audio came
        after it)."""
        return (decoded is not None and decoded.window >= self._final_window()
                and decoded.frames >= self._speech_end)

    # ------------------------------------------------------------------ the interface

    def accept(self, chunk: AudioChunk) -> Transcript | None:
        """Feed audio. A partial transcript comes back when a decode brought new text, and
        again once in a pause when the latest decode (or its second pass) covers all the
        speech; on quiet audio only such a decode comes back. So a transcript that
        arrives in a pause is everything said before it."""
        chunk.expect(self.sample_rate, consumer="Whisper")
        self._samples.append(chunk.samples)
        self._frames += chunk.frames
        rms = float(np.sqrt(np.mean(chunk.samples.astype(np.float64) ** 2))) if chunk.frames \
            else 0.0
        self._loudest = max(self._loudest, rms)
        if chunk.frames:
            self._quietest = min(self._quietest, rms)
        quiet = rms < max(SILENCE_RMS, 0.1 * self._loudest)
        self._quiet_frames = self._quiet_frames + chunk.frames if quiet else 0
        self._collect()
        latest = self._latest
        paused = self._quiet_frames >= PAUSE_SECONDS * self.sample_rate
        if self._pending is None:
            due = (self._frames - self._requested_frames
                   >= self.options.partial_interval_seconds * self.sample_rate)
            if paused and self._final_requested_frames < self._speech_end:
                self._pending = self._submit(self._final_window())
            elif paused and self._covers_speech(latest) and not latest.checked:
                # the decode in this pause is in: its second pass
                self._pending = self._executor.submit(self._check, latest)
            elif due and not quiet:  # (a partial started in the quiet would delay the pause's)
                self._pending = self._submit(self.options.partial_window_seconds)
        if latest is None or not latest.text or (quiet and not self._covers_speech(latest)):
            return None  # (in the quiet, only a decode of all the speech is news)
        confirms = paused and self._covers_speech(latest) and latest is not self._confirmed
        if latest is self._reported and not confirms:
            return None
        changed = self._reported is None or latest.text != self._reported.text
        self._reported = latest
        if confirms:
            self._confirmed = latest
        return Transcript(text=latest.text, is_final=False) if changed or confirms else None

    def finish(self) -> Transcript:
        samples = self._audio()
        try:
            if len(samples) > WINDOW_SECONDS * self.sample_rate:
                text = self._decode_long(samples)
            else:
                text = self._final_text(samples)
        finally:
            self._new_utterance()
        words = tuple(RecognizedWord(word=w.strip(_PUNCTUATION)) for w in text.split()
                      if w.strip(_PUNCTUATION))
        return Transcript(text=text, words=words)

    def _final_text(self, samples: np.ndarray) -> str:
        """The decode in the last pause (after its second pass) when only quiet audio came
        after it; else a new one."""
        latest = self._latest
        if self._covers_speech(latest) and latest.checked:
            return latest.text
        pending = self._pending
        if pending is not None:
            decoded = pending.result()
            self._pending = None
            if decoded.generation == self._generation:
                self._latest = decoded
        latest = self._latest
        if self._covers_speech(latest):
            return self._executor.submit(self._check, latest).result().text
        return self._executor.submit(self._decode, samples, self._generation,
                                     self._final_window(), True).result().text

    def _new_utterance(self) -> None:
        self._generation += 1
        self._samples = []
        self._frames = 0
        self._requested_frames = 0
        self._final_requested_frames = 0
        self._latest = None
        self._reported = None
        self._confirmed = None
        self._loudest = 0.0
        self._quietest = float("inf")
        self._quiet_frames = 0
        if self._pending is not None and self._pending.done():
            self._pending = None

    def reset(self) -> None:
        """Drop the utterance; a decode in progress finishes in the background and its
        result is ignored (its generation is stale)."""
        self._new_utterance()
        self._pending = None

    def close(self) -> None:
        self._new_utterance()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._model = None  # type: ignore[assignment]
