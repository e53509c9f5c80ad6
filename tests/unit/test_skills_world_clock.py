"""The time in another place and the time after a while, typed through the skill set with
a fixed clock (22:30 UTC on Tuesday 1 December 2026, the machine's zone set to UTC):
"what time is it in Tokyo" is told from the system's time zone database, a country with
several offsets gets each (or is asked for a city), and a place no zone knows goes to
the language model instead of being guessed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.skills.intents import IntentMatcher
from app.skills.places import find_place, places, spoken_key
from app.skills.recognizer_grammar import place_names
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore

NOW = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(languages=("en",))


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ask(matcher: IntentMatcher, text: str) -> tuple[str, str, dict[str, str]] | None:
    """(reply, intent, slots) of `text` at `NOW`, or None when no skill answers."""
    skills = SkillSet(matcher, TimerStore(Path(":memory:")), clock=NOW.timestamp)
    try:
        answer = skills.answer(text)
        if answer is None:
            assert not skills.claims(text), text
            return None
        assert skills.claims(text), text  # read-only: the reply stage may draft nothing
        return answer.text, answer.intent, dict(answer.slots)
    finally:
        skills.close()


@pytest.mark.parametrize(("text", "reply", "zone"), [
    ("what time is it in london", "In London it's 10:30 at night.", "Europe/London"),
    ("What time is it in Tokyo?", "In Tokyo it's 7:30 in the morning on Wednesday.",
     "Asia/Tokyo"),
    ("What's the time in the UK?", "In the UK it's 10:30 at night.", "Europe/London"),
    ("time in new york", "In New York it's 5:30 in the afternoon.", "America/New_York"),
    ("what is the local time in beijing", "In Beijing it's 6:30 in the morning on Wednesday.",
     "Asia/Shanghai"),
    ("what time is it in France right now", "In France it's 11:30 at night.", "Europe/Paris"),
    ("what time is it in india", "In India it's 4 o'clock at night on Wednesday.",
     "Asia/Kolkata"),
    ("What time is it in Port-au-Prince?", "In Port-au-Prince it's 5:30 in the afternoon.",
     "America/Port-au-Prince"),
    ("what time is it in the netherlands", "In the Netherlands it's 11:30 at night.",
     "Europe/Amsterdam"),
])
def test_the_time_in_a_place_with_one_zone(matcher: IntentMatcher, text: str, reply: str,
                                           zone: str) -> None:
    answered = ask(matcher, text)
    assert answered is not None, text
    said, intent, slots = answered
    assert intent == "HearthTimeIn" and said == reply
    assert slots["zone"] == zone


def test_a_country_with_two_offsets_gets_both_and_one_with_many_asks_for_a_city(
        matcher: IntentMatcher) -> None:
    answered = ask(matcher, "what time is it in spain")
    assert answered is not None
    assert answered[0] == ("Spain has more than one time zone: it's 11:30 at night in "
                           "Madrid and 10:30 at night in Canary.")
    answered = ask(matcher, "what time is it in the united states")
    assert answered is not None
    said = answered[0]
    assert said.startswith("The United States has ") and said.endswith(
        " time zones. Ask me about a city there.")
    assert int(said.split()[4]) >= 4


def test_a_place_no_zone_knows_goes_to_the_model(matcher: IntentMatcher) -> None:
    assert ask(matcher, "what time is it in narnia") is None
    assert ask(matcher, "what time is it in the morning") is None


@pytest.mark.parametrize(("text", "reply", "at"), [
    ("what time will it be in three hours", "In 3 hours it will be 1:30 at night tomorrow.",
     "01:30"),
    ("What time will it be in 20 minutes?", "In 20 minutes it will be 10:50 at night.",
     "22:50"),
    ("what time will it be an hour and a half from now",
     "In 1 hour and 30 minutes it will be midnight tomorrow.", "00:00"),
])
def test_the_time_after_a_while(matcher: IntentMatcher, text: str, reply: str,
                                at: str) -> None:
    answered = ask(matcher, text)
    assert answered is not None, text
    assert answered[1] == "HearthTimeAfter" and answered[0] == reply
    assert answered[2]["time"] == at


def test_place_names_come_from_the_time_zone_database() -> None:
    found = places()
    assert len(found) > 500  # every zone's city and every country
    assert spoken_key("the Côte-d'Ivoire") == "cote d'ivoire"
    samoa, american = find_place("samoa"), find_place("american samoa")
    assert samoa is not None and samoa.zones == ("Pacific/Apia",)
    assert american is not None and american.zones == ("Pacific/Pago_Pago",)
    assert find_place("congo") is None  # two countries: neither
    place = find_place("St Kitts & Nevis")
    assert place is not None and place.name == "Saint Kitts and Nevis"
    us = find_place("USA")
    assert us is not None and "America/Los_Angeles" in us.zones
    names = place_names()
    assert {"tokyo", "new york", "south korea", "united kingdom"} <= set(names)
