"""A memory cgroup (v1 or v2, found at run time) to run one command under a real limit.

Used by bench/tiers.py and tests/acceptance/test_memory_tiers.py. Standard library only,
so that the acceptance test imports nothing of Hearth. Needs root (or a delegated
cgroup). The child is placed in the cgroup by writing its pid to `cgroup.procs` from a
`preexec_fn`, so every process it starts (espeak-ng, ...) is charged to the cgroup too.

The figure read back is the cgroup's peak charge: `memory.peak` on v2 (sampled from
`memory.current` on kernels before 5.19), `memory.max_usage_in_bytes` on v1. It counts
anonymous memory and page cache (model files read or mapped), which is what the kernel
weighs against the limit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path("/sys/fs/cgroup")


class CgroupUnavailable(RuntimeError):
    """No writable memory cgroup hierarchy here (not root, or no memory controller)."""


def _own_path(controller_field: str) -> str:
    """This process's cgroup path in the hierarchy whose /proc/self/cgroup line matches."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if controller_field == "" and hierarchy == "0" and controllers == "":
            return path
        if controller_field and controller_field in controllers.split(","):
            return path
    raise CgroupUnavailable(f"no {controller_field or 'unified'} line in /proc/self/cgroup")


def _v2_parent() -> Path:
    """A v2 cgroup under which a child with a memory limit can be made: our own cgroup if
    it delegates the memory controller, else the root (which is exempt from the rule that
    a cgroup with processes cannot give controllers to its children)."""
    own = ROOT / _own_path("").lstrip("/")
    for parent in (own, ROOT):
        control = parent / "cgroup.subtree_control"
        if "memory" in control.read_text().split():
            return parent
        try:
            control.write_text("+memory")
            return parent
        except OSError:
            continue
    raise CgroupUnavailable("cannot enable the memory controller for a child cgroup")


def detect_version() -> int:
    """1 or 2: which hierarchy carries the memory controller."""
    if (ROOT / "memory" / "memory.limit_in_bytes").exists():
        return 1
    controllers = ROOT / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return 2
    raise CgroupUnavailable("no memory cgroup controller mounted under /sys/fs/cgroup")


def evict_page_cache(roots: Sequence[Path]) -> int:
    """Drop the cached pages of every file under `roots` (model files, native libraries),
    so the next run reads them again and they are charged to its cgroup: a page is charged
    to the cgroup that first read it, so a warm cache would hide a model's weights.
    Returns the number of files advised."""
    count = 0
    for root in roots:
        files = [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file())
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int
    """The cgroup's peak charge while the command ran."""
    oom_killed: bool
    seconds: float
    peak_working_set_bytes: int = 0
    """Largest anonymous + mapped-file memory seen (sampled every 20 ms): what cannot be
    dropped without killing or thrashing, unlike the page cache of files read once."""


class MemoryCgroup:
    """A fresh cgroup with a memory limit (and no swap); remove() deletes it."""

    def __init__(self, limit_bytes: int, name: str = "") -> None:
        self.version = detect_version()
        self.limit_bytes = limit_bytes
        name = name or f"hearth-{uuid.uuid4().hex[:8]}"
        if self.version == 1:
            parent = ROOT / "memory" / _own_path("memory").lstrip("/")
        else:
            parent = _v2_parent()
        self.path = parent / name
        try:
            self.path.mkdir()
        except OSError as exc:
            raise CgroupUnavailable(f"cannot create {self.path}: {exc.strerror}") from exc
        if self.version == 1:
            self._write("memory.limit_in_bytes", str(limit_bytes))
            with contextlib.suppress(OSError):  # no swap either: the limit means what it says
                self._write("memory.memsw.limit_in_bytes", str(limit_bytes))
        else:
            self._write("memory.max", str(limit_bytes))
            with contextlib.suppress(OSError):
                self._write("memory.swap.max", "0")

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def _read_int(self, name: str) -> int:
        return int((self.path / name).read_text().split()[0])

    def usage_bytes(self) -> int:
        return self._read_int("memory.usage_in_bytes" if self.version == 1
                              else "memory.current")

    def peak_bytes(self) -> int | None:
        """The kernel's own peak figure; None on a v2 kernel older than 5.19 (no
        memory.peak), where the sampled maximum of memory.current stands in."""
        try:
            return self._read_int("memory.max_usage_in_bytes" if self.version == 1
                                  else "memory.peak")
        except FileNotFoundError:
            return None

    def working_set_bytes(self) -> int:
        """Anonymous memory plus file pages mapped by processes, from memory.stat."""
        keys = (("total_rss", "total_mapped_file") if self.version == 1
                else ("anon", "file_mapped"))
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text()
                    .splitlines())
        return sum(int(stat.get(key, 0)) for key in keys)

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def _enter_function(self) -> Callable[[], None]:
        procs = str(self.path / "cgroup.procs")

        def enter() -> None:  # in the child, before exec
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))

        return enter

    def start(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[str]:
        """Start `argv` inside the cgroup and return at once (another tenant of it)."""
        return subprocess.Popen(list(argv), text=True, preexec_fn=self._enter_function(),
                                **popen)

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
            timeout: float = 600.0, cwd: str | None = None) -> RunResult:
        """Run `argv` inside the cgroup; its peak charge and whether it was OOM-killed."""
        before = self.oom_kills()
        working_set, usage = [0], [0]
        finished = threading.Event()

        def sample() -> None:
            while not finished.wait(0.02):
                working_set[0] = max(working_set[0], self.working_set_bytes())
                usage[0] = max(usage[0], self.usage_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, env=env,
                                  cwd=cwd, timeout=timeout, preexec_fn=self._enter_function(),
                                  check=False)
        finally:
            finished.set()
            sampler.join()
        seconds = time.monotonic() - start
        killed = self.oom_kills() > before
        peak = self.peak_bytes()
        return RunResult(done.returncode, done.stdout, done.stderr,
                         usage[0] if peak is None else peak, killed, seconds, working_set[0])

    def remove(self) -> None:
        """Delete the cgroup (its processes have exited); tolerant of a slow kernel."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)

    def __enter__(self) -> MemoryCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
