"""Latency of whole voice turns with the bundled stack: the recognizer the stack chooser
picks for this machine (`app.stack`: Whisper tiny.en where the tier allows, with the
skills' second pass), SmolLM2-135M on llama.cpp and Piper, in file mode (the same
`Assistant` as live mode, no sound card).

Run: `hearth bench latency [--turns 10]` or `python -m bench.latency --turns 10`.
Each spoken question is synthesized by Piper first (not timed); then each turn feeds
it to the recognizer as fast as it goes, and the timings come from the turn's event
log, all measured from the end of the question audio (fed at once, a streaming
recognizer gets no head start from decoding while the person speaks: Whisper's final
is a whole decode here, where live it is mostly ready at the end of speech):

- stt_final_ms: the final transcript is known
- first_token_ms: the first reply token arrived
- first_audio_ms: the first synthesized audio of the reply is ready (target <= 500 ms)
- total_ms: the whole reply is generated and synthesized

One untimed warm-up turn comes first (model pages, ONNX sessions). Prints median and p90
of each, and writes bench/results/latency.json and bench/results/latency.md.

Barge-in: when `pulseaudio` is installed, a private daemon with null sinks stands in for
the sound card (as in the integration tests) and push-to-talk is pressed during long
spoken replies; the figure is press -> audio stopped (the interrupted turn's
SpeechFinished, emitted once the speaker has aborted its stream), from event timestamps.
Target: 150 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
QUESTIONS = (
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky?",
    "Tell me a fun fact about cats.",
    "What is two plus two?",
    "Who wrote Romeo and Juliet?",
    "What is the boiling point of water?",
    "Name a fruit that is yellow.",
    "How many legs does a spider have?",
    "What is the largest ocean?",
)
TIMINGS = ("stt_final_ms", "first_token_ms", "first_audio_ms", "total_ms",
           "tokens_per_second")
TARGET_FIRST_AUDIO_MS = 500.0
TARGET_BARGE_IN_MS = 150.0
BARGE_IN_TRIALS = 5
MAX_TOKENS = 64
"""Replies are capped so a rambling answer cannot dominate total_ms."""


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (fraction 0..1) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        key: {"median": round(statistics.median(r[key] for r in results), 1),
              "p90": round(percentile([r[key] for r in results], 0.9), 1),
              "min": round(min(r[key] for r in results), 1),
              "max": round(max(r[key] for r in results), 1)}
        for key in TIMINGS
    }


def _markdown(summary: dict[str, dict[str, float]], meta: dict[str, Any],
              results: list[dict[str, Any]]) -> str:
    lines = [
        "# Voice turn latency (file mode, bundled stack)",
        "",
        f"{meta['turns']} turns on {meta['machine']} ({meta['cpus']} CPUs), "
        f"{meta['stack']}; all times from the end of the question audio. Load average "
        f"during the run: {', '.join(f'{x:.1f}' for x in meta['load_average'])} (a shared "
        "machine makes every figure slower).",
        "",
        "| timing | median | p90 | min | max |",
        "|---|---|---|---|---|",
    ]
    for key, figures in summary.items():
        lines.append(f"| {key} | {figures['median']} | {figures['p90']} | {figures['min']} | "
                     f"{figures['max']} |")
    median_audio = summary["first_audio_ms"]["median"]
    lines += ["", f"first_audio_ms median / {TARGET_FIRST_AUDIO_MS:.0f} ms target: "
                  f"{median_audio / TARGET_FIRST_AUDIO_MS:.2f}x"]
    if "barge_in_ms" in summary:
        lines += [f"barge_in_ms (press -> audio stopped, {BARGE_IN_TRIALS} trials) median / "
                  f"{TARGET_BARGE_IN_MS:.0f} ms target: "
                  f"{summary['barge_in_ms']['median'] / TARGET_BARGE_IN_MS:.2f}x"]
    lines += ["",
              "| question | heard | reply | first audio ms |", "|---|---|---|---|"]
    for r in results:
        reply = " ".join(r["reply"][:60].split()).replace("|", "/")
        lines.append(f"| {r['question']} | {r['transcript']} | {reply} | "
                     f"{r['first_audio_ms']} |")
    return "\n".join(lines) + "\n"


def measure_barge_in(engine: Any, recognizer: Any, synthesizer: Any, settings: Any,
                     trials: int) -> list[float]:
    """Press -> audio stopped, in ms, for `trials` barge-ins during spoken replies."""
    import shutil
    import sys

    if shutil.which("pulseaudio") is None:
        return []
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from app.assistant.pipeline import Assistant
    from app.events import Event, SpeechFinished, SpeechStarted, TurnStarted
    from speech.devices import Microphone, Speaker
    from tests.integration.pulse import PulseServer

    figures: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hearth-pulse-") as tmp:
        server = PulseServer(Path(tmp))
        server.start()
        try:
            server.activate()
            events: list[Event] = []
            assistant = Assistant(settings, engine=engine, recognizer=recognizer,
                                  synthesizer=synthesizer,
                                  microphone=Microphone(server.device),
                                  speaker=Speaker(server.device), warm_up=False)
            assistant.subscribe(events.append)
            assistant.start()
            for trial in range(trials):
                assistant.submit_text(f"Tell me a long story about dragon number {trial + 1}.")
                started = sum(isinstance(e, SpeechStarted) for e in events)
                deadline = time.monotonic() + 60
                while sum(isinstance(e, SpeechStarted) for e in events) == started:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the reply never started speaking")
                    time.sleep(0.01)
                time.sleep(0.5)
                assistant.push_to_talk_pressed()
                time.sleep(0.5)
                press = [e for e in events if isinstance(e, TurnStarted)][-1]
                stops = [e for e in events if isinstance(e, SpeechFinished)
                         and e.turn_id == press.turn_id - 1 and e.interrupted]
                if stops:
                    figures.append(round((stops[0].timestamp - press.timestamp) * 1000, 1))
                assistant.cancel()
            assistant.shutdown()
            assistant.speaker.close()
            assistant.microphone.close()
        finally:
            server.stop()
    return figures


def run_latency_bench(turns: int = 10) -> int:
    """Run `turns` timed turns (plus one warm-up), print and save the summary; exit code."""
    from app.assistant.build import leave_a_core_for_the_voice
    from app.config import Settings, replace
    from app.engine_setup import build_engine
    from app.file_mode import run_file_turn
    from app.speech_setup import build_recognizer, build_synthesizer
    from speech.audio import AudioChunk
    from speech.wav import write_wav

    settings = leave_a_core_for_the_voice(
        replace(Settings(), "engine", temperature=0.0, seed=1, max_tokens=MAX_TOKENS))
    engine, choice = build_engine(settings, "llama-cpp", "smollm2-135m-instruct-q4_1")
    recognizer = build_recognizer(settings)
    synthesizer = build_synthesizer(settings, "piper")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hearth-latency-") as tmp:
        wavs = []
        for i, question in enumerate(QUESTIONS):
            speech = AudioChunk.concatenate(list(synthesizer.synthesize(question)))
            wavs.append(write_wav(Path(tmp) / f"q{i}.wav", speech))
        for turn in range(turns + 1):
            index = turn % len(QUESTIONS)
            result = run_file_turn(settings, engine=engine, recognizer=recognizer,
                                   synthesizer=synthesizer, wav=wavs[index],
                                   model_id=choice.model_id)
            if turn == 0:
                continue  # warm-up
            result["question"] = QUESTIONS[index]
            results.append(result)
            print(f"turn {turn:>2}: first audio {result['first_audio_ms']:7.1f} ms, "
                  f"first token {result['first_token_ms']:7.1f} ms, total "
                  f"{result['total_ms']:7.1f} ms  | {result['transcript']!r} -> "
                  f"{result['reply'][:50]!r}", flush=True)
    barge_in = measure_barge_in(engine, recognizer, synthesizer,
                                replace(settings, "engine", max_tokens=256), BARGE_IN_TRIALS)
    engine.close()
    summary = summarize(results)
    if barge_in:
        summary["barge_in_ms"] = {"median": round(statistics.median(barge_in), 1),
                                  "p90": round(percentile(barge_in, 0.9), 1),
                                  "min": min(barge_in), "max": max(barge_in)}
    meta = {"turns": turns, "machine": platform.machine(), "cpus": os.cpu_count(),
            "stack": f"{recognizer.name} + {choice.model_id} on llama.cpp "
                     f"({settings.engine.threads} thread(s)) + {synthesizer.name}",
            "load_average": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "turns": results, "barge_in_ms": barge_in},
        indent=2))
    markdown = _markdown(summary, meta, results)
    (RESULTS / "latency.md").write_text(markdown)
    print(markdown)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    return run_latency_bench(parser.parse_args(argv).turns)


if __name__ == "__main__":
    raise SystemExit(main())
