"""The `WakeWordDetector` interface: spot a key phrase in a stream of audio.

Backends: microWakeWord (`speech.wake_micro`, the default: small neural models for
a few fixed phrases), PocketSphinx keyphrase spotting (`speech.wake_sphinx`, any
English phrase) and Vosk (`speech.wake_vosk`, other languages). A
`SelfTriggerGuard` keeps Hearth from waking itself when its own reply says the
phrase.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from speech.audio import AudioChunk


@dataclass(frozen=True)
class WakeDetection:
    """One time the wake phrase was heard."""

    wake_word: str
    start_seconds: float
    """Where the phrase began, in seconds of audio fed since the detector was created
    (an estimate for microWakeWord, whose model fires at the end of the phrase)."""
    end_seconds: float
    """Where the phrase was detected (its end), same clock."""
    probability: float | None
    """The model's smoothed probability (microWakeWord); None for phrase spotters."""


class WakeWordDetector(ABC):
    """Fed mono chunks continuously (at `sample_rate`); says when the phrase was heard."""

    name: str = "?"
    sample_rate: int = 16000
    wake_word: str = ""
    """The phrase as a person says it, e.g. "okay nabu"."""

    @abstractmethod
    def process(self, chunk: AudioChunk) -> bool:
        """True when the wake phrase ended within this chunk (then resets itself)."""

    def detect(self, chunk: AudioChunk) -> WakeDetection | None:
        """Like `process`, with where and how surely the phrase was heard. Backends
        override it; this default (for a detector with `process` only) knows no times."""
        return WakeDetection(self.wake_word, 0.0, 0.0, None) if self.process(chunk) else None

    def set_strict(self, strict: bool) -> None:  # noqa: B027 - optional hook
        """Demand more evidence (while Hearth speaks without echo cancellation, its own
        voice reaches the microphone). Phrase spotters keep their one threshold."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget audio heard so far (the position clock keeps running)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


def normalize_phrase(text: str) -> str:
    """Lower case, letters only, single spaces, "ok" spelled "okay": how phrases compare."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return " ".join("okay" if w == "ok" else w for w in words)


def mentions(text: str, phrase: str) -> bool:
    """Whether `text` says `phrase` as whole words ("OK, Nabu!" mentions "okay nabu")."""
    wanted = normalize_phrase(phrase)
    return bool(wanted) and f" {wanted} " in f" {normalize_phrase(text)} "


class SelfTriggerGuard:
    """Ignores the wake word while Hearth's own reply contains it.

    The listen stage calls `reply(text)` with the reply spoken so far, and `silent()`
    when Hearth stops speaking; `allows()` is False from the moment the reply mentions
    the phrase until `echo_tail_seconds` after the speech ended (the room's echo and
    the audio still in the speaker's buffer).
    """

    def __init__(self, phrase: str, echo_tail_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.phrase = phrase
        self.echo_tail_seconds = echo_tail_seconds
        self._clock = clock
        self._saying = False
        self._until = 0.0

    def reply(self, text: str) -> None:
        """Hearth is speaking `text` (the reply so far)."""
        if mentions(text, self.phrase):
            self._saying = True

    def silent(self) -> None:
        """Hearth stopped speaking."""
        if self._saying:
            self._saying = False
            self._until = self._clock() + self.echo_tail_seconds

    def allows(self) -> bool:
        """Whether a detection now may be the user's."""
        return not self._saying and self._clock() >= self._until
