"""Where audio comes from and goes to: `AudioSource` and `AudioSink`.

Microphones and speakers (sounddevice/PortAudio) and WAV files implement the same
two interfaces, so the pipeline runs identically live and in file mode.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from speech.audio import AudioChunk


class AudioSource(ABC):
    """Delivers mono `AudioChunk`s at `sample_rate` (for recognition: the configured
    `[audio] sample_rate_hz`, 16 kHz by default)."""

    sample_rate: int = 16000
    echo_cancelled: bool = False
    """True when the signal has the speaker's own output cancelled out (recorded from the
    sound server's echo canceller), so listening while Hearth speaks is safe."""

    @abstractmethod
    def start(self) -> None:
        """Begin capturing (a live source drops nothing it captured after this)."""

    @abstractmethod
    def read(self, timeout: float | None = None) -> AudioChunk | None:
        """Next chunk; None on timeout or, for a finite source, at its end.

        Raises `AudioDeviceError` when the device failed or disappeared.
        """

    @abstractmethod
    def stop(self) -> None:
        """Stop capturing; `read` then drains what was captured and returns None."""

    @property
    def exhausted(self) -> bool:
        """True for a finite source (a file) that has delivered everything."""
        return False

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Drop audio captured but not yet read (e.g. while Hearth was speaking)."""

    def close(self) -> None:
        self.stop()


class AudioSink(ABC):
    """Plays `AudioChunk`s."""

    @abstractmethod
    def play(self, chunk: AudioChunk, cancel: threading.Event | None = None) -> None:
        """Play `chunk`, blocking until it has been played or `cancel` is set."""

    @abstractmethod
    def stop(self) -> None:
        """Silence output now, from any thread (within 50 ms for a live device)."""

    def drain(self, cancel: threading.Event | None = None) -> None:  # noqa: B027 - optional
        """Block until everything played so far has been heard (a live device returns
        from `play` slightly early so consecutive chunks join without gaps)."""

    def close(self) -> None:
        self.stop()
