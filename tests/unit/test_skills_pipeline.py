"""The skills inside the assistant's pipeline (its stages are the fakes of tests/fakes.py;
the skills are real): a skill answer comes after its IntentMatched event and is spoken;
a timer that ends while the engine is answering another question is announced — alarm
sound, then the message — during that turn, which still ends normally."""

from __future__ import annotations

import time
from pathlib import Path

from app.assistant.pipeline import Assistant
from app.events import Announcement, IntentMatched, ReplyFinished, ReplyToken, TurnMetrics
from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore, alarm_sound
from tests.fakes import RATE, EventLog, FakeEngine, FakeSpeaker, FakeSynthesizer, fake_settings

STORY = " ".join(f"This is sentence number {n} of a long story." for n in range(1, 16))


def test_a_timer_rings_during_another_answer(tmp_path: Path) -> None:
    skills = SkillSet(IntentMatcher(), TimerStore(tmp_path / "t.sqlite3"),
                      ring_every_seconds=60)
    synthesizer = FakeSynthesizer(chunk_seconds=0.08)
    speaker = FakeSpeaker(speed=1.0)
    engine = FakeEngine([STORY], token_seconds=0.02)
    assistant = Assistant(fake_settings(), engine=engine, recognizer=None,
                          synthesizer=synthesizer, speaker=speaker, warm_up=False,
                          skills=skills)
    skills.attach(assistant)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    try:
        assistant.submit_text("set a timer for 1 second")
        log.wait_count(TurnMetrics, 1, timeout=10)
        kinds = [type(e) for e in log.events if e.turn_id == 1]
        assert kinds.index(IntentMatched) < kinds.index(ReplyToken)
        assert synthesizer.sentences == ["Okay, timer set for 1 second."]
        assistant.submit_text("tell me a long story")
        log.wait_count(Announcement, 1, timeout=10)
        assert assistant.state.value in ("thinking", "speaking"), "rang during the story"
        log.wait_count(TurnMetrics, 2, timeout=60)
        story = [e for e in log.of(ReplyFinished) if e.turn_id == 2]
        assert story and not story[0].interrupted and story[0].text == STORY
        assert "Your 1 second timer is done." in synthesizer.sentences
        deadline = time.monotonic() + 5
        sound = alarm_sound(RATE).frames
        while not any(p.chunk.frames == sound for p in speaker.played):
            assert time.monotonic() < deadline, "the alarm sound was not played"
            time.sleep(0.05)
    finally:
        assistant.shutdown()
        skills.close()


def test_a_running_assistant_builds_the_unit_registry_before_the_first_unit_question(
        tmp_path: Path) -> None:
    """pint's registry takes a few hundred milliseconds to build (more on a Pi): attached
    to an assistant, the skills build it in the background, not in the first unit
    question's turn."""
    skills = SkillSet(IntentMatcher(languages=("en",)), TimerStore(tmp_path / "t.sqlite3"))
    assert skills._converter._registry is None  # nothing built it yet
    assistant = Assistant(fake_settings(), engine=FakeEngine(), recognizer=None,
                          synthesizer=FakeSynthesizer(), speaker=FakeSpeaker(), warm_up=False,
                          skills=skills)
    skills.attach(assistant)
    try:
        deadline = time.monotonic() + 30
        while skills._converter._registry is None:
            assert time.monotonic() < deadline, "the unit registry was never built"
            time.sleep(0.05)
        answer = skills.answer("how many grams in a pound")
        assert answer is not None and answer.text == "1 pound is 453.59 grams."
    finally:
        assistant.shutdown()
        skills.close()
