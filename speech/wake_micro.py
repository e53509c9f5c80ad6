"""Wake word by microWakeWord (`pymicro-wakeword`): Hearth's default spotter.

The wheel carries four small streaming models ("okay nabu", "hey jarvis",
"hey mycroft", "alexa", each about 60 kB, Apache-2.0, by Kevin Ahrendt for Home
Assistant's voice satellites) and its own TensorFlow Lite library. Audio goes in as
10 ms steps of 16 kHz 16-bit mono; every 30 ms the model gives a probability, and a
detection is the mean of the last few above the model's cutoff. The model costs well
under 1% of a core. Other phrases need the PocketSphinx or Vosk spotters.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from speech.audio import AudioChunk
from speech.errors import SpeechBackendUnavailableError, SpeechModelError
from speech.wake import WakeDetection, WakeWordDetector, normalize_phrase

MICRO_WAKE_WORDS = {
    "okay nabu": "okay_nabu",
    "hey jarvis": "hey_jarvis",
    "hey mycroft": "hey_mycroft",
    "alexa": "alexa",
}
"""Phrase -> the model in the pymicro-wakeword wheel."""
MICRO_RATE = 16000
_STEP_SAMPLES = 160  # the feature front end takes 10 ms steps
_ONSET_HISTORY_STEPS = 300
"""10 ms steps of loudness kept to find where a detected phrase began (3 s)."""
_ONSET_SHARE = 0.1
"""A step is part of the phrase when louder than this share of the loudest step..."""
_ONSET_GAP_STEPS = 30
"""...and the phrase began after the last quiet gap longer than this (300 ms)."""
STRICT_SHARE = 0.5
"""Strict mode closes this share of the gap between the cutoff and 1 (0.85 -> 0.925)."""
NOISY_CUTOFF = 0.35
"""Noise pulls the model's probabilities down (at 10 dB SNR "okay nabu" peaks at 0.3-0.99,
against 0.84-1.0 clean), so with the model's own cutoff the cutoff is lowered with the
signal-to-noise ratio of the last 3 s (`snr_db`): the model's cutoff at QUIET_SNR_DB and
above, this at NOISY_SNR_DB and below, linear between. An explicit cutoff stays fixed.
(`snr_db` reads 15-19 dB for speech in pink noise 10 dB below its RMS, 60+ in silence.)"""
QUIET_SNR_DB = 35.0
NOISY_SNR_DB = 18.0


def micro_model_for(phrase: str) -> str | None:
    """The bundled model name for `phrase` ("OK Nabu" -> "okay_nabu"), or None."""
    return MICRO_WAKE_WORDS.get(normalize_phrase(phrase))


class MicroWakeWordDetector(WakeWordDetector):
    """Spots one of the bundled phrases; `probability_cutoff` 0 keeps the model's own."""

    name = "micro"

    def __init__(self, phrase: str = "okay nabu", probability_cutoff: float = 0.0,
                 sample_rate: int = MICRO_RATE) -> None:
        model_name = micro_model_for(phrase)
        if model_name is None:
            raise SpeechModelError(
                f"there is no microWakeWord model for {phrase!r}; use one of "
                f"{', '.join(repr(p) for p in MICRO_WAKE_WORDS)} or the PocketSphinx spotter")
        if sample_rate != MICRO_RATE:
            raise SpeechModelError(f"microWakeWord needs {MICRO_RATE} Hz audio, not "
                                   f"{sample_rate} Hz: set [audio] sample_rate_hz = {MICRO_RATE}")
        try:
            from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model
        except ImportError as exc:
            raise SpeechBackendUnavailableError(
                "the microWakeWord spotter needs the 'pymicro_wakeword' package; install it: "
                "pip install 'hearth[wake]'") from exc
        try:
            self._model: Any = MicroWakeWord.from_builtin(Model(model_name))
        except (OSError, ValueError, RuntimeError) as exc:
            raise SpeechModelError(f"microWakeWord cannot load {model_name}: {exc}") from None
        self._features: Any = MicroWakeWordFeatures()
        self.sample_rate = sample_rate
        self.wake_word = normalize_phrase(phrase)
        self.model_cutoff = float(self._model.probability_cutoff)
        self.cutoff = probability_cutoff or self.model_cutoff
        self.adaptive = not probability_cutoff
        """Lower the cutoff in noise (see NOISY_CUTOFF)."""
        self._strict = False
        self._position = 0  # samples fed since creation
        self._pending = b""
        self._windows = 0
        self._loudness: collections.deque[float] = collections.deque(maxlen=_ONSET_HISTORY_STEPS)
        self.last_probability = 0.0
        """The latest smoothed probability (for tuning and tests)."""

    def set_strict(self, strict: bool) -> None:
        self._strict = strict

    def current_cutoff(self) -> float:
        """The cutoff in force now: lowered in noise, raised in strict mode."""
        cutoff = self.cutoff
        if self.adaptive and cutoff > NOISY_CUTOFF:
            snr = self.snr_db()
            share = min(1.0, max(0.0, (QUIET_SNR_DB - snr) / (QUIET_SNR_DB - NOISY_SNR_DB)))
            cutoff -= share * (cutoff - NOISY_CUTOFF)
        return cutoff + STRICT_SHARE * (1.0 - cutoff) if self._strict else cutoff

    def snr_db(self) -> float:
        """Signal-to-noise ratio of the last 3 s: loud steps (95th percentile) over the
        background (10th percentile), in dB."""
        if len(self._loudness) < 50:
            return QUIET_SNR_DB
        floor, level = np.percentile(np.fromiter(self._loudness, float), (10, 95))
        return float(20 * np.log10(max(level, 1.0) / max(floor, 1.0)))

    def process(self, chunk: AudioChunk) -> bool:
        return self.detect(chunk) is not None

    def detect(self, chunk: AudioChunk) -> WakeDetection | None:
        chunk.expect(self.sample_rate, consumer="the wake-word spotter")
        data = self._pending + chunk.to_bytes()
        step = 2 * _STEP_SAMPLES
        usable = len(data) - len(data) % step
        self._pending = data[usable:]
        found: WakeDetection | None = None
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32)
        for offset in range(0, usable, step):
            self._position += _STEP_SAMPLES
            window = samples[offset // 2:offset // 2 + _STEP_SAMPLES]
            self._loudness.append(float(np.sqrt(np.mean(window * window))))
            for features in self._features.process_streaming(data[offset:offset + step]):
                probability = self._model.process_streaming_prob(features)
                # the model runs once per `stride` feature windows (and says 0.0 between)
                self._windows += 1
                if probability is None or self._windows % self._model.stride:
                    continue
                found = found or self._judge(float(probability))
        return found

    def _judge(self, probability: float) -> WakeDetection | None:
        self.last_probability = probability
        if probability <= min(NOISY_CUTOFF, self.cutoff) or probability <= self.current_cutoff():
            return None
        end = self._position / self.sample_rate
        detection = WakeDetection(self.wake_word, round(end - self._onset_seconds(), 3),
                                  round(end, 3), round(probability, 3))
        self.reset()
        return detection

    def _onset_seconds(self) -> float:
        """How long before now the detected phrase began: back from now to the last
        quiet gap (the model fires at the end of the phrase, so it cannot tell)."""
        loudness = list(self._loudness)
        floor = _ONSET_SHARE * max(loudness, default=0.0)
        onset, quiet = len(loudness), 0
        for i in range(len(loudness) - 1, -1, -1):
            if loudness[i] > floor:
                onset, quiet = i, 0
            else:
                quiet += 1
                if quiet > _ONSET_GAP_STEPS and onset < len(loudness):
                    break
        return (len(loudness) - onset) * _STEP_SAMPLES / self.sample_rate

    def reset(self) -> None:
        # the model keeps streaming state inside TFLite: pymicro reloads it (~0.1 ms)
        self._model.reset()
        self._features.reset()
        self._pending = b""
        self._windows = 0
        self._loudness.clear()
        self.last_probability = 0.0

    def close(self) -> None:
        self._model.close()
