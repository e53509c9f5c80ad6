"""espeak-ng as the light fallback voice: tiny, robotic, and in almost every language.

Runs the `espeak-ng` program with `--stdout` and streams its WAV output, so the
first audio arrives before the whole sentence is rendered and a cancel kills the
process at once.
"""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator

import numpy as np

from speech.audio import AudioChunk
from speech.errors import SpeechBackendUnavailableError, SpeechModelError
from speech.tts import SpeechSynthesizer

log = logging.getLogger(__name__)

DEFAULT_WORDS_PER_MINUTE = 175
_BLOCK_BYTES = 4096  # ~93 ms at 22050 Hz: the granularity of cancellation


def espeak_program() -> str:
    """Path of espeak-ng; `SpeechBackendUnavailableError` with the install hint if absent."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise SpeechBackendUnavailableError(
            "espeak-ng is not installed; install it: sudo apt install espeak-ng"
        )
    return path


def list_voices() -> list[str]:
    """Voice names espeak-ng knows (the 'Language' column, e.g. 'en-us', 'cmn', 'ko')."""
    out = subprocess.run([espeak_program(), "--voices"], capture_output=True, text=True,
                         check=False).stdout
    return [line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1]


class EspeakSynthesizer(SpeechSynthesizer):
    """Any installed espeak-ng voice, at `speaking_rate` times the normal speed."""

    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", speaking_rate: float = 1.0) -> None:
        self._program = espeak_program()
        self.voice = voice
        self.words_per_minute = max(80, min(450, round(DEFAULT_WORDS_PER_MINUTE * speaking_rate)))
        # render a word once: checks the voice exists and learns the output rate
        probe = subprocess.run(self._command("a"), capture_output=True, check=False)
        if probe.returncode != 0 or len(probe.stdout) < 44:
            reason = probe.stderr.decode(errors="replace").strip().splitlines()
            raise SpeechModelError(
                f"espeak-ng cannot use voice {voice!r}: "
                f"{reason[0] if reason else 'no audio produced'} (see: espeak-ng --voices)"
            )
        self._sample_rate = _wav_header_rate(probe.stdout[:44])

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def _command(self, text: str) -> list[str]:
        # "--" keeps text starting with "-" from being read as an option
        return [self._program, "--stdout", "-v", self.voice, "-s", str(self.words_per_minute),
                "--", text]

    def synthesize(
        self, text: str, cancel: threading.Event | None = None
    ) -> Iterator[AudioChunk]:
        if not text.strip():
            return
        proc = subprocess.Popen(self._command(text), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            header = proc.stdout.read(44)
            if len(header) < 44:
                return
            rate = _wav_header_rate(header)
            leftover = b""
            while True:
                if cancel is not None and cancel.is_set():
                    return
                data = proc.stdout.read1(_BLOCK_BYTES)
                if not data:
                    break
                data = leftover + data
                usable = len(data) - len(data) % 2
                leftover = data[usable:]
                if usable:
                    yield AudioChunk(np.frombuffer(data[:usable], dtype="<i2").astype(np.int16),
                                     rate)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()


def _wav_header_rate(header: bytes) -> int:
    """Sample rate from espeak-ng's 44-byte WAV header (its sizes are placeholders when
    streaming, so the `wave` module cannot read it)."""
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise SpeechModelError("espeak-ng did not produce WAV audio")
    return int(struct.unpack("<I", header[24:28])[0])
