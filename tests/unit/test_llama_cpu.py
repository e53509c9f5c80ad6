"""CPU facts (`engine.cpu`) read from a fake /sys and /proc/cpuinfo of a big.LITTLE board."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import cpu
from engine.errors import EngineError

# An RK3588-like layout: cpu0-3 are Cortex-A55 at 1.8 GHz, cpu4-7 Cortex-A76 at 2.4 GHz.
ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 48.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
lrcpc dcpop asimddp
CPU implementer\t: 0x41
"""

X86_CPUINFO = """\
processor\t: 0
model name\t: Example CPU @ 3.0GHz
flags\t\t: fpu sse sse2 avx fma avx2 f16c
"""


def _fake_sys(root: Path, max_freqs: list[int | None], smt: int = 1) -> Path:
    for cpu_id, freq in enumerate(max_freqs):
        base = root / f"cpu{cpu_id}"
        (base / "topology").mkdir(parents=True)
        (base / "topology" / "core_id").write_text(str(cpu_id // smt))
        (base / "topology" / "physical_package_id").write_text("0")
        if freq is not None:
            (base / "cpufreq").mkdir()
            (base / "cpufreq" / "cpuinfo_max_freq").write_text(f"{freq}\n")
    return root


@pytest.fixture
def fake_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def install(max_freqs: list[int | None], cpuinfo: str, smt: int = 1) -> None:
        monkeypatch.setattr(cpu, "SYS_CPU", _fake_sys(tmp_path / "sys", max_freqs, smt))
        (tmp_path / "cpuinfo").write_text(cpuinfo)
        monkeypatch.setattr(cpu, "PROC_CPUINFO", tmp_path / "cpuinfo")
        monkeypatch.setattr(cpu, "allowed_cpus", lambda: tuple(range(len(max_freqs))))
        cpu.cpu_info.cache_clear()

    yield install
    cpu.cpu_info.cache_clear()


def test_big_little_cores_found_from_cpufreq(fake_machine) -> None:
    fake_machine([1800000] * 4 + [2400000] * 4, ARM_CPUINFO)
    info = cpu.cpu_info()
    assert info.big_cores == (4, 5, 6, 7)
    assert info.is_big_little
    assert info.physical_cores == 8 and info.logical_cores == 8
    assert info.default_threads == 4
    assert {"neon", "dotprod"} <= info.flags
    assert cpu.resolve_affinity("big") == (4, 5, 6, 7)


def test_homogeneous_smt_cpu(fake_machine) -> None:
    fake_machine([3000000] * 4, X86_CPUINFO, smt=2)
    info = cpu.cpu_info()
    assert info.physical_cores == 2 and info.logical_cores == 4
    assert not info.is_big_little
    assert info.default_threads == 2
    assert {"avx2", "fma", "f16c"} <= info.flags and "neon" not in info.flags
    assert info.model_name == "Example CPU @ 3.0GHz"
    assert cpu.resolve_affinity("big") == ()  # pinning to every core would change nothing


def test_no_cpufreq_means_all_cores_alike(fake_machine) -> None:
    fake_machine([None, None], X86_CPUINFO)
    assert cpu.cpu_info().big_cores == (0, 1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("", ()), ("2,3", (2, 3)), (" 3 , 1 ", (1, 3)), ("0-2,5", (0, 1, 2, 5))],
)
def test_resolve_affinity_lists(fake_machine, spec: str, expected: tuple[int, ...]) -> None:
    fake_machine([2000000] * 8, ARM_CPUINFO)
    assert cpu.resolve_affinity(spec) == expected


@pytest.mark.parametrize("spec", ["9", "fast", "1;2", "-1"])
def test_resolve_affinity_rejects_bad_specs(fake_machine, spec: str) -> None:
    fake_machine([2000000] * 8, ARM_CPUINFO)
    with pytest.raises(EngineError, match="cpu affinity"):
        cpu.resolve_affinity(spec)


def test_real_machine_answers_sensibly() -> None:
    cpu.cpu_info.cache_clear()
    info = cpu.cpu_info()
    assert 1 <= info.physical_cores <= info.logical_cores
    assert set(info.big_cores) <= set(range(info.logical_cores)) | set(cpu.allowed_cpus())


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_pin_current_thread_restricts_and_restores() -> None:
    import threading

    allowed = cpu.allowed_cpus()
    seen: dict[str, object] = {}

    def worker() -> None:
        previous = cpu.pin_current_thread((allowed[0],))
        seen["pinned"] = os.sched_getaffinity(0)
        cpu.pin_current_thread(previous)
        seen["restored"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["pinned"] == {allowed[0]}
    assert seen["restored"] == set(allowed)
    assert os.sched_getaffinity(0) == set(allowed)  # other threads were not touched


def test_without_topology_files_psutil_gives_physical_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    psutil = pytest.importorskip("psutil")
    for cpu_id in range(4):
        (tmp_path / f"cpu{cpu_id}").mkdir()
    monkeypatch.setattr(cpu, "SYS_CPU", tmp_path)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 4 if logical else 2)
    cpu.cpu_info.cache_clear()
    try:
        info = cpu.cpu_info()
        assert info.logical_cores == 4 and info.physical_cores == 2
    finally:
        cpu.cpu_info.cache_clear()
