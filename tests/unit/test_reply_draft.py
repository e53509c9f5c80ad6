"""A reply drafted in the pause before the question ends (reply.py's preemptive
generation), ordering with fakes: used as it is when the question is what was drafted
(nothing written twice, its held first sentence heard first), dropped unseen and
unheard when the question differs, the person goes on, a skill answers, or the turn
is cancelled or shut down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pytest

from app.assistant import beeps
from app.assistant.frames import Stop
from app.assistant.reply import ReplyStage, SkillAnswer, same_words
from app.assistant.stage import Stage
from app.assistant.turn import Trigger, Turn, TurnLedger
from app.assistant.voice import VoiceStage
from app.config import settings_from_dict
from app.events import (
    Code,
    FinalTranscript,
    IntentMatched,
    ReplyFinished,
    ReplyToken,
    TurnMetrics,
)
from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore
from engine.base import ChatEngine, ChatMessage, GenerationOptions
from engine.conversation import Conversation
from speech.audio import AudioChunk
from tests.fakes import (
    RATE,
    EventLog,
    FakeEngine,
    FakeRecognizer,
    FakeSkills,
    FakeSpeaker,
    FakeSynthesizer,
    Stages,
    fake_settings,
    run_pipeline,
)

QUESTION = "What is the capital of France?"
REPLY = "Paris is the capital of France. It is on the Seine."
OTHER_REPLY = "Paris and Madrid are both capitals. Both are old."


class _DraftingEngine(FakeEngine):
    """A fake llama.cpp: evaluates prompts ahead (`prefill`), and holds one lock for a
    whole generation, as the real one does; counts every piece it writes and every
    generation still open, and notes any overlap (a chat or prefill while one is open)."""

    def __init__(self, replies: Sequence[str], token_seconds: float = 0.01) -> None:
        super().__init__(replies=replies, token_seconds=token_seconds)
        self.written: list[tuple[int, str]] = []
        self.open = 0
        self.closed_early = 0
        self.overlaps = 0
        self.first_written_at = 0.0
        self._lock = threading.Lock()

    def prefill(self, messages: Sequence[ChatMessage]) -> int:
        if not self._lock.acquire(blocking=False):
            self.overlaps += 1
            return 0
        self._lock.release()
        return 1

    def chat(self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None,
             cancel: threading.Event | None = None) -> Iterator[str]:
        if not self._lock.acquire(blocking=False):
            self.overlaps += 1
            return
        self.open += 1
        inner = super().chat(messages, options, cancel)
        finished = False
        try:
            for piece in inner:
                self.written.append((len(self.calls), piece))
                self.first_written_at = self.first_written_at or time.monotonic()
                yield piece
            finished = True
        finally:
            self.closed_early += not finished
            self.open -= 1
            self._lock.release()


class _TaggedSynthesizer(FakeSynthesizer):
    """Each sentence's chunks carry its number (1, 2, ... in synthesis order) in every
    sample, so what the speaker played can be traced to its sentence."""

    def synthesize(self, text: str, cancel: threading.Event | None = None
                   ) -> Iterator[AudioChunk]:
        self.sentences.append(text)
        tag = len(self.sentences)
        for _ in range(self.chunks_per_sentence):
            if cancel is not None and cancel.is_set():
                return
            if self.delay_seconds:
                time.sleep(self.delay_seconds)
            yield AudioChunk(np.full(round(self.chunk_seconds * RATE), tag, np.int16), RATE)


E = TypeVar("E", bound=ChatEngine)


class Rig(Generic[E]):
    """The reply and voice stages on their threads, a ledger, a fake voice and speaker;
    the test plays the listen stage (begins the turn, sets what was heard, asks the
    question). `engine_settings`: the `[engine]` section."""

    def __init__(self, engine: E, skills: FakeSkills | None = None,
                 engine_settings: dict[str, Any] | None = None, beeps: bool = False) -> None:
        self.engine = engine
        self.events = EventLog()
        settings = settings_from_dict({"audio": {"beeps": beeps},
                                       "engine": engine_settings or {}})
        self.ledger = TurnLedger(Conversation("You are Hearth.", max_turns=4), self.events,
                                 lambda: engine.last_stats, lambda: None)
        self.synthesizer = _TaggedSynthesizer(chunk_seconds=0.05)
        self.speaker = FakeSpeaker(speed=0.2)
        self.voice = VoiceStage(
            settings, self.ledger,
            Stage("synthesizer", Code.TTS_FAILED, "The voice", "synth", None, self.synthesizer),
            Stage("speaker", Code.SPEAKER_FAILED, "The speaker", "play", None, self.speaker),
            output=True)
        self.reply = ReplyStage(
            settings, self.ledger, self.events,
            Stage("engine", Code.ENGINE_FAILED, "The language model", "engine", None, engine),
            self.voice, skills, warm_up=False)
        self.threads = [threading.Thread(target=body, daemon=True) for body in
                        (self.reply.run, self.voice.run_synthesis, self.voice.run_playback)]
        for thread in self.threads:
            thread.start()

    def listen(self, heard_before_pause: str) -> Turn:
        turn = self.ledger.begin(Trigger.VAD, time.monotonic())
        assert turn is not None
        turn.last_partial = turn.pause_transcript = heard_before_pause
        return turn

    def ask(self, turn: Turn, question: str) -> float:
        """The pause ended the turn with `question`; when it was asked."""
        self.ledger.end_of_input(turn, time.monotonic())
        asked = time.monotonic()
        assert self.ledger.question(turn, question)
        self.reply.ask(turn)
        return asked

    def cancel(self, turn: Turn) -> None:
        """What the Stop button does (`Assistant._interrupt`)."""
        turn.cancel.set()
        turn.stop_generating.set()
        self.voice.silence(turn)
        self.ledger.finish(turn, interrupted=True)

    def stop(self) -> None:
        self.reply.q.put(Stop())
        self.voice.stop()
        for thread in self.threads:
            thread.join(5)

    def spoken(self) -> list[str]:
        """The sentences the speaker played, in order (each once)."""
        tags = [int(p.chunk.samples[0]) for p in self.speaker.played]
        return [self.synthesizer.sentences[tag - 1] for tag in dict.fromkeys(tags)]

    def tokens(self) -> str:
        return "".join(e.text for e in self.events.of(ReplyToken))


def until(test: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.005)


MakeRig = Callable[..., Rig[_DraftingEngine]]


@pytest.fixture
def rig_factory() -> Iterator[MakeRig]:
    rigs: list[Rig[_DraftingEngine]] = []

    def make(engine: _DraftingEngine, skills: FakeSkills | None = None,
             beeps: bool = False) -> Rig[_DraftingEngine]:
        rigs.append(Rig(engine, skills, beeps=beeps))
        return rigs[-1]

    yield make
    for rig in rigs:
        rig.stop()


def test_the_draft_is_the_reply_when_the_question_is_what_was_drafted(
        rig_factory: MakeRig) -> None:
    rig = rig_factory(_DraftingEngine([REPLY]))
    turn = rig.listen(QUESTION)
    # in the pause: the first sentence is written and synthesized, nothing is shown or heard
    until(lambda: rig.synthesizer.sentences == ["Paris is the capital of France."])
    time.sleep(0.1)
    # the first sentence is known to end at the next word: drafting stops there
    assert [piece for _, piece in rig.engine.written][-2:] == [" France.", " It"]
    assert rig.events.of(ReplyToken) == [] and rig.speaker.played == []
    asked = rig.ask(turn, QUESTION)
    rig.events.wait_count(TurnMetrics)
    assert rig.engine.calls and len(rig.engine.calls) == 1  # nothing written twice
    assert [piece for _, piece in rig.engine.written] == [e.text for e in
                                                          rig.events.of(ReplyToken)]
    assert rig.tokens() == REPLY
    assert rig.spoken() == ["Paris is the capital of France.", "It is on the Seine."]
    assert rig.speaker.played[0].started >= asked
    assert rig.engine.open == 0 and rig.engine.overlaps == 0
    [metrics] = rig.events.of(TurnMetrics)
    assert metrics.first_audio_ms > 0 and not metrics.interrupted


def test_a_draft_for_another_question_is_dropped_unseen(
        rig_factory: MakeRig) -> None:
    rig = rig_factory(_DraftingEngine([REPLY, OTHER_REPLY]))
    turn = rig.listen(QUESTION)
    until(lambda: rig.synthesizer.sentences == ["Paris is the capital of France."])
    rig.ask(turn, "What are the capitals of France and Spain?")
    rig.events.wait_count(TurnMetrics)
    assert len(rig.engine.calls) == 2 and rig.engine.closed_early == 1
    assert rig.tokens() == OTHER_REPLY
    assert [e.text for e in rig.events.of(ReplyFinished)] == [OTHER_REPLY]
    assert rig.spoken() == ["Paris and Madrid are both capitals.", "Both are old."]
    assert rig.engine.open == 0 and rig.engine.overlaps == 0


def test_the_draft_is_dropped_when_the_person_goes_on(rig_factory: MakeRig) -> None:
    rig = rig_factory(_DraftingEngine([REPLY, OTHER_REPLY]))
    turn = rig.listen(QUESTION)
    until(lambda: len(rig.engine.written) >= 2)
    turn.pause_transcript = ""  # speaking again
    until(lambda: rig.engine.closed_early == 1)
    assert rig.engine.open == 0
    turn.last_partial = "What is the capital of France and"  # trails off: no new draft
    time.sleep(0.15)
    assert len(rig.engine.calls) == 1
    rig.ask(turn, "What is the capital of France and of Spain?")
    rig.events.wait_count(TurnMetrics)
    assert rig.tokens() == OTHER_REPLY
    assert "Paris is the capital of France." not in rig.spoken()
    assert rig.engine.overlaps == 0


def test_a_skill_answer_drops_the_draft(rig_factory: MakeRig) -> None:
    skills = FakeSkills({"What time is it now?": SkillAnswer("It is noon.",
                                                             "HassGetCurrentTime", {})})
    rig = rig_factory(_DraftingEngine(["It is time to sleep. Good night."]), skills)
    turn = rig.listen("What time is it?")
    until(lambda: rig.synthesizer.sentences == ["It is time to sleep."])
    assert skills.asked == []  # a skill may act: it is asked only the question
    rig.ask(turn, "What time is it now?")
    rig.events.wait_count(TurnMetrics)
    assert skills.asked == ["What time is it now?"] and len(rig.events.of(IntentMatched)) == 1
    assert rig.tokens() == "It is noon."
    assert rig.spoken() == ["It is noon."]
    assert rig.engine.closed_early == 1 and rig.engine.open == 0


def test_no_draft_is_begun_for_what_a_skill_claims(rig_factory: MakeRig) -> None:
    skills = FakeSkills({"What time is it?": SkillAnswer("It is noon.", "HassGetCurrentTime",
                                                         {})})
    rig = rig_factory(_DraftingEngine(["It is time to sleep. Good night."]), skills)
    turn = rig.listen("What time is it?")
    time.sleep(0.2)
    assert rig.engine.calls == [] and rig.synthesizer.sentences == []
    rig.ask(turn, "What time is it?")
    rig.events.wait_count(TurnMetrics)
    assert skills.asked == ["What time is it?"] and rig.spoken() == ["It is noon."]


def test_the_skills_claim_what_they_answer(tmp_path: Path) -> None:
    skills = SkillSet(IntentMatcher(), TimerStore(tmp_path / "timers.sqlite3"))
    try:
        assert skills.claims("What time is it?")
        assert skills.claims("Set a timer for ten minutes.")
        assert not skills.claims("What is the capital of France?")
        assert skills.store.active() == []  # claiming set no timer
    finally:
        skills.close()


def test_a_cancelled_turn_leaves_no_draft_behind(rig_factory: MakeRig) -> None:
    rig = rig_factory(_DraftingEngine([REPLY, OTHER_REPLY]))
    turn = rig.listen(QUESTION)
    until(lambda: rig.synthesizer.sentences == ["Paris is the capital of France."])
    rig.cancel(turn)
    until(lambda: rig.engine.open == 0)
    assert rig.engine.closed_early == 1
    # the next turn is answered as usual (the engine is free), and only it is heard
    turn = rig.listen("")
    rig.ask(turn, "And Spain?")
    rig.events.wait_count(TurnMetrics)  # (the cancelled turn asked nothing: no metrics)
    assert rig.events.of(ReplyToken) and rig.tokens() == OTHER_REPLY
    assert rig.spoken() == ["Paris and Madrid are both capitals.", "Both are old."]
    assert rig.engine.overlaps == 0


def test_shutdown_while_drafting_ends_the_generation(rig_factory: MakeRig) -> None:
    rig = rig_factory(_DraftingEngine([REPLY], token_seconds=0.05))
    rig.listen(QUESTION)
    until(lambda: len(rig.engine.written) >= 1)
    rig.stop()
    assert rig.engine.open == 0 and rig.engine.closed_early == 1
    assert rig.events.of(ReplyToken) == [] and rig.speaker.played == []


def test_the_stop_beep_gives_way_to_a_held_reply(rig_factory: MakeRig) -> None:
    """The stop beep at the end of the question would delay the drafted reply's audio,
    which is ready: it is not played."""
    rig = rig_factory(_DraftingEngine([REPLY]), beeps=True)
    turn = rig.listen(QUESTION)
    until(lambda: rig.synthesizer.sentences == ["Paris is the capital of France."])
    rig.voice.beep(beeps.stop_beep)
    rig.ask(turn, QUESTION)
    rig.events.wait_count(TurnMetrics)
    assert len(rig.speaker.played) == 2 * rig.synthesizer.chunks_per_sentence  # no beep
    assert rig.spoken() == ["Paris is the capital of France.", "It is on the Seine."]


def test_a_draft_answers_the_same_words_punctuated_otherwise(rig_factory: MakeRig) -> None:
    """Whisper's decode in the pause and its final one may differ in punctuation."""
    assert same_words("What colors the sky?", "what colors the sky.")
    assert same_words("It's noon, isn't it?", "It's noon isn't it")
    assert not same_words("What colors the sky?", "What colors the sea?")
    assert not same_words("Set a timer.", "Set a timer for")
    rig = rig_factory(_DraftingEngine([REPLY]))
    turn = rig.listen(QUESTION)
    until(lambda: rig.synthesizer.sentences == ["Paris is the capital of France."])
    rig.ask(turn, QUESTION.lower().rstrip("?") + ".")
    rig.events.wait_count(TurnMetrics)
    assert len(rig.engine.calls) == 1 and rig.tokens() == REPLY


def test_a_hands_free_question_is_answered_by_its_draft() -> None:
    """The whole pipeline with fakes: the listen stage's pause transcript starts the draft
    in the silence that ends the question, and the question continues it."""
    engine = _DraftingEngine(["It is noon. Have a nice day."])
    stages = Stages(engine=engine, recognizer=FakeRecognizer(("What time is it?",)))
    silence_in_real_time = [("pause", 0.03), ("sleep", 0.03)] * 40
    events = run_pipeline([("pause", 0.3), ("say", 0.6), *silence_in_real_time,
                           ("wait", TurnMetrics)],
                          stages, fake_settings(assistant={"trigger": "hands-free"}))
    [final] = [e for e in events if isinstance(e, FinalTranscript)]
    assert final.text == "What time is it?"
    assert 0 < engine.first_written_at < final.timestamp  # written in the pause
    assert len(engine.calls) == 1 and engine.overlaps == 0
    assert "".join(e.text for e in events if isinstance(e, ReplyToken)) == \
        "It is noon. Have a nice day."


def test_a_sentence_held_for_a_turn_that_ended_does_not_silence_later_beeps() -> None:
    """A held sentence whose turn ended before its synthesis began is never released:
    it must not stay listed as speech about to be played (beeps give way to that)."""
    settings = settings_from_dict({"audio": {"beeps": True}})
    ledger = TurnLedger(Conversation("You are Hearth.", max_turns=4), EventLog(),
                        lambda: None, lambda: None)
    speaker = FakeSpeaker(speed=0.2)
    voice = VoiceStage(
        settings, ledger,
        Stage("synthesizer", Code.TTS_FAILED, "The voice", "synth", None,
              _TaggedSynthesizer(chunk_seconds=0.05)),
        Stage("speaker", Code.SPEAKER_FAILED, "The speaker", "play", None, speaker),
        output=True)
    turn = ledger.begin(Trigger.VAD, time.monotonic())
    assert turn is not None
    voice.hold(turn, "Paris is the capital of France.")
    ledger.finish(turn)
    voice.synth_q.put(Stop())
    voice.run_synthesis()  # the held sentence, then Stop
    voice.beep(beeps.stop_beep)
    voice.play_q.put(Stop())
    voice.run_playback()
    assert len(speaker.played) == 1  # the beep, and nothing of the held sentence
