"""`SkillSet`: what Hearth answers exactly, before the language model.

`answer(text)` walks the template matches best first (`IntentMatcher`) and gives the
first one its handler accepts to that handler; a handler declines (returns None) when
a wildcard does not read as what it needs (a duration, a time, arithmetic, a unit).
Nothing accepted: None, and the engine answers the question unchanged.

Answers are in the language of the sentence that matched, worded by `Responses`.
`attach(assistant)` connects the timer service to a running assistant: it rings
through `Assistant.announce`, is silenced by the `Silenced` event, and the last thing
Hearth said (`ReplyFinished`, `Announcement`) is kept for "repeat that".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from app.assistant.reply import SkillAnswer
from app.events import Announcement, Event, ReplyFinished, Silenced
from app.skills.arithmetic import NoValueError, parse_expression
from app.skills.intents import IntentMatcher, Match
from app.skills.numbers import parse_number
from app.skills.places import find_place, zone_city
from app.skills.timers import Timer, TimerError, TimerService, TimerStore, local_time
from app.skills.units import Converter, find_unit, parse_quantity
from app.skills.user import SkillActionError, UserAction
from app.skills.volume import VolumeControl
from app.skills.when import (
    month_days,
    next_anniversary,
    next_weekday,
    parse_clock_time,
    parse_duration,
)
from app.skills.wording import Responses, format_number, part_of_day
from speech.audio import AudioChunk

log = logging.getLogger(__name__)

Handler = Callable[[Match], SkillAnswer | None]
_MAX_NAME_WORDS = 4
_TIMER_WORDS = ("timer", "timers", "计时器", "定时器", "倒计时")
_EN_PRONOUNS = {"my": "your", "me": "you", "i": "you", "myself": "yourself", "i'm": "you're",
                "mine": "yours"}
_READ_ONLY_INTENTS = frozenset({"HassGetCurrentTime", "HassGetCurrentDate", "HassTimerStatus",
                                "HearthArithmetic", "HearthConvertUnit", "HearthRepeat",
                                "HearthDayDate", "HearthMonthDays", "HearthPartOfDay",
                                "HearthYearMonth", "HearthDaysUntil", "HearthTimeIn",
                                "HearthTimeAfter"})
"""Intents whose handlers change nothing (`SkillSet.claims` may run them)."""


class AnnouncingAssistant(Protocol):
    """What `attach` needs of `app.assistant.pipeline.Assistant`."""

    @property
    def synthesizer(self) -> Any: ...

    def subscribe(self, callback: Callable[[Event], None]) -> None: ...

    def announce(self, text: str, *, sound: AudioChunk | None = None) -> None: ...


class SkillSet:
    """The skills; see the module doc. Thread-safe (the reply stage asks from its thread,
    the timer service rings from its own)."""

    def __init__(self, matcher: IntentMatcher, store: TimerStore, *,
                 actions: Mapping[str, UserAction] | None = None,
                 volume: VolumeControl | None = None,
                 clock: Callable[[], float] = time.time,
                 ring_every_seconds: float = 8.0, ring_for_seconds: float = 600.0) -> None:
        self.matcher = matcher
        self.store = store
        self.responses = {lang: Responses.load(lang) for lang in matcher.languages}
        self._actions = dict(actions or {})
        self._volume = volume or VolumeControl()
        self._clock = clock
        self._converter = Converter()
        self._last_said = ""
        self._lock = threading.Lock()
        self.timers = TimerService(store, self._went_off, clock=clock,
                                   ring_every_seconds=ring_every_seconds,
                                   ring_for_seconds=ring_for_seconds)
        self._handlers: dict[str, Handler] = {
            "HassGetCurrentTime": self._time,
            "HassGetCurrentDate": self._date,
            "HearthDayDate": self._day_date,
            "HearthMonthDays": self._month_days,
            "HearthPartOfDay": self._part_of_day,
            "HearthYearMonth": self._year_month,
            "HearthDaysUntil": self._days_until,
            "HearthTimeIn": self._time_in,
            "HearthTimeAfter": self._time_after,
            "HassStartTimer": self._start_timer,
            "HassCancelTimer": self._cancel_timer,
            "HassCancelAllTimers": self._cancel_all,
            "HassPauseTimer": self._pause_timer,
            "HassUnpauseTimer": self._resume_timer,
            "HassIncreaseTimer": lambda m: self._change_timer(m, +1),
            "HassDecreaseTimer": lambda m: self._change_timer(m, -1),
            "HassTimerStatus": self._timer_status,
            "HassNevermind": self._stop,  # ("闭嘴", "forget it") also quiets a ringing timer
            "HassSetVolume": self._set_volume,
            "HassSetVolumeRelative": self._step_volume,
            "HearthSetAlarm": self._set_alarm,
            "HearthCancelAlarm": self._cancel_alarm,
            "HearthSetReminder": self._set_reminder,
            "HearthArithmetic": self._arithmetic,
            "HearthConvertUnit": self._convert,
            "HearthRepeat": self._repeat,
            "HearthStop": self._stop,
        }

    # ---- the Skills protocol ---------------------------------------------------------

    def answer(self, text: str) -> SkillAnswer | None:
        """Hearth's answer to `text`, or None: the language model answers."""
        for match in self.matcher.matches(text):
            action = self._actions.get(match.intent)
            handler = self._handlers.get(match.intent)
            if action is not None:
                answer = self._user_action(match, action, text)
            elif handler is None:
                continue
            else:
                try:
                    answer = handler(match)
                except TimerError as exc:  # e.g. a full disk: say so, do not guess
                    log.warning("%s", exc)
                    answer = self._reply(match, "timer_failed", {"error": str(exc)},
                                         reason=str(exc))
            if answer is not None:
                log.info("skill %s %s answered %r", answer.intent, dict(answer.slots), text)
                if answer.intent != "HearthRepeat":
                    self._remember(answer.text)
                return answer
        return None

    def claims(self, text: str) -> bool:
        """Whether `answer(text)` may answer it, found without acting: the reply stage
        drafts no reply from the language model for such a question. A handler that only
        reads is asked (arithmetic matches any question and declines most); one that acts
        claims every sentence it matches."""
        for match in self.matcher.matches(text):
            handler = self._handlers.get(match.intent)
            if match.intent in self._actions or (handler is not None and (
                    match.intent not in _READ_ONLY_INTENTS or handler(match) is not None)):
                return True
        return False

    def warm_up(self) -> None:
        """Match one sentence per language, so the first question does not pay for
        hassil's first-use set-up (about 0.1 s)."""
        for sentence in ("what time is it", "现在几点了"):
            for _ in self.matcher.matches(sentence):
                pass

    def attach(self, assistant: AnnouncingAssistant) -> None:
        """Ring timers through `assistant` (starts the timer service) and follow its events;
        build pint's unit registry in the background, so that the first unit question of
        a running assistant does not wait for it (0.2 s and 11 MB here, the first token of
        "how many days are in a week" 241-478 ms in `hearth bench live` against 71-93 ms
        the second time)."""
        threading.Thread(target=self._converter.prepare, name="units-warm-up",
                         daemon=True).start()
        assistant.subscribe(self._observe)
        synthesizer = assistant.synthesizer  # the sound plays even without a voice
        self.timers.start(lambda text, sound: assistant.announce(text, sound=sound),
                          synthesizer.sample_rate if synthesizer is not None else 22050)

    def close(self) -> None:
        self.timers.stop()
        self.store.close()

    def _observe(self, event: Event) -> None:
        if isinstance(event, Silenced):
            self.timers.silence()
        elif isinstance(event, ReplyFinished | Announcement) and event.text.strip():
            self._remember(event.text.strip())

    def _remember(self, text: str) -> None:
        with self._lock:
            self._last_said = text

    # ---- helpers ---------------------------------------------------------------------

    def _say(self, language: str) -> Responses:
        return self.responses.get(language) or next(iter(self.responses.values()))

    def _reply(self, match: Match, key: str, slots: Mapping[str, object] | None = None,
               **values: object) -> SkillAnswer:
        text = self._say(match.language).say(key, **values)
        shown = {k: str(v) for k, v in (slots or {}).items() if v not in (None, "")}
        return SkillAnswer(text=text, intent=match.intent, slots=shown)

    def _now(self) -> datetime:
        return local_time(self._clock())

    def _duration(self, match: Match, prefix: str = "") -> float | None:
        """Seconds from Home Assistant's number slots (hours/minutes/seconds) or from the
        {duration} wildcard."""
        slots = match.slots
        parts = [(f"{prefix}hours", 3600), (f"{prefix}minutes", 60), (f"{prefix}seconds", 1)]
        if any(name in slots for name, _ in parts):
            total = 0.0
            for name, unit in parts:
                value = slots.get(name)
                number = value if isinstance(value, int | float) else (
                    parse_number(str(value), match.language) if value is not None else 0.0)
                if number is None:
                    return None
                total += float(number) * unit
            return total if total > 0 else None
        if not prefix and "duration" in slots:
            return parse_duration(str(slots["duration"]), match.language)
        return None

    def _name(self, match: Match) -> str | None:
        """The timer's name as said ("" for none); None when it is not a usable name."""
        raw = match.slots.get("name")
        if raw is None:
            return ""
        name = str(raw).strip().lower()
        if match.language == "en":
            for prefix in ("then ", "set ", "the ", "a ", "an ", "my "):  # "set an" heard
                name = name.removeprefix(prefix)                          # as "then an"
            name = name.removesuffix(" timer")
        else:
            name = name.removesuffix("的").removeprefix("一个")
        if (not name or len(name.split()) > _MAX_NAME_WORDS or any(w in name for w in _TIMER_WORDS)
                or parse_duration(name, match.language) is not None
                or parse_number(name, match.language) is not None):
            return None
        return name

    def _label(self, timer: Timer, language: str | None = None) -> str:
        """What to call `timer` ("pasta timer", "10 minute timer"), in `language` (by
        default the one it was set in)."""
        language = language or timer.language
        say = self._say(language)
        if timer.kind == "alarm":
            return say.say("label_alarm", when=self._when(timer.ends_at, language))
        if timer.kind == "reminder":
            return say.say("label_reminder")
        if timer.name:
            return say.say("label_named", name=timer.name)
        return say.say("label_unnamed", duration=_adjective(say.duration(timer.duration_seconds),
                                                            language))

    def _when(self, unix_time: float, language: str) -> str:
        """ "7 o'clock in the morning", "... tomorrow", "... on Friday"."""
        say = self._say(language)
        at = local_time(unix_time)
        clock = say.clock(at)
        days = (at.date() - self._now().date()).days
        if days <= 0:
            return clock
        if days == 1:
            return say.say("tomorrow", time=clock)
        return say.say("on_day", time=clock, weekday=say.date(at).split(",")[0])

    def _went_off(self, timer: Timer, late: bool) -> str:
        """What Hearth says when `timer` goes off (see `TimerService`)."""
        say = self._say(timer.language)
        if timer.kind == "alarm":
            text = say.say("alarm_ring", time=say.clock(local_time(timer.ends_at)))
        elif timer.kind == "reminder":
            text = (say.say("reminder_ring", message=timer.message) if timer.message
                    else say.say("reminder_ring_plain"))
        else:
            label = self._label(timer)
            text = say.say("timer_done", label=label)
            text = text[0].upper() + text[1:]
        if late:
            text = say.say("went_off_late", text=text, time=say.clock(local_time(timer.ends_at)))
        return text

    # ---- time and date ---------------------------------------------------------------

    def _time(self, match: Match) -> SkillAnswer:
        now = self._now()
        return self._reply(match, "time", {"time": now.strftime("%H:%M")},
                           time=self._say(match.language).clock(now))

    def _date(self, match: Match) -> SkillAnswer:
        now = self._now()
        return self._reply(match, "date", {"date": now.date().isoformat()},
                           date=self._say(match.language).date(now))

    def _time_in(self, match: Match) -> SkillAnswer | None:
        """ "what time is it in Tokyo": the time there, with its weekday when that is not
        today's here; a country with more than one offset now gives each (up to three)."""
        place = find_place(str(match.slots.get("place", "")))
        if place is None:
            return None  # not a place of the time zone database: the model answers
        say = self._say(match.language)
        now = self._now()
        by_offset: dict[timedelta | None, datetime] = {}
        for zone in place.zones:
            there = now.astimezone(ZoneInfo(zone))
            by_offset.setdefault(there.utcoffset(), there)
        times = list(by_offset.values())

        def worded(there: datetime) -> str:
            clock = say.clock(there)
            if there.date() == now.date():
                return clock
            return say.say("on_day", time=clock, weekday=say.weekday_name(there.weekday()))

        if len(times) == 1:
            return self._reply(match, "time_in", {"place": place.name, "zone": place.zones[0],
                                                  "time": times[0].strftime("%H:%M")},
                               place=place.name, time=worded(times[0]))
        first = place.name[:1].upper() + place.name[1:]  # "The United States has ..."
        if len(times) > 3:
            return self._reply(match, "time_in_many_zones", {"place": place.name},
                               place=first, count=len(times))
        each = [say.say("time_in_zone", time=worded(there), city=zone_city(str(there.tzinfo)))
                for there in times]
        return self._reply(match, "time_in_zones", {"place": place.name}, place=first,
                           times=say.list_words(each))

    def _time_after(self, match: Match) -> SkillAnswer | None:
        """ "what time will it be in three hours" (up to a week ahead)."""
        seconds = self._duration(match)
        if seconds is None or seconds > 7 * 24 * 3600:
            return None
        say = self._say(match.language)
        at = self._clock() + seconds
        return self._reply(match, "time_after",
                           {"time": local_time(at).strftime("%H:%M"),
                            "duration_seconds": format_number(seconds)},
                           duration=say.duration(seconds), time=self._when(at, match.language))

    def _day_date(self, match: Match) -> SkillAnswer | None:
        """ "what date is next friday" (the first Friday after today), "what day is
        tomorrow"."""
        today = self._now().date()
        say = self._say(match.language)
        weekday, offset = match.slots.get("weekday"), match.slots.get("relative_day")
        if isinstance(weekday, int):
            this = match.slots.get("this") == "yes"
            day = next_weekday(today, weekday, this=this)
            name = ("This " if this else "Next ") + say.weekday_name(weekday)
            if this and day == today:
                name = "Today"
            worded = say.day_of_month(day, year=day.year != today.year)
        elif isinstance(offset, int):
            day = today + timedelta(days=offset)
            name = str(match.texts.get("relative_day", "")).capitalize()
            worded = say.day_of_month(day, weekday=True, year=day.year != today.year)
        else:
            return None
        return self._reply(match, "day_date_past" if day < today else "day_date",
                           {"date": day.isoformat()}, day=name, date=worded)

    def _month_days(self, match: Match) -> SkillAnswer | None:
        month = match.slots.get("month")
        if not isinstance(month, int) or not 1 <= month <= 12:
            return None
        year = self._now().year
        days = month_days(year, month)
        return self._reply(match, "month_days_this_year" if month == 2 else "month_days",
                           {"month": month, "year": year, "days": days},
                           month=self._say(match.language).month_name(month), days=days)

    def _part_of_day(self, match: Match) -> SkillAnswer:
        now = self._now()
        part = part_of_day(now.hour)
        return self._reply(match, "part_of_day", {"part": part},
                           part=part, time=f"{now.hour % 12 or 12}:{now.minute:02d}")

    def _year_month(self, match: Match) -> SkillAnswer | None:
        now = self._now()
        if match.slots.get("part") == "year":
            return self._reply(match, "year", {"year": now.year}, year=now.year)
        if match.slots.get("part") == "month":
            return self._reply(match, "month", {"month": now.month},
                               month=self._say(match.language).month_name(now.month))
        return None

    def _days_until(self, match: Match) -> SkillAnswer | None:
        """ "how many days until christmas": the holiday slot is "MM-DD Name"."""
        when, _, name = str(match.slots.get("holiday", "")).partition(" ")
        try:
            month, day_of_month = (int(part) for part in when.split("-"))
        except ValueError:
            return None
        today = self._now().date()
        day = next_anniversary(today, month, day_of_month)
        days = (day - today).days
        say = self._say(match.language)
        slots = {"holiday": name, "date": day.isoformat(), "days": days}
        if days == 0:
            return self._reply(match, "days_until_today", slots, holiday=name)
        key = "days_until_tomorrow" if days == 1 else "days_until"
        return self._reply(match, key, slots, holiday=name, days=days,
                           date=say.day_of_month(day, weekday=True,
                                                 year=day.year != today.year))

    # ---- timers ------------------------------------------------------------------------

    def _start_timer(self, match: Match) -> SkillAnswer | None:
        seconds = self._duration(match)
        name = self._name(match)
        if seconds is None or name is None or seconds > 24 * 3600:
            return None
        timer = self.store.add(kind="timer", name=name, language=match.language,
                               duration_seconds=seconds, ends_at=self._clock() + seconds)
        say = self._say(match.language)
        return self._reply(match, "timer_started" if name else "timer_started_plain",
                           {"duration_seconds": format_number(seconds), "name": name,
                            "timer_id": timer.id},
                           label=self._label(timer, match.language), duration=say.duration(seconds))

    def _targets(self, match: Match, kinds: tuple[str, ...] = ("timer",)
                 ) -> tuple[list[Timer], str] | None:
        """The active timers the sentence points at, and the name it used ("" for none);
        None when the sentence's slots are unusable."""
        name = self._name(match)
        if name is None:
            return None
        timers = [t for t in self.store.active() if t.kind in kinds]
        if name:
            return [t for t in timers if t.name == name or name in t.name.split()], name
        started = self._duration(match, "start_")
        if started is None and "duration" in match.slots:
            started = self._duration(match)
            if started is None:
                return None
        if started is not None:
            return [t for t in timers if abs(t.duration_seconds - started) < 1], name
        return timers, name

    def _none_found(self, match: Match, name: str) -> SkillAnswer:
        if name:
            return self._reply(match, "no_such_timer", {"name": name}, name=name)
        return self._reply(match, "no_timers")

    def _which(self, match: Match, timers: list[Timer]) -> SkillAnswer:
        say = self._say(match.language)
        return self._reply(match, "which_timer", {"count": len(timers)}, count=len(timers),
                           names=say.list_words([self._label(t, match.language) for t in timers]))

    def _cancel_timer(self, match: Match) -> SkillAnswer | None:
        found = self._targets(match)
        if found is None:
            return None
        timers, name = found
        ringing = [t for t in timers if t.state == "ringing"]
        if ringing and not name:
            self.timers.silence()
            return self._reply(match, "silenced", {"silenced": len(ringing)})
        if not timers:
            return self._none_found(match, name)
        if len(timers) > 1:
            return self._which(match, timers)
        self.store.cancel(timers[0].id)
        return self._reply(match, "timer_cancelled", {"name": name, "timer_id": timers[0].id},
                           label=self._label(timers[0], match.language))

    def _cancel_all(self, match: Match) -> SkillAnswer | None:
        timers = [t for t in self.store.active() if t.kind == "timer"]
        if not timers:
            return self._reply(match, "no_timers")
        for timer in timers:
            self.store.cancel(timer.id)
        return self._reply(match, "all_cancelled", {"count": len(timers)}, count=len(timers))

    def _one_target(self, match: Match) -> Timer | SkillAnswer | None:
        found = self._targets(match)
        if found is None:
            return None
        timers, name = found
        if not timers:
            return self._none_found(match, name)
        return timers[0] if len(timers) == 1 else self._which(match, timers)

    def _pause_timer(self, match: Match) -> SkillAnswer | None:
        target = self._one_target(match)
        if not isinstance(target, Timer):
            return target
        now = self._clock()
        self.store.pause(target.id, now)
        timer = self.store.get(target.id)
        return self._reply(match, "timer_paused", {"name": timer.name, "timer_id": timer.id},
                           label=self._label(timer, match.language),
                           remaining=self._say(match.language).duration(timer.remaining(now)))

    def _resume_timer(self, match: Match) -> SkillAnswer | None:
        target = self._one_target(match)
        if not isinstance(target, Timer):
            return target
        if target.state != "paused":
            return self._reply(match, "timer_not_paused", {"timer_id": target.id},
                               label=self._label(target, match.language))
        now = self._clock()
        self.store.resume(target.id, now)
        timer = self.store.get(target.id)
        return self._reply(match, "timer_resumed", {"name": timer.name, "timer_id": timer.id},
                           label=self._label(timer, match.language),
                           remaining=self._say(match.language).duration(timer.remaining(now)))

    def _change_timer(self, match: Match, sign: int) -> SkillAnswer | None:
        seconds = self._duration(match)
        if seconds is None:
            return None
        # the amount is not a way to pick the timer here ("add 2 minutes to the timer")
        unpicked = {k: v for k, v in match.slots.items()
                    if k not in ("duration", "hours", "minutes", "seconds")}
        target = self._one_target(Match(match.intent, match.language, unpicked, match.source,
                                        text=match.text))
        amount = format_number(sign * seconds)
        if not isinstance(target, Timer):
            return target and SkillAnswer(target.text, target.intent,
                                          {**target.slots, "duration_seconds": amount})
        now = self._clock()
        timer = self.store.extend(target.id, sign * seconds, now)
        say = self._say(match.language)
        return self._reply(match, "timer_extended" if sign > 0 else "timer_shortened",
                           {"duration_seconds": amount, "name": timer.name, "timer_id": timer.id},
                           duration=say.duration(seconds), label=self._label(timer, match.language),
                           remaining=say.duration(timer.remaining(now)))

    def _timer_status(self, match: Match) -> SkillAnswer | None:
        found = self._targets(match, kinds=("timer", "reminder", "alarm"))
        if found is None:
            return None
        timers, name = found
        if not timers and name and not any(word in match.text for word in _TIMER_WORDS):
            return None  # "how much time is left for the planet": not about a timer
        if not timers:
            return self._none_found(match, name)
        lines = [self._status_line(match.language, t) for t in timers]
        if len(timers) == 1:
            return SkillAnswer(lines[0], match.intent, {"count": "1", "name": name})
        text = self._say(match.language).say("status_many", count=len(timers),
                                             items=" ".join(lines))
        return SkillAnswer(text, match.intent, {"count": str(len(timers))})

    def _status_line(self, language: str, timer: Timer) -> str:
        say = self._say(language)
        label = self._label(timer, language)
        remaining = say.duration(timer.remaining(self._clock()))
        if timer.state == "ringing":
            line = say.say("status_ringing", label=label)
        elif timer.kind == "alarm":
            line = say.say("status_alarm", label=label)
        elif timer.kind == "reminder" and timer.message:
            line = say.say("status_reminder", message=timer.message,
                           when=self._when(timer.ends_at, language))
        elif timer.state == "paused":
            line = say.say("status_paused", label=label, remaining=remaining)
        else:
            line = say.say("status_running", label=label, remaining=remaining)
        return line[0].upper() + line[1:]

    # ---- alarms and reminders --------------------------------------------------------

    def _clock_time(self, match: Match) -> datetime | None:
        raw = match.slots.get("when")
        clock = parse_clock_time(str(raw), match.language) if raw is not None else None
        if clock is None:
            return None
        if match.slots.get("day") == "tomorrow" and clock.day_offset == 0:
            clock = type(clock)(clock.hour, clock.minute, clock.meridiem_known, 1)
        return clock.next_at(self._now())

    def _set_alarm(self, match: Match) -> SkillAnswer | None:
        at = self._clock_time(match)
        if at is None:
            return None
        timer = self.store.add(kind="alarm", language=match.language, ends_at=at.timestamp())
        return self._reply(match, "alarm_set", {"time": at.strftime("%H:%M"),
                                                "date": at.date().isoformat(),
                                                "timer_id": timer.id},
                           when=self._when(timer.ends_at, match.language))

    def _cancel_alarm(self, match: Match) -> SkillAnswer | None:
        alarms = [t for t in self.store.active() if t.kind == "alarm"]
        if "when" in match.slots:
            at = self._clock_time(match)
            if at is None:
                return None
            alarms = [t for t in alarms if local_time(t.ends_at).strftime("%H:%M")
                      == at.strftime("%H:%M")]
        if not alarms:
            return self._reply(match, "no_alarms")
        for alarm in alarms:
            self.store.cancel(alarm.id)
        if len(alarms) == 1:
            return self._reply(match, "alarm_cancelled", {"timer_id": alarms[0].id},
                               label=self._label(alarms[0], match.language))
        return self._reply(match, "alarms_cancelled", {"count": len(alarms)},
                           count=len(alarms))

    def _set_reminder(self, match: Match) -> SkillAnswer | None:
        message = _second_person(str(match.slots.get("message", "")).strip(), match.language)
        if match.language == "en" and message.startswith("to "):
            message = message[3:]
        say = self._say(match.language)
        if "when" in match.slots:
            at = self._clock_time(match)
            if at is None or not message:
                return None
            timer = self.store.add(kind="reminder", message=message, language=match.language,
                                   ends_at=at.timestamp())
            return self._reply(match, "reminder_set_at",
                               {"message": message, "time": at.strftime("%H:%M"),
                                "timer_id": timer.id},
                               message=message, when=self._when(timer.ends_at, match.language))
        seconds = self._duration(match)
        if seconds is None or seconds > 7 * 24 * 3600:
            return None
        timer = self.store.add(kind="reminder", message=message, language=match.language,
                               duration_seconds=seconds, ends_at=self._clock() + seconds)
        slots = {"message": message, "duration_seconds": format_number(seconds),
                 "timer_id": timer.id}
        if not message:
            return self._reply(match, "reminder_set_plain", slots, duration=say.duration(seconds))
        return self._reply(match, "reminder_set_in", slots, message=message,
                           duration=say.duration(seconds))

    # ---- numbers -----------------------------------------------------------------------

    def _arithmetic(self, match: Match) -> SkillAnswer | None:
        if "op" in match.slots:
            a = parse_number(str(match.slots.get("a", "")), match.language)
            b = parse_number(str(match.slots.get("b", "")), match.language)
            if a is None or b is None:
                return None
            expression = parse_expression(
                f"{format_number(a)} {match.slots['op']} {format_number(b)}", "en")
        else:
            expression = parse_expression(str(match.slots.get("expression", "")),
                                          match.language)
        if expression is None:
            return None
        try:
            result = expression.evaluate()
        except NoValueError as exc:
            key = {"divide-by-zero": "divide_by_zero", "negative-root": "negative_root"}.get(
                exc.reason, "too_large")
            return self._reply(match, key, {"expression": expression.canonical(),
                                            "error": exc.reason})
        spoken = expression.spoken(match.language)
        return self._reply(match, "arithmetic", {"expression": expression.canonical(),
                                                 "result": format_number(result)},
                           spoken=spoken[0].upper() + spoken[1:], result=format_number(result))

    def _convert(self, match: Match) -> SkillAnswer | None:
        quantity = parse_quantity(str(match.slots.get("quantity", "")), match.language)
        target = find_unit(str(match.slots.get("to_unit", "")), match.language)
        if quantity is None or target is None:
            return None
        value, source = quantity
        if source.key == target.key:
            return None  # "what's the day to day": not a conversion
        zh = match.language == "zh"
        source_name = source.zh if zh else (source.singular if value == 1 else source.plural)
        result = self._converter.convert(value, source, target)
        if result is None:
            return self._reply(match, "cannot_convert", {"from_unit": source.key,
                                                         "to_unit": target.key},
                               from_unit=source.zh if zh else source.plural,
                               to_unit=target.zh if zh else target.plural)
        shown = format_number(round(result, 2) if abs(result) >= 0.1 else result)
        target_name = target.zh if zh else (target.singular if shown == "1" else target.plural)
        return self._reply(match, "conversion",
                           {"value": format_number(value), "from_unit": source.key,
                            "to_unit": target.key, "result": shown},
                           value=format_number(value), from_unit=source_name, result=shown,
                           to_unit=target_name)

    # ---- the voice and the conversation ------------------------------------------------

    def _set_volume(self, match: Match) -> SkillAnswer | None:
        level = match.slots.get("volume_level")
        if not isinstance(level, int | float):
            return None
        done = self._volume.set(int(level))
        if done is None:
            return self._reply(match, "volume_unavailable", {"volume_level": int(level)})
        return self._reply(match, "volume_set", {"volume_level": done}, level=done)

    def _step_volume(self, match: Match) -> SkillAnswer | None:
        step = match.slots.get("volume_step")
        if step not in ("up", "down"):
            return None
        done = self._volume.step(step == "up")
        if done is None:
            return self._reply(match, "volume_unavailable", {"volume_step": step})
        return self._reply(match, "volume_set", {"volume_step": step, "volume_level": done},
                           level=done)

    def _repeat(self, match: Match) -> SkillAnswer:
        with self._lock:
            last = self._last_said
        if not last:
            return self._reply(match, "nothing_to_repeat")
        return SkillAnswer(last, match.intent, {})

    def _stop(self, match: Match) -> SkillAnswer:
        silenced = self.timers.silence()
        return self._reply(match, "silenced" if silenced else "okay",
                           {"silenced": len(silenced)})

    def _user_action(self, match: Match, action: UserAction, text: str) -> SkillAnswer:
        slots = {k: format_number(v) if isinstance(v, int | float) else str(v)
                 for k, v in match.slots.items() if k != "area"}
        try:
            said = action.run(slots, text)
        except SkillActionError as exc:
            log.warning("user skill failed: %s", exc)
            said = self._say(match.language).say("skill_failed")
        return SkillAnswer(said or self._say(match.language).say("done"), match.intent, slots)


def _adjective(duration: str, language: str) -> str:
    """ "10 minutes" -> "10 minute" (as in "a 10 minute timer")."""
    if language != "en":
        return duration
    return " ".join(w.removesuffix("s") if w in ("hours", "minutes", "seconds") else w
                    for w in duration.replace(" and ", " ").replace(",", "").split())


def _second_person(message: str, language: str) -> str:
    """ "take my pills" -> "take your pills" (what the reminder will say back)."""
    if language == "zh":
        return message.removeprefix("要").replace("我", "你")
    return " ".join(_EN_PRONOUNS.get(word, word) for word in message.split())

