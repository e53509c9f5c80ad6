"""Every systemd unit in packaging/ runs as systemd would run it, and works.

There is no systemd here, so the unit file is read the way systemd reads it
(tests/acceptance/docs.py) and its `ExecStart` is run as written: `%h` is a temporary
home holding a config and the clone at `~/hearth` (a link to this repository, so
`%h/hearth/.venv/bin/hearth` is the venv `make` built), the environment is a user
manager's plus the unit's `Environment=`, stdin is /dev/null and stdout and stderr go
to one "journal". The user's sound server is a private PulseAudio where a session's
would be (tests/acceptance/sound.py). Each unit must stay up, answer (a probe per
unit, below), and exit with success on `KillSignal` within `TimeoutStopSec`.
When systemd-analyze is installed, `systemd-analyze --user verify` must accept the file.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import ROOT, Home, run_hearth
from tests.acceptance.docs import (
    PACKAGING,
    Unit,
    exec_argv,
    expand_specifiers,
    parse_unit,
    seconds,
    unit_environment,
)
from tests.acceptance.sound import SoundServer

UNITS = sorted(PACKAGING.glob("*.service"))
QUESTION = "What is the capital of France?"
USER_MANAGER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
"""PATH of a systemd user manager's services (systemd's default)."""


@dataclass
class Service:
    """A unit's ExecStart running as its service."""

    unit: Unit
    home: Home
    runtime_dir: Path
    process: subprocess.Popen[str]
    journal: list[str]

    @property
    def output(self) -> str:
        return "".join(self.journal)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output, re.M)
            if found:
                return found
            assert self.process.poll() is None, \
                f"the service exited ({self.process.returncode}):\n{self.output[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} within {timeout:.0f} s:\n{self.output[-3000:]}")

    def log_file_says(self, pattern: str, timeout: float) -> None:
        """Wait for `pattern` in Hearth's log file (where `hearth doctor` says it is)."""
        log = self.home.path / ".local" / "state" / "hearth" / "log" / "hearth.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and re.search(pattern, log.read_text(errors="replace")):
                return
            assert self.process.poll() is None, \
                f"the service exited ({self.process.returncode}):\n{self.output[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"{log} never said {pattern!r}:\n{self.output[-3000:]}")


def specifiers(unit: Unit, home: Path, runtime_dir: Path) -> dict[str, str]:
    return {"h": str(home), "u": getpass.getuser(), "U": str(os.getuid()),
            "t": str(runtime_dir), "n": unit.path.name, "N": unit.path.stem,
            "E": str(home / ".config"), "S": str(home / ".local" / "share"),
            "C": str(home / ".cache"), "L": str(home / ".local" / "state" / "log")}


def service_environment(unit: Unit, home: Path, runtime_dir: Path) -> dict[str, str]:
    """What a user manager gives a service, then the unit's own Environment=."""
    env = {"HOME": str(home), "USER": getpass.getuser(), "LOGNAME": getpass.getuser(),
           "SHELL": "/bin/sh", "PATH": USER_MANAGER_PATH, "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(runtime_dir)}
    env.update(unit_environment(unit, specifiers(unit, home, runtime_dir)))
    return env


@pytest.fixture
def user_home(home: Home) -> Home:
    """A temporary home with this repository cloned at ~/hearth (a link)."""
    (home.path / "hearth").symlink_to(ROOT, target_is_directory=True)
    return home


@pytest.fixture
def runtime_dir(user_home: Home) -> Path:
    path = user_home.path / "run-user"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def sound(user_home: Home, runtime_dir: Path) -> Iterator[SoundServer]:
    server = SoundServer(runtime_dir, user_home.path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_service(unit: Unit, home: Home, runtime_dir: Path) -> Service:
    spec = specifiers(unit, home.path, runtime_dir)
    argv = exec_argv(unit.get("Service", "ExecStart"), spec)
    workdir = unit.get("Service", "WorkingDirectory", "~")
    cwd = home.path if workdir == "~" else Path(expand_specifiers(workdir.lstrip("-"), spec))
    process = subprocess.Popen(
        argv, cwd=cwd, env=service_environment(unit, home.path, runtime_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    journal: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            journal.append(line)

    threading.Thread(target=read, daemon=True).start()
    return Service(unit, home, runtime_dir, process, journal)


def stop_service(service: Service) -> tuple[int, float]:
    """KillSignal to the whole service (its process group); exit code and seconds taken."""
    name = service.unit.get("Service", "KillSignal", "SIGTERM")
    timeout = seconds(service.unit.get("Service", "TimeoutStopSec", "90s"))
    started = time.monotonic()
    os.killpg(service.process.pid, getattr(signal, name))
    try:
        code = service.process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(service.process.pid, signal.SIGKILL)  # what systemd does then
        service.process.wait(10)
        raise AssertionError(f"still running {timeout:.0f} s after {name}:\n"
                             f"{service.output[-3000:]}") from None
    return code, time.monotonic() - started


# --- what "answers" means, per unit ----------------------------------------------------------

VOICE_LOOP_CONFIG = """\
# A Pi in a kitchen: hands-free, the stock models, greedy short replies for the test.
[engine]
temperature = 0.0
max_tokens = 24

[assistant]
trigger = "hands-free"
"""


def probe_voice_loop(service: Service, sound: SoundServer) -> None:
    """A question spoken into the microphone gets a reply, written to the journal and
    heard on the speaker."""
    question = service.home.path / "question.wav"
    said = run_hearth(["say", QUESTION, "--out", str(question)], service.home)
    assert said.returncode == 0, said.stderr
    service.log_file_says(r"Hearth is ready", timeout=120)
    speaker = sound.listen()
    try:
        sound.speak(question)
        turn = service.wait_for(r"^you: (.+)\nhearth: (\S.*)\n", timeout=120)
        assert turn.group(2).strip()
        deadline = time.monotonic() + 30
        while speaker.loud_seconds() < 1.0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert speaker.loud_seconds() >= 1.0, "the reply was not heard on the speaker"
    finally:
        speaker.stop()


def probe_worker(service: Service, sound: SoundServer) -> None:
    """A cluster worker says where it listens, takes a connection there, and a Hearth
    configured with it (`[cluster] workers`) shakes hands with it (`hearth cluster status`)."""
    found = service.wait_for(r"listening on \[?([\w.:]+?)\]?:(\d+)", timeout=60)
    host = "127.0.0.1" if found.group(1) in ("0.0.0.0", "::", "*") else found.group(1)
    address = f"{host}:{found.group(2)}"
    with socket.create_connection((host, int(found.group(2))), timeout=10):
        pass
    config = service.home.path / "hearth-machine.toml"
    config.write_text(f'[cluster]\nworkers = ["{address}"]\n')
    status = run_hearth(["cluster", "status", "--config", str(config)], service.home)
    assert status.returncode == 0, status.stderr
    assert f"{address}: ok" in status.stdout, status.stdout


@dataclass(frozen=True)
class Probe:
    config: str
    answers: Callable[[Service, SoundServer], None]


PROBES = {
    "hearth.service": Probe(VOICE_LOOP_CONFIG, probe_voice_loop),
    "hearth-worker.service": Probe("", probe_worker),
}
"""Unit file name -> the config its home holds and how it is seen to answer."""


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_runs_as_written_answers_and_stops_cleanly(
        path: Path, user_home: Home, runtime_dir: Path, sound: SoundServer) -> None:
    unit = parse_unit(path)
    assert path.name in PROBES, f"no probe for {path.name}: add one to PROBES"
    probe = PROBES[path.name]
    user_home.write_config(probe.config)
    service = start_service(unit, user_home, runtime_dir)
    try:
        probe.answers(service, sound)
        time.sleep(1.0)
        assert service.process.poll() is None, f"it did not stay up:\n{service.output[-3000:]}"
        code, took = stop_service(service)
    finally:
        if service.process.poll() is None:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait(10)
    allowed = {0, *(int(c) for c in unit.get("Service", "SuccessExitStatus").split()
                    if c.isdigit())}
    assert code in allowed, f"exit code {code} after {took:.1f} s:\n{service.output[-3000:]}"


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_file_is_sound(path: Path, user_home: Home, runtime_dir: Path) -> None:
    unit = parse_unit(path)
    spec = specifiers(unit, user_home.path, runtime_dir)
    assert unit.get("Service", "Type", "simple") in ("simple", "exec"), \
        "this test runs simple/exec services only"
    argv = exec_argv(unit.get("Service", "ExecStart"), spec)
    assert os.access(argv[0], os.X_OK), f"ExecStart {argv[0]} is not what make builds"
    for doc in unit.get("Unit", "Documentation").split():
        if doc.startswith("file:"):
            assert Path(expand_specifiers(doc[5:], spec)).exists(), doc
    assert seconds(unit.get("Service", "TimeoutStopSec", "90s")) > 0
    assert hasattr(signal, unit.get("Service", "KillSignal", "SIGTERM"))
    if shutil.which("systemd-analyze") is None:
        return  # optional: apt-get install systemd
    done = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(path)], capture_output=True, text=True,
        timeout=120, check=False, env={**service_environment(unit, user_home.path, runtime_dir)})
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
