"""Timers a kitchen can trust: kept in SQLite across restarts, rung until silenced, several
at once, changed from another process (hearth timers cancel)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.events import Silenced
from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore, alarm_sound

START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Announcer:
    """Stands in for Assistant.announce/subscribe (the pipeline is tested elsewhere)."""

    synthesizer = None

    def __init__(self) -> None:
        self.said: list[str] = []
        self.sounds: list[object] = []
        self.callbacks: list = []

    def subscribe(self, callback) -> None:  # type: ignore[no-untyped-def]
        self.callbacks.append(callback)

    def announce(self, text: str, *, sound: object = None) -> None:
        self.said.append(text)
        self.sounds.append(sound)


MATCHER = IntentMatcher()


def skills_at(path: Path, clock: Clock) -> SkillSet:
    return SkillSet(MATCHER, TimerStore(path), clock=clock, ring_every_seconds=8,
                    ring_for_seconds=60)


def test_several_named_timers_ring_in_order_and_repeat_until_silenced(tmp_path: Path) -> None:
    clock = Clock()
    skills = skills_at(tmp_path / "h.sqlite3", clock)
    assert skills.answer("set a pasta timer for 10 minutes").slots["name"] == "pasta"
    assert skills.answer("set an egg timer for 6 minutes").slots["name"] == "egg"
    assert skills.answer("set a timer for 20 minutes") is not None
    service = skills.timers
    assert service is not None
    said: list[str] = []
    service._announce = lambda text, sound: said.append(text)  # as start() sets it
    clock.now += 5 * 60
    service.tick()
    assert said == []
    assert [t.name for t in service.snapshot()] == ["egg", "pasta", ""]
    clock.now += 61
    service.tick()
    assert said == ["Your egg timer is done."]
    clock.now += 4
    service.tick()
    assert said == ["Your egg timer is done."], "not again before ring_every_seconds"
    clock.now += 5
    service.tick()
    assert said == ["Your egg timer is done."] * 2, "rings again until silenced"
    silenced = service.silence()
    assert [t.name for t in silenced] == ["egg"]
    clock.now += 30
    service.tick()
    assert said == ["Your egg timer is done."] * 2
    status = skills.answer("how much time is left on the pasta timer")
    assert status is not None and status.text == (
        "The pasta timer has 3 minutes and 20 seconds left.")
    clock.now += 4 * 60
    service.tick()
    assert said[-1] == "Your pasta timer is done."


def test_a_timer_survives_a_restart_and_one_that_ended_meanwhile_is_announced(
        tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    clock = Clock()
    first = skills_at(path, clock)
    first.answer("set a pasta timer for 10 minutes")
    first.answer("set a timer for 2 hours")
    del first  # no close(): as after kill -9
    clock.now += 15 * 60  # Hearth was down while the pasta timer ended
    second = skills_at(path, clock)
    announcer = Announcer()
    assert second.timers is not None
    second.timers._started_at = clock.now
    second.timers._announce = lambda text, sound: announcer.announce(text, sound=sound)
    second.timers.tick()
    assert len(announcer.said) == 1
    assert announcer.said[0].startswith("Your pasta timer is done. It went off at ")
    assert announcer.said[0].endswith(", while Hearth was off.")
    left = [t for t in second.timers.snapshot() if t.state == "running"]
    assert [round(t.remaining(clock.now)) for t in left] == [105 * 60]


def test_silenced_event_and_stop_and_cancel_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    clock = Clock()
    skills = skills_at(path, clock)
    announcer = Announcer()
    skills.attach(announcer)  # starts the service thread: stop it, tick by hand
    assert skills.timers is not None
    skills.timers.stop()
    skills.answer("set a timer for 1 minute")
    skills.answer("set a tea timer for 2 minutes")
    clock.now += 60
    skills.timers.tick()
    assert announcer.said == ["Your 1 minute timer is done."]
    sound = announcer.sounds[0]
    assert sound is not None and sound.sample_rate == 22050, "no voice: still the sound"  # type: ignore[attr-defined]
    for callback in announcer.callbacks:
        callback(Silenced())  # push-to-talk, the GPIO button or Stop
    clock.now += 60
    skills.timers.tick()
    assert announcer.said[-1] == "Your tea timer is done."
    answer = skills.answer("stop")
    assert answer is not None and answer.intent == "HearthStop"
    assert answer.slots["silenced"] == "1"
    skills.answer("set an egg timer for 5 minutes")
    other = TimerStore(path)  # hearth timers cancel ID, in another process
    egg = next(t for t in other.active() if t.name == "egg")
    other.cancel(egg.id)
    skills.timers.tick()
    assert skills.timers.snapshot() == []
    assert skills.answer("how much time is left").text == "There are no timers running."


def test_pause_resume_add_and_take_time(tmp_path: Path) -> None:
    clock = Clock()
    skills = skills_at(tmp_path / "h.sqlite3", clock)
    skills.answer("set a rice timer for 20 minutes")
    clock.now += 5 * 60
    assert skills.answer("pause the timer").text == (
        "Okay, the rice timer is paused with 15 minutes left.")
    clock.now += 60 * 60
    assert skills.answer("resume the rice timer").text == (
        "Okay, the rice timer is running again with 15 minutes left.")
    assert skills.answer("add 2 minutes to the rice timer").text == (
        "Okay, I added 2 minutes. The rice timer has 17 minutes left.")
    assert skills.answer("take 30 seconds off the timer").text == (
        "Okay, I took off 30 seconds. The rice timer has 16 minutes and 30 seconds left.")
    skills.answer("set a timer for 3 minutes")
    which = skills.answer("cancel the timer")
    assert which is not None and which.text == (
        "You have 2 timers: 3 minute timer and rice timer. Say which one.")
    assert skills.answer("cancel the 3 minute timer").text == (
        "Okay, I cancelled the 3 minute timer.")
    assert skills.answer("cancel the pasta timer").text == "There is no pasta timer."


def test_an_unanswered_timer_stops_ringing_after_ring_for_seconds(tmp_path: Path) -> None:
    clock = Clock()
    skills = skills_at(tmp_path / "h.sqlite3", clock)
    skills.answer("set a timer for 10 seconds")
    said: list[str] = []
    assert skills.timers is not None
    skills.timers._announce = lambda text, sound: said.append(text)
    for _ in range(20):
        clock.now += 10
        skills.timers.tick()
    assert 5 <= len(said) <= 9  # every 8 s for the 60 s it may ring
    assert skills.timers.store.active() == []


def test_alarms_and_reminders_go_off_with_their_own_words(tmp_path: Path) -> None:
    clock = Clock()
    skills = skills_at(tmp_path / "h.sqlite3", clock)
    reminder = skills.answer("remind me to take my pills in 5 minutes")
    assert reminder is not None and reminder.text == (
        "Okay, I'll remind you to take your pills in 5 minutes.")
    alarm = skills.answer("set an alarm for 6 pm")
    assert alarm is not None
    zh = skills.answer("十分钟后提醒我关火")
    assert zh is not None and zh.text == "好的，10分钟后提醒你关火。"
    said: list[str] = []
    assert skills.timers is not None
    skills.timers._announce = lambda text, sound: said.append(text)
    clock.now += 5 * 60
    skills.timers.tick()
    clock.now += 5 * 60
    skills.timers.tick()
    assert said[:2] == ["Reminder: take your pills.", "提醒：关火。"]
    skills.timers.silence()
    at = skills.store.get(int(alarm.slots["timer_id"])).ends_at  # type: ignore[union-attr]
    clock.now = at
    skills.timers.tick()
    assert said[-1].startswith("It's 6 o'clock in the evening. This is your alarm.")


def test_the_service_thread_rings_in_real_time(tmp_path: Path) -> None:
    skills = SkillSet(MATCHER, TimerStore(tmp_path / "h.sqlite3"), ring_every_seconds=60)
    announcer = Announcer()
    announcer.synthesizer = type("Voice", (), {"sample_rate": 16000})()
    rang = threading.Event()
    announce = announcer.announce

    def announce_and_tell(text: str, *, sound: object = None) -> None:
        announce(text, sound=sound)
        rang.set()

    announcer.announce = announce_and_tell  # type: ignore[method-assign]
    skills.attach(announcer)
    try:
        skills.answer("set a timer for 1 second")
        started = time.monotonic()
        assert rang.wait(5), "the timer did not ring"
        assert time.monotonic() - started >= 0.9
        assert announcer.said == ["Your 1 second timer is done."]
        sound = announcer.sounds[0]
        assert sound is not None and sound.sample_rate == 16000  # type: ignore[attr-defined]
    finally:
        skills.close()


def test_alarm_sound_is_audible_and_short() -> None:
    sound = alarm_sound(22050)
    assert 0.8 < sound.seconds < 2.0
    assert abs(sound.samples).max() > 5000


def test_looking_for_timers_creates_no_database(tmp_path: Path) -> None:
    store = TimerStore(tmp_path / "none.sqlite3")
    assert store.active() == [] and store.due(START) == []
    assert not (tmp_path / "none.sqlite3").exists()
    store.add(kind="timer", ends_at=START)
    assert (tmp_path / "none.sqlite3").exists()


def test_a_timer_that_cannot_be_saved_is_said_so(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    skills = SkillSet(MATCHER, TimerStore(blocked / "h.sqlite3"))  # its folder is a file
    answer = skills.answer("set a pasta timer for 10 minutes")
    assert answer is not None and answer.intent == "HassStartTimer"
    assert answer.text.startswith("Sorry, I could not keep that timer: cannot open the timer "
                                  "database")


def test_a_timer_ringing_when_hearth_died_rings_again_after_the_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    clock = Clock()
    first = skills_at(path, clock)
    first.answer("set a tea timer for 1 minute")
    assert first.timers is not None
    first.timers._announce = lambda text, sound: None
    clock.now += 61
    first.timers.tick()  # rings; then the process is killed before anyone silences it
    assert first.store.ringing() != []  # type: ignore[union-attr]
    clock.now += 120
    second = skills_at(path, clock)
    said: list[str] = []
    assert second.timers is not None
    second.timers._started_at = clock.now
    second.timers._announce = lambda text, sound: said.append(text)
    second.timers.tick()
    assert len(said) == 1 and said[0].startswith("Your tea timer is done. It went off at ")
