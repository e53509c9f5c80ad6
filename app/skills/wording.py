"""What the skills say: response templates (assets/skills/<lang>/responses.yaml) and
times, dates, durations and numbers put the way a person says them.

English: "8:05 in the morning", "1 hour and 20 minutes", "Tuesday, December 1".
Chinese: "早上8点05分", "1小时20分钟", "12月1日，星期二".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import yaml

from app.errors import ConfigError

ASSETS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "skills"
"""assets/skills: one folder of templates per language."""

_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
_ZH_WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


class Responses:
    """The response templates of one language; `say(key, **values)` fills one in."""

    def __init__(self, language: str, templates: Mapping[str, str]) -> None:
        self.language = language
        self._templates = dict(templates)

    @classmethod
    def load(cls, language: str, folder: Path = ASSETS_DIR) -> Responses:
        return cls(language, _templates(folder / language / "responses.yaml"))

    def say(self, key: str, **values: object) -> str:
        """The template `key` with `values` filled in."""
        return self._templates[key].format(**values)

    # ---- times, dates, durations, numbers ----------------------------------------------

    def clock(self, at: datetime) -> str:
        """A time of day as said: "8:05 in the morning", "noon" / "早上8点05分"."""
        if self.language == "zh":
            return _zh_clock(at.hour, at.minute)
        return _en_clock(at.hour, at.minute)

    def date(self, at: datetime) -> str:
        if self.language == "zh":
            return f"{at.year}年{at.month}月{at.day}日，{_ZH_WEEKDAYS[at.weekday()]}"
        return f"{_EN_WEEKDAYS[at.weekday()]}, {_EN_MONTHS[at.month - 1]} {at.day}, {at.year}"

    def day_of_month(self, at: date | datetime, *, weekday: bool = False,
                     year: bool = False) -> str:
        """ "December 4" / "12月4日", with the weekday ("Friday, December 4") and the year
        when asked."""
        if self.language == "zh":
            text = (f"{at.year}年" if year else "") + f"{at.month}月{at.day}日"
            return text + (f"，{_ZH_WEEKDAYS[at.weekday()]}" if weekday else "")
        text = f"{_EN_MONTHS[at.month - 1]} {at.day}" + (f", {at.year}" if year else "")
        return f"{_EN_WEEKDAYS[at.weekday()]}, {text}" if weekday else text

    def month_name(self, month: int) -> str:
        """ "February" / "2月"."""
        return f"{month}月" if self.language == "zh" else _EN_MONTHS[month - 1]

    def weekday_name(self, weekday: int) -> str:
        """ "Friday" / "星期五" (0 is Monday)."""
        return (_ZH_WEEKDAYS if self.language == "zh" else _EN_WEEKDAYS)[weekday]

    def duration(self, seconds: float) -> str:
        """ "1 hour and 20 minutes", "45 seconds" / "1小时20分钟" (whole seconds)."""
        total = max(0, round(seconds))
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        if self.language == "zh":
            parts = [f"{hours}小时" if hours else "", f"{minutes}分钟" if minutes else "",
                     f"{secs}秒" if secs or not total else ""]
            return "".join(parts)
        named = [(hours, "hour"), (minutes, "minute"), (secs, "second")]
        words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in named if n]
        if not words:
            return "0 seconds"
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    def list_words(self, items: list[str]) -> str:
        """ "a, b and c" / "a、b和c"."""
        if self.language == "zh":
            return items[0] if len(items) == 1 else "、".join(items[:-1]) + "和" + items[-1]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@functools.cache
def _templates(path: Path) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the skill responses {path}: {exc}") from None
    return dict(data["responses"])


def format_number(value: float) -> str:
    """A result as said: whole numbers without ".0", others to at most 4 decimals
    (very small ones to 3 significant digits), thousands not grouped."""
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if abs(value - round(value)) < 1e-9 and abs(value) < 1e15:
        return str(round(value))
    if abs(value) < 0.001:
        return f"{value:.3g}"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _en_clock(hour: int, minute: int) -> str:
    if minute == 0 and hour == 12:
        return "noon"
    if minute == 0 and hour == 0:
        return "midnight"
    twelve = hour % 12 or 12
    shown = f"{twelve} o'clock" if minute == 0 else f"{twelve}:{minute:02d}"
    part = part_of_day(hour)
    return f"{shown} {'at night' if part == 'night' else 'in the ' + part}"


def part_of_day(hour: int) -> str:
    """ "morning" (5-11), "afternoon" (12-17), "evening" (18-21) or "night"."""
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    if 18 <= hour < 22:
        return "evening"
    return "night"


def _zh_clock(hour: int, minute: int) -> str:
    if hour < 5:
        part = "凌晨"
    elif hour < 9:
        part = "早上"
    elif hour < 12:
        part = "上午"
    elif hour < 13:
        part = "中午"
    elif hour < 18:
        part = "下午"
    else:
        part = "晚上"
    twelve = hour if hour <= 12 else hour - 12
    return f"{part}{twelve}点" + ("整" if minute == 0 else f"{minute:02d}分")
