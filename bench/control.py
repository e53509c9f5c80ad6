"""How long a control action holds the calling (GUI) thread while the history disk is slow.

Run: `python -m bench.control [--write-ms 300] [--runs 5]`. An assistant made of the
test fakes (tests/fakes.py: a streaming engine, a voice, a real-time speaker) speaks a
long reply; its history is a stand-in whose every write takes `--write-ms` (an fsync on
an SD card). During the reply, push-to-talk is pressed (a barge-in: the interrupted turn
is saved) and, in a second turn, Stop; each call is timed on the calling thread.
Prints the medians and writes bench/results/control.json and bench/results/control.md.
Target: well under one frame (16 ms), whatever the disk does (issue 13 measured 302 ms
for push-to-talk when history was written under the pipeline's lock).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.assistant.pipeline import Assistant
from app.events import SpeechStarted
from tests.fakes import EventLog, FakeEngine, FakeSpeaker, Stages, build_assistant

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS = 16.0
LONG_REPLY = " ".join(f"Sentence {i} of a long answer." for i in range(40))


class SlowHistory:
    """A history whose every write takes `seconds`."""

    path = "/slow/history.sqlite3"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.rows = 0

    def start_turn(self, **_: str) -> int:
        time.sleep(self.seconds)
        self.rows += 1
        return self.rows

    def finish_turn(self, turn_id: int, record: object) -> None:
        time.sleep(self.seconds)


def _time_during_reply(action: Callable[[Assistant], None], write_seconds: float) -> float:
    """Milliseconds `action(assistant)` took on this thread, called mid-reply."""
    assistant = build_assistant(Stages(
        engine=FakeEngine([LONG_REPLY], token_seconds=0.002), speaker=FakeSpeaker(speed=1.0),
        history=SlowHistory(write_seconds)))  # type: ignore[arg-type]
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    try:
        assistant.submit_text("Tell me a long story.")
        log.wait_count(SpeechStarted, timeout=30)
        time.sleep(0.2)
        started = time.perf_counter()
        action(assistant)
        return (time.perf_counter() - started) * 1000.0
    finally:
        assistant.cancel()
        assistant.shutdown(timeout=5)


def run(write_ms: float, runs: int) -> dict[str, Any]:
    actions: dict[str, Callable[[Assistant], None]] = {
        "push_to_talk_pressed": Assistant.push_to_talk_pressed,
        "cancel": Assistant.cancel,
    }
    times = {name: [_time_during_reply(action, write_ms / 1000.0) for _ in range(runs)]
             for name, action in actions.items()}
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"history_write_ms": write_ms, "runs": runs, "median_ms": medians,
            "all_runs_ms": times, "target_ms": TARGET_MS,
            "target_met": all(value < TARGET_MS for value in medians.values())}


def _markdown(result: dict[str, Any]) -> str:
    lines = ["# Control actions with a slow history disk", "",
             f"Every history write takes {result['history_write_ms']:.0f} ms; median of "
             f"{result['runs']} runs, each during a spoken reply.", "",
             "| action | calling thread blocked |", "|---|---|"]
    lines += [f"| {name}() | {ms:.1f} ms |" for name, ms in result["median_ms"].items()]
    lines += ["", f"Target (< {TARGET_MS:.0f} ms) met: "
              f"{'yes' if result['target_met'] else 'NO'}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-ms", type=float, default=300.0,
                        help="how long each history write takes")
    parser.add_argument("--runs", type=int, default=5, help="runs per action")
    args = parser.parse_args(argv)
    result = run(args.write_ms, args.runs)
    table = _markdown(result)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "control.json").write_text(json.dumps(result, indent=2) + "\n",
                                          encoding="utf-8")
    (RESULTS / "control.md").write_text(table, encoding="utf-8")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
