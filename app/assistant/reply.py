"""The reply stage: skills first, then the language model; the reply streams out piece
by piece and each finished sentence goes to the voice while the rest is written.

A `Skills` object (see `app.skills`) answers what it understands in Hearth's own words
(the time, a timer, arithmetic); its answer is streamed like the model's, after an
`IntentMatched` event. Anything else goes to the engine, with the conversation so far.

While a turn is still listening, an engine that can (`Prefilling`: llama.cpp) evaluates
the prompt of what has been heard so far as soon as it does not trail off
(`speech.sentences.trails_off`), e.g. in the silence that ends the question: the
reply's own prompt then shares all but its last few tokens with it, and the first token
comes sooner. Skills are not asked then (an answer may act, e.g. start a timer).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.assistant.frames import Question, ReplyItem, Stop
from app.assistant.stage import Stage
from app.assistant.turn import Phase, Turn, TurnLedger
from app.assistant.voice import VoiceStage
from app.config import Settings
from app.events import Event, IntentMatched
from app.generation import generation_options
from engine.base import ChatEngine, ChatMessage, GenerationStats
from engine.conversation import fit_to_context
from engine.errors import EngineError
from speech.sentences import SentenceSplitter, trails_off

log = logging.getLogger(__name__)

PREFILL_POLL_SECONDS = 0.03
"""How often the idle reply thread looks at what the listening turn has heard."""


@runtime_checkable
class Prefilling(Protocol):
    """An engine that can evaluate a prompt ahead of the `chat()` that will use it."""

    def prefill(self, messages: Sequence[ChatMessage]) -> int:
        """Evaluate `messages`' prompt into the cache; the number of tokens evaluated."""


@dataclass(frozen=True)
class SkillAnswer:
    text: str
    """What Hearth says, in its own words."""
    intent: str
    """E.g. "HassGetCurrentTime", "HearthArithmetic"."""
    slots: Mapping[str, str]
    """E.g. {"name": "pasta", "duration_seconds": "600"}."""


class Skills(Protocol):
    def answer(self, text: str) -> SkillAnswer | None:
        """The answer to `text`, or None when the engine should answer."""

    def close(self) -> None:
        """Release what the skills hold (a timer thread, a database); the assistant calls
        it when it is closed."""


class ReplyStage:
    """Answers each `Question` from its queue, on its own thread."""

    def __init__(self, settings: Settings, ledger: TurnLedger, emit: Callable[[Event], None],
                 engine: Stage[ChatEngine], voice: VoiceStage, skills: Skills | None,
                 *, warm_up: bool) -> None:
        self.settings = settings
        self.ledger = ledger
        self.engine = engine
        self.voice = voice
        self.skills = skills
        self.q: queue.Queue[ReplyItem] = queue.Queue()
        self._emit = emit
        self._warm_up = warm_up
        self._prefilled = ""
        """The heard text whose prompt was last evaluated ahead."""

    def ask(self, turn: Turn) -> None:
        self.q.put(Question(turn))

    def run(self) -> None:
        if self._warm_up:
            self._warm_up = False  # once, not again after a restart
            self._warm_up_engine()
        while True:
            prefilling = isinstance(self.engine.component, Prefilling)
            try:
                item = self.q.get(timeout=PREFILL_POLL_SECONDS if prefilling else None)
            except queue.Empty:
                self._prefill_heard()
                continue
            if isinstance(item, Stop):
                return
            turn = item.turn
            if turn.stop_generating.is_set() or turn.finished:
                continue
            self.engine.busy = turn
            self._answer(turn)
            self.engine.busy = None

    def _warm_up_engine(self) -> None:
        """Evaluate the system prompt now, so the first turn finds it in the cache."""
        engine = self._engine()
        started = time.monotonic()
        with self.ledger.lock:
            messages = [*self.ledger.conversation.messages, ChatMessage("user", "Hello.")]
        for _ in engine.chat(messages, generation_options(self.settings, max_tokens=1)):
            pass
        log.info("engine warm-up took %.0f ms", (time.monotonic() - started) * 1000)

    def _prefill_heard(self) -> None:
        """Evaluate the prompt of what the listening turn has heard, unless it trails off."""
        turn = self.ledger.current
        engine = self.engine.component
        if turn is None or turn.phase is not Phase.LISTENING or not isinstance(engine,
                                                                                Prefilling):
            return
        heard = turn.last_partial
        if heard == self._prefilled or trails_off(heard):
            return
        self._prefilled = heard
        options = generation_options(self.settings)
        with self.ledger.lock:
            prompt = self.ledger.conversation.prompt(heard)
        started = time.monotonic()
        self.engine.busy = turn
        try:
            evaluated = engine.prefill(fit_to_context(engine, prompt, options.max_tokens))
        except EngineError as exc:  # the question itself will meet it and say so
            log.debug("no prefill of %r: %s", heard, exc)
            return
        finally:
            self.engine.busy = None
        log.debug("prefilled %d tokens of %r in %.0f ms", evaluated, heard,
                  (time.monotonic() - started) * 1000)

    def _answer(self, turn: Turn) -> None:
        skill = self._skill_answer(turn)
        if skill is not None:
            self._emit(IntentMatched(skill.intent, dict(skill.slots), turn_id=turn.turn_id))
            self._stream(turn, [skill.text], lambda: GenerationStats())
            return
        engine = self._engine()
        options = generation_options(self.settings)
        with self.ledger.lock:
            prompt = self.ledger.conversation.prompt(turn.user_text)
        messages = fit_to_context(engine, prompt, options.max_tokens)
        # after a cancel the engine returns by itself at its next token check, which
        # leaves its stats complete
        pieces = engine.chat(messages, options, cancel=turn.stop_generating)
        self._stream(turn, pieces, lambda: engine.last_stats)

    def _skill_answer(self, turn: Turn) -> SkillAnswer | None:
        if self.skills is None:
            return None
        try:
            return self.skills.answer(turn.user_text)
        except Exception:  # a broken skill must not cost the answer: the engine gives it
            log.exception("the skills failed on %r", turn.user_text)
            return None

    def _stream(self, turn: Turn, pieces: Iterable[str],
                stats: Callable[[], GenerationStats | None]) -> None:
        speak = self.voice.output
        splitter = SentenceSplitter()
        for piece in pieces:
            # a piece already on its way when the turn was stopped is dropped
            if not piece or turn.stop_generating.is_set():
                continue
            if not self.ledger.reply_piece(turn, piece):
                continue
            if speak:
                for sentence in splitter.feed(piece):
                    self.voice.say(turn, sentence)
        if speak and not turn.stop_generating.is_set():
            for sentence in splitter.flush():
                self.voice.say(turn, sentence)
        if self.ledger.answered(turn, stats(), spoken=speak):
            self.voice.end_reply(turn)

    def _engine(self) -> ChatEngine:
        engine = self.engine.component
        if engine is None:
            raise RuntimeError("no language model is loaded")
        return engine
