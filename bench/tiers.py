"""Memory tiers under real limits: for each memory cgroup limit, the stack Hearth's
automatic choice picks, its peak cgroup memory while answering spoken questions, and the
headroom left.

Run: `hearth bench tiers [--limits 512,1024,2048]` or `python -m bench.tiers` (as root:
it makes memory cgroups, v1 or v2). For each limit and question, in a fresh cgroup of
that limit:

1. `hearth models recommend --json`: the chooser's view from inside the limit (tier,
   engine + model + memory mode, recognizer, voice, the stack's expected need and budget);
2. `hearth ask --wav Q.wav --out A.wav --json` with the automatic choice (the question
   spoken by `hearth say` beforehand, outside any limit).

Before each run the page cache of the model store and the venv's libraries is dropped, as
on a freshly booted device: a page is charged to the cgroup that first reads it, so a warm
cache would hide the model's weights. Figures: the cgroup's peak charge (memory.peak /
memory.max_usage_in_bytes: anonymous memory plus page cache; the kernel reclaims the cache
before it kills) and the peak working set sampled every 20 ms (anonymous memory plus
mapped files: what cannot be dropped); headroom = limit - peak charge, and limit - working
set (at the limit the peak charge is the limit itself: the cache is reclaimed, not a kill).

Writes bench/results/tiers.json and bench/results/tiers.md. `--components` measures each
part of a stack alone instead (the runtime, the chat engine, each recognizer and voice)
against the figure the chooser counts for it: where the catalog's ram_bytes come from
(bench/results/tiers_components.{json,md}).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cgroup import MemoryCgroup, RunResult, detect_version, evict_page_cache

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
HEARTH = [sys.executable, "-m", "app.cli"]
QUESTIONS = (
    "What is the capital of France?",
    "Tell me a long story about a brave dragon and a princess.",
)
CONFIG = """\
# bench/tiers.py: the automatic stack, greedy so that runs repeat
[engine]
temperature = 0.0
seed = 1
[history]
enabled = false
"""
MIB = 2**20


def _mib(n: int) -> float:
    return round(n / MIB, 1)


def _evict() -> None:
    """Drop the cached pages of the model store and the venv's libraries."""
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    evict_page_cache([data / "hearth" / "models", Path(sys.prefix) / "lib"])


def _in_cgroup(limit_bytes: int, argv: Sequence[str]) -> RunResult:
    _evict()
    with MemoryCgroup(limit_bytes) as cgroup:
        return cgroup.run(argv, cwd=str(REPO), timeout=900)


def measure(limit_mib: int, config: Path, question: Path, workdir: Path) -> dict[str, Any]:
    """One limit, one question: the chooser's view and the real run."""
    limit = limit_mib * MIB
    recommend = _in_cgroup(limit, [*HEARTH, "--config", str(config), "models", "recommend",
                                   "--json"])
    stack = json.loads(recommend.stdout)["now"] if recommend.returncode == 0 else None
    answer = workdir / f"answer-{limit_mib}.wav"
    asked = _in_cgroup(limit, [*HEARTH, "--config", str(config), "ask", "--wav",
                               str(question), "--out", str(answer), "--json"])
    result = json.loads(asked.stdout) if asked.returncode == 0 else {}
    return {
        "limit_mib": limit_mib,
        "tier": stack["tier"] if stack else None,
        "stack": {key: stack[key] for key in ("backend", "llm", "memory_mode", "recognizer",
                                              "voice")} if stack else None,
        "expected_mib": _mib(stack["needed_bytes"]) if stack else None,
        "budget_mib": _mib(stack["budget_bytes"]) if stack else None,
        "ran": {key: result.get(key) for key in ("engine", "model", "recognizer", "voice")},
        "answered": asked.returncode == 0,
        "oom_killed": asked.oom_killed,
        "exit_code": asked.returncode,
        "peak_mib": _mib(asked.peak_bytes),
        "working_set_mib": _mib(asked.peak_working_set_bytes),
        "headroom_mib": _mib(limit - asked.peak_bytes),
        "working_set_headroom_mib": _mib(limit - asked.peak_working_set_bytes),
        "seconds": round(asked.seconds, 1),
        "transcript": result.get("transcript", ""),
        "reply": result.get("reply", ""),
        "reply_audio_seconds": result.get("reply_audio_seconds", 0),
        "error": "" if asked.returncode == 0 else asked.stderr.strip()[-300:],
    }


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Memory tiers under real cgroup limits",
        "",
        f"{meta['when']}, {meta['machine']}, {meta['cpus']} CPUs, cgroup v{meta['cgroup']}, "
        f"cold page cache. Peak = the cgroup's peak charge (anonymous + page cache; at the "
        "limit the kernel reclaims the cache instead of killing); working set = anonymous + "
        "mapped files, what cannot be reclaimed; headroom = limit - peak (limit - working set).",
        "",
        "| limit | tier | engine + model (memory mode) | recognizer | voice | question "
        "| answered | peak | working set | headroom | expected by the chooser |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["stack"] or {}
        answered = "yes" if r["answered"] else "KILLED" if r["oom_killed"] else "no"
        lines.append(
            f"| {r['limit_mib']} MiB | {r['tier']} | {s.get('backend')} + {s.get('llm')} "
            f"({s.get('memory_mode')}) | {s.get('recognizer')} | {s.get('voice')} "
            f"| {r['question'][:24]}… | {answered} "
            f"| {r['peak_mib']:.0f} MiB | {r['working_set_mib']:.0f} MiB "
            f"| {r['headroom_mib']:.0f} MiB ({r['working_set_headroom_mib']:.0f} MiB) "
            f"| {r['expected_mib']} of {r['budget_mib']} MiB |")
    return "\n".join(lines) + "\n"


def run_tiers_bench(limits_mib: Sequence[int]) -> int:
    """Measure every limit with every question; print and save; exit code 1 if any run
    was killed or failed."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hearth-tiers-") as tmp:
        workdir = Path(tmp)
        config = workdir / "config.toml"
        config.write_text(CONFIG)
        questions = []
        for i, text in enumerate(QUESTIONS):
            wav = workdir / f"question-{i}.wav"
            subprocess.run([*HEARTH, "--config", str(config), "say", text, "--out", str(wav)],
                           check=True, capture_output=True, cwd=REPO, timeout=300)
            questions.append((text, wav))
        for limit in limits_mib:
            for text, wav in questions:
                row = {"question": text, **measure(limit, config, wav, workdir)}
                rows.append(row)
                print(f"{limit:>5} MiB: {row['stack']} -> "
                      f"{'answered' if row['answered'] else 'FAILED'}, peak "
                      f"{row['peak_mib']:.0f} MiB, headroom {row['headroom_mib']:.0f} MiB "
                      f"| {row['transcript']!r} -> {row['reply'][:40]!r}", flush=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "cgroup": detect_version(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S"), "limits_mib": list(limits_mib)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tiers.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
    markdown = _markdown(rows, meta)
    (RESULTS / "tiers.md").write_text(markdown)
    print(markdown)
    return 0 if all(r["answered"] for r in rows) else 1


LONG_SENTENCE = ("The story of a parade dragon and the princess is a classic example of how "
                 "fantasy can be used to create immersive worlds that captivate audiences.")
RUNTIME_IMPORTS = "import app.cli.ask_cmd, app.file_mode, app.assistant.build, app.stack"


def run_components_bench() -> int:
    """Each part of a stack alone in a 4 GiB cgroup from a cold page cache: its peak
    working set less the bare runtime's, beside the figure the chooser counts (the
    catalog's ram_bytes, app/stack.py's constants). Writes tiers_components.{json,md}."""
    from app.models.catalog import load_catalog
    from app.stack import ESPEAK_BYTES, NUMPY_EXTRA_BYTES, RUNTIME_BYTES

    catalog = load_catalog()
    q4 = catalog.get("smollm2-135m-instruct-q4_1")
    question = "Tell me a long story about a brave dragon and a princess."
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hearth-parts-") as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG)
        wav = Path(tmp) / "question.wav"
        subprocess.run([*HEARTH, "--config", str(config), "say", question, "--out", str(wav)],
                       check=True, capture_output=True, cwd=REPO, timeout=300)
        out = str(Path(tmp) / "out.wav")
        ask = [*HEARTH, "--config", str(config), "ask", "--text", question,
               "--max-tokens", "64", "--model", q4.id]
        parts = [
            ("runtime (Python, numpy, Hearth)", [sys.executable, "-c", RUNTIME_IMPORTS],
             RUNTIME_BYTES),
            (f"llama.cpp + {q4.id}", [*ask, "--engine", "llama-cpp"], q4.ram_bytes),
            (f"numpy (mmap) + {q4.id}", [*ask, "--engine", "numpy", "--memory-mode", "mmap"],
             NUMPY_EXTRA_BYTES + q4.size_bytes),
            ("pocketsphinx-en-us", [*HEARTH, "transcribe", str(wav), "--stt", "pocketsphinx"],
             catalog.get("pocketsphinx-en-us").ram_bytes),
            ("whisper-tiny.en", [*HEARTH, "transcribe", str(wav), "--stt", "whisper"],
             catalog.get("whisper-tiny.en").ram_bytes),
            ("piper-en_US-joe-medium (25 words)",
             [*HEARTH, "say", LONG_SENTENCE, "--tts", "piper", "--out", out],
             catalog.get("piper-en_US-joe-medium").ram_bytes),
            ("espeak-ng (25 words)",
             [*HEARTH, "say", LONG_SENTENCE, "--tts", "espeak-ng", "--out", out], ESPEAK_BYTES),
        ]
        runtime = 0
        for name, argv, counted in parts:
            run = _in_cgroup(4 * 2**30, argv)
            if run.returncode != 0:
                print(f"{name}: failed: {run.stderr.strip()[-200:]}")
                continue
            own = run.peak_working_set_bytes - runtime
            runtime = runtime or run.peak_working_set_bytes
            rows.append({"part": name, "working_set_mib": _mib(run.peak_working_set_bytes),
                         "part_mib": _mib(own), "counted_mib": _mib(counted)})
            print(f"{name:40} {_mib(own):7.1f} MiB (counted {_mib(counted):.1f})", flush=True)
    lines = ["# Parts of a stack, each alone in a memory cgroup", "",
             "Cold page cache; working set = anonymous + mapped memory at its peak; a part's "
             "figure is its working set less the bare runtime's.", "",
             "| part | working set | the part | the chooser counts |", "|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['working_set_mib']:.0f} MiB | {r['part_mib']:.0f} MiB "
              f"| {r['counted_mib']:.0f} MiB |" for r in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tiers_components.json").write_text(json.dumps(rows, indent=2))
    (RESULTS / "tiers_components.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if len(rows) == len(parts) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="512,1024,2048",
                        help="memory cgroup limits in MiB, comma-separated")
    parser.add_argument("--components", action="store_true",
                        help="instead: each part of a stack alone, against the figure the "
                             "chooser counts for it")
    args = parser.parse_args(argv)
    if args.components:
        return run_components_bench()
    return run_tiers_bench([int(x) for x in args.limits.split(",") if x.strip()])


if __name__ == "__main__":
    raise SystemExit(main())
