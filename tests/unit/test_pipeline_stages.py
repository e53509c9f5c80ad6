"""The assistant's stages with fakes: control actions never wait on the history, skills
answer before the engine, announcements, the silence event, conversation memory in
blocks, the event codes and the generation options."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from app.assistant.pipeline import Assistant
from app.assistant.reply import SkillAnswer
from app.config import replace
from app.events import (
    Announcement,
    Code,
    ErrorEvent,
    IntentMatched,
    Notice,
    ReplyFinished,
    ReplyToken,
    Silenced,
    SpeechStarted,
    State,
    TurnMetrics,
    TurnStarted,
)
from app.generation import generation_options
from engine.base import GenerationOptions
from speech.audio import AudioChunk
from tests.fakes import (
    RATE,
    BlockingHistory,
    EventLog,
    FakeEngine,
    FakeSkills,
    FakeSpeaker,
    FakeSynthesizer,
    Stages,
    fake_settings,
    run_pipeline,
)

TIME = SkillAnswer("It is noon. Enjoy your lunch.", "HassGetCurrentTime", {})
LONG_REPLY = " ".join(f"Sentence number {i} of a long answer." for i in range(30))


def started(stages: Stages, settings: Any = None, **kw: Any) -> tuple[Assistant, EventLog]:
    assistant = Assistant(settings or fake_settings(), engine=stages.engine,
                          recognizer=stages.recognizer, synthesizer=stages.synthesizer,
                          microphone=stages.microphone, speaker=stages.speaker,
                          skills=stages.skills, warm_up=False, **kw)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    return assistant, log


def call_in_thread(action: Any) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(5.0)  # a guard against hanging the suite, not a measurement
    return thread


def test_push_to_talk_returns_while_a_history_write_is_blocked() -> None:
    """The GUI thread never waits on disk: the turn is written on the event thread."""
    history = BlockingHistory()
    stages = Stages(engine=FakeEngine(["Fine."]))
    assistant, log = started(stages, history=history)
    try:
        history.blocked.set()
        assistant.submit_text("hello")
        assert history.writing.wait(5), "the question was never written"
        pressed = call_in_thread(assistant.push_to_talk_pressed)
        assert not pressed.is_alive(), "push_to_talk_pressed waited for the history write"
        assert history.writing.is_set() and not history.release.is_set()
        assert assistant.state == State.LISTENING
        stopped = call_in_thread(assistant.cancel)
        assert not stopped.is_alive() and history.writing.is_set()
    finally:
        history.release.set()
        assistant.shutdown()
    assert [r["user_text"] for r in history.rows] == ["hello"]
    assert log.of(Silenced), "push-to-talk and Stop are silence actions"


def test_a_turn_finishing_during_a_slow_write_is_still_stored_complete() -> None:
    history = BlockingHistory()
    history.blocked.set()
    threading.Timer(0.3, history.release.set).start()
    stages = Stages(engine=FakeEngine(["One.", "Two."]), history=history)  # type: ignore[arg-type]
    run_pipeline([("text", "first"), ("wait", TurnMetrics), ("text", "second"),
                  ("wait", TurnMetrics, 2)], stages)
    assert [(r["user_text"], r["reply"], r["complete"]) for r in history.rows] == [
        ("first", "One.", True), ("second", "Two.", True)]


def test_a_skill_answers_before_the_engine_and_is_spoken_and_remembered() -> None:
    stages = Stages(skills=FakeSkills({"what time is it": TIME}),
                    engine=FakeEngine(["From the model."]))
    events = run_pipeline([("text", "what time is it"), ("wait", TurnMetrics),
                           ("text", "tell me a joke"), ("wait", TurnMetrics, 2)], stages)
    matched = [e for e in events if isinstance(e, IntentMatched)]
    assert [(m.intent, m.turn_id) for m in matched] == [("HassGetCurrentTime", 1)]
    first_token = next(i for i, e in enumerate(events) if isinstance(e, ReplyToken))
    assert events.index(matched[0]) < first_token
    assert [e.text for e in events if isinstance(e, ReplyFinished)] == [TIME.text,
                                                                         "From the model."]
    assert stages.synthesizer.sentences[:2] == ["It is noon.", "Enjoy your lunch."]
    assert len(stages.engine.calls) == 1  # the skill's turn never reached the engine
    assert [m.content for m in stages.engine.calls[0][-3:]] == [
        "what time is it", TIME.text, "tell me a joke"]
    assert stages.skills.asked == ["what time is it", "tell me a joke"]


def test_closing_the_assistant_closes_the_skills() -> None:
    stages = Stages(skills=FakeSkills())
    assistant, _ = started(stages)
    assistant.close()
    assert stages.skills.closed


def test_failing_skills_leave_the_answer_to_the_engine() -> None:
    stages = Stages(skills=FakeSkills(fail=True), engine=FakeEngine(["Model answer."]))
    events = run_pipeline([("text", "hi"), ("wait", TurnMetrics)], stages)
    assert [e.text for e in events if isinstance(e, ReplyFinished)] == ["Model answer."]
    assert not [e for e in events if isinstance(e, ErrorEvent | IntentMatched)]


def test_an_announcement_plays_its_sound_then_its_text_while_idle() -> None:
    stages = Stages(speaker=FakeSpeaker(speed=0.1))
    assistant, log = started(stages)
    sound = AudioChunk.silence(0.37, RATE)
    try:
        assistant.announce("Your pasta timer is done.", sound=sound)
        log.wait_count(Announcement)
        for _ in range(500):
            if len(stages.speaker.played) >= 3:
                break
            time.sleep(0.01)
    finally:
        assistant.shutdown()
    assert [e.text for e in log.of(Announcement)] == ["Your pasta timer is done."]
    assert stages.speaker.played[0].chunk is sound
    assert len(stages.speaker.played) == 3  # the sound, then the two chunks of speech
    assert stages.synthesizer.sentences == ["Your pasta timer is done."]
    assert assistant.state == State.IDLE and not log.of(SpeechStarted)


def test_with_text_only_replies_an_announcement_still_plays_its_sound() -> None:
    stages = Stages(speaker=FakeSpeaker(speed=0.1))
    assistant, log = started(stages, fake_settings(tts={"enabled": False}))
    sound = AudioChunk.silence(0.37, RATE)
    try:
        assistant.announce("Your alarm.", sound=sound)
        for _ in range(500):
            if stages.speaker.played:
                break
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        assistant.shutdown()
    assert [p.chunk for p in stages.speaker.played] == [sound]
    assert stages.synthesizer.sentences == []
    assert [e.text for e in log.of(Announcement)] == ["Your alarm."]


def test_an_announcement_during_a_reply_waits_for_the_sentence_being_spoken() -> None:
    synthesizer = FakeSynthesizer(chunk_seconds=0.05, chunks_per_sentence=2)
    stages = Stages(engine=FakeEngine([LONG_REPLY], token_seconds=0.002),
                    synthesizer=synthesizer, speaker=FakeSpeaker(speed=1.0))
    assistant, log = started(stages)
    sound = AudioChunk.silence(0.37, RATE)
    try:
        assistant.submit_text("talk")
        log.wait_count(SpeechStarted)
        assistant.announce("The timer is done.", sound=sound)
        log.wait_count(TurnMetrics, timeout=30)
    finally:
        assistant.shutdown()
    played = [p.chunk for p in stages.speaker.played]
    at = next(i for i, chunk in enumerate(played) if chunk is sound)
    assert at % 2 == 0, "the announcement cut into a sentence"
    assert 0 < at < len(played) - 3, "it waited for the whole reply"
    assert len(played) == 2 * 30 + 3  # every sentence still spoken, plus the announcement
    assert not log.of(TurnMetrics)[0].interrupted


def wait_until_synthesized(synthesizer: FakeSynthesizer) -> None:
    for _ in range(500):
        if synthesizer.sentences:
            break
        time.sleep(0.01)
    time.sleep(0.2)  # playing now


def test_push_to_talk_silences_an_announcement() -> None:
    stages = Stages(speaker=FakeSpeaker(speed=1.0),
                    synthesizer=FakeSynthesizer(chunk_seconds=1.0, chunks_per_sentence=3))
    assistant, log = started(stages)
    try:
        assistant.announce("Wake up.")
        wait_until_synthesized(stages.synthesizer)
        assistant.push_to_talk_pressed()
        log.wait_count(Silenced)
        time.sleep(0.1)
    finally:
        assistant.shutdown()
    assert stages.speaker.stops, "the speaker was not stopped"
    assert stages.speaker.played[0].cancelled and len(stages.speaker.played) == 1


@pytest.mark.parametrize("action", ["press", "stop"])
def test_a_press_or_stop_silences_an_announcement_still_being_synthesized(
        action: str) -> None:
    synthesizer = FakeSynthesizer(chunk_seconds=0.2, chunks_per_sentence=2,
                                  delay_seconds=0.3)
    stages = Stages(speaker=FakeSpeaker(speed=0.1), synthesizer=synthesizer)
    assistant, log = started(stages)
    try:
        assistant.announce("Wake up.")
        for _ in range(500):
            if synthesizer.sentences:
                break  # its synthesis has begun (each chunk takes 0.3 s)
            time.sleep(0.01)
        if action == "press":
            assistant.push_to_talk_pressed()
        else:
            assistant.cancel()
        log.wait_count(Silenced)
        time.sleep(1.0)  # the synthesis would have ended and the playback begun
    finally:
        assistant.shutdown()
    assert synthesizer.sentences == ["Wake up."]
    assert stages.speaker.played == [], "the silenced announcement was played"


def test_hands_free_listening_ignores_an_announcement() -> None:
    stages = Stages(speaker=FakeSpeaker(speed=1.0),
                    synthesizer=FakeSynthesizer(chunk_seconds=0.5, chunks_per_sentence=2))
    assistant, log = started(stages, fake_settings(assistant={"trigger": "hands-free"}))
    try:
        assistant.announce("The timer is done.")
        wait_until_synthesized(stages.synthesizer)
        stages.microphone.say(0.6)  # Hearth's own voice, heard back
        time.sleep(1.2)
    finally:
        assistant.shutdown()
    assert not log.of(TurnStarted)


def test_voice_memory_drops_old_turns_in_blocks() -> None:
    """With max_history_turns = 4 the prompt's start moves every other turn (blocks of 2),
    not on every turn, so an engine's prompt cache stays valid in between."""
    settings = fake_settings(assistant={"max_history_turns": 4})
    stages = Stages(engine=FakeEngine([f"Answer {i}." for i in range(12)]), synthesizer=None,
                    speaker=None, microphone=None)
    steps = [step for i in range(12) for step in (("text", f"q{i}"), ("wait", TurnMetrics, i + 1))]
    run_pipeline(steps, stages, settings)
    firsts = [next(m.content for m in call if m.role == "user") for call in stages.engine.calls]
    earlier = [sum(m.role == "user" for m in call) - 1 for call in stages.engine.calls]
    assert earlier == [0, 1, 2, 3, 4, 3, 4, 3, 4, 3, 4, 3]
    assert sum(a != b for a, b in itertools.pairwise(firsts[4:])) == 4  # of 7 turns


def test_codes_are_an_enum_that_compares_with_its_strings() -> None:
    assert ErrorEvent("x", "tts-failed").code is Code.TTS_FAILED
    assert Notice("x", Code.MICROPHONE_BACK).code == "microphone-back"
    assert Notice("x").code is Code.NOTICE
    with pytest.raises(ValueError):
        ErrorEvent("x", "no-such-code")


def test_generation_options_come_from_the_settings_with_overrides() -> None:
    settings = replace(fake_settings(), "engine", temperature=0.3, max_tokens=99, seed=-1)
    assert generation_options(settings) == GenerationOptions(
        max_tokens=99, temperature=0.3, top_k=settings.engine.top_k,
        top_p=settings.engine.top_p, min_p=settings.engine.min_p,
        repeat_penalty=settings.engine.repeat_penalty, seed=None)
    changed = generation_options(settings, max_tokens=1, temperature=None, seed=5)
    assert (changed.max_tokens, changed.temperature, changed.seed) == (1, 0.3, 5)
    with pytest.raises(TypeError, match="tokens_max"):
        generation_options(settings, tokens_max=3)
