"""The streaming voice pipeline: speech in, a streamed reply, speech out, interruptible.

A turn: a trigger (push-to-talk, wake word, voice activity, typed text or a file)
starts LISTENING; audio streams into the recognizer while the user speaks (partial
transcripts); at the end of input the final transcript goes to the engine, whose
reply streams out piece by piece; a `SentenceSplitter` hands each finished sentence
to the synthesizer while the model is still writing, and playback starts with the
first sentence. Each stage runs on its own thread, connected by queues:

    microphone -> [capture] -> listen_q -> [listen: wake / VAD / recognizer]
    -> reply_q -> [reply: engine + splitter] -> synth_q -> [synth] -> play_q -> [play]

Every queued item carries its turn, and each turn has `threading.Event` cancel
tokens that the engine checks per token and synthesis and playback per chunk.
Control actions (push-to-talk, stop, text) never wait in those queues: they set
the tokens, silence the speaker and flush the queues directly, so a barge-in is
as fast as the speaker can stop.

A supervisor wraps each stage's thread: an unexpected exception is logged with its
traceback, reported as an `ErrorEvent`, the turn it broke is closed, the stage is
rebuilt (from a factory when one was given) and the assistant returns to IDLE.
A missing microphone degrades to text input, a failing voice to text-only replies;
either is told once with a `Notice`. A microphone that fails while running is reopened
with backoff (when a factory is given), and its return is told with a `Notice`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.assistant import beeps
from app.assistant.state import StateMachine
from app.config import Settings
from app.engine_setup import generation_defaults
from app.errors import HistoryError
from app.events import (
    AudioLevel,
    ErrorEvent,
    Event,
    FinalTranscript,
    Notice,
    PartialTranscript,
    ReplyFinished,
    ReplyToken,
    SpeechFinished,
    SpeechStarted,
    State,
    TurnMetrics,
    TurnStarted,
)
from app.history import History, TurnRecord
from engine.base import ChatEngine, ChatMessage, GenerationOptions, GenerationStats
from engine.conversation import fit_to_context
from engine.errors import EngineError
from speech.audio import AudioChunk
from speech.errors import SpeechError
from speech.io import AudioSink, AudioSource
from speech.resample import resample
from speech.sentences import SentenceSplitter
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.vad import Endpointer, VadEventKind
from speech.wake import WakeWordDetector

log = logging.getLogger(__name__)

Callback = Callable[[Event], None]
StageFactory = Callable[[], Any]

STAGES = ("microphone", "recognizer", "wake", "engine", "synthesizer", "speaker")
"""Names of the rebuildable stages (keys of the `factories` argument)."""

_ERROR_CODES = {
    "microphone": "microphone-failed",
    "recognizer": "stt-failed",
    "wake": "wake-failed",
    "engine": "engine-failed",
    "synthesizer": "tts-failed",
    "speaker": "speaker-failed",
}
_STAGE_WORDS = {
    "microphone": "The microphone",
    "recognizer": "Speech recognition",
    "wake": "Wake-word detection",
    "engine": "The language model",
    "synthesizer": "The voice",
    "speaker": "The speaker",
}
_FILE_BLOCK_SECONDS = 0.1
"""File audio is fed to the recognizer in blocks of this length (as fast as it takes)."""
_CLOSE_WAIT_SECONDS = 30.0
"""`close()` waits this long for each stage thread to leave its component."""
_THREAD_OF = {"recognizer": "listen", "wake": "listen"}
"""Stages run on a thread named after another stage."""
_FAILURE_PAUSE_SECONDS = 0.2
"""Pause before a failed stage's loop restarts, so a permanent fault cannot spin a core."""
MICROPHONE_BACK = "microphone-back"
"""Code of the `Notice` sent when a microphone can be used again (or appears)."""
_MIC_RETRY_FIRST_SECONDS = 1.0
_MIC_RETRY_MAX_SECONDS = 5.0
"""A lost microphone is reopened at once, then after 1, 2, 4, 5, 5, ... s until it works."""


@dataclass(eq=False)
class _Turn:
    """Everything the stages share about one turn (mutated under `Assistant._lock`)."""

    turn_id: int
    trigger: str
    cancel: threading.Event = field(default_factory=threading.Event)
    """Hard stop: generation, synthesis and playback stop at the next token/chunk."""
    stop_generating: threading.Event = field(default_factory=threading.Event)
    """Soft stop (shutdown): no new text or sentences; the sentence being spoken ends."""
    user_text: str = ""
    reply: list[str] = field(default_factory=list)
    end_of_input_at: float | None = None
    final_at: float | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None
    listened_seconds: float = 0.0
    last_partial: str = ""
    stats: GenerationStats | None = None
    generation_done: bool = False
    speaking: bool = False
    speech_done: bool = False
    finished: bool = False
    error: str = ""
    history_id: int | None = None

    @property
    def reply_text(self) -> str:
        return "".join(self.reply)


@dataclass(frozen=True)
class _StartListening:
    turn: _Turn


@dataclass(frozen=True)
class _EndOfInput:
    turn: _Turn


@dataclass(frozen=True)
class _TurnAudio:
    """Audio that belongs to one turn (file mode), as opposed to live microphone audio."""

    turn: _Turn
    chunk: AudioChunk


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_SENTENCE_END = _Marker("SENTENCE_END")
_REPLY_END = _Marker("REPLY_END")


class Assistant:
    """The voice assistant pipeline. Thread-safe; events go to `subscribe`d callbacks.

    `microphone=None` means text input only; `speaker=None` (or `settings.tts.enabled`
    false) means text-only replies. `factories` maps a stage name (see `STAGES`) to a
    zero-argument callable building a fresh instance, used by the supervisor to rebuild
    a stage that failed; without one, the stage is reset and reused. `warm_up` has the
    engine evaluate the system prompt at start, so the first turn finds it cached.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine: ChatEngine,
        recognizer: SpeechRecognizer | None,
        synthesizer: SpeechSynthesizer | None,
        microphone: AudioSource | None = None,
        speaker: AudioSink | None = None,
        history: History | None = None,
        wake: WakeWordDetector | None = None,
        factories: Mapping[str, StageFactory] | None = None,
        warm_up: bool = True,
    ) -> None:
        self.settings = settings
        self._warm_up = warm_up
        self.engine = engine
        self.recognizer = recognizer
        self.synthesizer = synthesizer
        self.microphone = microphone
        self.speaker = speaker
        self.history = history
        self.wake = wake if settings.wake.enabled else None
        self._factories = dict(factories or {})
        self._callbacks: list[Callback] = []
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._machine = StateMachine()
        self._lock = threading.RLock()
        self._turn: _Turn | None = None
        self._next_turn_id = 1
        self._conversation: list[ChatMessage] = []
        self._listen_q: queue.Queue[object] = queue.Queue()
        self._reply_q: queue.Queue[_Turn | None] = queue.Queue()
        self._synth_q: queue.Queue[tuple[_Turn, object] | None] = queue.Queue()
        self._play_q: queue.Queue[tuple[_Turn | None, object] | None] = queue.Queue()
        self._busy: dict[str, _Turn | None] = {}
        self._stopping = threading.Event()
        self._closing = False
        self._started = False
        self._threads: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None
        self._told: set[str] = set()
        self._history_failing = False
        """The last history write failed (and the user was told)."""
        self._speech_out = speaker is not None and synthesizer is not None and settings.tts.enabled
        self._flush_mic = threading.Event()
        self._mic_started: AudioSource | None = None
        """The microphone the capture loop need not start (the reopening already did)."""
        # listen-thread state (only that thread touches these)
        self._rec_turn: _Turn | None = None
        self._endpointer: Endpointer | None = None
        self._listen_part = "recognizer"
        """Which component the listen thread is running, to blame the right one."""

    # ---- public API -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._machine.state

    @property
    def messages(self) -> list[ChatMessage]:
        """The conversation the model sees next: system prompt plus the kept earlier turns
        (before trimming to the context window, which happens per turn)."""
        keep = 2 * self.settings.assistant.max_history_turns
        with self._lock:
            earlier = self._conversation[-keep:] if keep else []
        return [ChatMessage("system", self.settings.engine.system_prompt), *earlier]

    @property
    def speech_output(self) -> bool:
        """True while replies are spoken (False after a voice failure or without a speaker)."""
        return self._speech_out

    @property
    def voice_input(self) -> bool:
        """True when there is a working microphone and recognizer."""
        return self.microphone is not None and self.recognizer is not None

    def subscribe(self, callback: Callback) -> None:
        """Call `callback(event)` for every event, in order, from a dispatcher thread."""
        with self._lock:
            self._callbacks.append(callback)

    def start(self) -> None:
        """Start the stage threads (and the microphone). Call once."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="hearth-events",
                                            daemon=True)
        self._dispatcher.start()
        self._spawn("listen", self._listen_loop)
        self._spawn("engine", self._reply_loop)
        self._spawn("synthesizer", self._synth_loop)
        self._spawn("speaker", self._play_loop)
        factory = self._factories.get("microphone")
        if self.microphone is not None:
            self._spawn("microphone", self._capture_loop)
        elif factory is not None and self.recognizer is not None:
            # e.g. a Pi's service started before its USB microphone appeared: keep looking
            self._tell("no-microphone", "No microphone is available yet; Hearth takes typed "
                                        "questions and listens as soon as one appears.")
            self._spawn("microphone", lambda: self._wait_for_microphone(factory))
        else:
            self._tell("no-microphone", "No microphone is available, so Hearth takes typed "
                                        "questions only.")
        if not self._speech_out and self.settings.tts.enabled:
            self._tell("no-speech-output", "No speaker or voice is available, so replies are "
                                           "shown as text only.")

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop: the sentence being spoken finishes (within `timeout`), the turn is saved
        to history (marked interrupted), the threads end and events are delivered."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closing = True
            turn = self._turn
        if turn is not None:
            if self.state == State.SPEAKING:
                turn.stop_generating.set()
                while not turn.finished and time.monotonic() < deadline:
                    time.sleep(0.01)
            if not turn.finished:
                self._interrupt(turn)
        self._stopping.set()
        for q in (self._listen_q, self._reply_q, self._synth_q, self._play_q):
            q.put(None)
        if self.microphone is not None:
            with contextlib.suppress(Exception):
                self.microphone.stop()
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._events.put(None)
        if self._dispatcher is not None:
            self._dispatcher.join(max(0.5, deadline - time.monotonic()))

    def close(self) -> None:
        """`shutdown()` if still running, then release every stage (models, devices).
        The history is left open: it belongs to whoever passed it in."""
        if self._started and not self._stopping.is_set():
            self.shutdown()
        # a stage still inside its component (a slow engine call ending at its next
        # cancel check) must finish first: freeing a model under it would crash
        for thread in self._threads:
            thread.join(_CLOSE_WAIT_SECONDS)
        running = {t.name for t in self._threads if t.is_alive()}
        for stage in ("microphone", "speaker", "wake", "recognizer", "synthesizer", "engine"):
            component = getattr(self, stage)
            if f"hearth-{_THREAD_OF.get(stage, stage)}" in running:
                log.warning("the %s is still busy; not closing it", stage)
            elif component is not None:
                try:
                    component.close()
                except Exception:  # one stage failing to close must not keep the others
                    log.exception("closing the %s failed", stage)

    def push_to_talk_pressed(self) -> None:
        """Start listening; while THINKING or SPEAKING this is a barge-in."""
        pressed_at = time.monotonic()
        if not self.voice_input:
            self._tell("no-microphone", "No microphone is available, so Hearth takes typed "
                                        "questions only.")
            return
        self._start_voice_turn("push-to-talk", pressed_at, from_listener=False)

    def push_to_talk_released(self) -> None:
        """End of the question: recognition finishes and the reply starts."""
        released_at = time.monotonic()
        with self._lock:
            turn = self._turn
            if turn is None or self.state != State.LISTENING or turn.end_of_input_at is not None:
                return
            turn.end_of_input_at = released_at
        self._listen_q.put(_EndOfInput(turn))

    def submit_text(self, text: str) -> None:
        """A typed question: a turn without recognition (interrupts any turn in progress)."""
        text = text.strip()
        if not text:
            return
        now = time.monotonic()
        with self._lock:
            if self._closing:
                return
            if self._turn is not None:
                self._interrupt(self._turn, replaced=True)
            turn = self._new_turn("text", now)
            turn.end_of_input_at = now
            self._begin_reply(turn, text)

    def submit_audio(self, audio: AudioChunk) -> None:
        """A spoken question from a file: one turn, recognized as fast as the recognizer
        goes; end of input is when the last sample has been fed (`hearth ask --wav`)."""
        if self.recognizer is None:
            raise SpeechError("speech recognition is not available, so audio cannot be asked")
        audio = resample(audio, self.recognizer.sample_rate)
        now = time.monotonic()
        with self._lock:
            if self._turn is not None:
                self._interrupt(self._turn, replaced=True)
            turn = self._new_turn("file", now)
            self._set_state(State.LISTENING, turn)
        self._listen_q.put(_StartListening(turn))
        block = max(1, round(_FILE_BLOCK_SECONDS * audio.sample_rate))
        for start in range(0, audio.frames, block):
            self._listen_q.put(_TurnAudio(turn, AudioChunk(audio.samples[start:start + block],
                                                           audio.sample_rate)))
        self._listen_q.put(_EndOfInput(turn))

    def cancel(self) -> None:
        """Stop button: cancel listening, generation, synthesis and playback; back to IDLE."""
        with self._lock:
            if self._turn is not None:
                self._interrupt(self._turn)

    # ---- turns ------------------------------------------------------------------------

    def _new_turn(self, trigger: str, at: float) -> _Turn:
        """Make `trigger`'s turn the current one (caller holds the lock)."""
        turn = _Turn(self._next_turn_id, trigger)
        self._next_turn_id += 1
        self._turn = turn
        self._emit(TurnStarted(trigger, turn_id=turn.turn_id, timestamp=at))
        return turn

    def _start_voice_turn(self, trigger: str, at: float, *, from_listener: bool) -> _Turn | None:
        with self._lock:
            if self._closing:
                return None
            current = self._turn
            if current is not None:
                if self.state == State.LISTENING:
                    return None  # already listening: a second press changes nothing
                self._interrupt(current, replaced=True)
            turn = self._new_turn(trigger, at)
            self._set_state(State.LISTENING, turn)
            self._beep(beeps.start_beep)
        if from_listener:
            self._begin_listening(turn)
        else:
            self._listen_q.put(_StartListening(turn))
        return turn

    def _begin_reply(self, turn: _Turn, text: str) -> None:
        """The question is known: record it, tell the world and queue the reply."""
        with self._lock:
            turn.user_text = text
            turn.final_at = time.monotonic()
            self._emit(FinalTranscript(text, turn_id=turn.turn_id, timestamp=turn.final_at))
            self._set_state(State.THINKING, turn)
            if self.history is not None:
                try:
                    turn.history_id = self.history.start_turn(
                        user_text=text, trigger=turn.trigger, **self._model_ids())
                    self._history_failing = False
                except HistoryError as exc:  # the turn goes on; it is just not saved
                    self.history_failed(str(exc))
        self._reply_q.put(turn)

    def _interrupt(self, turn: _Turn, *, replaced: bool = False) -> None:
        """Barge-in / stop: cancel everything of `turn` now and close it as interrupted."""
        with self._lock:
            if turn.finished:
                return
            turn.cancel.set()
            turn.stop_generating.set()
            if turn.speaking and self.speaker is not None:
                with contextlib.suppress(Exception):
                    self.speaker.stop()
            for q in (self._synth_q, self._play_q):
                _drain(q)
            self._finish_turn(turn, interrupted=True, replaced=replaced)

    def _finish_turn(self, turn: _Turn, *, interrupted: bool = False, error: str = "",
                     replaced: bool = False) -> None:
        """Close a turn once: final events, metrics, history, conversation memory.

        `replaced`: a new turn takes over at once, so the state does not pass via IDLE."""
        with self._lock:
            if turn.finished:
                return
            turn.finished = True
            turn.error = error
            now = time.monotonic()
            tid = turn.turn_id
            if turn.user_text and not turn.generation_done:
                turn.generation_done = True
                self._emit(ReplyFinished(turn.reply_text, interrupted=True, turn_id=tid))
            if turn.speaking and not turn.speech_done:
                turn.speech_done = True
                self._emit(SpeechFinished(interrupted=interrupted, turn_id=tid))
            if turn.user_text:
                metrics = self._metrics(turn, now, interrupted)
                self._emit(metrics)
                log.info("turn %d%s: stt_final %.0f ms, first token %.0f ms, first audio "
                         "%.0f ms, total %.0f ms, %.1f tokens/s", tid,
                         " (interrupted)" if interrupted else "", metrics.stt_final_ms,
                         metrics.first_token_ms, metrics.first_audio_ms, metrics.total_ms,
                         metrics.tokens_per_second)
                self._record(turn, metrics, interrupted)
                if turn.reply_text.strip():
                    self._conversation += [ChatMessage("user", turn.user_text),
                                           ChatMessage("assistant", turn.reply_text.strip())]
                    # a kiosk runs for months: keep only what `messages` can use
                    del self._conversation[:-2 * max(1, self.settings.assistant.max_history_turns)]
                _give_free_memory_back()
            if self._turn is turn:
                self._turn = None
                if replaced:
                    return
                if error:
                    self._set_state(State.ERROR, turn)
                self._set_state(State.IDLE, turn)
                if not self.settings.audio.listen_while_speaking:
                    self._flush_mic.set()  # drop what the microphone heard of our own voice

    def _metrics(self, turn: _Turn, now: float, interrupted: bool) -> TurnMetrics:
        start = turn.end_of_input_at or turn.final_at or now

        def since(t: float | None) -> float:
            return round((t - start) * 1000.0, 1) if t is not None else 0.0

        stats = turn.stats
        if stats is None and turn.first_token_at is not None:
            stats = self.engine.last_stats  # cut short: the stats of the call in progress
        return TurnMetrics(
            stt_final_ms=since(turn.final_at),
            first_token_ms=since(turn.first_token_at),
            first_audio_ms=since(turn.first_audio_at),
            total_ms=since(now),
            prompt_tokens=stats.prompt_tokens if stats else 0,
            generated_tokens=stats.generated_tokens if stats else len(turn.reply),
            tokens_per_second=round(stats.decode_tokens_per_second, 2) if stats else 0.0,
            interrupted=interrupted,
            turn_id=turn.turn_id,
            timestamp=now,
        )

    def _record(self, turn: _Turn, metrics: TurnMetrics, interrupted: bool) -> None:
        if self.history is None or turn.history_id is None:
            return
        try:
            self.history.finish_turn(turn.history_id, TurnRecord.from_metrics(
                reply=turn.reply_text, interrupted=interrupted, error=turn.error,
                metrics=metrics))
            self._history_failing = False
        except HistoryError as exc:
            self.history_failed(str(exc))
        except Exception:  # history must never take the assistant down
            log.exception("could not save turn %d to the history", turn.turn_id)
            self.history_failed(f"could not save the conversation to {self.history.path}")

    def history_failed(self, text: str) -> None:
        """Tell the user (a `Notice`) that the conversation is not being saved: once while
        saving keeps failing, and again after a save has worked in between (say, once the
        disk was cleared)."""
        log.info("%s", text)  # info, like `_tell`: the Notice is what the user sees
        with self._lock:
            if self._history_failing:
                return
            self._history_failing = True
        self._emit(Notice(text, "history-failed"))

    def _model_ids(self) -> dict[str, str]:
        info = self.engine.info()
        return {
            "engine": info.backend,
            "model": Path(info.model_path).name if info.model_path else "",
            "recognizer": getattr(self.recognizer, "name", "") if self.recognizer else "",
            "voice": getattr(self.synthesizer, "name", "") if self._speech_out else "",
        }

    def _set_state(self, state: State, turn: _Turn | None = None) -> None:
        event = self._machine.change(state, turn.turn_id if turn else 0)
        if event is not None:
            self._emit(event)

    # ---- events -----------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._events.put(event)

    def _tell(self, code: str, text: str) -> None:
        """A Notice, at most once per `code` for the life of this assistant."""
        with self._lock:
            if code in self._told:
                return
            self._told.add(code)
        log.info("%s", text)
        self._emit(Notice(text, code))

    def _dispatch_loop(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            with self._lock:
                callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:  # a broken subscriber must not silence the others
                    log.exception("event subscriber %r failed on %r", callback, event)

    # ---- supervisor -------------------------------------------------------------------

    def _spawn(self, stage: str, body: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._supervise, args=(stage, body),
                                  name=f"hearth-{stage}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _supervise(self, stage: str, body: Callable[[], None]) -> None:
        """Run a stage loop; when it raises, report, repair and run it again."""
        while not self._stopping.is_set():
            try:
                body()
                return
            except Exception as exc:
                log.exception("the %s stage failed", stage)
                self._stage_failed(stage, exc)
                time.sleep(_FAILURE_PAUSE_SECONDS)

    def _stage_failed(self, stage: str, exc: Exception) -> None:
        if stage == "listen":  # one thread runs both the wake-word detector and recognition
            stage = self._listen_part
            self._rec_turn = None
        turn = self._busy.pop(stage, None)
        reason = _reason(exc)
        if stage in ("synthesizer", "speaker"):
            # the reply goes on as text; the voice comes back only if it can be rebuilt
            if self._rebuild(stage) is None:
                self._speech_out = False
                self._tell("tts-failed", f"{_STAGE_WORDS[stage]} failed ({reason}), so replies "
                                         "are shown as text only from now on.")
            else:
                self._emit(ErrorEvent(f"{_STAGE_WORDS[stage]} failed ({reason}) and was "
                                      "restarted; this reply continues as text.",
                                      _ERROR_CODES[stage]))
            if turn is not None:
                self._mute(turn)
            return
        if stage == "microphone":
            self._microphone_failed(reason)
            return
        self._emit(ErrorEvent(f"{_STAGE_WORDS[stage]} failed ({reason}); it was restarted, "
                              "please try again.", _ERROR_CODES[stage]))
        if turn is not None:
            self._finish_turn(turn, interrupted=True, error=reason)
        self._rebuild(stage)

    def _microphone_failed(self, reason: str) -> None:
        """The microphone failed: end the turn it was hearing, go on with typed questions
        and, with a factory, reopen it (on this, the microphone's thread) until it works."""
        self._emit(ErrorEvent(f"The microphone failed ({reason}); you can type your "
                              "questions meanwhile.", _ERROR_CODES["microphone"]))
        with self._lock:
            current = self._turn
            broken, self.microphone = self.microphone, None
        if current is not None and self.state == State.LISTENING:
            self._interrupt(current)
        if broken is not None:
            with contextlib.suppress(Exception):
                broken.close()
        factory = self._factories.get("microphone")
        if factory is None:
            self._tell("no-microphone", "The microphone stopped working, so Hearth takes "
                                        "typed questions only.")
            return
        self._reopen_microphone(factory)

    def _wait_for_microphone(self, factory: StageFactory) -> None:
        """There was no microphone at start: open one as soon as it appears (with the
        wake-word spotter it enables), then capture from it."""
        if self.microphone is None:  # (a later failure has already reopened it)
            self._reopen_microphone(factory, failed_already=True)
            if self.microphone is None:  # shut down while waiting
                return
        if self.wake is None and self.settings.wake.enabled:
            self.wake = self._rebuild("wake")
        self._capture_loop()

    def _reopen_microphone(self, factory: StageFactory, failed_already: bool = False) -> None:
        """Open and start a fresh microphone, retrying with backoff until it works or
        Hearth shuts down; a `Notice` tells when it is back after failed attempts."""
        failures = int(failed_already)
        delay = _MIC_RETRY_FIRST_SECONDS if failed_already else 0.0
        while not self._stopping.wait(delay):
            fresh: AudioSource | None = None
            try:
                fresh = factory()
                fresh.start()
            except Exception as exc:
                if fresh is not None:
                    with contextlib.suppress(Exception):
                        fresh.close()
                failures += 1
                # one line for the outage, not one per attempt
                (log.warning if failures == 1 else log.debug)(
                    "the microphone cannot be opened (%s); trying again every few seconds",
                    _reason(exc))
                delay = min(_MIC_RETRY_MAX_SECONDS, max(_MIC_RETRY_FIRST_SECONDS, 2 * delay))
                continue
            with self._lock:
                if self._closing:
                    fresh.close()
                    return
                self._mic_started = fresh
                self.microphone = fresh
            log.info("the microphone is open again (after %d failed attempt(s))", failures)
            if failures:
                self._emit(Notice("The microphone is back; you can speak again.",
                                  MICROPHONE_BACK))
            return

    def _rebuild(self, stage: str) -> Any:
        """A fresh instance of `stage` from its factory (or the old one, reset); None when
        there is none that works."""
        factory = self._factories.get(stage)
        old = getattr(self, stage)
        if factory is None:
            if old is not None and hasattr(old, "reset"):
                with contextlib.suppress(Exception):
                    old.reset()
            return old if stage not in ("synthesizer", "speaker") else None
        try:
            fresh = factory()
        except Exception:
            log.exception("could not rebuild the %s stage", stage)
            return None
        if old is not None and old is not fresh:
            with contextlib.suppress(Exception):
                old.close()
        setattr(self, stage, fresh)
        log.info("rebuilt the %s stage", stage)
        return fresh

    def _mute(self, turn: _Turn) -> None:
        """The voice of `turn` failed: drop its queued audio, let the text finish."""
        with self._lock:
            if turn.speaking and not turn.speech_done:
                turn.speech_done = True
                self._emit(SpeechFinished(interrupted=True, turn_id=turn.turn_id))
            _drain(self._play_q)
            # otherwise the reply stage finishes the turn when the text is complete
            if turn.generation_done:
                self._finish_turn(turn)

    # ---- capture and listen stages ----------------------------------------------------

    def _capture_loop(self) -> None:
        """Reads the microphone and forwards what the listen stage can use."""
        mic = self.microphone
        if mic is None:
            return
        if mic is not self._mic_started:
            mic.start()
            self._mic_started = mic
        while not self._stopping.is_set():
            chunk = mic.read(timeout=0.1)
            if self._flush_mic.is_set():
                self._flush_mic.clear()
                mic.flush()
                continue
            if chunk is None:
                if mic.exhausted:
                    time.sleep(0.05)
                continue
            if self._wants_audio():
                self._listen_q.put(chunk)

    def _wants_audio(self) -> bool:
        state = self.state
        if state == State.LISTENING:
            return True
        if state == State.IDLE:
            return self.wake is not None or self.settings.assistant.trigger == "hands-free"
        # THINKING / SPEAKING: half duplex unless the wake word may barge in
        return self.settings.audio.listen_while_speaking and self.wake is not None

    def _listen_loop(self) -> None:
        while True:
            item = self._listen_q.get()
            if item is None:
                return
            if isinstance(item, _StartListening):
                if not item.turn.cancel.is_set():
                    self._begin_listening(item.turn)
            elif isinstance(item, _EndOfInput):
                if item.turn is self._rec_turn:
                    self._end_listening(item.turn)
            elif isinstance(item, _TurnAudio):
                if item.turn is self._rec_turn:
                    self._hear(item.turn, item.chunk)
            elif isinstance(item, AudioChunk):
                turn = self._rec_turn
                if turn is not None and turn.trigger != "file":
                    self._hear(turn, item)
                elif turn is None:
                    self._idle_audio(item)

    def _begin_listening(self, turn: _Turn) -> None:
        recognizer = self._need_recognizer()
        recognizer.reset()
        self._rec_turn = turn
        self._busy["recognizer"] = turn
        if turn.trigger == "wake-word":  # (a "vad" turn's endpointer is mid-utterance)
            self._vad().reset()

    def _hear(self, turn: _Turn, chunk: AudioChunk, endpoint: bool = True) -> None:
        """Feed the recognizer; `endpoint` also feeds the endpointer (wake/VAD turns)."""
        if turn.cancel.is_set():
            self._stop_hearing()
            return
        recognizer = self._need_recognizer()
        self._emit(AudioLevel(_rms(chunk), turn_id=turn.turn_id))
        partial = recognizer.accept(chunk)
        if partial is not None and partial.text and partial.text != turn.last_partial:
            turn.last_partial = partial.text
            self._emit(PartialTranscript(partial.text, turn_id=turn.turn_id))
        turn.listened_seconds += chunk.seconds
        if endpoint and turn.trigger in ("wake-word", "vad"):
            ended = any(e.kind == VadEventKind.SPEECH_END for e in self._vad().process(chunk))
            too_long = turn.listened_seconds >= self.settings.vad.max_utterance_seconds
            if ended or too_long:
                with self._lock:
                    if turn.end_of_input_at is None:
                        turn.end_of_input_at = time.monotonic()
                self._end_listening(turn)

    def _end_listening(self, turn: _Turn) -> None:
        transcript = self._need_recognizer().finish()
        self._stop_hearing()
        with self._lock:
            if turn.end_of_input_at is None:
                turn.end_of_input_at = time.monotonic()
            if turn.cancel.is_set() or turn.finished:
                return
            self._beep(beeps.stop_beep)
            text = transcript.text.strip()
            if not text:
                self._emit(FinalTranscript("", turn_id=turn.turn_id))
                self._emit(Notice("I did not catch that; please try again.", "no-speech",
                                  turn_id=turn.turn_id))
                self._finish_turn(turn)
                return
            self._begin_reply(turn, text)

    def _stop_hearing(self) -> None:
        self._rec_turn = None
        self._busy.pop("recognizer", None)

    def _idle_audio(self, chunk: AudioChunk) -> None:
        """Audio outside a turn: the wake word, or speech starting in hands-free mode."""
        if self.wake is not None and self.state in (State.IDLE, State.THINKING, State.SPEAKING):
            self._listen_part = "wake"
            detected = self.wake.process(chunk)
            self._listen_part = "recognizer"
            if detected:
                self._start_voice_turn("wake-word", time.monotonic(), from_listener=True)
            return
        if self.settings.assistant.trigger == "hands-free" and self.state == State.IDLE:
            for event in self._vad().process(chunk):
                if event.kind == VadEventKind.SPEECH_START:
                    turn = self._start_voice_turn("vad", time.monotonic(), from_listener=True)
                    if turn is not None:  # pre-roll and speech so far: the first syllables
                        self._hear(turn, event.audio, endpoint=False)

    def _need_recognizer(self) -> SpeechRecognizer:
        if self.recognizer is None:
            raise SpeechError("no speech recognizer is available")
        return self.recognizer

    def _vad(self) -> Endpointer:
        if self._endpointer is None:
            v = self.settings.vad
            self._endpointer = Endpointer(
                self._need_recognizer().sample_rate, v.aggressiveness, v.energy_threshold,
                v.pre_roll_ms, v.end_silence_ms, max_utterance_seconds=v.max_utterance_seconds)
        return self._endpointer

    # ---- reply stage ------------------------------------------------------------------

    def _options(self) -> GenerationOptions:
        return GenerationOptions(**generation_defaults(self.settings))  # type: ignore[arg-type]

    def _reply_loop(self) -> None:
        if self._warm_up:
            self._warm_up = False  # once, not again after a restart
            self._busy["engine"] = None
            started = time.monotonic()
            messages = [*self.messages, ChatMessage("user", "Hello.")]
            for _ in self.engine.chat(messages, GenerationOptions(max_tokens=1)):
                pass
            log.info("engine warm-up took %.0f ms", (time.monotonic() - started) * 1000)
        while True:
            turn = self._reply_q.get()
            if turn is None:
                return
            if turn.stop_generating.is_set() or turn.finished:
                continue
            self._busy["engine"] = turn
            self._generate(turn)
            self._busy.pop("engine", None)

    def _generate(self, turn: _Turn) -> None:
        options = self._options()
        messages = fit_to_context(
            self.engine, [*self.messages, ChatMessage("user", turn.user_text)], options.max_tokens)
        speak = self._speech_out
        splitter = SentenceSplitter()
        for piece in self.engine.chat(messages, options, cancel=turn.stop_generating):
            # after a cancel the engine returns by itself at its next token check, which
            # leaves its stats complete; a piece already on its way is dropped
            if not piece or turn.stop_generating.is_set():
                continue
            with self._lock:
                if turn.finished:
                    continue
                if turn.first_token_at is None:
                    turn.first_token_at = time.monotonic()
                turn.reply.append(piece)
                self._emit(ReplyToken(piece, turn_id=turn.turn_id))
            if speak:
                for sentence in splitter.feed(piece):
                    self._synth_q.put((turn, sentence))
        turn.stats = self.engine.last_stats
        if speak and not turn.stop_generating.is_set():
            for sentence in splitter.flush():
                self._synth_q.put((turn, sentence))
        with self._lock:
            if turn.finished:
                return
            turn.generation_done = True
            interrupted = turn.stop_generating.is_set()
            self._emit(ReplyFinished(turn.reply_text, interrupted=interrupted,
                                     turn_id=turn.turn_id))
            if not speak or turn.speech_done:
                self._finish_turn(turn, interrupted=interrupted)
                return
        self._synth_q.put((turn, _REPLY_END))

    # ---- synthesis and playback stages ------------------------------------------------

    def _synth_loop(self) -> None:
        while True:
            item = self._synth_q.get()
            if item is None:
                return
            turn, payload = item
            if turn.cancel.is_set() or turn.finished:
                continue
            if payload is _REPLY_END:
                self._play_q.put((turn, _REPLY_END))
                continue
            if turn.stop_generating.is_set() or turn.speech_done or not self._speech_out:
                continue
            synthesizer = self.synthesizer
            if synthesizer is None:
                continue
            self._busy["synthesizer"] = turn
            for chunk in synthesizer.synthesize(str(payload), turn.cancel):
                if turn.cancel.is_set():
                    break
                with self._lock:
                    if turn.first_audio_at is None:
                        turn.first_audio_at = time.monotonic()
                self._play_q.put((turn, chunk))
            self._busy.pop("synthesizer", None)
            self._play_q.put((turn, _SENTENCE_END))

    def _play_loop(self) -> None:
        while True:
            item = self._play_q.get()
            if item is None:
                return
            turn, payload = item
            speaker = self.speaker
            if turn is None:  # a beep
                if speaker is not None and isinstance(payload, AudioChunk):
                    speaker.play(payload)
                continue
            if turn.cancel.is_set() or turn.finished:
                continue
            if payload is _REPLY_END:
                self._speech_ended(turn)
                continue
            if payload is _SENTENCE_END:
                if turn.stop_generating.is_set() and turn.speaking:
                    self._speech_ended(turn, interrupted=True)
                continue
            if speaker is None or turn.speech_done or not isinstance(payload, AudioChunk):
                continue
            with self._lock:
                if turn.cancel.is_set() or turn.finished:
                    continue
                if not turn.speaking:
                    turn.speaking = True
                    self._set_state(State.SPEAKING, turn)
                    self._emit(SpeechStarted(turn_id=turn.turn_id))
            self._busy["speaker"] = turn
            speaker.play(payload, turn.cancel)
            self._busy.pop("speaker", None)

    def _speech_ended(self, turn: _Turn, interrupted: bool = False) -> None:
        with self._lock:
            if turn.speaking and not turn.speech_done:
                turn.speech_done = True
                self._emit(SpeechFinished(interrupted=interrupted, turn_id=turn.turn_id))
            turn.speech_done = True
            if turn.generation_done or interrupted:
                self._finish_turn(turn, interrupted=interrupted)

    def _beep(self, make: Callable[[int], AudioChunk]) -> None:
        if self.settings.audio.beeps and self._speech_out and self.synthesizer is not None:
            self._play_q.put((None, make(self.synthesizer.sample_rate)))


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _give_free_memory_back() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`), once per
    turn: the engine, recognizer and voice free much of what a turn allocated, but glibc
    keeps it, and over a thousand turns that showed up as slow RSS growth (bench/soak.py).
    It takes a few milliseconds, after the reply."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _drain(q: queue.Queue[Any]) -> None:
    """Drop every queued item (but not the None that tells a stage to stop)."""
    kept_stop = False
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        kept_stop = kept_stop or item is None
    if kept_stop:
        q.put(None)


def _rms(chunk: AudioChunk) -> float:
    if chunk.frames == 0:
        return 0.0
    samples = chunk.to_float()
    return float(np.sqrt(np.mean(np.square(samples))))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EngineError | SpeechError):
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


