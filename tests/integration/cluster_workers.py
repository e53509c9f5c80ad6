"""Helpers for the cluster tests: real `hearth worker` processes on loopback ports, and
memory cgroups (v1 or v2) to hold a process under a limit. Needs root for cgroups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from app.config import Settings, settings_from_dict
from tests.daemons import stop_process

ROOT = Path(__file__).resolve().parents[2]
CGROUP_ROOT = Path("/sys/fs/cgroup")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Worker:
    """`hearth worker` on 127.0.0.1:`port` (its ggml-rpc-server is `rpc_pid`)."""

    def __init__(self, port: int | None = None, allow: str = "127.0.0.1",
                 cgroup: MemoryCgroup | None = None, host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.address = f"{host}:{self.port}"
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - open for its life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "-v", "worker", "--host", host,
             "--port", str(self.port), "--threads", "1", "--allow", allow],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, text=True,
            preexec_fn=cgroup.enter if cgroup else None)
        deadline = time.monotonic() + 30
        while "listening on" not in self.output():
            assert self.process.poll() is None, f"hearth worker exited: {self.output()}"
            assert time.monotonic() < deadline, f"hearth worker did not start: {self.output()}"
            time.sleep(0.05)
        self.rpc_pid = self._rpc_pid()

    def _rpc_pid(self) -> int:
        children = psutil.Process(self.process.pid).children()
        return next(c.pid for c in children if c.name().startswith("ggml-rpc"))

    def rss_bytes(self) -> int:
        return psutil.Process(self.rpc_pid).memory_info().rss

    def output(self) -> str:
        """What the worker printed and logged so far."""
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self.process.poll() is None and psutil.pid_exists(self.rpc_pid):
            os.kill(self.rpc_pid, signal.SIGCONT)  # a SIGSTOPped server cannot end
        stop_process(self.process, timeout=10)


def cluster_settings(model: Path, workers: list[str], **cluster: object) -> Settings:
    return settings_from_dict({
        "engine": {"backend": "llama-cpp", "model": str(model), "context_length": 512,
                   "threads": 1, "temperature": 0.0},
        "cluster": {"workers": workers, "connect_timeout_seconds": 1.0,
                    "token_timeout_seconds": 2.0, "first_token_timeout_seconds": 20.0,
                    **cluster},
    })


def without_cluster(settings: Settings) -> Settings:
    return replace(settings, cluster=replace(settings.cluster, workers=()))


class MemoryCgroup:
    """A memory cgroup with a hard limit; `enter` (as preexec_fn) moves a process in."""

    def __init__(self, name: str, limit_bytes: int) -> None:
        if os.geteuid() != 0:
            pytest.skip("memory cgroups need root")
        self.v2 = (CGROUP_ROOT / "cgroup.controllers").is_file()
        if self.v2:
            if "memory" not in (CGROUP_ROOT / "cgroup.subtree_control").read_text():
                pytest.skip("cgroup v2 without the memory controller delegated")
            self.path = CGROUP_ROOT / name
        else:
            self.path = CGROUP_ROOT / "memory" / name
            if not self.path.parent.is_dir():
                pytest.skip("no cgroup v1 memory hierarchy")
        self.path.mkdir()
        if self.v2:
            (self.path / "memory.max").write_text(str(limit_bytes))
            (self.path / "memory.swap.max").write_text("0")
        else:
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        self.limit_bytes = limit_bytes

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_bytes(self) -> int:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        return int((self.path / name).read_text())

    def oom_kills(self) -> int:
        if self.v2:
            events = dict(line.split() for line in
                          (self.path / "memory.events").read_text().splitlines())
            return int(events.get("oom_kill", 0))
        control = dict(line.split() for line in
                       (self.path / "memory.oom_control").read_text().splitlines())
        return int(control.get("oom_kill", 0))

    def remove(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)
