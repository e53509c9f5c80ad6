"""Starting and stopping the helper processes of the tests: a private PulseAudio
(tests/integration/pulse.py for the in-process tests, tests/acceptance/sound.py for the
acceptance tests) and any child process that must end. Imports nothing of Hearth, so
the acceptance tests may use it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

PULSE_CONFIG = """\
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-null-sink sink_name={mic} rate={rate} channels=1
load-module module-null-sink sink_name={speaker} rate={rate} channels=1
set-default-sink {speaker}
set-default-source {mic}.monitor
"""
"""A server on `socket` with two null sinks: `mic` (its monitor is the default source)
and `speaker` (the default sink)."""


def start_pulseaudio(config: Path, log: Path, env: dict[str, str], *, socket: Path,
                     mic: str, speaker: str, rate: int = 48000,
                     timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """Write `PULSE_CONFIG` to `config`, run PulseAudio on it (output into `log`) and
    return once `pactl info` reaches it through `env`."""
    if shutil.which("pulseaudio") is None:
        raise RuntimeError("pulseaudio is not installed (apt-get install pulseaudio)")
    config.write_text(PULSE_CONFIG.format(socket=socket, mic=mic, speaker=speaker, rate=rate))
    with log.open("wb") as out:
        # -n: none of the system's default.pa (no hardware, no X11/D-Bus modules);
        # --system=false with root is allowed and keeps the daemon per-user and private
        process = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1",
             "--disallow-exit", "--use-pid-file=false", "--disable-shm=yes", "-n",
             "-F", str(config), "--log-target=stderr"],
            env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pulseaudio exited: {log_tail(log)}")
        if subprocess.run(["pactl", "info"], env=env, capture_output=True,
                          check=False).returncode == 0:
            return process
        time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"pulseaudio did not come up: {log_tail(log)}")


def log_tail(path: Path, chars: int = 800) -> str:
    """The last `chars` characters of a log file ("" when there is none)."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def stop_process(process: subprocess.Popen[bytes] | subprocess.Popen[str] | None,
                 timeout: float = 5.0) -> None:
    """Terminate `process` if it still runs; kill it if it has not ended after `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
