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

In a pause (`Turn.pause_transcript`: what was said before it, as the recognizer heard
it), such an engine goes further and drafts the reply (preemptive generation, as in
LiveKit Agents): it writes until the first sentence the voice would speak is complete,
and the voice synthesizes that sentence but holds it back (`VoiceStage.hold`). When
the question is then asked with the same prompt (the same words: the final transcript
may be punctuated otherwise), the draft's pieces are emitted at once, its audio is
released to the speaker, and the same generation goes on: nothing is written twice.
No draft is begun for what a skill claims (`Skills.claims`, which does not act). When
the person goes on speaking, the question differs, a skill answers it or the turn is
stopped, the draft is dropped unseen: no events, no history, no audio. Drafting
stops at the first sentence, and only pauses are drafted, never each partial
transcript: the recognizer needs the CPU then too.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.assistant.frames import Question, ReplyItem, Stop
from app.assistant.stage import Stage
from app.assistant.turn import Phase, Turn, TurnLedger
from app.assistant.voice import HeldSpeech, VoiceStage
from app.config import Settings
from app.events import Event, IntentMatched
from app.generation import generation_options
from engine.base import ChatEngine, ChatMessage, GenerationOptions, GenerationStats
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

    def claims(self, text: str) -> bool:
        """Whether `answer(text)` may answer, found without acting (no reply is drafted
        for it)."""

    def close(self) -> None:
        """Release what the skills hold (a timer thread, a database); the assistant calls
        it when it is closed."""


class _DraftCancel(threading.Event):
    """A draft's cancel token: set when the draft is dropped, or when its turn stops
    generating (the engine checks it before every token, like a turn's own)."""

    def __init__(self, turn_stop: threading.Event) -> None:
        super().__init__()
        self._turn_stop = turn_stop

    def is_set(self) -> bool:
        return super().is_set() or self._turn_stop.is_set()


@dataclass(eq=False)
class _Draft:
    """A reply being written ahead, from what was said before a pause."""

    turn: Turn
    heard: str
    """The pause transcript it answers."""
    messages: list[ChatMessage]
    """Its prompt: the question's must be the same (but for punctuation) to use it."""
    cancel: _DraftCancel
    pieces: Iterator[str]
    """The engine's generation, paused after the first sentence."""
    splitter: SentenceSplitter = field(default_factory=SentenceSplitter)
    written: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    """Sentences complete so far (the first is held by the voice)."""
    held: HeldSpeech | None = None
    ended: bool = False
    """The generation is over: the reply is whole."""
    started_at: float = field(default_factory=time.monotonic)

    @property
    def ready(self) -> bool:
        """Drafting goes no further: a sentence to speak is there, or the reply ended."""
        return self.ended or bool(self.sentences)


def same_words(heard: str, question: str) -> bool:
    """Whether two transcripts say the same words: the recognizer's decode in the pause
    and its final one may differ in punctuation or case ("What color is the sky?" /
    "What color is the sky."), and a reply drafted for one answers the other."""

    def words(text: str) -> list[str]:
        return re.findall(r"\w+(?:'\w+)*", text.casefold())

    return words(heard) == words(question)


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
        self._prefilled: tuple[int, str] = (0, "")
        """The turn id and heard text whose prompt was last evaluated ahead."""
        self._draft: _Draft | None = None
        """The reply drafted for the listening turn (only this thread touches it)."""

    def ask(self, turn: Turn) -> None:
        self.q.put(Question(turn))

    def run(self) -> None:
        if self._warm_up:
            self._warm_up = False  # once, not again after a restart
            self._warm_up_engine()
        try:
            while True:
                item = self._next_item()
                if item is None:
                    continue
                if isinstance(item, Stop):
                    return
                turn = item.turn
                if turn.stop_generating.is_set() or turn.finished:
                    continue
                self.engine.busy = turn
                self._answer(turn)
                self.engine.busy = None
        finally:  # shutdown or a failure: no generation may stay open (it holds the engine)
            self._drop_draft()

    def _next_item(self) -> ReplyItem | None:
        """The next question (or `Stop`); None after a step of thinking ahead instead."""
        if not isinstance(self.engine.component, Prefilling):
            return self.q.get()
        try:
            if self._draft is not None and not self._draft.ready:
                return self.q.get_nowait()  # a question may come between two tokens
            return self.q.get(timeout=PREFILL_POLL_SECONDS)
        except queue.Empty:
            self._think_ahead()
            return None

    def _warm_up_engine(self) -> None:
        """Evaluate the system prompt now, so the first turn finds it in the cache."""
        engine = self._engine()
        started = time.monotonic()
        with self.ledger.lock:
            messages = [*self.ledger.conversation.messages, ChatMessage("user", "Hello.")]
        for _ in engine.chat(messages, generation_options(self.settings, max_tokens=1)):
            pass
        log.info("engine warm-up took %.0f ms", (time.monotonic() - started) * 1000)

    def _think_ahead(self) -> None:
        """One step ahead of the listening turn: drop a draft that no longer fits, go on
        with the one that does, start one in a pause, or else evaluate the prompt of what
        has been heard so far."""
        turn = self.ledger.current
        draft = self._draft
        if draft is not None and not self._still_wanted(draft, turn):
            self._drop_draft()
            draft = None
        if draft is not None:
            if not draft.ready:  # (also once the question is known: it is on its way)
                self._write_draft(draft)
            return
        if turn is None or turn.phase is not Phase.LISTENING:
            return
        heard = turn.pause_transcript
        if heard and not trails_off(heard) and not self._skills_claim(heard):
            self._start_draft(turn, heard)
        else:
            self._prefill_heard(turn)

    @staticmethod
    def _still_wanted(draft: _Draft, turn: Turn | None) -> bool:
        """The draft may still be the reply: its turn goes on and, while listening, is
        in the same pause (after it, the question decides)."""
        return (turn is draft.turn and not draft.cancel.is_set() and not turn.finished
                and (turn.phase is not Phase.LISTENING or turn.pause_transcript == draft.heard))

    def _start_draft(self, turn: Turn, heard: str) -> None:
        engine = self._engine()
        try:
            messages, options = self._messages(engine, heard)
        except EngineError as exc:  # the question itself will meet it and say so
            log.debug("no draft for %r: %s", heard, exc)
            return
        cancel = _DraftCancel(turn.stop_generating)
        pieces = iter(engine.chat(messages, options, cancel=cancel))
        self._draft = _Draft(turn, heard, messages, cancel, pieces)
        self._prefilled = (turn.turn_id, heard)  # the draft evaluates that prompt
        log.debug("drafting a reply to %r", heard)
        self._write_draft(self._draft)

    def _write_draft(self, draft: _Draft) -> None:
        """One more piece of the draft; the first complete sentence goes to the voice,
        held back."""
        self.engine.busy = draft.turn
        try:
            piece = next(draft.pieces, None)
        except EngineError as exc:  # the question will meet it again, and say so
            log.debug("the draft for %r failed: %s", draft.heard, exc)
            self.engine.busy = None
            self._drop_draft()
            return
        self.engine.busy = None
        if draft.cancel.is_set():  # the engine stopped early: not a reply to use
            self._drop_draft()
            return
        if piece is None:
            draft.ended = True
            draft.sentences += draft.splitter.flush()
        elif piece:
            draft.written.append(piece)
            draft.sentences += draft.splitter.feed(piece)
        if draft.sentences and draft.held is None and self.voice.output:
            draft.held = self.voice.hold(draft.turn, draft.sentences[0])

    def _drop_draft(self) -> None:
        """Stop and forget the draft: its generation ends (freeing the engine), its held
        audio is never played."""
        draft, self._draft = self._draft, None
        if draft is None:
            return
        log.debug("dropped the draft for %r", draft.heard)
        draft.cancel.set()
        if draft.held is not None:
            self.voice.drop(draft.held)
        if isinstance(draft.pieces, Generator):
            draft.pieces.close()

    def _take_draft(self, turn: Turn, messages: list[ChatMessage]) -> _Draft | None:
        """The draft, when it answers this question (the same words, maybe punctuated
        otherwise) after the same conversation; otherwise it is dropped."""
        draft = self._draft
        if draft is not None and draft.turn is turn and not draft.cancel.is_set() \
                and draft.messages[:-1] == messages[:-1] \
                and same_words(draft.messages[-1].content, messages[-1].content):
            self._draft = None
            log.debug("the draft for %r is the reply (begun %.0f ms before the question, "
                      "%d pieces written, first sentence %s)", draft.heard,
                      (time.monotonic() - draft.started_at) * 1000, len(draft.written),
                      "synthesized" if draft.held is not None and draft.held.synthesized
                      else "written" if draft.sentences else "not yet written")
            return draft
        if draft is not None:
            log.debug("the question %r is not the draft's %r", turn.user_text, draft.heard)
        self._drop_draft()
        return None

    def _prefill_heard(self, turn: Turn) -> None:
        """Evaluate the prompt of what the listening turn has heard, unless it trails off."""
        engine = self.engine.component
        if not isinstance(engine, Prefilling):
            return
        heard = turn.last_partial
        if (turn.turn_id, heard) == self._prefilled or trails_off(heard):
            return
        self._prefilled = (turn.turn_id, heard)
        started = time.monotonic()
        self.engine.busy = turn
        try:
            evaluated = engine.prefill(self._messages(engine, heard)[0])
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
            self._drop_draft()
            self._emit(IntentMatched(skill.intent, dict(skill.slots), turn_id=turn.turn_id))
            self._stream(turn, [skill.text], lambda: GenerationStats())
            return
        engine = self._engine()
        messages, options = self._messages(engine, turn.user_text)
        draft = self._take_draft(turn, messages)
        if draft is not None:
            self._stream(turn, draft.pieces, lambda: engine.last_stats, draft)
            return
        # after a cancel the engine returns by itself at its next token check, which
        # leaves its stats complete
        pieces = engine.chat(messages, options, cancel=turn.stop_generating)
        self._stream(turn, pieces, lambda: engine.last_stats)

    def _messages(self, engine: ChatEngine, text: str
                  ) -> tuple[list[ChatMessage], GenerationOptions]:
        """The conversation so far and `text` as the user's turn, fitted to `engine`'s
        context (EngineError when it cannot be), with the generation options."""
        options = generation_options(self.settings)
        with self.ledger.lock:
            prompt = self.ledger.conversation.prompt(text)
        return fit_to_context(engine, prompt, options.max_tokens), options

    def _skills_claim(self, heard: str) -> bool:
        """A skill will answer `heard`: a draft would be wasted (and its voice, busy with
        it, would keep the skill's answer waiting)."""
        if self.skills is None:
            return False
        try:
            return self.skills.claims(heard)
        except Exception:  # the question will meet it again, and say so
            log.exception("the skills failed on %r", heard)
            return True

    def _skill_answer(self, turn: Turn) -> SkillAnswer | None:
        if self.skills is None:
            return None
        try:
            return self.skills.answer(turn.user_text)
        except Exception:  # a broken skill must not cost the answer: the engine gives it
            log.exception("the skills failed on %r", turn.user_text)
            return None

    def _stream(self, turn: Turn, pieces: Iterable[str],
                stats: Callable[[], GenerationStats | None], draft: _Draft | None = None
                ) -> None:
        """Emit the reply's pieces and say its sentences; a `draft` (already written)
        comes first, its held sentence released, and `pieces` goes on where it stopped."""
        speak = self.voice.output
        splitter = SentenceSplitter() if draft is None else draft.splitter
        if draft is not None:
            self._emit_draft(turn, draft, speak)
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

    def _emit_draft(self, turn: Turn, draft: _Draft, speak: bool) -> None:
        for piece in draft.written:
            if turn.stop_generating.is_set() or not self.ledger.reply_piece(turn, piece):
                break
        unsaid = draft.sentences
        if draft.held is not None:
            if speak:
                self.voice.release(draft.held)
            else:
                self.voice.drop(draft.held)
            unsaid = unsaid[1:]
        if speak:
            for sentence in unsaid:
                self.voice.say(turn, sentence)

    def _engine(self) -> ChatEngine:
        engine = self.engine.component
        if engine is None:
            raise RuntimeError("no language model is loaded")
        return engine
