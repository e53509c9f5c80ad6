"""WAV files behind the same `AudioSource` / `AudioSink` interfaces as the sound card,
so scripted runs (`hearth ask --wav`, tests, benchmarks) drive the identical pipeline."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

from speech.audio import AudioChunk
from speech.errors import AudioFormatError
from speech.io import AudioSink, AudioSource
from speech.resample import resample as resample_chunk


def read_wav(path: str | Path) -> AudioChunk:
    """The whole file as one chunk; only 16-bit PCM is accepted."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            rate = wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file") from None
    except (wave.Error, EOFError, RuntimeError, ValueError, OverflowError) as exc:
        # wave raises RuntimeError/ValueError for chunk sizes past the end of the file
        raise AudioFormatError(f"{path} is not a readable PCM WAV file ({exc})") from None
    if channels < 1 or rate < 1:
        raise AudioFormatError(f"{path} declares {channels} channel(s) at {rate} Hz")
    if width != 2:
        raise AudioFormatError(
            f"{path} has {8 * width}-bit samples; Hearth reads 16-bit PCM WAV "
            f"(convert with: sox {path.name} -b 16 out.wav)"
        )
    frame_bytes = 2 * channels
    # a file cut mid-frame keeps its whole frames
    return AudioChunk.from_bytes(data[:len(data) - len(data) % frame_bytes], rate, channels)


def write_wav(path: str | Path, chunk: AudioChunk) -> Path:
    """Write `chunk` as a 16-bit PCM WAV file."""
    path = Path(path)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(chunk.channels)
        wav.setsampwidth(2)
        wav.setframerate(chunk.sample_rate)
        wav.writeframes(chunk.to_bytes())
    return path


class WavSource(AudioSource):
    """Reads a WAV file as a finite stream of `block_ms` chunks at `sample_rate`, mono.

    With `resample=False` a file at another rate is an `AudioFormatError` (one line
    saying what was expected); with True it is converted with soxr.
    """

    def __init__(self, path: str | Path, sample_rate: int = 16000, block_ms: int = 30,
                 resample: bool = True) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        audio = read_wav(self.path)
        if audio.sample_rate != sample_rate and not resample:
            raise AudioFormatError(
                f"{self.path} is {audio.sample_rate} Hz; expected {sample_rate} Hz "
                f"(convert with: sox {self.path.name} -r {sample_rate} -c 1 out.wav)"
            )
        self.file_seconds = audio.seconds
        """The file's own length (resampling can round `audio.seconds` by a sample)."""
        self._audio = resample_chunk(audio, sample_rate, mono=True)
        self._block = max(1, sample_rate * block_ms // 1000)
        self._pos = 0
        self._started = False

    @property
    def audio(self) -> AudioChunk:
        """The whole file, converted to this source's rate, mono."""
        return self._audio

    def start(self) -> None:
        self._started = True

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        if self.exhausted:
            return None
        block = self._audio.samples[self._pos:self._pos + self._block]
        self._pos += len(block)
        return AudioChunk(block, self.sample_rate)

    def stop(self) -> None:
        self._pos = self._audio.frames

    @property
    def exhausted(self) -> bool:
        return self._pos >= self._audio.frames


class WavSink(AudioSink):
    """Collects played audio and writes it to `path` on `close()` (or `save()`).

    Chunks of different rates are converted to the first chunk's rate.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._chunks: list[AudioChunk] = []
        self._lock = threading.Lock()

    def play(self, chunk: AudioChunk, cancel: threading.Event | None = None) -> None:
        if cancel is not None and cancel.is_set():
            return
        with self._lock:
            if self._chunks and chunk.sample_rate != self._chunks[0].sample_rate:
                chunk = resample_chunk(chunk, self._chunks[0].sample_rate)
            self._chunks.append(chunk.to_mono())

    def stop(self) -> None:
        """Nothing plays in real time, so there is nothing to silence."""

    @property
    def audio(self) -> AudioChunk | None:
        """Everything played so far as one chunk (None if nothing was)."""
        with self._lock:
            return AudioChunk.concatenate(self._chunks) if self._chunks else None

    @property
    def seconds(self) -> float:
        audio = self.audio
        return audio.seconds if audio is not None else 0.0

    def save(self) -> Path | None:
        """Write what was played to `path`; None when there is no path or no audio."""
        audio = self.audio
        if self.path is None or audio is None:
            return None
        return write_wav(self.path, audio)

    def close(self) -> None:
        self.save()

