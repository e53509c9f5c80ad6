"""Skills end to end, the way a person uses Hearth: requests spoken by the bundled voice
(Piper) go through `hearth ask --wav` and give the exact time (here and in Tokyo), the
right timer and the date of next Friday; a timer survives `kill -9` of `hearth headless`
and is announced after the restart as having gone off while Hearth was down."""

from __future__ import annotations

import json
import signal
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.skills.when import next_weekday
from app.skills.wording import Responses
from tests.acceptance.conftest import HEARTH, Home, Terminal, run_hearth

pytestmark = pytest.mark.slow

CLOCK = Responses.load("en")


def speak(home: Home, text: str) -> Path:
    wav = home.path / f"{abs(hash(text))}.wav"
    said = run_hearth(["say", text, "--out", str(wav)], home)
    assert said.returncode == 0 and wav.stat().st_size > 10_000, said.stderr
    return wav


def ask_wav(home: Home, wav: Path) -> dict[str, object]:
    done = run_hearth(["ask", "--wav", str(wav), "--json"], home, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_spoken_requests_give_the_exact_time_and_start_the_right_timer(tmp_path: Path) -> None:
    home = Home(tmp_path)
    time_wav = speak(home, "What time is it?")
    before = datetime.now()
    result = ask_wav(home, time_wav)
    after = datetime.now()
    assert result["intent"] == {"name": "HassGetCurrentTime",
                                "slots": {"time": result["intent"]["slots"]["time"]}}  # type: ignore[index]
    assert result["reply"] in {f"It's {CLOCK.clock(at)}." for at in (before, after)}, result
    assert result["reply_audio_seconds"] > 0.5, "the answer was spoken"

    timer_wav = speak(home, "Set a pasta timer for ten minutes.")
    result = ask_wav(home, timer_wav)
    intent = result["intent"]
    assert isinstance(intent, dict) and intent["name"] == "HassStartTimer", result
    assert intent["slots"]["duration_seconds"] == "600" and intent["slots"]["name"] == "pasta"
    assert result["reply"] == "Okay, pasta timer set for 10 minutes."
    listed = run_hearth(["timers", "list", "--json"], home)
    timers = json.loads(listed.stdout)
    assert [(t["kind"], t["name"], t["state"]) for t in timers] == [("timer", "pasta",
                                                                      "running")]
    assert 540 < timers[0]["remaining_seconds"] <= 600

    general = ask_wav(home, speak(home, "What is the capital of France?"))
    assert general["intent"] is None, "a general question goes to the language model"


def test_a_spoken_calendar_question_gets_the_date_not_the_language_model(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path)
    wav = speak(home, "What date is next Friday?")
    days = {next_weekday(date.today(), 4)}
    result = ask_wav(home, wav)
    days.add(next_weekday(date.today(), 4))  # the day may turn during the question
    intent = result["intent"]
    assert isinstance(intent, dict) and intent["name"] == "HearthDayDate", result
    assert intent["slots"]["date"] in {d.isoformat() for d in days}
    assert result["reply"] in {f"Next Friday is {CLOCK.day_of_month(d)}." for d in days} | {
        f"Next Friday is {CLOCK.day_of_month(d, year=True)}." for d in days}, result


def test_a_spoken_question_about_the_time_elsewhere_gets_that_zone_s_time(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path)
    wav = speak(home, "What time is it in Tokyo?")
    before = datetime.now(ZoneInfo("Asia/Tokyo"))
    result = ask_wav(home, wav)
    after = datetime.now(ZoneInfo("Asia/Tokyo"))
    intent = result["intent"]
    assert isinstance(intent, dict) and intent["name"] == "HearthTimeIn", result
    assert intent["slots"]["zone"] == "Asia/Tokyo"
    # with Tokyo's weekday when it is not today's here
    replies = {f"In Tokyo it's {CLOCK.clock(at)}{end}" for at in (before, after)
               for end in (".", f" on {CLOCK.weekday_name(at.weekday())}.")}
    assert result["reply"] in replies, result


def test_a_timer_survives_kill_9_and_rings_after_the_restart(tmp_path: Path) -> None:
    home = Home(tmp_path)
    first = Terminal([str(HEARTH), "-v", "headless"], cwd=home.path, env=home.env)
    try:
        first.expect(r"(?i)typed questions", timeout=120)
        first.type("set a pasta timer for 8 seconds\n")
        first.expect(r"Okay, pasta timer set for 8 seconds\.", timeout=60)
        first.type("set a rice timer for 10 minutes\n")
        first.expect(r"Okay, rice timer set for 10 minutes\.", timeout=60)
        first.expect(r"timers: timer \d+ \(pasta\) 0:0\d left", timeout=60)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        first.close()
    time.sleep(9)  # the pasta timer ends while Hearth is down (if it did not ring before)
    listed = json.loads(run_hearth(["timers", "list", "--json"], home).stdout)
    assert [t["name"] for t in listed] == ["pasta", "rice"]
    assert listed[0]["state"] in ("running", "ringing") and listed[1]["state"] == "running"
    second = Terminal([str(HEARTH), "-v", "headless"], cwd=home.path, env=home.env)
    try:
        second.expect(r"announcing: Your pasta timer is done\. It went off at .+, while "
                      r"Hearth was off\.", timeout=120)
        second.type("how much time is left on the rice timer\n")
        left = second.expect(r"The rice timer has 9 minutes and (\d+) seconds left\.",
                             timeout=60)
        assert 0 <= int(left.group(1)) < 60
        second.type("stop\n")
        second.expect(r"you: stop", timeout=60)
        assert second.stop(signal.SIGTERM) == 0
    finally:
        second.close()
    listed = json.loads(run_hearth(["timers", "list", "--json"], home).stdout)
    assert [(t["name"], t["state"]) for t in listed] == [("rice", "running")]
