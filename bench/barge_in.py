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
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
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


class Tap:
    """Records one PulseAudio source (parec) and maps sample positions to monotonic time:
    a sample's time is the earliest its block could have arrived (over the blocks of the
    5 s around it: a canceller's source runs at a slightly different clock), so
    transport delays only ever shorten the figures' ends by parec's ~10 ms, the same on
    every tap."""

    def __init__(self, server: Any, source: str) -> None:
        self._proc = subprocess.Popen(
            ["parec", f"--device={source}", "--raw", "--format=s16le", f"--rate={RATE}",
             "--channels=1", "--latency-msec=10"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._arrivals: list[tuple[float, int]] = []
        """(monotonic arrival, frames so far) of each block."""
        self.t0 = float("inf")
        """Monotonic time of sample 0 (over the whole recording)."""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        rest = b""
        while block := stream.read1(4096):  # type: ignore[attr-defined]
            now = time.monotonic()
            block = rest + block
            usable = len(block) // 2 * 2
            rest = block[usable:]
            samples = np.frombuffer(block[:usable], dtype="<i2").copy()
            self._blocks.append(samples)
            self._frames += len(samples)
            self._arrivals.append((now, self._frames))
            self.t0 = min(self.t0, now - self._frames / RATE)

    def window(self, start: float, end: float) -> tuple[np.ndarray, float]:
        """The samples from monotonic `start` to `end`, and the time of the first."""
        audio = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.int16)
        t0 = min((t - n / RATE for t, n in self._arrivals if start - 5 <= t <= end + 1),
                 default=self.t0)
        first = max(0, int((start - t0) * RATE))
        last = max(first, int((end - t0) * RATE))
        return audio[first:last], t0 + first / RATE

    def everything(self) -> np.ndarray:
        return np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.int16)

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(5)
        self._thread.join(5)


def _onset(tap: Tap, template: np.ndarray, start: float, end: float) -> float | None:
    """When `template` begins in what `tap` recorded between `start` and `end`
    (normalized cross-correlation; None when it is not clearly there)."""
    audio, first = tap.window(start, end)
    if len(audio) < len(template):
        return None
    a = audio.astype(np.float64)
    t = template.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(t))))
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(t, size)), size)
    corr = corr[:len(a) - len(t) + 1]
    energy = np.sqrt(np.convolve(a ** 2, np.ones(len(t)), "valid")) * np.linalg.norm(t)
    score = corr / np.maximum(energy, 1e-9)
    best = int(np.argmax(score))
    return first + best / RATE if score[best] > 0.3 else None


def _last_loud(tap: Tap, start: float, end: float) -> float | None:
    """The end of the last 10 ms step louder than LOUD between `start` and `end`."""
    audio, first = tap.window(start, end)
    step = RATE // 100
    steps = np.abs(audio[:len(audio) // step * step].astype(np.int32)).reshape(-1, step)
    loud = np.flatnonzero(steps.max(axis=1) > LOUD) if len(steps) else np.zeros(0)
    return first + (int(loud[-1]) + 1) * step / RATE if len(loud) else None


class _Backlog:
    """Samples how much microphone audio waits for the listen thread (a thread that
    falls behind real time hears everything late)."""

    def __init__(self, assistant: Any) -> None:
        self._queue = assistant._listen.q
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append((time.monotonic(), self._queue.qsize()))

    def most(self, start: float, end: float) -> int:
        """The most chunks waiting between `start` and `end`."""
        return max((n for t, n in self.samples if start <= t <= end), default=0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)


class _BargeInLog(logging.Handler):
    """Collects BargeInBySpeech's log: each barge-in, and each pause that was not one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((time.monotonic(), record))


def _speech_bounds(audio: AudioChunk) -> tuple[float, float]:
    """Seconds to the first and past the last 10 ms step louder than 10 % of the loudest."""
    step = RATE // 100
    steps = audio.samples[:audio.frames // step * step].astype(np.float64).reshape(-1, step)
    loudness = np.sqrt(np.mean(steps ** 2, axis=1))
    loud = np.flatnonzero(loudness > 0.1 * loudness.max())
    return float(loud[0] * step / RATE), float((loud[-1] + 1) * step / RATE)


def barge_in(trials: int, replies: int, said: dict[str, AudioChunk], folder: Path,
             save: Path | None = None, mode: str = "speech",
             speak_at: Sequence[float] = ()) -> dict[str, Any]:
    """Voice barge-in latency (with its parts) and self-interruptions, with an echo
    canceller. Times are taken at the sound server: the speech's start (or, for the
    wake word, its end) found by cross-correlation in the microphone sink's monitor, and
    the reply's last loud 10 ms at the speaker sink's monitor. `speak_at`: seconds into
    the reply at which the trials speak, in turn (default: just after the echo settles)."""
    from app.assistant.barge_in import ECHO_SETTLE_SECONDS
    from app.events import ReplyFinished, SpeechFinished, SpeechStarted, TurnStarted
    from tests.integration.pulse import PulseServer
    from tests.integration.test_barge_in_voice import EC_SOURCE, load_echo_canceller

    folder.mkdir(parents=True, exist_ok=True)
    server = PulseServer(folder)
    server.start()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in said}
    self_interruptions: list[dict[str, Any]] = []
    barge_log = _BargeInLog()
    logging.getLogger("app.assistant.barge_in").addHandler(barge_log)
    logging.getLogger("app.assistant.barge_in").setLevel(logging.DEBUG)
    taps: dict[str, Tap] = {}
    try:
        load_echo_canceller(server)
        server.activate()
        taps = {"mic": Tap(server, f"{server.mic_sink}.monitor"),
                "cancelled": Tap(server, EC_SOURCE),
                "speaker": Tap(server, f"{server.speaker_sink}.monitor")}
        # (no skills: timers left ringing in the data folder would talk over the replies)
        assistant, events = _assistant(_settings(engine={"max_tokens": 40},
                                                 wake={"enabled": True},
                                                 audio={"barge_in": mode},
                                                 skills={"enabled": False}))
        if not assistant.microphone.echo_cancelled:
            raise RuntimeError("the echo canceller was not found")
        backlog = _Backlog(assistant)
        wavs = {name: write_wav(folder / f"{i}.wav", audio)
                for i, (name, audio) in enumerate(said.items())}
        bounds = {name: _speech_bounds(audio) for name, audio in said.items()}
        time.sleep(3.0)
        for trial in range(trials):
            for name, wav in wavs.items():
                since = len(events)
                assistant.submit_text(STORY)
                speaking = _wait_for(events, since, lambda e: isinstance(e, SpeechStarted))
                time.sleep(speak_at[trial % len(speak_at)] if speak_at
                           else ECHO_SETTLE_SECONDS + 0.5 + 0.37 * trial % 1.0)
                played = time.monotonic()
                player = server.play_wav_to_mic(wav, wait=False)
                stop = _wait_for(events, since, lambda e, t=speaking.turn_id: isinstance(
                    e, SpeechFinished) and e.turn_id == t, timeout=30)
                player.wait(30)
                time.sleep(0.6)
                row = _trial(taps, said[name], bounds[name], played, stop, events[since:])
                row["listen_backlog_chunks"] = backlog.most(played, stop.timestamp)
                rows[name].append(row)
                print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
                if not stop.interrupted:  # missed: what was said may start a turn of its own
                    time.sleep(3.0)
                assistant.cancel()
                time.sleep(0.5)
        replies_from = time.monotonic()
        for reply in range(replies):
            since = len(events)
            assistant.submit_text(STORY)
            done = _wait_for(events, since, lambda e: isinstance(e, SpeechFinished), 120)
            _wait_for(events, since, lambda e: isinstance(e, ReplyFinished), 120)
            barged = [e for e in events[since:] if isinstance(e, TurnStarted)
                      and e.trigger in ("vad", "wake-word")]
            if done.interrupted or barged:
                into = (barged[0].timestamp if barged else done.timestamp) - next(
                    e.timestamp for e in events[since:] if isinstance(e, SpeechStarted))
                self_interruptions.append({"reply": reply, "seconds_into_reply": round(into, 2),
                                           "trigger": barged[0].trigger if barged else None})
                print(f"  reply {reply}: interrupted itself {into:.1f} s in", flush=True)
            time.sleep(0.3)
        pauses = sum("plays on" in r.msg for t, r in barge_log.records if t >= replies_from)
        most_backlog = backlog.most(replies_from, time.monotonic())
        backlog.close()
        if save is not None:
            save.with_suffix(".log").write_text("".join(
                f"{t:.3f} {r.getMessage()}\n" for t, r in barge_log.records)
                + "".join(f"{e.timestamp:.3f} {type(e).__name__} {e.turn_id} "
                          f"{getattr(e, 'interrupted', '')}\n" for e in events
                          if type(e).__name__ in ("SpeechStarted", "SpeechFinished",
                                                  "TurnStarted")))
        assistant.shutdown()
        assistant.close()
    finally:
        for tap in taps.values():
            tap.close()
        if save is not None and taps:
            np.savez_compressed(save, **{f"{k}_audio": t.everything() for k, t in taps.items()},
                                **{f"{k}_t0": t.t0 for k, t in taps.items()})
        server.stop()
        logging.getLogger("app.assistant.barge_in").removeHandler(barge_log)
    result: dict[str, Any] = {"replies": replies, "interrupted_itself":
                              len(self_interruptions), "self_interruptions": self_interruptions,
                              "paused_and_resumed": pauses,
                              "listen_backlog_chunks_max": most_backlog}
    for name, found in rows.items():
        stopped = [r for r in found if r.get("stopped_ms") is not None]
        summary: dict[str, Any] = {"trials": trials, "stopped": len(stopped), "rows": found}
        for key in PARTS:
            values = [r[key] for r in stopped if r.get(key) is not None]
            if key == "stopped_ms":  # below 0: between sentences at the start, never resumed
                values = [max(0.0, v) for v in values]
            summary[key] = ({"median": round(statistics.median(values), 1),
                             "p90": round(percentile(values, 0.9), 1)} if values else None)
        result[name] = summary
    return result


PARTS = ("stopped_ms", "after_phrase_end_ms", "cancelled_ms", "detected_ms", "stop_call_ms")


def _trial(taps: dict[str, Tap], said: AudioChunk, bounds: tuple[float, float],
           played: float, stop: Any, events: list[Any]) -> dict[str, Any]:
    """One barge-in's figures (ms): stopped (the speech's start -> the reply's last loud
    10 ms at the speaker sink: paused or stopped), after_phrase_end (the phrase's end ->
    stopped); cancelled (start -> heard on the cancelled source: the canceller's delay),
    detected (start -> the new turn: confirmed), stop_call (new turn -> SpeechFinished,
    the speaker stream aborted)."""
    from app.events import TurnStarted

    onset = _onset(taps["mic"], said.samples, played - 0.2, played + 3.0 + said.seconds)
    row: dict[str, Any] = {"interrupted": bool(stop.interrupted),
                           "played_at": round(played, 3)}
    if not stop.interrupted:  # the reply ended by itself: when, against the speech played
        row["reply_ended_after_play_ms"] = round((stop.timestamp - played) * 1000)
    if onset is None or not stop.interrupted:
        return row
    start = onset + bounds[0]
    cancelled = _onset(taps["cancelled"], said.samples, onset - 0.1, onset + 0.6 + said.seconds)
    turn = next((e for e in events if isinstance(e, TurnStarted)
                 and e.trigger in ("vad", "wake-word")), None)
    quiet = _last_loud(taps["speaker"], start - 0.5, stop.timestamp + 0.1)  # (then: beeps)
    row.update({
        "trigger": turn.trigger if turn else None,
        "start_at": round(start, 3),
        "stopped_ms": _ms(start, quiet),
        "cancelled_ms": _ms(onset, cancelled),
        "detected_ms": _ms(start, turn.timestamp if turn else None),
        "stop_call_ms": _ms(turn.timestamp if turn else None, stop.timestamp),
        "after_phrase_end_ms": _ms(onset + bounds[1], quiet),
    })
    return row


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 1)


def measure(trials: int, replies: int, folder: Path, save: Path | None = None,
            mode: str = "speech", speak_at: Sequence[float] = ()) -> dict[str, Any]:
    """Synthesize what is said over the replies, then `barge_in` with `[audio] barge_in =
    mode`."""
    said = dict(zip(SAID, _synthesize(tuple(SAID.values())), strict=True))
    return barge_in(trials, replies, said, folder, save, mode, speak_at)


def markdown(barge: dict[str, Any]) -> list[str]:
    """The barge-in section of a results table."""
    lines = ["## Voice barge-in (module-echo-cancel, echo path into the microphone)", "",
             "Medians (p90) in ms. stopped: the speech's start -> the reply's last loud 10 ms "
             "at the speaker sink (0 when it was between sentences then and never went on); "
             "after phrase end: the same from the end of what was said "
             "(for the wake word, when it can first be known); cancelled = start -> heard on "
             "the canceller's source, detected = start -> new turn (confirmed), stop call = "
             "new turn -> speaker stream aborted.", "",
             "| said over the reply | stopped | " + " | ".join(
                 k.removesuffix("_ms").replace("_", " ") for k in PARTS) + " |",
             "| --- | --- |" + " --- |" * len(PARTS)]
    for name, r in barge.items():
        if isinstance(r, dict) and "trials" in r:
            cells = [f"{r[k]['median']} ({r[k]['p90']})" if r.get(k) else "-" for k in PARTS]
            lines.append(f"| {name} | {r['stopped']}/{r['trials']} | " + " | ".join(cells)
                         + " |")
    lines.append(f"\nTarget: {TARGET_BARGE_IN_MS:.0f} ms. Over {barge['replies']} spoken "
                 f"replies with nobody talking: self-interruptions "
                 f"{barge['interrupted_itself']}" + "".join(
                     f" ({x['seconds_into_reply']} s in)" for x in barge["self_interruptions"])
                 + f"; pauses that resumed the reply {barge['paused_and_resumed']}.")
    return lines


def run_barge_in_bench(trials: int = 5, replies: int = 50, save: Path | None = None,
                       out: Path = RESULTS / "barge_in", mode: str = "speech",
                       speak_at: Sequence[float] = ()) -> int:
    result: dict[str, Any] = {"meta": {"machine": platform.machine(), "cpus": os.cpu_count(),
                                       "when": time.strftime("%Y-%m-%d %H:%M"),
                                       "load": ", ".join(f"{x:.1f}" for x in os.getloadavg())}}
    with tempfile.TemporaryDirectory(prefix="hearth-barge-") as tmp:
        result["barge_in"] = measure(trials, replies, Path(tmp), save, mode, speak_at)
    result["meta"]["load_after"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    meta = result["meta"]
    meta["barge_in"] = mode
    text = "\n".join([f"# Voice barge-in ([audio] barge_in = {mode!r})", "",
                      f"{meta['machine']} ({meta['cpus']} CPUs), {meta['when']}, "
                      f"load average {meta['load']} (after: "
                      f"{meta['load_after']})", "", *markdown(result["barge_in"])]) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=50,
                        help="spoken replies with nobody talking (self-interruption check)")
    parser.add_argument("--trials", type=int, default=5, help="barge-ins of each kind")
    parser.add_argument("--save", type=Path, help="an .npz for the three recordings")
    parser.add_argument("--out", type=Path, default=RESULTS / "barge_in",
                        help="results path without suffix (.json and .md are written)")
    parser.add_argument("--barge-in", default="speech", choices=("speech", "wake-word"),
                        help="[audio] barge_in")
    parser.add_argument("--speak-at", default="",
                        help="seconds into the reply at which trials speak, in turn "
                             "(e.g. 1,2.5,4,5.5; default: just after the echo settles)")
    args = parser.parse_args(argv)
    speak_at = [float(x) for x in args.speak_at.split(",") if x.strip()]
    return run_barge_in_bench(args.trials, args.replies, args.save, args.out, args.barge_in,
                              speak_at)


if __name__ == "__main__":
    sys.exit(main())
