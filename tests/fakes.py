"""Fakes of every pipeline stage, for pipeline-logic tests only (ordering, cancellation,
supervisor). Everything else in the suite runs real engines, recognizers and voices.

Each fake behaves like its real counterpart where the pipeline can tell: the engine
streams word pieces and checks its cancel token per token, the speaker "plays" in
real time (scaled by `speed`) and returns early when cancelled or stopped, the
microphone delivers chunks from a queue. `run_pipeline(steps)` drives an `Assistant`
built from them and returns every event it emitted.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.assistant.pipeline import Assistant
from app.assistant.reply import SkillAnswer
from app.config import Settings, replace
from app.events import Event, State, TurnMetrics
from app.history import History
from engine.base import ChatEngine, ChatMessage, EngineInfo, GenerationOptions, GenerationStats
from speech.audio import AudioChunk
from speech.io import AudioSink, AudioSource
from speech.stt import SpeechRecognizer, Transcript
from speech.tts import SpeechSynthesizer
from speech.wake import WakeWordDetector

RATE = 16000


class StageFailure(RuntimeError):
    """What the fakes raise when told to fail (an "unexpected" bug, not a typed error)."""


def fake_settings(**sections: dict[str, Any]) -> Settings:
    """Defaults with beeps and history off (tests opt in), plus per-section changes."""
    settings = replace(Settings(), "audio", beeps=False)
    settings = replace(settings, "history", enabled=False)
    for section, changes in sections.items():
        settings = replace(settings, section, **changes)
    return settings


def speech_chunk(seconds: float = 0.03, level: float = 0.2) -> AudioChunk:
    """A chunk of noise standing in for speech (16 kHz mono)."""
    rng = np.random.default_rng(0)
    return AudioChunk.from_float(level * rng.uniform(-1, 1, round(seconds * RATE)), RATE)


class FakeEngine(ChatEngine):
    """Streams canned replies one word per token, `token_seconds` apart.

    `replies` are used in order (the last repeats); `fail_calls` makes that many
    `chat` calls raise `StageFailure` after `fail_after_tokens` tokens.
    """

    backend_name = "fake"

    def __init__(self, replies: Sequence[str] = ("Hello there. How can I help?",),
                 token_seconds: float = 0.0, fail_calls: int = 0,
                 fail_after_tokens: int = 0) -> None:
        self.replies = list(replies)
        self.token_seconds = token_seconds
        self.fail_calls = fail_calls
        self.fail_after_tokens = fail_after_tokens
        self.calls: list[list[ChatMessage]] = []
        self.cancelled_calls = 0
        self._stats: GenerationStats | None = None
        self.closed = False

    @property
    def context_length(self) -> int:
        return 2048

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return " ".join("w" for _ in tokens)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content.split()) + 3 for m in messages)

    def chat(self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None,
             cancel: threading.Event | None = None) -> Iterator[str]:
        self.calls.append(list(messages))
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        failing = self.fail_calls > 0
        if failing:
            self.fail_calls -= 1
        stats = GenerationStats(prompt_tokens=self.count_prompt_tokens(messages))
        self._stats = stats
        words = reply.split(" ")
        for i, word in enumerate(words):
            if failing and i >= self.fail_after_tokens:
                raise StageFailure("the fake engine was told to fail")
            if cancel is not None and cancel.is_set():
                self.cancelled_calls += 1
                stats.stop_reason = "cancelled"
                return
            if self.token_seconds:
                time.sleep(self.token_seconds)
            stats.generated_tokens += 1
            yield word if i == 0 else " " + word
        stats.stop_reason = "eos"
        stats.decode_tokens_per_second = 100.0

    @property
    def last_stats(self) -> GenerationStats | None:
        return self._stats

    def info(self) -> EngineInfo:
        return EngineInfo(backend="fake", model_path="/models/fake.gguf", context_length=2048)

    def close(self) -> None:
        self.closed = True


class FakeRecognizer(SpeechRecognizer):
    """Hears `transcripts` in order, one per utterance; a partial (the next word) per chunk.

    `fail_accepts` makes that many `accept` calls raise `StageFailure`.
    """

    name = "fake-stt"

    def __init__(self, transcripts: Sequence[str] = ("what time is it",),
                 fail_accepts: int = 0) -> None:
        self.transcripts = list(transcripts)
        self.fail_accepts = fail_accepts
        self.utterances = 0
        self.chunks = 0
        self.resets = 0
        self._heard = 0

    def _current(self) -> str:
        return self.transcripts[min(self.utterances, len(self.transcripts) - 1)]

    def accept(self, chunk: AudioChunk) -> Transcript | None:
        if self.fail_accepts > 0:
            self.fail_accepts -= 1
            raise StageFailure("the fake recognizer was told to fail")
        self.chunks += 1
        self._heard += 1
        words = self._current().split()
        return Transcript(" ".join(words[: self._heard]), is_final=False)

    def finish(self) -> Transcript:
        heard = self._heard
        text = self._current() if heard else ""
        self.utterances += 1
        self._heard = 0
        return Transcript(text)

    def reset(self) -> None:
        self.resets += 1
        self._heard = 0


class FakeSynthesizer(SpeechSynthesizer):
    """`chunks_per_sentence` chunks of `chunk_seconds` each, after `delay_seconds`.

    `fail_sentences` makes that many `synthesize` calls raise `StageFailure`.
    """

    name = "fake-voice"

    def __init__(self, chunk_seconds: float = 0.05, chunks_per_sentence: int = 2,
                 delay_seconds: float = 0.0, fail_sentences: int = 0) -> None:
        self.chunk_seconds = chunk_seconds
        self.chunks_per_sentence = chunks_per_sentence
        self.delay_seconds = delay_seconds
        self.fail_sentences = fail_sentences
        self.sentences: list[str] = []

    @property
    def sample_rate(self) -> int:
        return RATE

    def synthesize(self, text: str, cancel: threading.Event | None = None
                   ) -> Iterator[AudioChunk]:
        if self.fail_sentences > 0:
            self.fail_sentences -= 1
            raise StageFailure("the fake voice was told to fail")
        self.sentences.append(text)
        for _ in range(self.chunks_per_sentence):
            if cancel is not None and cancel.is_set():
                return
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            yield speech_chunk(self.chunk_seconds)


@dataclass
class PlayedChunk:
    chunk: AudioChunk
    started: float
    ended: float
    cancelled: bool


class FakeSpeaker(AudioSink):
    """Plays in (scaled) real time: `play` takes `chunk.seconds * speed` unless cancelled
    or stopped, checking every 5 ms like a device callback would."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.played: list[PlayedChunk] = []
        self.stops: list[float] = []
        self._stop = threading.Event()

    def play(self, chunk: AudioChunk, cancel: threading.Event | None = None) -> None:
        self._stop.clear()
        started = time.monotonic()
        end = started + chunk.seconds * self.speed
        cancelled = False
        while time.monotonic() < end:
            if self._stop.is_set() or (cancel is not None and cancel.is_set()):
                cancelled = True
                break
            time.sleep(0.005)
        self.played.append(PlayedChunk(chunk, started, time.monotonic(), cancelled))

    def stop(self) -> None:
        self.stops.append(time.monotonic())
        self._stop.set()

    @property
    def seconds_played(self) -> float:
        return sum(p.chunk.seconds for p in self.played if not p.cancelled)


class FakeMicrophone(AudioSource):
    """A live-like source: `say(seconds)` queues speech chunks; silence is "nothing read"."""

    def __init__(self, fail_reads: int = 0) -> None:
        self._queue: queue.Queue[AudioChunk] = queue.Queue()
        self.fail_reads = fail_reads
        self.started = False
        self.starts = 0
        self.flushes = 0

    def say(self, seconds: float = 0.3, chunk_seconds: float = 0.03) -> None:
        for _ in range(max(1, round(seconds / chunk_seconds))):
            self._queue.put(speech_chunk(chunk_seconds))

    def pause(self, seconds: float = 0.9, chunk_seconds: float = 0.03) -> None:
        """Queue silence (what ends an utterance for the endpointer)."""
        for _ in range(max(1, round(seconds / chunk_seconds))):
            self._queue.put(AudioChunk.silence(chunk_seconds, RATE))

    def start(self) -> None:
        self.started = True
        self.starts += 1

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        if self.fail_reads > 0:
            self.fail_reads -= 1
            from speech.errors import AudioDeviceError

            raise AudioDeviceError("the fake microphone was told to fail")
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self) -> None:
        self.started = False

    def flush(self) -> None:
        self.flushes += 1


class FakeWake(WakeWordDetector):
    """Hears the wake phrase in the chunk after `trigger()` was called."""

    name = "fake-wake"

    def __init__(self) -> None:
        self._armed = threading.Event()
        self.chunks = 0

    def trigger(self) -> None:
        self._armed.set()

    def process(self, chunk: AudioChunk) -> bool:
        self.chunks += 1
        if self._armed.is_set():
            self._armed.clear()
            return True
        return False


class FakeSkills:
    """Answers the questions in `answers` (text -> SkillAnswer); None for the rest, so the
    engine answers. `fail` makes every call raise `StageFailure`."""

    def __init__(self, answers: dict[str, SkillAnswer] | None = None, fail: bool = False) -> None:
        self.answers = answers or {}
        self.fail = fail
        self.asked: list[str] = []
        self.closed = False

    def answer(self, text: str) -> SkillAnswer | None:
        self.asked.append(text)
        if self.fail:
            raise StageFailure("the fake skills were told to fail")
        return self.answers.get(text)

    def claims(self, text: str) -> bool:
        return text in self.answers

    def close(self) -> None:
        self.closed = True


class BlockingHistory:
    """A history stand-in whose writes wait, while `blocked` is set, until `release` is
    set (a slow disk). Rows are kept in memory: {"user_text", "reply", "complete"}."""

    def __init__(self) -> None:
        self.path = "/fake/history.sqlite3"
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.writing = threading.Event()
        """Set while a write is waiting for `release`."""
        self.rows: list[dict[str, Any]] = []

    def _wait(self) -> None:
        if self.blocked.is_set():
            self.writing.set()
            self.release.wait(30)
            self.writing.clear()

    def start_turn(self, *, user_text: str, **ids: str) -> int:
        self._wait()
        self.rows.append({"user_text": user_text, "reply": "", "complete": False, **ids})
        return len(self.rows)

    def finish_turn(self, turn_id: int, record: Any) -> None:
        self._wait()
        self.rows[turn_id - 1].update(reply=record.reply, complete=True)


@dataclass
class Stages:
    """The fakes one `run_pipeline` call used (to inspect after the run)."""

    engine: FakeEngine = field(default_factory=FakeEngine)
    recognizer: FakeRecognizer = field(default_factory=FakeRecognizer)
    synthesizer: FakeSynthesizer | None = field(default_factory=FakeSynthesizer)
    microphone: FakeMicrophone | None = field(default_factory=FakeMicrophone)
    speaker: FakeSpeaker | None = field(default_factory=lambda: FakeSpeaker(speed=0.2))
    wake: FakeWake | None = None
    history: History | None = None
    skills: FakeSkills | None = None


class EventLog:
    """Collects events from a subscription; `wait_for` blocks until enough arrived."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type[Event]) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), timeout):
                kinds = [type(e).__name__ for e in self.events]
                raise TimeoutError(f"events never matched; got {kinds}")

    def wait_count(self, kind: type[Event], count: int = 1, timeout: float = 10.0) -> None:
        self.wait_for(lambda evs: sum(isinstance(e, kind) for e in evs) >= count, timeout)


def build_assistant(stages: Stages | None = None, settings: Settings | None = None,
                    **options: Any) -> Assistant:
    """An `Assistant` (not started, no warm-up) made of `stages`' fakes, on `settings`
    (`fake_settings()` when None); `options` (factories, ...) go to its constructor."""
    stages = stages or Stages()
    return Assistant(
        settings or fake_settings(), engine=stages.engine, recognizer=stages.recognizer,
        synthesizer=stages.synthesizer, microphone=stages.microphone, speaker=stages.speaker,
        history=stages.history, wake=stages.wake, skills=stages.skills, warm_up=False,
        **options)


Step = tuple[Any, ...]


def run_pipeline(steps: Sequence[Step], stages: Stages | None = None,
                 settings: Settings | None = None,
                 factories: dict[str, Callable[[], Any]] | None = None,
                 timeout: float = 10.0) -> list[Event]:
    """Drive an `Assistant` made of fakes through `steps`; every event it emitted.

    Steps: ("text", str) types a question; ("press",) / ("release",) push-to-talk;
    ("say", seconds) speaks into the fake microphone, ("pause", seconds) is silence
    into it; ("audio", AudioChunk) asks from
    a file; ("cancel",) is the Stop button; ("wake",) says the wake phrase;
    ("wait", EventClass, n) waits until n events of that class were emitted in total;
    ("state", State) waits for that state; ("sleep", seconds). At the end the run waits
    for the turn in progress to finish, then shuts the assistant down.
    """
    stages = stages or Stages()
    log = EventLog()
    assistant = build_assistant(stages, settings, factories=factories)
    assistant.subscribe(log)
    assistant.start()
    try:
        for step in steps:
            _run_step(assistant, stages, log, step, timeout)
        _wait_until_idle(assistant, timeout)
    finally:
        assistant.shutdown()
    return log.events


def _run_step(assistant: Assistant, stages: Stages, log: EventLog, step: Step,
              timeout: float) -> None:
    action, *args = step
    if action == "text":
        assistant.submit_text(args[0])
    elif action == "press":
        assistant.push_to_talk_pressed()
    elif action == "release":
        assistant.push_to_talk_released()
    elif action == "say":
        assert stages.microphone is not None, "no fake microphone to say anything into"
        stages.microphone.say(*args)
        time.sleep(0.1)  # let the capture thread read it while the state is current
    elif action == "audio":
        assistant.submit_audio(args[0])
    elif action == "cancel":
        assistant.cancel()
    elif action == "pause":
        assert stages.microphone is not None, "no fake microphone to be silent into"
        stages.microphone.pause(*args)
    elif action == "wake":
        assert stages.wake is not None and stages.microphone is not None
        stages.wake.trigger()
        stages.microphone.say(0.03)
    elif action == "wait":
        log.wait_count(args[0], args[1] if len(args) > 1 else 1, timeout)
    elif action == "state":
        deadline = time.monotonic() + timeout
        while assistant.state != args[0]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"state stayed {assistant.state}, never {args[0]}")
            time.sleep(0.005)
    elif action == "sleep":
        time.sleep(args[0])
    else:
        raise ValueError(f"unknown pipeline test step {step!r}")


def _wait_until_idle(assistant: Assistant, timeout: float) -> None:
    """Until the assistant has been IDLE for 50 ms in a row (no turn about to start)."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while time.monotonic() < deadline:
        if assistant.state == State.IDLE:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 0.05:
                return
        else:
            idle_since = None
        time.sleep(0.005)
    raise TimeoutError(f"the assistant never went idle (state {assistant.state})")


def metrics_of(events: list[Event]) -> list[TurnMetrics]:
    return [e for e in events if isinstance(e, TurnMetrics)]
