"""`hearth doctor`: check audio devices, models, engines and CPU, and say what to fix.

Every check prints one line: "ok", "warn" or "FAIL", what it found, and for the last
two what to do. Exit code 1 when Hearth cannot answer at all (no usable chat model).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.errors import HearthError
from app.models.store import ModelStore
from app.models.tiers import detect_memory, format_bytes, parse_size
from app.stack import choose_stack


@dataclass
class Check:
    status: str
    """"ok", "warn" or "FAIL"."""
    what: str
    fix: str = ""


def _cpu() -> list[Check]:
    from engine.cpu import cpu_info

    info = cpu_info()
    simd = sorted(info.flags & {"avx2", "avx512f", "fma", "f16c", "neon", "asimd", "dotprod",
                                "asimddp"})
    line = (f"CPU: {info.model_name or 'unknown'}, {info.physical_cores} cores"
            f" ({info.logical_cores} threads), SIMD: {', '.join(simd) or 'none found'}")
    if info.is_big_little:
        line += f"; big cores: {', '.join(map(str, info.big_cores))}"
    return [Check("ok", line)]


def _memory(args: argparse.Namespace, settings: Settings, store: ModelStore) -> list[Check]:
    memory = detect_memory(parse_size(args.ram) if args.ram else None)
    checks = [Check("ok", f"memory: {memory.describe()}")]
    try:
        stack = choose_stack(settings, store, memory)
    except HearthError as exc:
        return [*checks, Check("FAIL", f"stack: {exc}", "install a model that fits")]
    status = "ok" if stack.fits else "warn"
    checks.append(Check(status, f"stack ({stack.tier} tier): {stack.summary()}; needs about "
                                f"{format_bytes(stack.needed_bytes)} of "
                                f"{format_bytes(stack.budget_bytes)}",
                        "" if stack.fits else "set the recognizer and voice to 'auto', or a "
                                              "smaller [engine] model"))
    tier = next(t for t in store.catalog.tiers if t.name == stack.tier)
    if tier.measured_peak_bytes:
        checks.append(Check("ok", f"  the {tier.name} tier's stack peaked at "
                                  f"{format_bytes(tier.measured_peak_bytes)} (working set "
                                  f"{format_bytes(tier.measured_working_set_bytes)}) in a "
                                  f"{format_bytes(tier.measured_limit_bytes)} memory cgroup "
                                  "(hearth bench tiers)"))
    for part in ("engine", "model", "memory_mode", "recognizer", "voice"):
        if stack.reasons.get(part):
            checks.append(Check("ok", f"  {part.replace('_', ' ')}: {stack.reasons[part]}"))
    if stack.to_install:
        checks.append(Check("warn", f"this machine's tier would use {', '.join(stack.to_install)}",
                            f"hearth models install {' '.join(stack.to_install)}"))
    return checks


def _engines() -> list[Check]:
    checks = []
    if importlib.util.find_spec("llama_cpp"):
        import llama_cpp

        checks.append(Check("ok", f"llama-cpp-python {llama_cpp.__version__}"))
    else:
        checks.append(Check("warn", "llama-cpp-python is not installed: only the numpy engine "
                                    "runs", "pip install 'hearth[llama]' (compiles llama.cpp)"))
    import numpy

    checks.append(Check("ok", f"numpy {numpy.__version__} (built-in engine)"))
    return checks


def _speech(settings: Settings, store: ModelStore) -> list[Check]:
    checks = []
    for module, extra, what in (("pocketsphinx", "sphinx", "PocketSphinx"),
                                ("vosk", "vosk", "Vosk"), ("piper", "piper", "Piper")):
        if importlib.util.find_spec(module):
            checks.append(Check("ok", f"{what} is installed"))
        else:
            checks.append(Check("warn", f"{what} is not installed",
                                f"pip install 'hearth[{extra}]'"))
    if shutil.which("espeak-ng"):
        checks.append(Check("ok", "espeak-ng is installed (fallback voice)"))
    else:
        checks.append(Check("warn", "espeak-ng is missing: no fallback voice",
                            "sudo apt-get install espeak-ng"))
    return checks


def _audio() -> list[Check]:
    try:
        import sounddevice as sd
    except OSError as exc:
        return [Check("FAIL", f"PortAudio cannot load: {exc}",
                      "sudo apt-get install libportaudio2")]
    devices = sd.query_devices()
    inputs = [d["name"] for d in devices if d["max_input_channels"] > 0]
    outputs = [d["name"] for d in devices if d["max_output_channels"] > 0]
    checks = []
    if inputs:
        checks.append(Check("ok", f"microphones: {', '.join(inputs[:4])}"
                                  + (" …" if len(inputs) > 4 else "")))
    else:
        checks.append(Check("warn", "no microphone found: Hearth will take typed questions",
                            "plug in a USB microphone, or check PulseAudio/PipeWire is running"))
    if outputs:
        checks.append(Check("ok", f"speakers: {', '.join(outputs[:4])}"
                                  + (" …" if len(outputs) > 4 else "")))
    else:
        checks.append(Check("warn", "no speaker found: replies will be text only",
                            "connect a speaker or headphones"))
    return checks


def _echo(settings: Settings) -> list[Check]:
    """Whether Hearth can listen while it speaks (barge-in by voice)."""
    from speech.echo import ENABLE_HINT, find_echo_canceller

    half_duplex = ("while Hearth speaks it does not listen, unless [audio] "
                   "listen_while_speaking lets the wake word (at a stricter threshold) "
                   "interrupt it")
    if settings.audio.echo_cancel == "off":
        return [Check("ok", f"echo cancellation: off ([audio] echo_cancel); {half_duplex}")]
    found = find_echo_canceller()
    if found is None:
        return [Check("warn", f"no echo canceller in the sound server: {half_duplex}",
                      ENABLE_HINT)]
    if settings.audio.barge_in == "speech":
        return [Check("ok", f"echo cancellation: {found.describe()}; speaking (or the wake "
                            "word) interrupts Hearth")]
    return [Check("ok", f"echo cancellation: {found.describe()}; the wake word interrupts "
                        "Hearth ([audio] barge_in = 'speech': any speech does)")]


def _models(store: ModelStore) -> list[Check]:
    checks = []
    for entry in store.catalog.bundled():
        if store.is_installed(entry.id):
            checks.append(Check("ok", f"model {entry.id} is installed"))
        else:
            checks.append(Check("warn", f"bundled model {entry.id} is not installed",
                                f"hearth models install {entry.id}"))
    return checks


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = ModelStore(settings.data_dir / "models")
    sections: list[tuple[str, Callable[[], list[Check]]]] = [
        ("config", lambda: [Check("ok", f"settings from {settings.source}")]),
        ("cpu", _cpu),
        ("memory", lambda: _memory(args, settings, store)),
        ("engines", _engines),
        ("models", lambda: _models(store)),
        ("speech", lambda: _speech(settings, store)),
        ("audio", _audio),
        ("echo", lambda: _echo(settings)),
    ]
    failed = False
    for name, check in sections:
        try:
            results = check()
        except Exception as exc:  # a broken check must not hide the others
            results = [Check("FAIL", f"{name} check crashed: {exc}")]
        for result in results:
            failed |= result.status == "FAIL"
            line = f"[{result.status:4}] {result.what}"
            if result.fix:
                line += f"\n       fix: {result.fix}"
            print(line)
    print(f"\nlogs: {_log_file()}; models: {store.root} "
          f"({format_bytes(sum(store.installed_bytes(i) for i in store.installed_ids()))})")
    return 1 if failed else 0


def _log_file() -> str:
    from app.config import log_dir

    return str(log_dir() / "hearth.log")
