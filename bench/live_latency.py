"""Hands-free, live: endpointing trade-off, end of speech -> first audio, and voice barge-in.

Run: `hearth bench live [--turns 10] [--replies 50]` or `python -m bench.live_latency`.

(a) Endpointing (files, no sound card). Spoken requests (Piper, with the pauses of their
    commas) and the LibriVox clips of pocketsphinx-testdata, each in quiet pink noise
    (30 dB below the speech), go through the endpointer for each engine (Silero, WebRTC)
    and `end_silence_ms`; then Silero with 400 ms and a shorter `quick_end_silence_ms`
    of quiet while the transcript so far sounds like a whole request (Whisper decodes
    what was said before each pause, as if decodes took no time: live, the decode in
    the pause arrives later, so this gives the most early ends, i.e. the most clipping).
    Clipped: the first end of speech came more than 150 ms before the true end (the
    utterance was cut at an inner pause). Delay: the end's detection after the true end.
    Picks the default: the shortest setting that clipped nothing.

(b) Live latency. `build_assistant` in hands-free mode (the bundled stack: Whisper
    tiny.en, SmolLM2 on llama.cpp, Piper) records from and plays into a private
    PulseAudio daemon; each question is played into the microphone sink with paplay, and
    both sinks' monitors are read as they fill. Total: the true end of the question (its
    first loud block at the microphone sink + where its audio ends after that) -> the
    first reply audio arriving at the speaker sink. Broken into endpointing (-> end of
    input), final transcript, first token, first audio (synthesized) and playback.
    Target: median <= 800 ms. The load average before and after is recorded: the machine
    may be shared.

(c) Barge-in by voice, with module-echo-cancel and an echo path: bench/barge_in.py.

Writes bench/results/live.json and bench/results/live.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.latency import percentile  # noqa: E402
from bench.wake import LIBRIVOX, RATE, pink_noise  # noqa: E402
from speech.audio import AudioChunk  # noqa: E402
from speech.resample import resample  # noqa: E402
from speech.sentences import sounds_complete  # noqa: E402
from speech.vad import Endpointer, VadEventKind  # noqa: E402
from speech.wav import read_wav, write_wav  # noqa: E402

REQUESTS = (
    "What is the capital of France?",
    "Set a timer for ten minutes, please.",
    "How many days are in a week?",
    "Tell me, what is the weather like today?",
    "Remind me, in one hour, to call my sister.",
    "What color is the sky?",
    "Who wrote Romeo and Juliet?",
    "Turn on the kitchen light, and then, turn off the radio.",
    "How far away is the moon?",
    "What time is it?",
)
END_SILENCES_MS = (200, 300, 400, 500, 600, 800)
CLIP_TOLERANCE_SECONDS = 0.15
TARGET_TOTAL_MS = 800.0
LOUD = 300
"""int16 amplitude that counts as sound (not silence) at the speaker sink."""


def _true_end(audio: AudioChunk) -> float:
    """Seconds to the end of the speech in `audio`: the last 10 ms step louder than 10 %
    of the loudest."""
    step = RATE // 100
    steps = audio.samples[:audio.frames // step * step].astype(np.float64).reshape(-1, step)
    loudness = np.sqrt(np.mean(steps ** 2, axis=1))
    loud = np.flatnonzero(loudness > 0.1 * loudness.max())
    return float((loud[-1] + 1) * step / RATE)


def _synthesize(texts: Sequence[str]) -> list[AudioChunk]:
    from app.config import Settings
    from app.speech_setup import build_synthesizer

    voice = build_synthesizer(Settings())
    spoken = [resample(AudioChunk.concatenate(list(voice.synthesize(t, threading.Event()))),
                       RATE) for t in texts]
    voice.close()
    return spoken


QUICK_END_SILENCES_MS = (200, 250, 300)
"""Adaptive rows: `end_silence_ms` 400, and this much while the transcript sounds whole."""


class _Transcriber:
    """What Whisper heard of an utterance's first `frames` samples, decoded at once (as
    if decodes took no time), cached: every row asks at the same silence onsets."""

    def __init__(self) -> None:
        from app.config import Settings
        from app.speech_setup import build_recognizer

        self.recognizer = build_recognizer(Settings(), "whisper")
        self._heard: dict[tuple[str, int], str] = {}

    def text(self, label: str, audio: AudioChunk, frames: int) -> str:
        key = (label, frames)
        if key not in self._heard:
            self.recognizer.reset()
            self.recognizer.accept(AudioChunk(audio.samples[:frames], RATE))
            self._heard[key] = self.recognizer.finish().text
        return self._heard[key]


def _first_end(label: str, audio: AudioChunk, endpointer: Endpointer,
               transcriber: _Transcriber | None) -> Any:
    """The first SPEECH_END of `audio` fed in 30 ms blocks; with a `transcriber`, the
    endpointer is told whether what was said before each pause sounds complete (one
    decode as the quiet begins, as the recognizer decodes once in a pause)."""
    complete = False
    for i in range(0, audio.frames, 480):
        if transcriber is not None:
            if endpointer.quiet_ms == 0:
                complete = False
            elif not complete and endpointer.quiet_ms <= 32:
                complete = sounds_complete(transcriber.text(label, audio, i))
            endpointer.complete = complete
        for event in endpointer.process(AudioChunk(audio.samples[i:i + 480], RATE)):
            if event.kind == VadEventKind.SPEECH_END:
                return event
    return None


def endpointing_tradeoff(utterances: list[tuple[str, AudioChunk]]) -> list[dict[str, Any]]:
    """(a): one row per engine, end_silence_ms and quick_end_silence_ms (0: fixed)."""
    rng = np.random.default_rng(3)
    padded = []
    for label, audio in utterances:
        speech = audio.samples.astype(np.float64)
        rms = float(np.sqrt(np.mean(speech ** 2)))
        body = np.concatenate([np.zeros(round(0.8 * RATE)), speech, np.zeros(round(1.5 * RATE))])
        noisy = body + pink_noise(len(body), rng) * rms / 10 ** (30 / 20)
        padded.append((label, AudioChunk(np.clip(np.round(noisy), -32768, 32767)
                                         .astype(np.int16), RATE), 0.8 + _true_end(audio)))
    settings = [(engine, end_ms, 0) for engine in ("silero", "webrtc")
                for end_ms in END_SILENCES_MS]
    settings += [("silero", 400, quick_ms) for quick_ms in QUICK_END_SILENCES_MS]
    transcriber: _Transcriber | None = None
    rows = []
    for engine, end_ms, quick_ms in settings:
        if quick_ms and transcriber is None:
            transcriber = _Transcriber()
        delays, questions, clipped, missed = [], [], 0, 0
        for label, audio, true_end in padded:
            endpointer = Endpointer(RATE, end_silence_ms=end_ms, engine=engine,
                                    quick_end_silence_ms=quick_ms)
            end = _first_end(label, audio, endpointer, transcriber if quick_ms else None)
            if end is None:
                missed += 1
            elif end.speech_seconds < true_end - CLIP_TOLERANCE_SECONDS:
                clipped += 1
                print(f"    clipped {label!r} at {end.speech_seconds:.2f} s of "
                      f"{true_end:.2f} s", flush=True)
            else:
                delays.append((end.stream_seconds - true_end) * 1000)
                if label.endswith("?"):
                    questions.append(delays[-1])
        rows.append({"engine": engine, "end_silence_ms": end_ms,
                     "quick_end_silence_ms": quick_ms,
                     "utterances": len(padded), "clipped": clipped, "missed": missed,
                     "delay_median_ms": round(statistics.median(delays), 1) if delays else None,
                     "delay_p90_ms": round(percentile(delays, 0.9), 1) if delays else None,
                     "questions_delay_median_ms":
                         round(statistics.median(questions), 1) if questions else None})
        print(f"  {engine:6} end_silence {end_ms:4} ms, quick {quick_ms:3} ms: clipped "
              f"{clipped}/{len(padded)}, missed {missed}, delay median "
              f"{rows[-1]['delay_median_ms']} ms", flush=True)
    if transcriber is not None:
        transcriber.recognizer.close()
    return rows


class SinkWatch:
    """Reads a sink's monitor as it fills; `first_sound_after(t)` is when the first loud
    block arrived after monotonic time `t`. Watching the microphone sink as well as the
    speaker's puts both ends of the measurement on the same clock, with the same delay."""

    def __init__(self, server: Any, sink: str) -> None:
        self._proc = subprocess.Popen(
            ["parec", f"--device={sink}.monitor", "--raw", "--format=s16le",
             f"--rate={RATE}", "--channels=1", "--latency-msec=10"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._loud: list[float] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        while block := stream.read1(640):  # type: ignore[attr-defined]
            samples = np.frombuffer(block[:len(block) // 2 * 2], dtype="<i2")
            if samples.size and int(np.abs(samples.astype(np.int32)).max()) > LOUD:
                self._loud.append(time.monotonic())

    def first_sound_after(self, t: float) -> float | None:
        return next((x for x in list(self._loud) if x > t), None)

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(5)
        self._thread.join(5)


def _wait_for(events: list[Any], since: int, test: Callable[[Any], bool],
              timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events[since:]:
            if test(event):
                return event
        time.sleep(0.01)
    raise TimeoutError(f"no such event within {timeout} s")


def _assistant(settings: Any) -> tuple[Any, list[Any]]:
    from app.assistant.build import build_assistant

    assistant, _ = build_assistant(settings, history=False)
    events: list[Any] = []
    assistant.subscribe(events.append)
    assistant.start()
    return assistant, events


def _settings(**sections: dict[str, Any]) -> Any:
    from app.config import settings_from_dict

    base: dict[str, dict[str, Any]] = {
        "engine": {"temperature": 0.0, "seed": 1, "max_tokens": 32},
        "audio": {"input_device": "pulse", "output_device": "pulse", "beeps": False},
        "history": {"enabled": False}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return settings_from_dict(base)


def live_turns(turns: int, questions: list[AudioChunk], folder: Path) -> list[dict[str, Any]]:
    """(b): hands-free turns through a private PulseAudio."""
    from app.events import FinalTranscript, State, StateChanged, TurnMetrics
    from tests.integration.pulse import PulseServer

    folder.mkdir(parents=True, exist_ok=True)
    server = PulseServer(folder)
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        server.activate()
        # timers the requests set are kept in a file of this run, not the user's
        assistant, events = _assistant(_settings(
            assistant={"trigger": "hands-free"},
            history={"enabled": True, "path": str(folder / "timers.sqlite3")}))
        speaker, mic = SinkWatch(server, server.speaker_sink), SinkWatch(server, server.mic_sink)
        wavs = [write_wav(folder / f"q{i}.wav", q) for i, q in enumerate(questions)]
        time.sleep(3.0)  # the engine's warm-up
        for turn in range(turns + 1):
            index = turn % len(questions)
            since = len(events)
            started = time.monotonic()
            server.play_wav_to_mic(wavs[index])
            onset = mic.first_sound_after(started)
            if onset is None:
                continue
            # the question reached the microphone at its first loud sample
            question = questions[index]
            first_loud = int(np.argmax(np.abs(question.samples.astype(np.int32)) > LOUD))
            speech_end = onset + _true_end(question) - first_loud / RATE
            metrics = _wait_for(events, since, lambda e: isinstance(e, TurnMetrics))
            final = next(e for e in events[since:] if isinstance(e, FinalTranscript))
            _wait_for(events, since, lambda e: isinstance(e, StateChanged)
                      and e.state == State.IDLE)
            heard = speaker.first_sound_after(speech_end)
            if turn == 0 or heard is None or not final.text:
                continue  # the first turn warms the pages and sessions up
            end_of_input = final.timestamp - metrics.stt_final_ms / 1000
            row = {"question": REQUESTS[index], "heard": final.text,
                   "endpointing_ms": round((end_of_input - speech_end) * 1000, 1),
                   "final_transcript_ms": metrics.stt_final_ms,
                   "first_token_ms": round(metrics.first_token_ms - metrics.stt_final_ms, 1),
                   "first_audio_ms": round(metrics.first_audio_ms - metrics.first_token_ms, 1),
                   "playback_ms": round((heard - end_of_input) * 1000 - metrics.first_audio_ms,
                                        1),
                   "total_ms": round((heard - speech_end) * 1000, 1)}
            row["clipped"] = row["endpointing_ms"] < -CLIP_TOLERANCE_SECONDS * 1000
            if row["clipped"]:  # the rest of the question starts a turn of its own
                time.sleep(1.0)
                _wait_for(events, len(events) - 1, lambda e: isinstance(e, StateChanged)
                          and e.state == State.IDLE)
            rows.append(row)
            print(f"  turn {turn:2}: total {row['total_ms']:6.0f} ms = endpointing "
                  f"{row['endpointing_ms']:.0f} + transcript {row['final_transcript_ms']:.0f}"
                  f" + first token {row['first_token_ms']:.0f} + first audio "
                  f"{row['first_audio_ms']:.0f} + playback {row['playback_ms']:.0f}"
                  f"  ({final.text!r})", flush=True)
        speaker.close()
        mic.close()
        assistant.shutdown()
        assistant.close()
    finally:
        server.stop()
    return rows


def _markdown(result: dict[str, Any]) -> str:
    lines = ["# Hands-free: endpointing, live latency, voice barge-in", "",
             f"{result['meta']['machine']} ({result['meta']['cpus']} CPUs), "
             f"{result['meta']['when']}, load average {result['meta']['load']}", "",
             "## Endpointing trade-off (requests in quiet noise + LibriVox)", "",
             "| engine | end_silence_ms | quick_end_silence_ms | clipped | delay median ms "
             "| delay p90 ms | questions: delay median ms |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["endpointing"]:
        lines.append(f"| {r['engine']} | {r['end_silence_ms']} | "
                     f"{r.get('quick_end_silence_ms') or '-'} | {r['clipped']}/"
                     f"{r['utterances']} | {r['delay_median_ms']} | {r['delay_p90_ms']} | "
                     f"{r.get('questions_delay_median_ms')} |")
    lines.append("\nquick_end_silence_ms: the silence that ends a transcript that sounds like "
                 "a whole question (Whisper's, decoded at each silence at once); questions: "
                 "the requests that end with a question mark.")
    live = result.get("live")
    if live:
        lines += ["", f"## End of speech -> first audio at the speaker ({len(live['turns'])} "
                      "hands-free turns through PulseAudio, load average "
                      f"{live.get('load_before', '?')} before, {live.get('load_after', '?')} "
                      "after)", "",
                  "| part | median ms | p90 ms |", "| --- | --- | --- |"]
        for key, figures in live["summary"].items():
            lines.append(f"| {key} | {figures['median']} | {figures['p90']} |")
        lines.append(f"\nTarget: total median <= {TARGET_TOTAL_MS:.0f} ms. Turns ended at an "
                     f"inner pause (not counted): {live.get('clipped', 0)}.")
    barge = result.get("barge_in")
    if barge:
        from bench.barge_in import markdown

        lines += ["", *markdown(barge)]
    else:
        lines += ["", "Voice barge-in: not measured in this run (bench/results/barge_in.md, "
                      "`python -m bench.barge_in`)."]
    return "\n".join(lines) + "\n"


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def run_live_bench(turns: int = 10, replies: int = 50, trials: int = 5) -> int:
    result: dict[str, Any] = {"meta": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                       "when": time.strftime("%Y-%m-%d %H:%M"),
                                       "load": _load()}}
    spoken = _synthesize(REQUESTS)
    librivox = [(p.stem, resample(read_wav(p), RATE)) for p in sorted(LIBRIVOX.glob("*.wav"))]
    print("endpointing trade-off ...", flush=True)
    result["endpointing"] = endpointing_tradeoff(list(zip(REQUESTS, spoken, strict=True))
                                                 + librivox)
    with tempfile.TemporaryDirectory(prefix="hearth-live-") as tmp:
        if turns:
            print("live turns ...", flush=True)
            before = _load()
            rows = live_turns(turns, spoken, Path(tmp) / "live")
            keys = ("endpointing_ms", "final_transcript_ms", "first_token_ms",
                    "first_audio_ms", "playback_ms", "total_ms")
            whole = [r for r in rows if not r["clipped"]]  # a clipped turn is no latency
            summary = {k: {"median": round(statistics.median(r[k] for r in whole), 1),
                           "p90": round(percentile([r[k] for r in whole], 0.9), 1)}
                       for k in keys}
            result["live"] = {"load_before": before, "load_after": _load(), "turns": rows,
                              "clipped": len(rows) - len(whole), "summary": summary}
        if trials or replies:
            from bench.barge_in import measure

            print("barge-in ...", flush=True)
            result["barge_in"] = measure(trials, replies, Path(tmp) / "barge")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "live.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = _markdown(result)
    (RESULTS / "live.md").write_text(markdown)
    print(markdown)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="live hands-free turns")
    parser.add_argument("--replies", type=int, default=50,
                        help="spoken replies with nobody talking (self-interruption check)")
    parser.add_argument("--trials", type=int, default=5, help="barge-ins of each kind")
    args = parser.parse_args(argv)
    return run_live_bench(args.turns, args.replies, args.trials)


if __name__ == "__main__":
    sys.exit(main())
