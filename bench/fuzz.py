"""Long hostile-file run: the CI fuzz tests (`tests/unit/test_reliability_fuzz_*.py`) with
`--scale` times as many hypothesis cases each (default 7: about 20,000 cases).

Run: `python -m bench.fuzz [--scale 7]`. Prints pytest's summary and writes
bench/results/fuzz.json and bench/results/fuzz.md: per test, the cases run, the share
that loaded and the share rejected with the project's typed error, and the wall time.
A failure (any other exception, a hang, an outsized allocation) is reported with
hypothesis' smallest failing input in bench/results/fuzz.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TESTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "unit").glob(
    "test_reliability_fuzz_*.py"))

_TEST_HEADER = re.compile(r"^(tests/\S+::\S+):$")
_SHARE = re.compile(r"^\s+\* ([\d.]+)%, (loaded|rejected)$")
_RUNTIME = re.compile(r"Typical runtimes: ~ ([^,]+),")
_PASSING = re.compile(r"- during generate phase \(([\d.]+) seconds\):\s*$")
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing")


def parse_statistics(output: str) -> dict[str, dict[str, Any]]:
    """Per test: cases, loaded/rejected shares and typical runtime, from
    `pytest --hypothesis-show-statistics` output."""
    tests: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    phase = ""
    for line in output.splitlines():
        header = _TEST_HEADER.match(line)
        if header:
            current = tests.setdefault(header.group(1), {"cases": 0})
            continue
        if current is None:
            continue
        generate = _PASSING.search(line)
        if generate:
            phase = "generate"
            current["generate_seconds"] = float(generate.group(1))
            continue
        if "phase (" in line:
            phase = "other"
        counts = _COUNTS.search(line)
        if counts and phase == "generate":
            current["cases"] = int(counts.group(1)) + int(counts.group(2))
            current["failing"] = int(counts.group(2))
        runtime = _RUNTIME.search(line)
        if runtime and phase == "generate":
            current["typical_runtime"] = runtime.group(1)
        share = _SHARE.match(line)
        if share:
            current[f"{share.group(2)}_percent"] = float(share.group(1))
    return tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=7, help="times the CI example counts")
    args = parser.parse_args()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--hypothesis-show-statistics", "-W", "ignore::RuntimeWarning", *TESTS],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "HEARTH_FUZZ_SCALE": str(args.scale)},
    )
    elapsed = time.monotonic() - started
    tests = parse_statistics(proc.stdout)
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    result = {
        "scale": args.scale,
        "seconds": round(elapsed, 1),
        "total_cases": sum(t.get("cases", 0) for t in tests.values()),
        "pytest_exit_code": proc.returncode,
        "summary": summary,
        "tests": tests,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    (RESULTS / "fuzz.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = [
        "# Hostile-file fuzzing",
        "",
        f"{result['total_cases']} cases (scale {args.scale}) in {result['seconds']} s: "
        f"{summary}",
        "",
        "| test | cases | loaded % | rejected (typed error) % | typical runtime |",
        "|---|---:|---:|---:|---|",
        *[f"| {name.split('::')[-1]} | {t.get('cases', 0)} | {t.get('loaded_percent', 0)} | "
          f"{t.get('rejected_percent', 0)} | {t.get('typical_runtime', '')} |"
          for name, t in tests.items()],
        "",
    ]
    (RESULTS / "fuzz.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
