"""Facts about this machine's CPU that inference speed depends on.

How many physical cores there are (hyper-threads do not help matrix-vector work), which
cores are the fast ones on a big.LITTLE chip (Raspberry Pi 5 is homogeneous, many phones
and SBCs like the RK3588 are not), and which SIMD extensions exist. Everything comes from
Linux's /proc and /sys; elsewhere physical cores come from psutil (if installed) and
the rest degrades to `os.cpu_count()`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError

SYS_CPU = Path("/sys/devices/system/cpu")
PROC_CPUINFO = Path("/proc/cpuinfo")

# /proc/cpuinfo spellings (x86 "flags", ARM "Features") -> the names Hearth reports
_FLAG_NAMES = {
    "avx2": "avx2",
    "avx512f": "avx512f",
    "fma": "fma",
    "f16c": "f16c",
    "asimd": "neon",  # ARMv8 Advanced SIMD is what NEON is called there
    "neon": "neon",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "sve": "sve",
}


@dataclass(frozen=True)
class CpuInfo:
    """What inference cares about in this CPU."""

    physical_cores: int
    logical_cores: int
    big_cores: tuple[int, ...]
    """CPU ids of the fastest cores (by max frequency); all CPUs when they are alike."""
    flags: frozenset[str]
    """SIMD extensions present, lower case: "neon", "dotprod", "avx2", "fma", ..."""
    model_name: str

    @property
    def is_big_little(self) -> bool:
        """True when some cores are slower than others."""
        return 0 < len(self.big_cores) < self.logical_cores

    @property
    def default_threads(self) -> int:
        """Compute threads that give the best decode speed: one per fast physical core."""
        if self.is_big_little:
            return max(1, len(self.big_cores))
        return max(1, self.physical_cores)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _online_cpus() -> list[int]:
    ids = []
    for entry in SYS_CPU.glob("cpu[0-9]*"):
        cpu = int(entry.name[3:])
        # cpu0 often has no "online" file because it cannot be taken offline
        if _read(entry / "online") in ("", "1"):
            ids.append(cpu)
    return sorted(ids) or list(range(os.cpu_count() or 1))


def _physical_cores(cpus: list[int]) -> int:
    cores = set()
    for cpu in cpus:
        topology = SYS_CPU / f"cpu{cpu}" / "topology"
        core_id = _read(topology / "core_id")
        package_id = _read(topology / "physical_package_id")
        if not core_id:
            return _physical_cores_elsewhere(len(cpus))
        cores.add((package_id, core_id))
    return len(cores) or len(cpus)


def _physical_cores_elsewhere(logical: int) -> int:
    """Without Linux's topology files (macOS, Windows): ask psutil, else assume no SMT."""
    try:
        import psutil
    except ImportError:
        return logical
    return min(logical, psutil.cpu_count(logical=False) or logical)


def _big_cores(cpus: list[int]) -> tuple[int, ...]:
    """The cores with the highest max frequency (or capacity, where cpufreq is absent)."""
    speed: dict[int, int] = {}
    for cpu in cpus:
        base = SYS_CPU / f"cpu{cpu}"
        value = _read(base / "cpufreq" / "cpuinfo_max_freq") or _read(base / "cpu_capacity")
        if not value.isdigit():
            return tuple(cpus)
        speed[cpu] = int(value)
    fastest = max(speed.values(), default=0)
    return tuple(cpu for cpu in cpus if speed.get(cpu, fastest) == fastest)


def _parse_cpuinfo(text: str) -> tuple[frozenset[str], str]:
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags.update(_FLAG_NAMES[f] for f in value.split() if f in _FLAG_NAMES)
        elif key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
    if not model:
        model = _read(Path("/proc/device-tree/model")).rstrip("\x00")
    return frozenset(flags), model


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU facts (read once, then cached)."""
    cpus = _online_cpus()
    flags, model = _parse_cpuinfo(_read(PROC_CPUINFO))
    return CpuInfo(
        physical_cores=_physical_cores(cpus),
        logical_cores=len(cpus),
        big_cores=_big_cores(cpus),
        flags=flags,
        model_name=model or "unknown CPU",
    )


def resolve_affinity(spec: str) -> tuple[int, ...]:
    """CPU ids for an `engine.cpu_affinity` setting.

    "" means no pinning (empty tuple); "big" means the fast cores of a big.LITTLE CPU (also
    empty on a CPU whose cores are all alike, since pinning to every core changes
    nothing); "2,3" or "0-3" lists CPU ids. Raises EngineError for ids this machine lacks.
    """
    spec = spec.strip().lower()
    if not spec:
        return ()
    info = cpu_info()
    if spec == "big":
        return info.big_cores if info.is_big_little else ()
    if not re.fullmatch(r"\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*", spec):
        raise EngineError(
            f"cpu affinity {spec!r} is not '', 'big' or a list of CPU ids like '2,3'"
        )
    ids: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        ids.update(range(int(low), int(high or low) + 1))
    available = allowed_cpus()
    missing = sorted(ids - set(available))
    if missing:
        raise EngineError(
            f"cpu affinity {spec!r} names CPU {missing[0]}, which this machine does not let "
            f"Hearth use (available: {','.join(map(str, available))})"
        )
    return tuple(sorted(ids))


def allowed_cpus() -> tuple[int, ...]:
    """CPU ids this process may run on (a container or taskset may restrict them)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def pin_current_thread(cpus: tuple[int, ...]) -> tuple[int, ...]:
    """Restrict the calling thread to `cpus`; returns its previous set for restoring.

    On Linux, affinity is per thread, and threads created afterwards by this thread (such
    as llama.cpp's compute workers) inherit it. An empty `cpus` changes nothing.
    """
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return ()
    previous = tuple(sorted(os.sched_getaffinity(0)))
    os.sched_setaffinity(0, cpus)
    return previous


@contextlib.contextmanager
def pinned(cpus: tuple[int, ...]) -> Iterator[None]:
    """Run the body with the calling thread on `cpus` (no-op when empty), then restore.

    The body may be a generator's: closed from another thread (by the garbage collector,
    say), it leaves that thread's affinity alone.
    """
    owner = threading.get_ident()
    previous = pin_current_thread(cpus)
    try:
        yield
    finally:
        if previous and threading.get_ident() == owner:
            pin_current_thread(previous)
