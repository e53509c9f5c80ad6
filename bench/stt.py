"""Speech recognition benchmark: word error rate (WER), exact-sentence rate and real-time
factor (RTF) of each recognizer, and Whisper's time from end of speech to final.

Run: `hearth bench stt` or `python -m bench.stt [--quick]`. Two test sets:

(a) LibriVox: the real human recordings of Debian's `pocketsphinx-testdata` package
    (/usr/share/pocketsphinx/test/data/librivox), with their reference transcriptions.
(b) Spoken requests: the REQUESTS below (questions, timers, times, arithmetic, units),
    each spoken by one of several voices (espeak-ng variants at several speeds, Piper's
    bundled voice at two speeds), with pink noise mixed in at 20, 10 and 5 dB SNR. The
    synthesized WAVs are cached (default /tmp/hearth-stt-requests) so reruns only decode.

Transcripts are compared after `normalize()`: lower case, no punctuation, digits and
symbols spelt out ("10:30" -> "ten thirty", "5 + 3" -> "five plus three"), so Whisper's
written style and PocketSphinx's spoken words are scored alike.

stt_final_ms: a 3-second request is fed in 30 ms blocks at real-time pace, followed by
the silence Hearth's endpointer waits for ([vad] end_silence_ms, the default) also in
real time; the figure is `finish()` (the end of the utterance, when the pipeline stops
listening) -> final transcript, the pipeline's own stt_final_ms. Also given: the same
with push-to-talk released at the end of the recording (no silence added; the
recordings end with 0.25 s of silence plus what the voice itself leaves).

Writes bench/results/stt.json and bench/results/stt.md and prints the table.

`--sets clean,10` measures one Whisper configuration on those sets only, a quicker way
to compare settings (`--variant`, `--option NAME=VALUE` for `WhisperOptions`, `--denoise
webrtc-N` for WebRTC noise suppression in front), with open questions and skill
requests scored apart; each row is kept in bench/results/stt-sets.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import AudioChunk
from speech.sentence_grammar import ONES, number_words

RESULTS = Path(__file__).resolve().parent / "results"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CACHE = Path(os.environ.get("HEARTH_STT_BENCH_CACHE", "/tmp/hearth-stt-requests"))
BLOCK = 480
"""30 ms at 16 kHz, what the microphone delivers."""
SNRS_DB = (20, 10, 5)
NOISE_LEAD_SECONDS = 1.0
"""Noise fed to a noise suppressor before each noisy request (`--denoise`)."""
TARGETS = {"librivox_wer": 0.12, "requests_10db_wer": 0.10, "requests_10db_exact": 0.85,
           "stt_final_ms": 250.0}

# ------------------------------------------------------------------ text normalisation

_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
             "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_UNITS = {"°f": " degrees fahrenheit ", "°c": " degrees celsius ", "km": "kilometers",
          "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "ml": "milliliters",
          "lbs": "pounds", "lb": "pounds", "oz": "ounces", "mph": "miles per hour",
          "ft": "feet", "kmh": "kilometers per hour"}
_SYMBOLS = {"+": " plus ", "×": " times ", "*": " times ", "÷": " divided by ",
            "=": " equals ", "%": " percent ", "°": " degrees ", "&": " and ",
            "@": " at "}
_CONTRACTIONS = {"what's": "what is", "it's": "it is", "i'm": "i am", "that's": "that is",
                 "what're": "what are", "how's": "how is", "where's": "where is",
                 "who's": "who is", "let's": "let us", "don't": "do not", "can't": "cannot",
                 "won't": "will not", "isn't": "is not", "there's": "there is",
                 "o'clock": "oclock", "okay": "ok", "mister": "mr", "doctor": "dr",
                 "timer's": "timer is", "today's": "today is"}
_SPELLINGS = {"colour": "color", "metres": "meters", "metre": "meter", "kilometres":
              "kilometers", "kilometre": "kilometer", "litres": "liters", "litre": "liter",
              "centimetres": "centimeters", "centimetre": "centimeter", "grey": "gray",
              "celcius": "celsius", "alright": "all right", "a.m.": "am", "p.m.": "pm"}


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return (head + " " + last).strip()


def _spell_number(match: re.Match[str]) -> str:
    whole, fraction, suffix = match.group(1), match.group(2), match.group(3) or ""
    digits = whole.replace(",", "")
    if len(digits) > 12:
        return " ".join(ONES[int(d)] for d in digits)
    words = number_words(int(digits))
    if fraction:
        words += " point " + " ".join(ONES[int(d)] for d in fraction)
    if suffix.lower() in ("st", "nd", "rd", "th"):
        words = _ordinal(words)
    return f" {words} "


def _spell_time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f" {number_words(hours)} oclock "
    if minutes < 10:
        return f" {number_words(hours)} oh {number_words(minutes)} "
    return f" {number_words(hours)} {number_words(minutes)} "


def normalize(text: str) -> str:
    """Text in the spoken form used for scoring: lower case, words only, numbers spelt."""
    text = text.lower().replace("’", "'")
    for written, spoken in _SPELLINGS.items():
        text = text.replace(written, spoken)
    text = re.sub(r"\$(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b", _spell_time, text)
    # "7.30" is how Whisper often writes a time of day (British style)
    text = re.sub(r"\b(?:at|for|until|to) (\d{1,2})\.(\d{2})\b",
                  lambda m: m.group(0).split()[0] + _spell_time(m), text)
    text = re.sub(r"(\d)\s*-\s*(\d)", r"\1 minus \2", text)
    text = re.sub(r"(\d)\s*/\s*(\d)", r"\1 divided by \2", text)
    text = re.sub(r"(\d)\s*x\s*(\d)", r"\1 times \2", text)
    text = re.sub(r"(\d)\s*(°[fc])", lambda m: m.group(1) + _UNITS[m.group(2)], text)
    text = re.sub(r"(\d)\s*(km|kg|cm|mm|ml|lbs|lb|oz|mph|ft)\b",
                  lambda m: m.group(1) + " " + _UNITS[m.group(2)], text)
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"(\d[\d,]*\d|\d)(?:\.(\d+))?(st|nd|rd|th)?\b", _spell_number, text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = []
    for word in text.split():
        word = word.strip("'")
        words += _CONTRACTIONS.get(word, word).split()
    return " ".join(w for w in words if w)


def word_errors(reference: str, hypothesis: str) -> int:
    """Edit distance in words (substitutions + deletions + insertions)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h))
    return row[-1]


@dataclass(frozen=True)
class Utterance:
    """One recording with what was said."""

    name: str
    reference: str
    audio: AudioChunk
    voice: str = ""
    snr_db: float | None = None
    """The noise mixed in (None: as recorded)."""
    seed: int = 0
    """The noise's seed."""


def librivox_clips(folder: Path = LIBRIVOX) -> list[Utterance]:
    """The LibriVox clips of pocketsphinx-testdata (empty when it is not installed)."""
    from speech.wav import read_wav

    listing = folder / "transcription"
    if not listing.exists():
        return []
    clips = []
    for line in listing.read_text().splitlines():
        if "(" not in line:
            continue
        text, name = line.rsplit("(", 1)
        name = name.strip(") ")
        reference = " ".join(w for w in text.split() if w not in ("<s>", "</s>"))
        clips.append(Utterance(name, reference, read_wav(folder / f"{name}.wav")))
    return clips


# ------------------------------------------------------------------ the spoken requests

REQUESTS = (
    # timers and alarms
    "set a timer for ten minutes", "set a timer for five minutes",
    "set a pasta timer for twelve minutes", "set a timer for thirty seconds",
    "set a timer for one hour", "start a timer for twenty five minutes",
    "set a tea timer for three minutes", "set a timer for two hours and fifteen minutes",
    "how much time is left on the timer", "cancel the timer", "stop the timer",
    "cancel the pasta timer", "how long is left on my egg timer",
    "set an alarm for seven thirty", "wake me up at six o'clock",
    "set an alarm for eight fifteen tomorrow morning", "remind me in forty minutes",
    "pause the timer", "set a timer for ninety seconds", "add five minutes to the timer",
    # times and dates
    "what time is it", "what is the time", "what day is it today", "what is the date today",
    "what is today's date", "what day of the week is it", "what year is it",
    "what month is it", "how many days until christmas", "what day is tomorrow",
    "what time is it in london", "what date is next friday",
    "how many days are in february", "is it morning or afternoon",
    "what time will it be in three hours",
    # arithmetic
    "what is two plus two", "what is twelve times seven", "what is one hundred divided by four",
    "what is fifteen minus six", "what is seven times eight", "what is nine plus sixteen",
    "what is the square root of eighty one", "what is twenty percent of fifty",
    "what is three hundred plus four hundred", "what is fifty divided by two",
    "what is eleven times eleven", "what is a thousand minus one",
    "what is six squared", "add seventeen and twenty three", "multiply nine by six",
    "what is half of ninety", "what is twenty five times four",
    "what is eighty minus thirty five", "what is two to the power of ten",
    "what is forty two divided by seven",
    # units
    "how many grams are in a pound", "convert ten miles to kilometers",
    "how many centimeters are in an inch", "convert one hundred degrees fahrenheit to celsius",
    "what is thirty degrees celsius in fahrenheit", "how many ounces are in a cup",
    "convert five kilograms to pounds", "how many feet are in a mile",
    "how many milliliters are in a teaspoon", "convert two liters to gallons",
    "how many meters are in a kilometer", "how many seconds are in an hour",
    "how many minutes are in a day", "convert sixty miles per hour to kilometers per hour",
    "how many inches are in a foot", "how many cups are in a liter",
    "convert three feet to meters", "how many pounds is ten kilograms",
    "how many tablespoons are in a cup", "what is seventy two fahrenheit in celsius",
    # questions for the language model
    "what is the capital of france", "how many days are in a week", "what color is the sky",
    "tell me a fun fact about cats", "who wrote romeo and juliet",
    "what is the boiling point of water", "name a fruit that is yellow",
    "how many legs does a spider have", "what is the largest ocean",
    "why is the sky blue", "what is the tallest mountain in the world",
    "how far away is the moon", "who painted the mona lisa", "what do bees make",
    "tell me a joke", "what is the weather like on mars", "how do plants make food",
    "what is the speed of light", "who was the first person on the moon",
    "what language do they speak in brazil", "how many continents are there",
    "what is the biggest animal", "give me a recipe for pancakes",
    "what rhymes with orange", "how do I boil an egg", "what is the opposite of hot",
    "spell the word necessary", "what is a good name for a dog",
    "how many planets are in the solar system", "what is the chemical symbol for gold",
    # control
    "stop", "louder please", "turn the volume down", "never mind", "thank you",
)

GENERAL_QUESTIONS = frozenset(REQUESTS[REQUESTS.index("what is the capital of france"):
                                       REQUESTS.index("stop")])
"""The open questions of the set: a second pass over the skills' sentences must leave
them (and LibriVox) as heard."""

# espeak-ng voice variants and speeds, and Piper's bundled voice at two speeds
ESPEAK_VOICES = (("en-us", 160), ("en-us+m3", 180), ("en-us+f3", 150), ("en+m7", 170),
                 ("en-gb", 165), ("en-us+f4", 190), ("en-029", 160))
PIPER_RATES = (1.0, 1.2)


def voice_names() -> list[str]:
    return ([f"espeak-ng {v} {wpm} wpm" for v, wpm in ESPEAK_VOICES]
            + [f"piper joe x{r}" for r in PIPER_RATES])


def _espeak(text: str, voice: str, wpm: int, out: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(out), text],
                   check=True, capture_output=True)


def espeak_request(text: str, voice: str, wpm: int, folder: Path) -> AudioChunk:
    """`text` spoken by espeak-ng as in the request set: 16 kHz, 0.25 s of silence
    around it."""
    from speech.resample import resample
    from speech.wav import read_wav

    path = folder / "espeak.wav"
    _espeak(text, voice, wpm, path)
    pause = AudioChunk.silence(0.25, 16000)
    return AudioChunk.concatenate([pause, resample(read_wav(path), 16000), pause])


def _piper_factory() -> Callable[[float], Any] | None:
    try:
        from app.models.store import ModelStore
        from speech.piper_tts import PiperSynthesizer

        path = ModelStore().path("piper-en_US-joe-medium")
    except Exception:  # not installed: the set is then espeak-ng only
        return None
    voices: dict[float, Any] = {}

    def get(rate: float) -> Any:
        if rate not in voices:
            voices[rate] = PiperSynthesizer(path, speaking_rate=rate)
        return voices[rate]
    return get


def request_set(cache: Path = CACHE, limit: int = 0, step: int = 1) -> list[Utterance]:
    """The spoken requests (clean, 16 kHz), request i in voice i mod len(voices); every
    `step`-th of the first `limit` (0: all), synthesized once and cached as WAVs."""
    from speech.resample import resample
    from speech.wav import read_wav, write_wav

    cache.mkdir(parents=True, exist_ok=True)
    names = voice_names()
    piper = None
    utterances = []
    for i, text in list(enumerate(REQUESTS[:limit] if limit else REQUESTS))[::step]:
        slot = i % len(names)
        voice = names[slot]
        path = cache / f"{i:03d}.wav"
        if not path.exists():
            if voice.startswith("piper"):
                piper = piper or _piper_factory()
            if voice.startswith("piper") and piper is not None:
                rate = float(voice.rsplit("x", 1)[1])
                chunks = list(piper(rate).synthesize(text + "."))
                write_wav(path, resample(AudioChunk.concatenate(chunks), 16000))
            else:
                espeak_voice, wpm = ESPEAK_VOICES[slot % len(ESPEAK_VOICES)]
                voice = f"espeak-ng {espeak_voice} {wpm} wpm"
                _espeak(text, espeak_voice, wpm, path)
                write_wav(path, resample(read_wav(path), 16000))
            (cache / f"{i:03d}.txt").write_text(f"{voice}\t{text}\n")
        voice = (cache / f"{i:03d}.txt").read_text().split("\t")[0]
        audio = read_wav(path)
        # a little silence around the request, as a live endpointer would cut it
        pause = AudioChunk.silence(0.25, 16000)
        utterances.append(Utterance(f"request {i}", text,
                                    AudioChunk.concatenate([pause, audio, pause]), voice))
    return utterances


def pink_noise(frames: int, seed: int) -> np.ndarray:
    """Unit-RMS pink (1/f) noise, made by shaping white noise in the frequency domain."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(frames))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, frames)
    return noise / (np.sqrt(np.mean(noise ** 2)) or 1.0)


def _noise_scale(audio: AudioChunk, snr_db: float) -> float:
    """RMS of noise `snr_db` below the speech's power (measured over the frames louder
    than -40 dB of the peak, so pauses do not dilute it)."""
    samples = audio.samples.astype(np.float64)
    frames = samples[: len(samples) // 320 * 320].reshape(-1, 320)
    power = (frames ** 2).mean(axis=1)
    speech_power = power[power > power.max() * 1e-4].mean()
    return float(np.sqrt(speech_power / 10 ** (snr_db / 10)))


def with_noise(audio: AudioChunk, snr_db: float, seed: int) -> AudioChunk:
    """`audio` plus pink noise at `snr_db` below the speech's power."""
    noise = pink_noise(audio.frames, seed) * _noise_scale(audio, snr_db)
    mixed = np.clip(np.round(audio.samples.astype(np.float64) + noise), -32768, 32767)
    return AudioChunk(mixed.astype(np.int16), audio.sample_rate)


def noise_lead(audio: AudioChunk, snr_db: float | None, seed: int,
               seconds: float = NOISE_LEAD_SECONDS) -> AudioChunk:
    """The noise (other samples, same level) that a live microphone heard before
    `audio`: a noise suppressor learns the room from it (silence for clean audio)."""
    frames = int(seconds * audio.sample_rate)
    if snr_db is None:
        return AudioChunk.silence(seconds, audio.sample_rate)
    noise = pink_noise(frames, seed + 100_000) * _noise_scale(audio, snr_db)
    return AudioChunk(np.clip(np.round(noise), -32768, 32767).astype(np.int16),
                      audio.sample_rate)


class NoiseSuppression:
    """WebRTC noise suppression (the `webrtc-noise-gain` wheel, as Home Assistant's voice
    pipeline uses it) at `level` 1-4, in front of the recognizer: 16 kHz int16 in 10 ms
    frames, a partial frame held for the next block. Measured, not used by Hearth (see
    README: it lowered WER but not the exact-sentence rate)."""

    FRAME = 160

    def __init__(self, level: int) -> None:
        try:
            from webrtc_noise_gain import AudioProcessor
        except ImportError:
            raise SystemExit("--denoise needs webrtc-noise-gain: "
                             ".venv/bin/pip install webrtc-noise-gain==1.3.0") from None
        self._processor = AudioProcessor(0, level)
        self._held = np.zeros(0, dtype=np.int16)

    @classmethod
    def create(cls, spec: str) -> NoiseSuppression | None:
        """'webrtc-N' (level N), or None for ''/'off'."""
        if spec in ("", "off"):
            return None
        name, _, level = spec.partition("-")
        if name != "webrtc" or level not in ("1", "2", "3", "4"):
            raise SystemExit(f"unknown noise suppression {spec!r} (webrtc-1 .. webrtc-4)")
        return cls(int(level))

    def process(self, samples: np.ndarray) -> np.ndarray:
        held = np.concatenate([self._held, samples.astype(np.int16)])
        whole = len(held) // self.FRAME * self.FRAME
        self._held = held[whole:]
        data = held[:whole].tobytes()
        size = 2 * self.FRAME
        out = b"".join(self._processor.Process10ms(data[i:i + size]).audio
                       for i in range(0, len(data), size))
        return np.frombuffer(out, dtype=np.int16).copy()


# ------------------------------------------------------------------ scoring


@dataclass
class Score:
    """Errors and time over a set of utterances."""

    errors: int = 0
    words: int = 0
    exact: int = 0
    sentences: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    by_voice: dict[str, list[int]] = field(default_factory=dict)
    """voice -> [word errors, words, exact sentences, sentences]."""
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    """'open questions' or 'skill requests' -> the same."""
    second_pass: dict[str, int] = field(default_factory=dict)
    """Whisper's second pass: transcripts it replaced, of which it made right ("fixed"),
    made wrong ("broke"), and that were open questions or LibriVox ("general")."""

    def summary(self) -> dict[str, Any]:
        extra = {"second_pass": self.second_pass} if self.second_pass else {}
        return {**extra, "wer": round(self.errors / max(1, self.words), 3),
                "exact": round(self.exact / max(1, self.sentences), 3),
                "sentences": self.sentences,
                "rtf": round(self.wall_seconds / max(1e-9, self.audio_seconds), 3),
                "rtf_cpu": round(self.cpu_seconds / max(1e-9, self.audio_seconds), 3),
                "by_voice": {voice: {"wer": round(e / max(1, w), 3), "exact": f"{x}/{n}"}
                             for voice, (e, w, x, n) in self.by_voice.items()},
                "by_kind": {kind: {"wer": round(e / max(1, w), 3), "exact": f"{x}/{n}"}
                            for kind, (e, w, x, n) in self.by_kind.items()}}


def transcribe(recognizer: Any, audio: AudioChunk,
               suppressor: NoiseSuppression | None = None,
               lead: AudioChunk | None = None) -> str:
    """Feed `audio` in 30 ms blocks as fast as the recognizer takes them; the final text.
    With a `suppressor`, the audio goes through it first, after `lead` (the noise before
    the request, whose cleaned output is dropped)."""
    if suppressor is not None and lead is not None:
        suppressor.process(lead.samples)
    for i in range(0, audio.frames, BLOCK):
        block = audio.samples[i:i + BLOCK].copy()
        if suppressor is not None:
            block = suppressor.process(block)
        recognizer.accept(AudioChunk(block, audio.sample_rate))
    return str(recognizer.finish().text)


def score(recognizer: Any, utterances: Sequence[Utterance],
          misheard: list[dict[str, str]] | None = None, denoise: str = "") -> Score:
    """WER, exact-sentence count and time of `recognizer` on `utterances`; each
    misrecognized one is appended to `misheard`. `denoise`: a `NoiseSuppression` spec,
    a fresh suppressor per utterance, fed its noise lead."""
    total = Score()
    checks = getattr(recognizer, "skill_sentences", None) is not None
    if checks:
        total.second_pass = dict.fromkeys(("replaced", "fixed", "broke", "general"), 0)
    for utterance in utterances:
        if checks:
            recognizer.last_second_pass = None
        suppressor = NoiseSuppression.create(denoise)
        lead = noise_lead(utterance.audio, utterance.snr_db, utterance.seed) \
            if suppressor is not None else None
        wall, cpu = time.perf_counter(), time.process_time()
        heard = transcribe(recognizer, utterance.audio, suppressor, lead)
        total.wall_seconds += time.perf_counter() - wall
        total.cpu_seconds += time.process_time() - cpu
        reference, hypothesis = normalize(utterance.reference), normalize(heard)
        errors = word_errors(reference, hypothesis)
        total.errors += errors
        total.words += len(reference.split())
        total.exact += errors == 0
        total.sentences += 1
        total.audio_seconds += utterance.audio.seconds
        if utterance.voice:
            tally = total.by_voice.setdefault(utterance.voice, [0, 0, 0, 0])
            kind = ("open questions" if utterance.reference in GENERAL_QUESTIONS
                    else "skill requests")
            kinds = total.by_kind.setdefault(kind, [0, 0, 0, 0])
            for k, add in enumerate((errors, len(reference.split()), errors == 0, 1)):
                tally[k] += add
                kinds[k] += add
        if errors and misheard is not None:
            misheard.append({"said": utterance.reference, "heard": heard,
                             "voice": utterance.voice, "name": utterance.name})
        checked = recognizer.last_second_pass if checks else None
        if checked is not None and checked.replaced:
            first_right = normalize(checked.heard) == reference
            total.second_pass["replaced"] += 1
            total.second_pass["fixed"] += errors == 0 and not first_right
            total.second_pass["broke"] += errors > 0 and first_right
            total.second_pass["general"] += (utterance.reference in GENERAL_QUESTIONS
                                             or not utterance.voice)
    return total


def final_latency_ms(recognizer: Any, audio: AudioChunk, trailing_silence_seconds: float
                     ) -> tuple[float, float]:
    """(finish() -> final in ms, CPU seconds per audio second) feeding `audio` then
    `trailing_silence_seconds` of silence in 30 ms blocks at real-time pace."""
    silence = AudioChunk.silence(trailing_silence_seconds, audio.sample_rate)
    stream = AudioChunk.concatenate([audio, silence]) if trailing_silence_seconds else audio
    block_seconds = BLOCK / audio.sample_rate
    started, cpu = time.perf_counter(), time.process_time()
    for n, i in enumerate(range(0, stream.frames, BLOCK)):
        delay = started + n * block_seconds - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        recognizer.accept(AudioChunk(stream.samples[i:i + BLOCK].copy(), audio.sample_rate))
    delay = started + stream.seconds - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    finish = time.perf_counter()
    recognizer.finish()
    elapsed = time.perf_counter() - finish
    return elapsed * 1000.0, (time.process_time() - cpu) / stream.seconds


# ------------------------------------------------------------------ the run


def _recognizers(quick: bool) -> list[tuple[str, Callable[[], Any], int]]:
    """(label, factory, step) of each recognizer installed here: Whisper as Hearth runs
    it (bias phrases and the second pass over the skills' sentences), with the bias
    alone, and with neither; PocketSphinx on every `step`-th request only (it
    decodes each utterance twice and is slow on a shared 2-core machine). `quick`: the
    default English recognizer alone."""
    from app.models.store import ModelStore
    from app.skills import bias_phrases
    from app.skills.recognizer_grammar import recognizer_grammar
    from speech.sphinx import PocketSphinxRecognizer
    from speech.whisper_stt import WhisperRecognizer

    store = ModelStore()
    phrases = bias_phrases("en")
    grammar = recognizer_grammar("en")
    found: list[tuple[str, Callable[[], Any], int]] = []
    for model_id in ("whisper-tiny.en", "whisper-base.en", "whisper-small.en"):
        if not store.is_installed(model_id):
            continue
        path = store.path(model_id)
        found.append((f"whisper {model_id} + bias + second pass",
                      lambda p=path: WhisperRecognizer(p, bias_phrases=phrases,
                                                       skill_sentences=grammar), 1))
        if model_id == "whisper-tiny.en" and not quick:
            found.append((f"whisper {model_id} + bias",
                          lambda p=path: WhisperRecognizer(p, bias_phrases=phrases), 1))
            found.append((f"whisper {model_id}", lambda p=path: WhisperRecognizer(p), 1))
    if quick:
        return found[:1]
    found.append(("pocketsphinx en-us", PocketSphinxRecognizer, 3))
    found.append(("pocketsphinx en-us + skills model",
                  lambda: PocketSphinxRecognizer(skill_sentences=grammar), 3))
    if store.is_installed("vosk-model-small-en-us-0.15"):
        from speech.vosk_stt import VoskRecognizer

        path = store.path("vosk-model-small-en-us-0.15")
        found.append(("vosk small-en-us-0.15", lambda: VoskRecognizer(path), 1))
    return found


def run(quick: bool = False) -> dict[str, Any]:
    librivox = librivox_clips()
    requests = request_set(step=22 if quick else 1)
    if quick:
        librivox = librivox[:2]
    noisy = noisy_sets(requests, SNRS_DB)
    results: dict[str, Any] = {
        "machine": platform.platform(), "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "librivox_clips": len(librivox),
        "librivox_seconds": round(sum(u.audio.seconds for u in librivox), 1),
        "requests": len(requests), "voices": voice_names(), "recognizers": {},
    }
    for label, factory, step in _recognizers(quick):
        started = time.perf_counter()
        recognizer = factory()
        row: dict[str, Any] = {"load_seconds": round(time.perf_counter() - started, 2),
                               "every_nth_request": step}
        misheard: list[dict[str, str]] = []
        if librivox:
            row["librivox"] = score(recognizer, librivox).summary()
        row["requests_clean"] = score(recognizer, requests[::step]).summary()
        for snr in SNRS_DB:
            row[f"requests_{snr}db"] = score(recognizer, noisy[snr][::step],
                                             misheard if snr == 10 else None).summary()
        row["misheard_10db"] = misheard[:12]
        if label.startswith("whisper"):
            row.update(final_latency(recognizer, requests, quick))
        recognizer.close()
        results["recognizers"][label] = row
        print(f"{label}: done", flush=True)
    return results


def noisy_sets(requests: Sequence[Utterance], snrs: Sequence[float]
               ) -> dict[float, list[Utterance]]:
    """snr -> the requests with pink noise mixed in at that SNR (seeded per request)."""
    return {snr: [Utterance(u.name, u.reference, with_noise(u.audio, snr, seed=i), u.voice,
                            snr, i) for i, u in enumerate(requests)] for snr in snrs}


def final_latency(recognizer: Any, requests: Sequence[Utterance], quick: bool
                  ) -> dict[str, Any]:
    """stt_final_ms over requests of about 3 s (real-time feed), with the endpointer's
    trailing silence (hands-free) and without (push-to-talk released at the end)."""
    from app.config import Settings

    end_silence = Settings().vad.end_silence_ms / 1000
    three = sorted(requests, key=lambda u: abs(u.audio.seconds - 3.0))[:2 if quick else 10]
    hands_free, cpu, push = [], [], []
    final_latency_ms(recognizer, three[-1].audio, end_silence)  # untimed: warm caches
    for utterance in three:
        ms, cpu_share = final_latency_ms(recognizer, utterance.audio, end_silence)
        hands_free.append(ms)
        cpu.append(cpu_share)
        push.append(final_latency_ms(recognizer, utterance.audio, 0.0)[0])
    return {"stt_final_ms": round(statistics.median(hands_free), 1),
            "stt_final_ms_max": round(max(hands_free), 1),
            "stt_final_ms_push_to_talk": round(statistics.median(push), 1),
            "live_rtf_cpu": round(statistics.median(cpu), 3),
            "final_latency_utterances": len(three),
            "end_silence_ms": round(end_silence * 1000),
            "final_latency_audio_seconds": round(statistics.mean(
                u.audio.seconds for u in three), 2)}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Speech recognition benchmark", "",
        f"{results['machine']}, {results['cpus']} CPUs, load average "
        f"{', '.join(str(x) for x in results['load_average'])} at the start (a shared "
        "machine: times are pessimistic).", "",
        f"(a) LibriVox: {results['librivox_clips']} real recordings "
        f"({results['librivox_seconds']} s) from pocketsphinx-testdata. (b) "
        f"{results['requests']} spoken requests, each in one of {len(results['voices'])} "
        f"voices ({', '.join(results['voices'])}), clean and with pink noise at "
        f"{', '.join(str(s) for s in SNRS_DB)} dB SNR. WER and exact-sentence rate after "
        "normalize() (lower case, numbers spelt out); RTF = decode seconds / audio "
        "seconds, audio fed as fast as the recognizer takes it.", "",
        "| recognizer | LibriVox WER | requests WER clean / 20 / 10 / 5 dB | exact clean / "
        "20 / 10 / 5 dB | RTF (wall / CPU) | stt_final_ms |", "|---|---|---|---|---|---|",
    ]
    for label, row in results["recognizers"].items():
        sets = ["requests_clean", *[f"requests_{s}db" for s in SNRS_DB]]
        wer = " / ".join(f"{row[k]['wer']:.3f}" for k in sets)
        exact = " / ".join(f"{row[k]['exact']:.0%}" for k in sets)
        lv = f"{row['librivox']['wer']:.3f}" if "librivox" in row else "-"
        rtf = row["requests_10db"]
        final = (f"{row['stt_final_ms']:.0f} (push-to-talk "
                 f"{row['stt_final_ms_push_to_talk']:.0f})" if "stt_final_ms" in row else "-")
        lines.append(f"| {label} | {lv} | {wer} | {exact} | {rtf['rtf']:.3f} / "
                     f"{rtf['rtf_cpu']:.3f} | {final} |")
    end_silence = next((r["end_silence_ms"] for r in results["recognizers"].values()
                        if "end_silence_ms" in r), 0)
    lines += ["", "stt_final_ms: median over requests of about 3 s fed at real-time pace, "
              f"finish() -> final transcript, after the {end_silence} ms of silence the "
              "endpointer waits for (push-to-talk: finish at the end of the recording).", "",
              "Targets for the default English recognizer: " + ", ".join(
                  f"{k} {v}" for k, v in TARGETS.items()), ""]
    sets = ["requests_clean", *[f"requests_{s}db" for s in SNRS_DB]]
    for label, row in results["recognizers"].items():
        if not label.startswith("whisper") or label.endswith(".en"):
            continue  # the per-voice figures of Whisper with bias, with and without the pass
        lines += [f"By voice, {label} (WER, exact):", "",
                  "| voice | clean | 20 dB | 10 dB | 5 dB |", "|---|---|---|---|---|"]
        for voice in row["requests_clean"]["by_voice"]:
            cells = [row[k]["by_voice"].get(voice, {}) for k in sets]
            lines.append(f"| {voice} | " + " | ".join(
                f"{c['wer']:.2f}, {c['exact']}" if c else "-" for c in cells) + " |")
        lines.append("")
    for label, row in results["recognizers"].items():
        passes = [(k, row[k]["second_pass"]) for k in ["librivox", *sets]
                  if "second_pass" in row.get(k, {})]
        if passes:
            lines += [f"Second pass of {label}: transcripts replaced (made right / made "
                      "wrong / open questions or LibriVox among them): " + "; ".join(
                          f"{k.removeprefix('requests_')} {p['replaced']} ({p['fixed']} / "
                          f"{p['broke']} / {p['general']})" for k, p in passes), ""]
    for label, row in results["recognizers"].items():
        if row["misheard_10db"]:
            lines += [f"Misheard at 10 dB by {label} (first {len(row['misheard_10db'])}):", ""]
            lines += [f"- {m['said']} -> {m['heard']} ({m['voice']})"
                      for m in row["misheard_10db"]]
            lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ one configuration

SET_NAMES = ("clean", "20", "10", "5", "librivox")


def whisper_options(pairs: Sequence[str]) -> Any:
    """`WhisperOptions` with NAME=VALUE overrides (each converted to its field's type)."""
    from dataclasses import replace

    from speech.whisper_stt import WhisperOptions

    base = WhisperOptions()
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not hasattr(base, name):
            raise SystemExit(f"WhisperOptions has no field {name!r}")
        changes[name] = type(getattr(base, name))(value)
    return replace(base, **changes)


def run_sets(sets: Sequence[str], variant: str = "pass", model_id: str = "whisper-tiny.en",
             options: Sequence[str] = (), denoise: str = "", label: str = "",
             step: int = 1) -> dict[str, Any]:
    """Whisper in one configuration on some of the sets only (a quick way to compare
    settings): `variant` 'pass' (bias and second pass, as Hearth runs it), 'bias' or
    'plain'; `options` WhisperOptions overrides; `denoise` a `NoiseSuppression` spec;
    every `step`-th request only."""
    from app.models.store import ModelStore
    from app.skills import bias_phrases
    from app.skills.recognizer_grammar import recognizer_grammar
    from speech.whisper_stt import WhisperRecognizer

    requests = request_set(step=step)
    snrs = [float(s) for s in sets if s not in ("clean", "librivox")]
    noisy = noisy_sets(requests, snrs)
    recognizer = WhisperRecognizer(
        ModelStore().path(model_id), options=whisper_options(options),
        bias_phrases=bias_phrases("en") if variant != "plain" else (),
        skill_sentences=recognizer_grammar("en") if variant == "pass" else None)
    label = label or " ".join([model_id, variant, *options, *([denoise] if denoise else [])])
    row: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    for name in sets:
        utterances = (librivox_clips() if name == "librivox" else requests
                      if name == "clean" else noisy[float(name)])
        row[name] = score(recognizer, utterances, denoise=denoise).summary()
        print(f"{label} {name}: WER {row[name]['wer']:.3f} exact {row[name]['exact']:.0%} "
              f"{row[name].get('by_kind', '')} rtf {row[name]['rtf']:.3f}", flush=True)
    recognizer.close()
    return {label: row}


def sets_markdown(rows: dict[str, Any]) -> str:
    """The table of every configuration `run_sets` measured (kept in stt-sets.json)."""
    lines = ["# Speech recognition: configurations compared", "",
             "`python -m bench.stt --sets ...` (bench/stt.py): WER / exact-sentence rate on "
             "the spoken requests (open questions and skill requests apart), RTF wall / CPU "
             "over the 10 dB set (or the first set measured).", "",
             "| configuration | set | WER | exact | open questions WER, exact | skill "
             "requests WER, exact | RTF | load |", "|---|---|---|---|---|---|---|---|"]
    for label, row in rows.items():
        for name in SET_NAMES:
            if name not in row:
                continue
            cell = row[name]
            kinds = cell.get("by_kind", {})
            kind = [f"{kinds[k]['wer']:.3f}, {kinds[k]['exact']}" if k in kinds else "-"
                    for k in ("open questions", "skill requests")]
            lines.append(f"| {label} | {name} | {cell['wer']:.3f} | {cell['exact']:.0%} | "
                         f"{kind[0]} | {kind[1]} | {cell['rtf']:.3f} / {cell['rtf_cpu']:.3f}"
                         f" | {row['load_average'][0]} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the default recognizer on a few utterances per set (a check)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--sets", default="",
                        help="only these sets, comma-separated (clean, 20, 10, 5, librivox), "
                        "with one Whisper configuration; the row is added to stt-sets.json/md")
    parser.add_argument("--variant", choices=("pass", "bias", "plain"), default="pass",
                        help="with --sets: bias and second pass, bias alone, or neither")
    parser.add_argument("--model", default="whisper-tiny.en", help="with --sets: model id")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="with --sets: a WhisperOptions field (repeatable)")
    parser.add_argument("--denoise", default="",
                        help="with --sets: WebRTC noise suppression first (webrtc-1..4)")
    parser.add_argument("--label", default="", help="with --sets: the row's name")
    parser.add_argument("--step", type=int, default=1,
                        help="with --sets: every STEP-th request only")
    args = parser.parse_args(argv)
    if args.sets:
        sets = [s.strip().removesuffix("db") for s in args.sets.split(",") if s.strip()]
        if unknown := [s for s in sets if s not in SET_NAMES]:
            parser.error(f"unknown sets {unknown}; choose from {', '.join(SET_NAMES)}")
        args.out.mkdir(parents=True, exist_ok=True)
        store = args.out / "stt-sets.json"
        rows = json.loads(store.read_text()) if store.exists() else {}
        rows.update(run_sets(sets, args.variant, args.model, args.option, args.denoise,
                             args.label, args.step))
        store.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
        (args.out / "stt-sets.md").write_text(sets_markdown(rows))
        return 0
    results = run(quick=args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "stt-quick" if args.quick else "stt"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    table = markdown(results)
    (args.out / f"{name}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
