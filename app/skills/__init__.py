"""Skills: what Hearth answers exactly, before the language model — the time and date,
timers, alarms and reminders, arithmetic, unit conversions, the volume, "repeat that",
"stop", and the user's own skills — in English and Chinese.

Sentences are matched with hassil against Home Assistant's templates
(home-assistant-intents) plus Hearth's (assets/skills/<lang>/*.yaml) and the user's
([skills] user_dir); anything they do not match goes to the engine unchanged.
`build_skills(settings)` makes the `SkillSet` the assistant asks first;
`bias_phrases(language)` lists what skills understand, for recognizer biasing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings, config_dir
from app.skills.timers import TimerStore

if TYPE_CHECKING:
    from app.skills.skillset import SkillSet

log = logging.getLogger(__name__)

__all__ = ["bias_phrases", "build_skills", "skill_title", "timer_store",
           "timers_path", "user_skills_dir"]

_TITLES = {
    "HassGetCurrentTime": "Clock", "HassGetCurrentDate": "Calendar",
    "HearthSetAlarm": "Alarms", "HearthCancelAlarm": "Alarms",
    "HearthSetReminder": "Reminders", "HearthArithmetic": "Calculator",
    "HearthConvertUnit": "Units", "HassSetVolume": "Volume", "HassSetVolumeRelative": "Volume",
    "HearthRepeat": "Repeat", "HearthStop": "Stop", "HassNevermind": "Stop",
    "HearthDayDate": "Calendar", "HearthMonthDays": "Calendar", "HearthYearMonth": "Calendar",
    "HearthDaysUntil": "Calendar", "HearthPartOfDay": "Clock", "HearthTimeIn": "Clock",
    "HearthTimeAfter": "Clock",
}

_BIAS = {
    "en": [
        "what time is it", "what's the date", "what day is it", "set a timer for",
        "timer", "timers", "minutes", "minute", "seconds", "hours", "an hour and a half",
        "half an hour", "cancel the timer", "pause the timer", "resume the timer",
        "how much time is left", "add", "to the timer", "set an alarm for", "wake me up at",
        "cancel the alarm", "remind me to", "in", "at", "a.m.", "p.m.", "o'clock",
        "what is", "plus", "minus", "times", "divided by", "percent of", "squared",
        "square root of", "how many", "convert", "to", "in", "grams", "kilograms", "pounds",
        "ounces", "cups", "tablespoons", "teaspoons", "liters", "milliliters", "miles",
        "kilometers", "feet", "meters", "inches", "centimeters", "degrees celsius",
        "degrees fahrenheit", "repeat that", "say that again", "stop", "never mind",
        "louder", "quieter", "set the volume to",
    ],
    "zh": [
        "现在几点", "几点了", "今天几号", "今天星期几", "设置一个", "分钟", "秒", "小时",
        "计时器", "倒计时", "取消计时器", "暂停计时器", "继续计时器", "还剩多少时间",
        "闹钟", "叫我起床", "提醒我", "早上", "上午", "中午", "下午", "晚上", "点", "半",
        "加", "减", "乘以", "除以", "等于多少", "平方根", "换算成", "公斤", "斤", "克",
        "磅", "公里", "英里", "米", "厘米", "升", "毫升", "摄氏度", "华氏度",
        "再说一遍", "停", "算了", "大声一点", "小声一点", "音量",
    ],
}


def bias_phrases(language: str) -> list[str]:
    """Short phrases of what the skills understand in `language` ("en" or "zh"), for
    biasing a speech recognizer towards them (unique, in a stable order)."""
    return list(dict.fromkeys(_BIAS.get(language, _BIAS["en"])))


def skill_title(intent: str) -> str:
    """A short name for the skill behind `intent`, for the window ("Timers", "Clock");
    a user skill's intent is its own name."""
    return "Timers" if "Timer" in intent else _TITLES.get(intent, intent)


def user_skills_dir(settings: Settings) -> Path:
    """Where the user's skill files are: [skills] user_dir, else <config folder>/skills."""
    configured = settings.skills.user_dir
    return Path(configured).expanduser() if configured else config_dir() / "skills"


def timers_path(settings: Settings) -> Path:
    """Where timers are kept: Hearth's database (the history file), or timers.sqlite3 in
    the data folder while the conversation history is switched off."""
    if settings.history.enabled:
        return settings.history_path
    return settings.data_dir / "timers.sqlite3"


def timer_store(settings: Settings) -> TimerStore:
    """The timers table (see `timers_path`)."""
    return TimerStore(timers_path(settings))


def build_skills(settings: Settings) -> SkillSet | None:
    """The skills the settings ask for ([skills] enabled), or None (also, with a warning,
    when the `skills` extra is not installed: the language model then answers all)."""
    if not settings.skills.enabled:
        return None
    try:
        from app.skills.intents import IntentMatcher
        from app.skills.skillset import SkillSet
        from app.skills.user import load_user_skills
    except ModuleNotFoundError as exc:
        log.warning("skills unavailable: the Python package %r is missing (install Hearth "
                    "with the 'skills' extra)", exc.name)
        return None
    files, actions = load_user_skills(user_skills_dir(settings))
    matcher = IntentMatcher(extra_files=files)
    skills = SkillSet(matcher, timer_store(settings), actions=actions,
                      ring_every_seconds=settings.skills.ring_every_seconds,
                      ring_for_seconds=settings.skills.ring_for_minutes * 60)
    skills.warm_up()
    return skills
