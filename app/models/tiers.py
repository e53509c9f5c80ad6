"""How much memory this machine has for Hearth, and which tier of the catalog it is.

Usable memory is the smallest of physical RAM, the cgroup limit (containers,
systemd `MemoryMax=`) and the address-space rlimit (`ulimit -v`, `prlimit --as`).
The catalog's [[tier]] table maps usable memory to the preferred engine and models;
`app/stack.py` turns that into what runs, counting the whole stack against
`stack_budget_bytes`. Each model also gets a fit label: "fits", "tight" or "does not fit".
"""

from __future__ import annotations

import re
import resource
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.errors import HearthError
from app.models.catalog import Catalog, Tier

FITS, TIGHT, DOES_NOT_FIT = "fits", "tight", "does not fit"

# Share of usable memory a model may take and still "fit": the rest is for the OS,
# the recognizer, the voice and the GUI.
FIT_SHARE = 0.6
ADDRESS_SPACE_HEADROOM = 512 * 2**20
TIGHT_SHARE = 0.9
STACK_SHARE = 0.9
"""Share of usable memory the whole stack may take: the rest is slack for the kernel's
own accounting (page tables, socket buffers) and for a reply longer than the measured one."""

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
          "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40,
          "tib": 2**40}


def parse_size(text: str) -> int:
    """'2GB', '512 MiB', '1.5g' -> bytes (GB and GiB both mean 2**30, as people use them)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise HearthError(f"{text!r} is not a memory size; write it like 2GB or 512MB")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value <= 0:
        raise HearthError(f"{text!r}: a memory size must be greater than zero")
    return int(value)


def format_bytes(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.0f} MiB"


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _memory_cgroup() -> tuple[Path, Path, str] | None:
    """(this process's memory cgroup folder, the hierarchy's root, the limit file name):
    cgroup v1 when a hierarchy carries the memory controller, else the unified v2 one."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, rel = parts
        if "memory" in controllers.split(","):
            root = Path("/sys/fs/cgroup/memory")
            return root / rel.lstrip("/"), root, "memory.limit_in_bytes"
        if hierarchy == "0" and controllers == "":
            root = Path("/sys/fs/cgroup")
            unified = (root / rel.lstrip("/"), root, "memory.max")
    return unified


def cgroup_limit_bytes() -> int | None:
    """The memory limit of this process's cgroup (v2 or v1), if any: the tightest of its
    own and its ancestors'."""
    found = _memory_cgroup()
    if found is None:
        return None
    folder, root, name = found
    limits = []
    for path in (folder, *folder.parents):
        limit = _read_int(path / name)  # v2 says "max", v1 a huge number, for no limit
        if limit is not None and limit < 2**60:
            limits.append(limit)
        if path == root:
            break
    return min(limits, default=None)


def cgroup_others_bytes() -> int:
    """Anonymous memory charged to this process's cgroup by other processes (a container
    shared with other programs): what they hold is not Hearth's to use."""
    found = _memory_cgroup()
    if found is None:
        return 0
    folder, _root, name = found
    key = "anon" if name == "memory.max" else "total_rss"
    try:
        stat = dict(line.split(" ", 1) for line in (folder / "memory.stat").read_text()
                    .splitlines() if " " in line)
        anon = int(stat.get(key, "0"))
    except (OSError, ValueError):
        return 0
    return max(0, anon - psutil.Process().memory_info().rss)


def rlimit_as_bytes() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


@dataclass(frozen=True)
class MachineMemory:
    total_bytes: int
    available_bytes: int
    limit_bytes: int | None = None
    """The tighter of the cgroup limit and the address-space rlimit, if any."""
    limit_source: str = ""
    simulated: bool = False

    @property
    def usable_bytes(self) -> int:
        if self.limit_bytes is not None:
            return min(self.total_bytes, self.limit_bytes)
        return self.total_bytes

    @property
    def free_for_models_bytes(self) -> int:
        """What a model may take right now."""
        return min(self.available_bytes, self.usable_bytes)

    def describe(self) -> str:
        text = f"{format_bytes(self.usable_bytes)} usable"
        if self.simulated:
            return text + " (simulated with --ram)"
        if self.limit_bytes is not None and self.limit_bytes < self.total_bytes:
            text += f" (limited by {self.limit_source}; {format_bytes(self.total_bytes)} installed)"
        return text + f", {format_bytes(self.available_bytes)} free now"


def detect_memory(simulate_bytes: int | None = None) -> MachineMemory:
    """This machine's memory, or a simulated machine with `simulate_bytes` of RAM."""
    if simulate_bytes is not None:
        # A freshly booted machine of that size: the OS and desktop take ~15%.
        return MachineMemory(simulate_bytes, int(simulate_bytes * 0.85), simulated=True)
    vm = psutil.virtual_memory()
    limits = [(v, name) for v, name in ((cgroup_limit_bytes(), "cgroup memory limit"),
                                        (rlimit_as_bytes(), "address-space limit (ulimit -v)"))
              if v is not None and v < vm.total]
    if not limits:
        return MachineMemory(vm.total, vm.available)
    limit, source = min(limits)
    # Address space already mapped counts against RLIMIT_AS: subtract this process's, and
    # keep headroom for what a model costs in address space beyond its RSS (8 MiB thread
    # stacks, glibc's 64 MiB malloc arenas, llama.cpp's and onnxruntime's own mappings).
    if source.startswith("address"):
        used = psutil.Process().memory_info().vms
        available = max(0, limit - used - ADDRESS_SPACE_HEADROOM)
    else:
        available = min(vm.available, limit - cgroup_others_bytes())
    return MachineMemory(vm.total, available, limit, source)


def fit_label(needed_bytes: int, memory: MachineMemory) -> str:
    usable = memory.usable_bytes
    if needed_bytes <= FIT_SHARE * usable and needed_bytes <= memory.free_for_models_bytes:
        return FITS
    if needed_bytes <= TIGHT_SHARE * usable:
        return TIGHT
    return DOES_NOT_FIT


def tier_for(catalog: Catalog, memory: MachineMemory) -> Tier:
    chosen = catalog.tiers[0]
    for tier in catalog.tiers:
        if memory.usable_bytes >= tier.min_ram_bytes:
            chosen = tier
    return chosen


def stack_budget_bytes(memory: MachineMemory) -> int:
    """What Hearth's whole stack (runtime, engine, recognizer, voice) may take at its peak."""
    return min(int(STACK_SHARE * memory.usable_bytes), memory.available_bytes)
