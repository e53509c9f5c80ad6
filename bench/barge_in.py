"""Barge-in by voice through a private PulseAudio with module-echo-cancel.

Run: `python -m bench.barge_in [--trials 5] [--replies 50]` (or as part of
`hearth bench live`).

module-echo-cancel (aec_method=webrtc) runs over the private daemon's sinks and a
loopback carries the speaker back into the microphone (an echo path). During a spoken
reply a question (or "Okay Nabu") is played into the microphone; the figure is the start
of that speech -> the reply's SpeechFinished (the speaker stream aborted). Target: 300 ms.
Then `--replies` spoken replies with nobody talking: Hearth must never interrupt itself.

Standalone it writes bench/results/barge_in.json and bench/results/barge_in.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.latency import percentile  # noqa: E402
from bench.live_latency import LOUD, _assistant, _settings, _synthesize, _wait_for  # noqa: E402
from bench.wake import RATE  # noqa: E402
from speech.audio import AudioChunk  # noqa: E402
from speech.wav import write_wav  # noqa: E402

TARGET_BARGE_IN_MS = 300.0
STORY = "Tell me a long story about a dragon who lives in a castle by the sea."
SAID = {"question": "What is the capital of France?", "okay nabu": "Okay Nabu."}


def barge_in(trials: int, replies: int, said: dict[str, AudioChunk],
             folder: Path) -> dict[str, Any]:
    """Voice barge-in latency and self-interruptions, with an echo canceller."""
    from app.events import ReplyFinished, SpeechFinished, SpeechStarted, TurnStarted
    from tests.integration.pulse import PulseServer
    from tests.integration.test_barge_in_voice import load_echo_canceller

    folder.mkdir(parents=True, exist_ok=True)
    server = PulseServer(folder)
    server.start()
    figures: dict[str, list[float]] = {name: [] for name in said}
    interrupted_itself = 0
    try:
        load_echo_canceller(server)
        server.activate()
        assistant, events = _assistant(_settings(engine={"max_tokens": 40},
                                                 wake={"enabled": True}))
        if not assistant.microphone.echo_cancelled:
            raise RuntimeError("the echo canceller was not found")
        wavs = {name: write_wav(folder / f"{i}.wav", audio)
                for i, (name, audio) in enumerate(said.items())}
        onsets = {name: float(np.argmax(np.abs(audio.samples.astype(np.int32)) > LOUD) / RATE)
                  for name, audio in said.items()}
        time.sleep(3.0)
        for trial in range(trials):
            for name, wav in wavs.items():
                since = len(events)
                assistant.submit_text(STORY)
                speaking = _wait_for(events, since, lambda e: isinstance(e, SpeechStarted))
                time.sleep(3.0 + 0.37 * trial % 1.0)  # after ECHO_SETTLE_SECONDS
                started = time.monotonic()
                player = server.play_wav_to_mic(wav, wait=False)
                stop = _wait_for(events, since, lambda e, t=speaking.turn_id: isinstance(
                    e, SpeechFinished) and e.turn_id == t, timeout=30)
                player.wait(30)
                if stop.interrupted:
                    figures[name].append(round((stop.timestamp - started - onsets[name])
                                               * 1000, 1))
                assistant.cancel()
                time.sleep(0.5)
        for _ in range(replies):
            since = len(events)
            assistant.submit_text(STORY)
            done = _wait_for(events, since, lambda e: isinstance(e, SpeechFinished), 120)
            _wait_for(events, since, lambda e: isinstance(e, ReplyFinished), 120)
            barged = [e for e in events[since:] if isinstance(e, TurnStarted)
                      and e.trigger in ("vad", "wake-word")]
            interrupted_itself += int(done.interrupted or bool(barged))
            time.sleep(0.3)
        assistant.shutdown()
        assistant.close()
    finally:
        server.stop()
    result: dict[str, Any] = {"replies": replies, "interrupted_itself": interrupted_itself}
    for name, values in figures.items():
        result[name] = {"trials": trials, "stopped": len(values),
                        "median_ms": round(statistics.median(values), 1) if values else None,
                        "p90_ms": round(percentile(values, 0.9), 1) if values else None,
                        "max_ms": max(values) if values else None}
    return result


def measure(trials: int, replies: int, folder: Path) -> dict[str, Any]:
    """Synthesize what is said over the replies, then `barge_in`."""
    said = dict(zip(SAID, _synthesize(tuple(SAID.values())), strict=True))
    return barge_in(trials, replies, said, folder)


def markdown(barge: dict[str, Any]) -> list[str]:
    """The barge-in section of a results table."""
    lines = ["## Voice barge-in (module-echo-cancel, echo path into the microphone)", "",
             "| said over the reply | stopped | median ms | p90 ms | max ms |",
             "| --- | --- | --- | --- | --- |"]
    for name, r in barge.items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {r['stopped']}/{r['trials']} | {r['median_ms']} | "
                         f"{r['p90_ms']} | {r['max_ms']} |")
    lines.append(f"\nFrom the start of the speech to the reply's audio stopped (target "
                 f"{TARGET_BARGE_IN_MS:.0f} ms). Self-interruptions over {barge['replies']}"
                 f" spoken replies with nobody talking: {barge['interrupted_itself']}.")
    return lines


def run_barge_in_bench(trials: int = 5, replies: int = 50) -> int:
    result: dict[str, Any] = {"meta": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                       "when": time.strftime("%Y-%m-%d %H:%M"),
                                       "load": ", ".join(f"{x:.1f}" for x in os.getloadavg())}}
    with tempfile.TemporaryDirectory(prefix="hearth-barge-") as tmp:
        result["barge_in"] = measure(trials, replies, Path(tmp))
    result["meta"]["load_after"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    meta = result["meta"]
    text = "\n".join(["# Voice barge-in", "", f"{meta['machine']} ({meta['cpus']} CPUs), "
                      f"{meta['when']}, load average {meta['load']} (after: "
                      f"{meta['load_after']})", "", *markdown(result["barge_in"])]) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "barge_in.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "barge_in.md").write_text(text)
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=50,
                        help="spoken replies with nobody talking (self-interruption check)")
    parser.add_argument("--trials", type=int, default=5, help="barge-ins of each kind")
    args = parser.parse_args(argv)
    return run_barge_in_bench(args.trials, args.replies)


if __name__ == "__main__":
    sys.exit(main())
