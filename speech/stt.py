"""The `SpeechRecognizer` interface: streaming speech-to-text.

A recognizer is fed mono `AudioChunk`s at its `sample_rate` (the configured
`[audio] sample_rate_hz`, 16 kHz by default) while the user speaks (`accept`,
which may return a partial transcript) and returns the final `Transcript` from
`finish()`, after which it is ready for the next utterance.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from speech.audio import AudioChunk

PARTIAL_INTERVAL_SECONDS = 0.15
"""Audio between two partial results of a streaming recognizer: often enough for a live
caption, rarely enough that computing partials stays cheap."""


@dataclass(frozen=True)
class RecognizedWord:
    word: str
    start_seconds: float = 0.0
    end_seconds: float = 0.0
    confidence: float = 1.0
    """0..1 where the engine gives one; 1.0 otherwise."""


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[RecognizedWord, ...] = field(default_factory=tuple)
    is_final: bool = True


class SpeechRecognizer(ABC):
    """Streaming recognizer. Not thread-safe: one worker thread drives it."""

    name: str = "?"
    sample_rate: int = 16000
    """The rate `accept` expects (Hz), mono 16-bit."""

    @abstractmethod
    def accept(self, chunk: AudioChunk) -> Transcript | None:
        """Feed audio; returns a partial transcript (is_final=False) when it changed."""

    @abstractmethod
    def finish(self) -> Transcript:
        """End of the utterance: the final transcript. Resets for the next utterance."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Drop any audio of the current utterance."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""
