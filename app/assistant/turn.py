"""Turns and the ledger that keeps them: who is current, what phase each is in, and the
events and metrics their lives produce.

`TurnLedger` holds the pipeline's lock and the assistant's `State` machine. Its methods
are the only places a turn changes: each takes the lock, updates the turn and emits the
events. It does no I/O, so a control action that needs the lock never waits on disk.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.assistant.state import StateMachine
from app.events import (
    Code,
    Event,
    FinalTranscript,
    Notice,
    ReplyFinished,
    ReplyToken,
    SpeechFinished,
    SpeechStarted,
    State,
    TurnMetrics,
    TurnStarted,
)
from engine.base import GenerationStats
from engine.conversation import Conversation


class Trigger(enum.StrEnum):
    """What started a turn (the `TurnStarted.trigger` strings)."""

    PUSH_TO_TALK = "push-to-talk"
    WAKE_WORD = "wake-word"
    VAD = "vad"
    """Hands-free: speech detected while idle."""
    TEXT = "text"
    FILE = "file"

    @property
    def endpointed(self) -> bool:
        """The end of the question is found by the voice-activity endpointer."""
        return self in (Trigger.WAKE_WORD, Trigger.VAD)

    @property
    def listens(self) -> bool:
        """The question is spoken (into the microphone or a file), not typed."""
        return self is not Trigger.TEXT

    @property
    def live(self) -> bool:
        """The question comes from the microphone."""
        return self.listens and self is not Trigger.FILE


class Phase(enum.Enum):
    """Where a turn's question and reply text are."""

    LISTENING = "listening"
    THINKING = "thinking"
    """The question is known; the reply is being written."""
    ANSWERED = "answered"
    """The reply text is complete (its voice may still be speaking)."""
    FINISHED = "finished"
    """Closed: final events and metrics sent, conversation memory updated."""


class Voice(enum.Enum):
    """Where a turn's spoken reply is."""

    QUIET = "quiet"
    SPEAKING = "speaking"
    DONE = "done"
    """Spoken, stopped, or given up (the voice failed)."""


@dataclass(eq=False)
class Turn:
    """Everything the stages share about one turn (changed only by `TurnLedger`)."""

    turn_id: int
    trigger: Trigger
    cancel: threading.Event = field(default_factory=threading.Event)
    """Hard stop: generation, synthesis and playback stop at the next token/chunk."""
    stop_generating: threading.Event = field(default_factory=threading.Event)
    """Soft stop (shutdown): no new text or sentences; the sentence being spoken ends."""
    phase: Phase = Phase.LISTENING
    voice: Voice = Voice.QUIET
    user_text: str = ""
    reply: list[str] = field(default_factory=list)
    end_of_input_at: float | None = None
    final_at: float | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None
    listened_seconds: float = 0.0
    last_partial: str = ""
    pause_transcript: str = ""
    """Set by the listen stage: the recognizer's transcript of everything said before the
    current pause, once a decode that covers the speech up to the pause has arrived; ""
    while the person speaks or before that decode arrives. The reply stage drafts a reply
    from it (reply.py); the final transcript normally equals it when the pause ends the
    turn."""
    stats: GenerationStats | None = None

    @property
    def finished(self) -> bool:
        return self.phase is Phase.FINISHED

    @property
    def reply_text(self) -> str:
        return "".join(self.reply)


class TurnLedger:
    """The current turn and the assistant state, changed under one lock.

    `emit` delivers events (it must not block); `stats_in_progress` gives the engine's
    stats of a reply that is cut short; `on_idle` runs when the state returns to IDLE.
    """

    def __init__(self, conversation: Conversation, emit: Callable[[Event], None],
                 stats_in_progress: Callable[[], GenerationStats | None],
                 on_idle: Callable[[], None]) -> None:
        self.conversation = conversation
        self.lock = threading.RLock()
        self.current: Turn | None = None
        self.closing = False
        """Shutting down: no new turns."""
        self._emit = emit
        self._stats_in_progress = stats_in_progress
        self._on_idle = on_idle
        self._machine = StateMachine()
        self._next_id = 1

    @property
    def state(self) -> State:
        return self._machine.state

    def begin(self, trigger: Trigger, at: float) -> Turn | None:
        """A new current turn (the one in progress is closed as interrupted, without
        passing via IDLE); None while shutting down, or when a live spoken turn is asked
        for while one is already listening (a second press changes nothing)."""
        with self.lock:
            if self.closing:
                return None
            current = self.current
            if current is not None:
                if trigger.live and self.state == State.LISTENING:
                    return None
                self.finish(current, interrupted=True, replaced=True)
            turn = Turn(self._next_id, trigger)
            self._next_id += 1
            self.current = turn
            self._emit(TurnStarted(trigger, turn_id=turn.turn_id, timestamp=at))
            if trigger.listens:
                self._set_state(State.LISTENING, turn)
            return turn

    def end_of_input(self, turn: Turn, at: float) -> None:
        """The user stopped speaking at `at` (kept if already known)."""
        with self.lock:
            if turn.end_of_input_at is None:
                turn.end_of_input_at = at

    def question(self, turn: Turn, text: str) -> bool:
        """The question is known; False when the turn was cancelled meanwhile. An empty
        question (nothing was heard) tells the user and closes the turn."""
        with self.lock:
            if turn.end_of_input_at is None:
                turn.end_of_input_at = time.monotonic()
            if turn.cancel.is_set() or turn.finished:
                return False
            turn.final_at = time.monotonic()
            self._emit(FinalTranscript(text, turn_id=turn.turn_id, timestamp=turn.final_at))
            if not text:
                self._emit(Notice("I did not catch that; please try again.", Code.NO_SPEECH,
                                  turn_id=turn.turn_id))
                self.finish(turn)
                return False
            turn.user_text = text
            turn.phase = Phase.THINKING
            self._set_state(State.THINKING, turn)
            return True

    def reply_piece(self, turn: Turn, piece: str) -> bool:
        """A piece of the reply was written; False when the turn is already closed."""
        with self.lock:
            if turn.finished:
                return False
            if turn.first_token_at is None:
                turn.first_token_at = time.monotonic()
            turn.reply.append(piece)
            self._emit(ReplyToken(piece, turn_id=turn.turn_id))
            return True

    def answered(self, turn: Turn, stats: GenerationStats | None, *, spoken: bool) -> bool:
        """The reply text is complete. Closes the turn when nothing is left to say (or
        `spoken` is False); True when the voice still has to end it."""
        with self.lock:
            turn.stats = stats
            if turn.finished:
                return False
            turn.phase = Phase.ANSWERED
            interrupted = turn.stop_generating.is_set()
            self._emit(ReplyFinished(turn.reply_text, interrupted=interrupted,
                                     turn_id=turn.turn_id))
            if not spoken or turn.voice is Voice.DONE:
                self.finish(turn, interrupted=interrupted)
                return False
            return True

    def first_audio(self, turn: Turn) -> None:
        """Audio of the reply is ready for the speaker."""
        with self.lock:
            if turn.first_audio_at is None:
                turn.first_audio_at = time.monotonic()

    def speech_started(self, turn: Turn) -> bool:
        """Reply audio goes to the speaker (the first starts SPEAKING); False when the
        turn or its voice is over."""
        with self.lock:
            if turn.cancel.is_set() or turn.finished or turn.voice is Voice.DONE:
                return False
            if turn.voice is Voice.QUIET:
                turn.voice = Voice.SPEAKING
                self._set_state(State.SPEAKING, turn)
                self._emit(SpeechStarted(turn_id=turn.turn_id))
            return True

    def speech_ended(self, turn: Turn, *, interrupted: bool = False) -> None:
        """The voice is done with `turn`: closes it once its text is complete too."""
        with self.lock:
            self._voice_done(turn, interrupted)
            if turn.phase is Phase.ANSWERED or interrupted:
                self.finish(turn, interrupted=interrupted)

    def mute(self, turn: Turn) -> None:
        """The voice of `turn` failed: the text goes on, or closes the turn if complete."""
        with self.lock:
            if turn.voice is Voice.SPEAKING:
                self._voice_done(turn, interrupted=True)
            if turn.phase is Phase.ANSWERED:
                self.finish(turn)

    def finish(self, turn: Turn, *, interrupted: bool = False, error: str = "",
               replaced: bool = False) -> None:
        """Close a turn once: final events, metrics, conversation memory.

        `replaced`: a new turn takes over at once, so the state does not pass via IDLE."""
        with self.lock:
            if turn.finished:
                return
            if turn.user_text and turn.phase is Phase.THINKING:
                self._emit(ReplyFinished(turn.reply_text, interrupted=True,
                                         turn_id=turn.turn_id))
            turn.phase = Phase.FINISHED
            if turn.voice is Voice.SPEAKING:
                self._voice_done(turn, interrupted)
            if turn.user_text:
                self._emit(self._metrics(turn, interrupted, error))
                if turn.reply_text.strip():
                    self.conversation.add(turn.user_text, turn.reply_text.strip())
            if self.current is turn:
                self.current = None
                if replaced:
                    return
                if error:
                    self._set_state(State.ERROR, turn)
                self._set_state(State.IDLE, turn)
                self._on_idle()

    def _voice_done(self, turn: Turn, interrupted: bool) -> None:
        if turn.voice is Voice.SPEAKING:
            self._emit(SpeechFinished(interrupted=interrupted, turn_id=turn.turn_id))
        turn.voice = Voice.DONE

    def _metrics(self, turn: Turn, interrupted: bool, error: str) -> TurnMetrics:
        now = time.monotonic()
        start = turn.end_of_input_at or turn.final_at or now

        def since(t: float | None) -> float:
            return round((t - start) * 1000.0, 1) if t is not None else 0.0

        stats = turn.stats
        if stats is None and turn.first_token_at is not None:
            stats = self._stats_in_progress()  # cut short: the call in progress
        return TurnMetrics(
            stt_final_ms=since(turn.final_at),
            first_token_ms=since(turn.first_token_at),
            first_audio_ms=since(turn.first_audio_at),
            total_ms=since(now),
            prompt_tokens=stats.prompt_tokens if stats else 0,
            generated_tokens=stats.generated_tokens if stats else len(turn.reply),
            tokens_per_second=round(stats.decode_tokens_per_second, 2) if stats else 0.0,
            interrupted=interrupted, error=error, turn_id=turn.turn_id, timestamp=now)

    def _set_state(self, state: State, turn: Turn) -> None:
        event = self._machine.change(state, turn.turn_id)
        if event is not None:
            self._emit(event)
