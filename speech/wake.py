"""The `WakeWordDetector` interface: spot a key phrase in a stream of audio."""

from __future__ import annotations

from abc import ABC, abstractmethod

from speech.audio import AudioChunk


class WakeWordDetector(ABC):
    """Fed 16 kHz mono chunks continuously; says when the phrase was heard."""

    name: str = "?"
    sample_rate: int = 16000

    @abstractmethod
    def process(self, chunk: AudioChunk) -> bool:
        """True when the wake phrase ended within this chunk (then resets itself)."""

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Forget audio heard so far."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""
