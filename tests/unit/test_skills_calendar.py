"""The calendar skills and the spoken parts of a number, typed through the skill set
with a fixed clock: the date of a day ("what date is next friday"), a month's length,
the part of the day, the year and the month, the days until a holiday, and "half of
ninety". The clock is Tuesday 1 December 2026 unless a test moves it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore
from app.skills.when import month_days, next_anniversary, next_weekday


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(languages=("en",))


def ask(matcher: IntentMatcher, text: str, at: datetime = datetime(2026, 12, 1, 9, 58, 30)
        ) -> tuple[str, str, dict[str, str]]:
    """(reply, intent, slots) of `text` at local time `at`."""
    stamp = at.astimezone().timestamp()
    skills = SkillSet(matcher, TimerStore(Path(":memory:")), clock=lambda: stamp)
    try:
        answer = skills.answer(text)
        assert answer is not None, text
        assert skills.claims(text), text  # read-only: the reply stage drafts nothing
        return answer.text, answer.intent, dict(answer.slots)
    finally:
        skills.close()


def test_next_weekday_is_the_first_one_after_today() -> None:
    tuesday = date(2026, 12, 1)
    assert next_weekday(tuesday, 4) == date(2026, 12, 4)  # next friday
    assert next_weekday(tuesday, 0) == date(2026, 12, 7)  # next monday
    # on a Friday, "next friday" is a week away and "this friday" is today
    friday = date(2026, 12, 4)
    assert next_weekday(friday, 4) == date(2026, 12, 11)
    assert next_weekday(friday, 4, this=True) == friday
    assert next_weekday(date(2026, 12, 31), 4) == date(2027, 1, 1)


def test_month_lengths_and_anniversaries() -> None:
    assert [month_days(2026, m) for m in (1, 2, 4, 12)] == [31, 28, 30, 31]
    assert month_days(2028, 2) == 29 and month_days(2100, 2) == 28
    assert next_anniversary(date(2026, 12, 1), 12, 25) == date(2026, 12, 25)
    assert next_anniversary(date(2026, 12, 26), 12, 25) == date(2027, 12, 25)
    assert next_anniversary(date(2026, 12, 25), 12, 25) == date(2026, 12, 25)


@pytest.mark.parametrize(("text", "reply", "day"), [
    ("what date is next friday", "Next Friday is December 4.", "2026-12-04"),
    ("What date is next Monday?", "Next Monday is December 7.", "2026-12-07"),
    ("what day is tomorrow", "Tomorrow is Wednesday, December 2.", "2026-12-02"),
    ("what is the date tomorrow", "Tomorrow is Wednesday, December 2.", "2026-12-02"),
    ("what day was yesterday", "Yesterday was Monday, November 30.", "2026-11-30"),
    ("what date is next tuesday", "Next Tuesday is December 8.", "2026-12-08"),
    ("when is this tuesday", "Today is December 1.", "2026-12-01"),
])
def test_the_date_of_a_day(matcher: IntentMatcher, text: str, reply: str, day: str) -> None:
    assert ask(matcher, text) == (reply, "HearthDayDate", {"date": day})


def test_next_friday_on_a_friday_and_across_the_year(matcher: IntentMatcher) -> None:
    friday = datetime(2026, 12, 4, 12, 0)
    assert ask(matcher, "what date is next friday", friday)[0] == "Next Friday is December 11."
    assert ask(matcher, "what date is this friday", friday)[0] == "Today is December 4."
    new_year_eve = datetime(2026, 12, 31, 12, 0)
    assert ask(matcher, "what date is next friday", new_year_eve)[0] == \
        "Next Friday is January 1, 2027."


def test_month_lengths_by_this_years_leap_status(matcher: IntentMatcher) -> None:
    assert ask(matcher, "how many days are in february") == (
        "February has 28 days this year.", "HearthMonthDays",
        {"month": "2", "year": "2026", "days": "28"})
    assert ask(matcher, "how many days in february", datetime(2028, 1, 5, 8, 0))[0] == \
        "February has 29 days this year."
    assert ask(matcher, "how many days does april have")[0] == "April has 30 days."


@pytest.mark.parametrize(("hour", "part"), [(5, "morning"), (11, "morning"), (12, "afternoon"),
                                            (17, "afternoon"), (18, "evening"), (22, "night"),
                                            (3, "night")])
def test_the_part_of_the_day(matcher: IntentMatcher, hour: int, part: str) -> None:
    reply, intent, slots = ask(matcher, "is it morning or afternoon",
                               datetime(2026, 12, 1, hour, 7))
    assert (reply, intent, slots) == (f"It's {part}: {hour % 12 or 12}:07.", "HearthPartOfDay",
                                      {"part": part})


def test_year_month_and_days_until_a_holiday(matcher: IntentMatcher) -> None:
    assert ask(matcher, "what year is it")[:2] == ("It's 2026.", "HearthYearMonth")
    assert ask(matcher, "what month is it")[:2] == ("It's December.", "HearthYearMonth")
    assert ask(matcher, "how many days until christmas") == (
        "Christmas is in 24 days, on Friday, December 25.", "HearthDaysUntil",
        {"holiday": "Christmas", "date": "2026-12-25", "days": "24"})
    assert ask(matcher, "how many days until christmas", datetime(2026, 12, 24, 8))[0] == \
        "Christmas is tomorrow, Friday, December 25."
    assert ask(matcher, "how many days until christmas", datetime(2026, 12, 25, 8))[0] == \
        "It's Christmas today."
    assert ask(matcher, "how many days till new year's day")[0] == \
        "New Year's Day is in 31 days, on Friday, January 1, 2027."


@pytest.mark.parametrize(("text", "reply", "expression"), [
    ("what is half of ninety", "Half of 90 is 45.", "90 / 2"),
    ("what's a third of ninety", "A third of 90 is 30.", "90 / 3"),
    ("what is a quarter of 100", "A quarter of 100 is 25.", "100 / 4"),
    ("what is double twelve", "Double 12 is 24.", "2 * 12"),
    ("twice seven", "Twice 7 is 14.", "2 * 7"),
    ("what is half of ninety plus two", "Half of 90 plus 2 is 47.", "90 / 2 + 2"),
])
def test_parts_and_multiples_said_as_words(matcher: IntentMatcher, text: str, reply: str,
                                          expression: str) -> None:
    assert ask(matcher, text)[:2] == (reply, "HearthArithmetic")
    assert ask(matcher, text)[2]["expression"] == expression


@pytest.mark.parametrize("text", [
    "what day is christmas this year", "what year is it in the chinese calendar",
    "is it morning in tokyo", "how many days are in a year", "what is half a loaf",
    "double the recipe", "when is thanksgiving",
])
def test_near_misses_go_to_the_language_model(matcher: IntentMatcher, text: str) -> None:
    skills = SkillSet(matcher, TimerStore(Path(":memory:")))
    try:
        assert skills.answer(text) is None, text
    finally:
        skills.close()
