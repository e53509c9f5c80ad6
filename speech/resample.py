"""Sample-rate conversion with soxr (a real band-limited resampler, not decimation)."""

from __future__ import annotations

import numpy as np
import soxr

from speech.audio import AudioChunk


def resample(chunk: AudioChunk, sample_rate: int, mono: bool = True) -> AudioChunk:
    """`chunk` at `sample_rate` (mixed down to mono first when `mono`), in one go."""
    if mono:
        chunk = chunk.to_mono()
    if chunk.sample_rate == sample_rate:
        return chunk
    out = soxr.resample(chunk.samples, chunk.sample_rate, sample_rate, quality="HQ")
    return AudioChunk(np.ascontiguousarray(out, dtype=np.int16), sample_rate, chunk.channels)


class StreamResampler:
    """Resamples a continuous mono stream block by block, keeping filter state between
    blocks so block edges leave no clicks. Not thread-safe: the reading thread owns it."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="int16", quality="HQ")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """Resampled int16 mono samples for this block (may be shorter while the filter
        fills; `last` flushes what the filter holds)."""
        if self._stream is None:
            return samples
        return np.ascontiguousarray(self._stream.resample_chunk(samples, last=last),
                                    dtype=np.int16)

    def reset(self) -> None:
        """Forget filter state (after a flush, so old audio does not leak into new)."""
        self._stream = self._new_stream()
