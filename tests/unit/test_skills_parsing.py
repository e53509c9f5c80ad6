"""What the skills read (numbers, durations, clock times, arithmetic, quantities) and how
they say times: naturally, and in the machine's own time zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from app.skills.arithmetic import parse_expression
from app.skills.intents import IntentMatcher
from app.skills.numbers import parse_number
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore
from app.skills.units import parse_quantity
from app.skills.when import parse_clock_time, parse_duration
from app.skills.wording import Responses, format_number

EN, ZH = Responses.load("en"), Responses.load("zh")


@pytest.mark.parametrize(("text", "language", "value"), [
    ("two hundred and fifty", "en", 250), ("1,000", "en", 1000), ("three point five", "en", 3.5),
    ("twenty-five", "en", 25), ("a hundred", "en", 100), ("two and a half", "en", 2.5),
    ("minus four", "en", -4), ("five twenty", "en", None), ("oh", "en", None),
    ("二百五十", "zh", 250), ("二百零五", "zh", 205), ("三百五", "zh", 350),
    ("两个半", "zh", 2.5), ("三万二千", "zh", 32000), ("一点二五", "zh", 1.25),
    ("二三", "zh", None), ("首都", "zh", None),
])
def test_numbers_in_words_and_digits(text: str, language: str, value: float | None) -> None:
    assert parse_number(text, language) == value


@pytest.mark.parametrize(("text", "language", "seconds"), [
    ("an hour and a half", "en", 5400), ("1 hour 20 minutes 5 seconds", "en", 4805),
    ("two and a half minutes", "en", 150), ("half an hour", "en", 1800), ("10min", "en", 600),
    ("5", "en", None), ("pasta", "en", None),
    ("一个半小时", "zh", 5400), ("两分三十秒", "zh", 150), ("3分半", "zh", 210),
    ("半小时", "zh", 1800), ("面条", "zh", None),
])
def test_durations(text: str, language: str, seconds: float | None) -> None:
    assert parse_duration(text, language) == seconds


@pytest.mark.parametrize(("text", "language", "at"), [
    ("7:30 pm", "en", "19:30"), ("half past six in the morning", "en", "06:30"),
    ("quarter to eight am", "en", "07:45"), ("seven oh five am", "en", "07:05"),
    ("noon", "en", "12:00"), ("midnight", "en", "00:00"), ("7", "en", "19:00"),
    ("下午三点半", "zh", "15:30"), ("早上六点一刻", "zh", "06:15"), ("晚上8点15分", "zh", "20:15"),
    ("15:30", "zh", "15:30"), ("七点", "zh", "19:00"),
])
def test_clock_times_come_next(text: str, language: str, at: str) -> None:
    now = datetime(2026, 12, 1, 10, 0)
    clock = parse_clock_time(text, language)
    assert clock is not None and clock.next_at(now).strftime("%H:%M") == at
    assert clock.next_at(now) > now


def test_arithmetic_declines_anything_that_is_not_arithmetic() -> None:
    assert parse_expression("2 plus 3 times 4", "en").evaluate() == 14  # type: ignore[union-attr]
    assert parse_expression("minus five", "en") is None, "a bare number is no question"
    for text in ("the capital of france", "love", "one two three", "2的10次方的意义"):
        assert parse_expression(text, "en" if text.isascii() else "zh") is None


def test_quantities_need_a_known_unit() -> None:
    value, unit = parse_quantity("350 degrees fahrenheit", "en")  # type: ignore[misc]
    assert (value, unit.key) == (350, "degf")
    assert parse_quantity("5 love", "en") is None and parse_quantity("三个苹果", "zh") is None


@pytest.mark.parametrize(("hour", "minute", "english", "chinese"), [
    (8, 5, "8:05 in the morning", "早上8点05分"), (12, 0, "noon", "中午12点整"),
    (0, 0, "midnight", "凌晨0点整"), (15, 0, "3 o'clock in the afternoon", "下午3点整"),
    (19, 45, "7:45 in the evening", "晚上7点45分"), (23, 30, "11:30 at night", "晚上11点30分"),
])
def test_times_are_said_naturally(hour: int, minute: int, english: str, chinese: str) -> None:
    at = datetime(2026, 12, 1, hour, minute)
    assert EN.clock(at) == english and ZH.clock(at) == chinese


def test_numbers_are_said_without_noise() -> None:
    assert [format_number(v) for v in (4.0, 3.3333333, 0.0004567, -2.5, 1e6)] == [
        "4", "3.3333", "0.000457", "-2.5", "1000000"]


@pytest.fixture
def shanghai() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_the_time_is_the_machines_local_time_to_the_minute(shanghai: None,
                                                            tmp_path: Path) -> None:
    epoch_plus_5_minutes = 5 * 60.0  # 1970-01-01 08:05 in Shanghai (UTC+8)
    skills = SkillSet(IntentMatcher(), TimerStore(tmp_path / "t.sqlite3"),
                      clock=lambda: epoch_plus_5_minutes)
    answer = skills.answer("what time is it")
    assert answer is not None and answer.text == "It's 8:05 in the morning."
    assert answer.slots["time"] == "08:05"
    assert skills.answer("现在几点了").text == "现在是早上8点05分。"  # type: ignore[union-attr]
