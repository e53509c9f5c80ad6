"""The `SpeechSynthesizer` interface: text in, a stream of `AudioChunk`s out."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator

from speech.audio import AudioChunk


class SpeechSynthesizer(ABC):
    """Speaks text. Load the voice once in `__init__`; `synthesize` is then fast."""

    name: str = "?"

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Rate of the chunks `synthesize` yields (Hz)."""

    @abstractmethod
    def synthesize(
        self, text: str, cancel: threading.Event | None = None
    ) -> Iterator[AudioChunk]:
        """Yield audio for `text` (typically one sentence), checking `cancel` per chunk."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the voice."""
