"""Shared fixtures of the acceptance layer: Hearth used only the way a person uses it.

These tests run the `.venv/bin/hearth` console script (or `make`) in a subprocess, in a
temporary home that holds a config file, with the files the repository ships. They
never import Hearth's own modules: what they know of Hearth is what README.md,
packaging/ and the command's output tell a user.

The temporary home shares the model store of the user running the tests (the bundled
models `make test` installed), through a symlink, so nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEARTH = ROOT / ".venv" / "bin" / "hearth"

QUICK_CONFIG = """\
# Written by tests/acceptance: greedy and short, so replies are quick and repeatable.
[engine]
temperature = 0.0
max_tokens = 24
"""
"""The config a temporary home holds unless a test writes another."""

_LEAKY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "HEARTH_CONFIG", "HEARTH_DATA_DIR",
          "PULSE_SERVER", "PULSE_SOURCE", "PULSE_SINK", "PULSE_RUNTIME_PATH", "XDG_RUNTIME_DIR",
          "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
          "PYTEST_CURRENT_TEST", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
"""What the test runner's environment must not hand to Hearth: a display, a sound
server, another config or data folder (each test says which of these it wants)."""


def users_model_store() -> Path:
    """Where this user's installed models are (what `make test` installed), following the
    same rule as the platform: $HEARTH_DATA_DIR, else $XDG_DATA_HOME/hearth, else
    ~/.local/share/hearth."""
    if os.environ.get("HEARTH_DATA_DIR"):
        return Path(os.environ["HEARTH_DATA_DIR"]) / "models"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "hearth" / "models"


class Home:
    """A temporary home folder for one user of Hearth."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config = path / ".config" / "hearth" / "config.toml"
        self.data = path / ".local" / "share" / "hearth"
        self.config.parent.mkdir(parents=True)
        self.data.mkdir(parents=True)
        store = users_model_store()
        if store.is_dir():
            (self.data / "models").symlink_to(store, target_is_directory=True)
        self.config.write_text(QUICK_CONFIG)
        base = {k: v for k, v in os.environ.items() if k not in _LEAKY}
        self.env: dict[str, str] = {**base, "HOME": str(path), "PYTHONUNBUFFERED": "1",
                                    "LANG": base.get("LANG", "C.UTF-8")}

    @property
    def history(self) -> Path:
        return self.data / "history.sqlite3"

    def write_config(self, text: str) -> Path:
        self.config.write_text(text)
        return self.config


@pytest.fixture
def home() -> Iterator[Home]:
    """A fresh temporary home holding a quick config and the user's model store."""
    directory = Path(tempfile.mkdtemp(prefix="hearth-home-"))
    try:
        yield Home(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def hearth() -> Path:
    """The console script `make` installs: `.venv/bin/hearth`."""
    if not os.access(HEARTH, os.X_OK):
        pytest.fail(f"{HEARTH} is missing: run make test (or make run) first")
    return HEARTH


def run_hearth(argv: Sequence[str], home: Home, *, timeout: float = 120.0,
               env: Mapping[str, str] | None = None,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`hearth ARGV` run to completion in `home` (its cwd too)."""
    return subprocess.run(
        [str(HEARTH), *argv], cwd=home.path, env=dict(env or home.env), input=stdin,
        capture_output=True, text=True, timeout=timeout, check=False,
        stdin=None if stdin is not None else subprocess.DEVNULL)


def _controlling_terminal() -> None:
    """In the child, after setsid: make stdin (the pseudo-terminal) its controlling
    terminal, so Ctrl-C typed there interrupts it as in a real terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A program running in a pseudo-terminal, as if started in a terminal window: its
    stdin, stdout and stderr are the terminal. Read with `expect`, type with `type`."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        master, slave = os.openpty()
        self.master = master
        self.process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, close_fds=True, preexec_fn=_controlling_terminal)
        os.close(slave)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if not ready:
                    if self.process.poll() is not None:
                        return
                    continue
                data = os.read(self.master, 65536)
            except OSError:  # the terminal closed: the program ended
                return
            if not data:
                return
            with self._lock:
                self._output += data

    @property
    def output(self) -> str:
        with self._lock:
            return self._output.decode(errors="replace").replace("\r\n", "\n")

    def expect(self, pattern: str, timeout: float = 60.0, start: int = 0) -> re.Match[str]:
        """Wait until the output (from character `start` on) matches `pattern`."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = regex.search(self.output, start)
            if found:
                return found
            if self.process.poll() is not None:
                time.sleep(0.3)  # the last output is still in the pipe
                found = regex.search(self.output, start)
                if found:
                    return found
                raise AssertionError(f"exited ({self.process.returncode}) before "
                                     f"{pattern!r}:\n{self.output[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout:.0f} s:\n{self.output[-3000:]}")

    def type(self, text: str) -> None:
        """Keys typed in the terminal ("\\x03" is Ctrl-C, "\\x04" Ctrl-D)."""
        os.write(self.master, text.encode())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send `sig` to the program's process group; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        """Kill whatever is left of the program's process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(2)
        with contextlib.suppress(OSError):
            os.close(self.master)
