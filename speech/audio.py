"""`AudioChunk`: the one way audio travels between Hearth's modules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech.errors import AudioFormatError


@dataclass(frozen=True)
class AudioChunk:
    """A run of 16-bit PCM audio.

    `samples` is an int16 array of shape (frames,) for mono or (frames, channels).
    """

    samples: np.ndarray
    sample_rate: int
    """Frames per second (Hz)."""
    channels: int = 1
    sample_width: int = 2
    """Bytes per sample; Hearth uses 16-bit PCM throughout."""

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise AudioFormatError(f"sample rate must be positive, got {self.sample_rate}")
        if self.samples.dtype != np.int16:
            raise AudioFormatError(f"audio samples must be int16, got {self.samples.dtype}")
        expected_ndim = 1 if self.channels == 1 else 2
        if self.samples.ndim != expected_ndim or (
            self.channels > 1 and self.samples.shape[1] != self.channels
        ):
            raise AudioFormatError(
                f"samples of shape {self.samples.shape} do not match {self.channels} channel(s)"
            )

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def to_bytes(self) -> bytes:
        """Little-endian interleaved PCM."""
        return self.samples.astype("<i2", copy=False).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, sample_rate: int, channels: int = 1) -> AudioChunk:
        samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
        if channels > 1:
            if samples.size % channels:
                raise AudioFormatError("PCM byte count is not a whole number of frames")
            samples = samples.reshape(-1, channels)
        return cls(samples=samples, sample_rate=sample_rate, channels=channels)

    @classmethod
    def from_float(cls, samples: np.ndarray, sample_rate: int) -> AudioChunk:
        """From float samples in [-1, 1] (mono (frames,) or (frames, channels))."""
        clipped = np.clip(samples, -1.0, 1.0)
        pcm = np.round(clipped * 32767.0).astype(np.int16)
        channels = 1 if pcm.ndim == 1 else int(pcm.shape[1])
        return cls(samples=pcm, sample_rate=sample_rate, channels=channels)

    def to_float(self) -> np.ndarray:
        """float32 samples in [-1, 1], same shape as `samples`."""
        return self.samples.astype(np.float32) / 32768.0

    def expect(self, sample_rate: int, channels: int = 1, consumer: str = "this stage") -> None:
        """Raise a one-line `AudioFormatError` unless the chunk has this rate and channel
        count (recognizers, spotters and the VAD each take one fixed format)."""
        if self.sample_rate != sample_rate or self.channels != channels:
            raise AudioFormatError(
                f"{consumer} needs {sample_rate} Hz audio with {channels} channel(s), got "
                f"{self.sample_rate} Hz with {self.channels} (resample with "
                "speech.resample.resample)"
            )

    def to_mono(self) -> AudioChunk:
        if self.channels == 1:
            return self
        mixed = self.samples.astype(np.int32).mean(axis=1)
        return AudioChunk(mixed.astype(np.int16), self.sample_rate, 1)

    @classmethod
    def silence(cls, seconds: float, sample_rate: int) -> AudioChunk:
        return cls(np.zeros(round(seconds * sample_rate), dtype=np.int16), sample_rate)

    @staticmethod
    def concatenate(chunks: list[AudioChunk]) -> AudioChunk:
        if not chunks:
            raise AudioFormatError("no audio to join")
        first = chunks[0]
        for chunk in chunks[1:]:
            if (chunk.sample_rate, chunk.channels) != (first.sample_rate, first.channels):
                raise AudioFormatError("cannot join chunks of different rates or channel counts")
        return AudioChunk(
            np.concatenate([c.samples for c in chunks]), first.sample_rate, first.channels
        )
