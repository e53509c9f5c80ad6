"""A user's sound server, private to a test: PulseAudio with a null "microphone" and a
null "speaker", listening where a desktop session's server listens
($XDG_RUNTIME_DIR/pulse/native) and set as the default source and sink.

So Hearth finds it as it finds a real one, with no PULSE_* variables: through the
default ALSA device, which the pulse plugin routes to a running PulseAudio. A test
speaks into the microphone with `paplay` and listens to the speaker with `parec`
(as tests/integration/pulse.py does for the in-process tests; this one imports
nothing of Hearth, and starts the server as that one does, with tests/daemons.py).
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import numpy as np

from tests.daemons import start_pulseaudio, stop_process

MIC = "acceptance_mic"
SPEAKER = "acceptance_speaker"

class SoundServer:
    """PulseAudio for one user whose runtime folder is `runtime_dir`."""

    def __init__(self, runtime_dir: Path, home: Path) -> None:
        self.runtime_dir = runtime_dir
        self.socket = runtime_dir / "pulse" / "native"
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                    "XDG_RUNTIME_DIR": str(runtime_dir)}
        self._process: subprocess.Popen[bytes] | None = None
        self._log = runtime_dir / "pulseaudio.log"

    def start(self, timeout: float = 15.0) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        self._process = start_pulseaudio(
            self.runtime_dir / "acceptance.pa", self._log, self.env, socket=self.socket,
            mic=MIC, speaker=SPEAKER, timeout=timeout)

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None

    def speak(self, wav: Path, wait: bool = True) -> subprocess.Popen[bytes]:
        """Play `wav` into the microphone; with `wait`, return when it has been played."""
        player = subprocess.Popen(["paplay", f"--device={MIC}", str(wav)], env=self.env)
        if wait and player.wait(60) != 0:
            raise RuntimeError(f"paplay failed ({player.returncode})")
        return player

    def listen(self) -> Recording:
        """Start recording the speaker (16 kHz mono); stop it with `Recording.stop()`."""
        return Recording(self.env)


class Recording:
    """What the speaker plays, while it runs."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            ["parec", f"--device={SPEAKER}.monitor", "--raw", "--format=s16le", "--rate=16000",
             "--channels=1", "--latency-msec=20"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._data: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        while chunk := self._process.stdout.read1(65536):
            self._data.append(chunk)

    def loud_seconds(self, threshold: float = 0.01) -> float:
        """How many seconds of what was recorded so far are louder than `threshold` RMS."""
        data = b"".join(self._data)
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2") / 32768.0
        blocks = samples[: len(samples) // 160 * 160].reshape(-1, 160)  # 10 ms blocks
        if not len(blocks):
            return 0.0
        return float(np.count_nonzero(np.sqrt((blocks ** 2).mean(axis=1)) > threshold)) / 100

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)
        self._reader.join(10)
