"""Durations ("an hour and a half", "两分三十秒") and clock times ("half past six",
"7:30 pm", "下午三点一刻") read out of what was said, when a clock time next comes,
and the calendar arithmetic of the date skills (the next Friday, a month's length, the
next Christmas).

Like `numbers`, each parser takes its whole text or returns None.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.skills.numbers import parse_number

_EN_DURATION_UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
}
_EN_PART = re.compile(
    r"(?P<number>.+?)\s*(?P<unit>seconds?|secs?|minutes?|mins?|hours?|hrs?)"
    r"(?P<half>\s+and\s+a\s+half)?$")
_ZH_PART = re.compile(
    r"(?P<number>.+?)(?P<unit>个半小时|个小时|小时|个钟头|钟头|分钟|分|秒钟|秒)(?P<half>半)?$")
_ZH_UNIT_SECONDS = {"个半小时": 3600, "个小时": 3600, "小时": 3600, "个钟头": 3600,
                    "钟头": 3600, "分钟": 60, "分": 60, "秒钟": 1, "秒": 1}


def parse_duration(text: str, language: str) -> float | None:
    """Seconds in `text` ("10 minutes", "one hour and 20 minutes", "半小时"), or None."""
    text = text.strip().lower()
    if language == "zh":
        return _zh_duration(text.replace(" ", ""))
    return _en_duration(text)


def _en_duration(text: str) -> float | None:
    text = re.sub(r"[,]", " ", text)
    text = re.sub(r"(\d)([a-z])", r"\1 \2", text)
    if text in ("half an hour", "half hour", "a half hour", "half a hour"):
        return 1800.0
    if text in ("a quarter of an hour", "quarter of an hour", "quarter hour", "a quarter hour"):
        return 900.0
    if text.startswith(("half a ", "half an ")):
        unit = _EN_DURATION_UNITS.get(text.split(" ", 2)[2])
        return unit * 0.5 if unit else None
    pieces = _en_pieces(text)
    if pieces is None:
        return None
    total = 0.0
    for piece in pieces:
        match = _EN_PART.match(piece)
        if match is None:
            return None
        number_text = match["number"].strip()
        number = 1.0 if number_text in ("a", "an", "one") else parse_number(number_text, "en")
        if number is None or number < 0:
            return None
        if match["half"]:
            number += 0.5
        total += number * _EN_DURATION_UNITS[match["unit"]]
    return total if total > 0 else None


def _en_pieces(text: str) -> list[str] | None:
    """ "1 hour and 20 minutes" -> ["1 hour", "20 minutes"]."""
    pieces: list[str] = []
    current: list[str] = []
    words = text.split()
    for i, word in enumerate(words):
        if word == "and" and not current:
            continue  # the "and" between "1 hour" and "20 minutes"
        current.append(word)
        unit_ends = word in _EN_DURATION_UNITS and words[i + 1:i + 4] != ["and", "a", "half"]
        half_ends = (word == "half" and current[-3:] == ["and", "a", "half"]
                     and len(current) > 3 and current[-4] in _EN_DURATION_UNITS)
        if unit_ends or half_ends:
            pieces.append(" ".join(current))
            current = []
    if current:
        pieces.append(" ".join(current))
    return pieces or None


def _zh_duration(text: str) -> float | None:
    if text in ("半小时", "半个小时", "半个钟头", "半钟头"):
        return 1800.0
    if text in ("一刻钟", "一刻"):
        return 900.0
    total = 0.0
    rest = text.removesuffix("整")
    pieces = re.findall(r".+?(?:个半小时|个小时|小时|个钟头|钟头|分钟|分|秒钟|秒)半?", rest)
    if "".join(pieces) != rest or not pieces:
        return None
    for raw in pieces:
        piece = raw.lstrip("和零")
        match = _ZH_PART.match(piece)
        if match is None:
            return None
        number_text = match["number"]
        number = 1.0 if number_text == "一" else parse_number(number_text, "zh")
        if number is None or number < 0:
            return None
        unit = match["unit"]
        if unit == "个半小时" or match["half"]:
            number += 0.5
        total += number * _ZH_UNIT_SECONDS[unit]
    return total if total > 0 else None


@dataclass(frozen=True)
class ClockTime:
    """A time of day as said: `hour` 0-23 when `meridiem_known`, else 1-12 (am or pm)."""

    hour: int
    minute: int
    meridiem_known: bool
    day_offset: int = 0
    """1 for "tomorrow"."""

    def next_at(self, now: datetime) -> datetime:
        """The next moment (after `now`, local time) this clock time comes."""
        day = now.replace(second=0, microsecond=0) + timedelta(days=self.day_offset)
        hours = [self.hour] if self.meridiem_known else [self.hour % 12, self.hour % 12 + 12]
        candidates = []
        for extra_days in (0, 1):
            for hour in hours:
                at = day.replace(hour=hour, minute=self.minute) + timedelta(days=extra_days)
                if at > now:
                    candidates.append(at)
        return min(candidates)


_EN_MERIDIEM = (
    (("am", "a.m.", "a m", "a.m", "in the morning", "this morning", "tomorrow morning"), "am"),
    (("pm", "p.m.", "p m", "p.m", "in the afternoon", "in the evening", "at night",
      "tonight", "this afternoon", "this evening", "tomorrow afternoon", "tomorrow evening"),
     "pm"),
)


def parse_clock_time(text: str, language: str) -> ClockTime | None:
    """The time of day in `text` ("7:30 pm", "half past six", "早上七点半"), or None."""
    text = text.strip().lower()
    if language == "zh":
        return _zh_clock(text.replace(" ", ""))
    return _en_clock(text)


def _en_clock(text: str) -> ClockTime | None:
    text = re.sub(r"\s+", " ", text.replace("o'clock", "oclock").replace("o clock", "oclock"))
    day_offset = 0
    for prefix in ("tomorrow at ", "tomorrow ", "at "):
        if text.startswith(prefix):
            day_offset = 1 if prefix.startswith("tomorrow") else day_offset
            text = text[len(prefix):]
    if text.endswith(" tomorrow"):
        day_offset, text = 1, text[: -len(" tomorrow")]
    if text.startswith("tomorrow"):
        day_offset = 1
    if text in ("noon", "midday", "twelve noon"):
        return ClockTime(12, 0, True, day_offset)
    if text == "midnight":
        return ClockTime(0, 0, True, day_offset)
    meridiem = ""
    for words, which in _EN_MERIDIEM:
        for word in words:
            glued = word in ("am", "pm") and re.search(rf"\d{word}$", text)
            if text.endswith(" " + word) or glued:
                meridiem, text = which, text[: -len(word)].strip()
                break
        if meridiem:
            break
    if "tomorrow" in text:
        return None
    text = text.removesuffix(" oclock").removesuffix(" a").strip()  # "six a a.m." heard
    hour, minute = _en_hour_minute(text)
    if hour is None or minute is None:
        return None
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
        return ClockTime(hour, minute, True, day_offset)
    if hour == 0 or hour > 12:
        return ClockTime(hour, minute, hour < 24, day_offset) if hour < 24 else None
    return ClockTime(hour, minute, False, day_offset)


def _en_hour_minute(text: str) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"(\d{1,2})[:.](\d{2})", text) or re.fullmatch(r"(\d{1,2}) (\d{2})", text)
    if match:
        hour, minute = int(match[1]), int(match[2])
        return (hour, minute) if hour < 24 and minute < 60 else (None, None)
    relative = re.fullmatch(
        r"(half|quarter|a quarter|.+?)(?: minutes?)? (past|after|to|till|before) (.+)", text)
    if relative:
        amount = {"half": 30, "quarter": 15, "a quarter": 15}.get(relative[1])
        if amount is None:
            value = parse_number(relative[1], "en")
            amount = int(value) if value is not None and value.is_integer() else None
        hour_value = parse_number(relative[3], "en")
        if (amount is None or hour_value is None or not hour_value.is_integer()
                or not 0 < amount < 60):
            return None, None
        hour = int(hour_value)
        if not 1 <= hour <= 24:
            return None, None
        if relative[2] in ("past", "after"):
            return hour % 24, amount
        return (hour - 1) % 24 or (12 if hour == 1 else 0), 60 - amount
    words = text.split()
    for split in range(1, len(words) + 1):
        hour_value = parse_number(" ".join(words[:split]), "en")
        if hour_value is None or not hour_value.is_integer() or not 0 <= hour_value < 24:
            continue
        rest = words[split:]
        if not rest:
            return int(hour_value), 0
        if rest[0] == "oh" and len(rest) == 2:
            minute_value = parse_number(rest[1], "en")
            if minute_value is not None and minute_value.is_integer() and minute_value < 10:
                return int(hour_value), int(minute_value)
            continue
        minute_value = parse_number(" ".join(rest), "en")
        if minute_value is not None and minute_value.is_integer() and 0 <= minute_value < 60:
            return int(hour_value), int(minute_value)
    return None, None


_ZH_PERIODS = (
    ("凌晨", "am"), ("早上", "am"), ("早晨", "am"), ("清晨", "am"), ("上午", "am"), ("早", "am"),
    ("中午", "noon"), ("下午", "pm"), ("傍晚", "pm"), ("晚上", "pm"), ("今晚", "pm"),
    ("夜里", "pm"), ("晚", "pm"),
)


def _zh_clock(text: str) -> ClockTime | None:
    day_offset = 0
    for prefix in ("明天", "明早", "今天"):
        if text.startswith(prefix):
            day_offset = 0 if prefix == "今天" else 1
            text = text[len(prefix):] if prefix != "明早" else "早上" + text[2:]
    period = ""
    for word, which in _ZH_PERIODS:
        if text.startswith(word):
            period, text = which, text[len(word):]
            break
    match = re.fullmatch(r"(\d{1,2})[:：](\d{2})", text)
    if match:
        hour, minute = int(match[1]), int(match[2])
    else:
        match = re.fullmatch(r"(.+?)(?:点|点钟|时)(.*?)", text)
        if match is None:
            return None
        hour_value = parse_number(match[1], "zh")
        rest = match[2].removesuffix("钟").removesuffix("整")
        if rest.startswith("钟"):
            rest = rest[1:]
        minute_value: float | None
        if rest in ("", "整"):
            minute_value = 0
        elif rest == "半":
            minute_value = 30
        elif rest in ("一刻", "一刻钟"):
            minute_value = 15
        elif rest in ("三刻", "三刻钟"):
            minute_value = 45
        else:
            minute_value = parse_number(rest.removesuffix("分").removesuffix("分钟"), "zh")
        if hour_value is None or minute_value is None or not hour_value.is_integer() \
                or not float(minute_value).is_integer():
            return None
        hour, minute = int(hour_value), int(minute_value)
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    if period in ("am", "pm", "noon"):
        if hour > 12:
            return ClockTime(hour, minute, True, day_offset)
        if period == "pm" and hour < 12:
            hour += 12
        elif period == "am" and hour == 12:
            hour = 0
        return ClockTime(hour, minute, True, day_offset)
    if hour == 0 or hour > 12:
        return ClockTime(hour, minute, True, day_offset)
    return ClockTime(hour, minute, False, day_offset)


def next_weekday(today: date, weekday: int, *, this: bool = False) -> date:
    """The date of `weekday` (0 Monday .. 6 Sunday) as in "next friday": the first one
    after `today` (on a Friday, "next friday" is a week away). With `this` ("this
    friday") today counts: on a Friday it is today."""
    ahead = (weekday - today.weekday()) % 7
    return today + timedelta(days=ahead if ahead or this else 7)


def month_days(year: int, month: int) -> int:
    """How many days `month` (1-12) has in `year` (February 29 in a leap year)."""
    return calendar.monthrange(year, month)[1]


def next_anniversary(today: date, month: int, day: int) -> date:
    """The next `month`/`day` from `today` on (today itself when it is that day)."""
    this_year = date(today.year, month, day)
    return this_year if this_year >= today else date(today.year + 1, month, day)
