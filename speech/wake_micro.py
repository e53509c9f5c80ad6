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
        self._active_cutoff = self.cutoff
        self._position = 0  # samples fed since creation
        self._pending = b""
        self._loudness: collections.deque[float] = collections.deque(maxlen=_ONSET_HISTORY_STEPS)
        self.last_probability = 0.0
        """The smoothed probability after the last chunk (for tuning and tests)."""

    def set_strict(self, strict: bool) -> None:
        self._active_cutoff = (self.cutoff + STRICT_SHARE * (1.0 - self.cutoff) if strict
                               else self.cutoff)

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
                if probability is None:
                    continue
                found = found or self._judge(float(probability))
        return found

    def _judge(self, probability: float) -> WakeDetection | None:
        self.last_probability = probability
        if probability <= self._active_cutoff:
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
        self._loudness.clear()
        self.last_probability = 0.0

    def close(self) -> None:
        self._model.close()
