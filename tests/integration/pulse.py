"""A private PulseAudio daemon with two null sinks, for real audio round trips in tests.

"hearth_mic" stands in for the microphone: a test plays speech into it and Hearth
records its monitor. "hearth_speaker" stands in for the speaker: Hearth plays into
it and the test records its monitor. Each pytest session runs its own daemon on a
socket in its own temp dir, so sessions running side by side never collide.

Hearth reaches the daemon through PortAudio's ALSA "pulse" device (libasound2-plugins),
steered by PULSE_SERVER / PULSE_SOURCE / PULSE_SINK in this process's environment.
Use the `pulse_server` fixture (import it into a conftest or test module).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from speech.audio import AudioChunk
from tests.daemons import start_pulseaudio, stop_process

MIC_SINK = "hearth_mic"
SPEAKER_SINK = "hearth_speaker"
SINK_RATE = 48000
DEVICE = "pulse"
"""The PortAudio device name Hearth opens (the ALSA pulse plugin)."""

class PulseServer:
    """A running private daemon; `env` reaches it from subprocesses."""

    mic_sink = MIC_SINK
    speaker_sink = SPEAKER_SINK
    device = DEVICE

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "native"
        self.env = {
            **os.environ,
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(directory / "runtime"),
            "XDG_RUNTIME_DIR": str(directory),
            "PULSE_SOURCE": f"{MIC_SINK}.monitor",
            "PULSE_SINK": SPEAKER_SINK,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        self._process = start_pulseaudio(
            self.directory / "hearth.pa", self.directory / "pulseaudio.log", self.env,
            socket=self.socket, mic=MIC_SINK, speaker=SPEAKER_SINK, rate=SINK_RATE,
            timeout=timeout)

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None

    def activate(self) -> None:
        """Point this process's PortAudio at the daemon (re-scanning devices if
        sounddevice was already imported and initialized)."""
        for key in ("PULSE_SERVER", "PULSE_RUNTIME_PATH", "XDG_RUNTIME_DIR", "PULSE_SOURCE",
                    "PULSE_SINK"):
            os.environ[key] = self.env[key]
        import sounddevice as sd

        sd._terminate()
        sd._initialize()

    def play_wav_to_mic(self, path: str | Path, wait: bool = True) -> subprocess.Popen[bytes]:
        """Play a WAV file into the microphone sink (returns the paplay process)."""
        proc = subprocess.Popen(["paplay", f"--device={MIC_SINK}", str(path)], env=self.env)
        if wait:
            proc.wait(60)
        return proc

    @contextlib.contextmanager
    def recording_speaker(self, sample_rate: int = 16000) -> Iterator[list[AudioChunk]]:
        """Record the speaker sink's monitor for the duration of the block; the yielded
        list holds one AudioChunk (mono, `sample_rate`) after the block."""
        proc = subprocess.Popen(
            ["parec", f"--device={SPEAKER_SINK}.monitor", "--raw", "--format=s16le",
             f"--rate={sample_rate}", "--channels=1", "--latency-msec=20"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        received: list[bytes] = []
        # drain the pipe as it fills: parec blocks (and loses audio) on a full pipe
        reader = threading.Thread(target=lambda: received.extend(iter(
            lambda: proc.stdout.read1(65536), b"")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        result: list[AudioChunk] = []
        try:
            time.sleep(0.2)  # let parec connect before the block starts playing
            yield result
            time.sleep(0.3)  # the tail of what was played is still in flight
        finally:
            proc.terminate()
            proc.wait(10)
            reader.join(10)
            data = b"".join(received)
            usable = len(data) - len(data) % 2
            samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
            result.append(AudioChunk(samples, sample_rate))

    def record_speaker(self, seconds: float, sample_rate: int = 16000) -> AudioChunk:
        """Record the speaker sink's monitor for `seconds`."""
        with self.recording_speaker(sample_rate) as result:
            time.sleep(seconds)
        return result[0]


@pytest.fixture(scope="session")
def pulse_server() -> Iterator[PulseServer]:
    """A private PulseAudio daemon with hearth_mic / hearth_speaker null sinks; this
    process's PortAudio is pointed at it (open devices by `pulse_server.device`)."""
    directory = Path(tempfile.mkdtemp(prefix="hearth-pulse-"))
    server = PulseServer(directory)
    server.start()
    try:
        server.activate()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
