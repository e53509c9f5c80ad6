"""A user's sound server, private to a test: PulseAudio with a null "microphone" and a
null "speaker", listening where a desktop session's server listens
($XDG_RUNTIME_DIR/pulse/native) and set as the default source and sink.

So Hearth finds it as it finds a real one, with no PULSE_* variables: through the
default ALSA device, which the pulse plugin routes to a running PulseAudio. A test
speaks into the microphone with `paplay` and listens to the speaker with `parec`
(as tests/integration/pulse.py does for the in-process tests; this one imports
nothing of Hearth).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

MIC = "acceptance_mic"
SPEAKER = "acceptance_speaker"

_CONFIG = """\
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-null-sink sink_name={mic} rate=48000 channels=1
load-module module-null-sink sink_name={speaker} rate=48000 channels=1
set-default-sink {speaker}
set-default-source {mic}.monitor
"""


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
        if shutil.which("pulseaudio") is None:
            raise RuntimeError("pulseaudio is not installed (make test installs it)")
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        config = self.runtime_dir / "acceptance.pa"
        config.write_text(_CONFIG.format(socket=self.socket, mic=MIC, speaker=SPEAKER))
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                ["pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1",
                 "--disallow-exit", "--use-pid-file=false", "--disable-shm=yes", "-n",
                 "-F", str(config), "--log-target=stderr"],
                env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {self.log_tail()}")
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True,
                              check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"pulseaudio did not come up: {self.log_tail()}")

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-800:] if self._log.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
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
