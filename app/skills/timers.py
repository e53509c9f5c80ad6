"""Timers, alarms and reminders a kitchen can trust: kept in SQLite, rung until silenced.

`TimerStore` keeps every timer in the `timers` table of Hearth's database (the
history file), each change in its own committed transaction (WAL, full sync), so a
restart or `kill -9` loses none. Times are stored as Unix time: a timer that ended
while Hearth was down is found on start and announced as such.

`TimerService` watches the store from its own thread (several times a second, so a
`hearth timers cancel ID` from another process is seen at once): when a timer ends
it is marked ringing and announced — an alarm sound, then a spoken message —
again every `ring_every_seconds` until silenced (`silence()`: push-to-talk, the
GPIO button, Stop, or saying "stop") or until `ring_for_seconds` have passed.
While timers run it logs a countdown line every `log_every_seconds`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np

from app.errors import HearthError
from speech.audio import AudioChunk

log = logging.getLogger(__name__)

KINDS = ("timer", "alarm", "reminder")
ACTIVE = ("running", "paused", "ringing")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'en',
    duration_seconds REAL NOT NULL DEFAULT 0,
    ends_at REAL NOT NULL,
    paused_remaining REAL,
    state TEXT NOT NULL DEFAULT 'running',
    created_at REAL NOT NULL,
    rang_at REAL
);
"""
_COLUMNS = ("id", "kind", "name", "message", "language", "duration_seconds", "ends_at",
            "paused_remaining", "state", "created_at", "rang_at")


class TimerError(HearthError):
    """The timer database could not be read or written, or has no such timer."""


@dataclass(frozen=True)
class Timer:
    """One timer, alarm or reminder as stored."""

    id: int
    kind: str
    """"timer", "alarm" (at a clock time) or "reminder" (says `message`)."""
    name: str
    message: str
    language: str
    duration_seconds: float
    """As set (timers, reminders in N minutes); 0 for a clock time."""
    ends_at: float
    """Unix time it goes off (while paused: when it would have)."""
    paused_remaining: float | None
    """Seconds left when paused; None while not paused."""
    state: str
    """"running", "paused", "ringing", "done" or "cancelled"."""
    created_at: float
    rang_at: float | None = None
    """Unix time it started ringing (None before)."""

    def remaining(self, now: float) -> float:
        if self.paused_remaining is not None:
            return self.paused_remaining
        return max(0.0, self.ends_at - now)


class TimerStore:
    """The `timers` table. Safe to use from several threads (one lock, one connection)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self, create: bool) -> sqlite3.Connection | None:
        """The open database (opened on first use); None while it does not exist and
        `create` is false, so that looking for timers creates no file."""
        if self._db is None:
            if not create and str(self.path) != ":memory:" and not self.path.exists():
                return None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA busy_timeout=5000")
                db.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise TimerError(f"cannot open the timer database {self.path}: {exc}") from None
            self._db = db
        return self._db

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return self._execute(sql, params)[0]

    def _execute(self, sql: str, params: tuple[object, ...]) -> tuple[list[tuple[object, ...]],
                                                                       int]:
        """The rows and the last inserted row id."""
        with self._lock:
            db = self._connection(create=not sql.startswith("SELECT"))
            if db is None:
                return [], 0
            try:
                cursor = db.execute(sql, params)
                return cursor.fetchall(), int(cursor.lastrowid or 0)
            except sqlite3.Error as exc:
                raise TimerError(f"timer database {self.path}: {exc}") from None

    def _select(self, where: str, params: tuple[object, ...] = ()) -> list[Timer]:
        rows = self._run(f"SELECT {', '.join(_COLUMNS)} FROM timers WHERE {where} ORDER BY "
                         "ends_at, id", params)
        return [Timer(*row) for row in rows]  # type: ignore[arg-type]

    def add(self, *, kind: str, ends_at: float, name: str = "", message: str = "",
            language: str = "en", duration_seconds: float = 0.0) -> Timer:
        if kind not in KINDS:
            raise ValueError(f"unknown timer kind {kind!r}")
        _, timer_id = self._execute(
            "INSERT INTO timers (kind, name, message, language, duration_seconds, ends_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, name, message, language, duration_seconds, ends_at, time.time()))
        return self.get(timer_id)

    def get(self, timer_id: int) -> Timer:
        found = self._select("id = ?", (timer_id,))
        if not found:
            raise TimerError(f"there is no timer {timer_id} (see: hearth timers list)")
        return found[0]

    def active(self) -> list[Timer]:
        """Running, paused and ringing timers, the soonest first."""
        return self._select("state IN ('running', 'paused', 'ringing')")

    def due(self, now: float) -> list[Timer]:
        """Running timers whose time has come."""
        return self._select("state = 'running' AND ends_at <= ?", (now,))

    def ringing(self) -> list[Timer]:
        return self._select("state = 'ringing'")

    def set_state(self, timer_id: int, state: str, now: float | None = None) -> None:
        if state == "ringing":
            self._run("UPDATE timers SET state = 'ringing', rang_at = ? WHERE id = ?",
                      (now if now is not None else time.time(), timer_id))
        else:
            self._run("UPDATE timers SET state = ? WHERE id = ?", (state, timer_id))

    def cancel(self, timer_id: int) -> Timer:
        timer = self.get(timer_id)
        if timer.state not in ACTIVE:
            raise TimerError(f"timer {timer_id} is not running (it is {timer.state})")
        self.set_state(timer_id, "cancelled")
        return timer

    def pause(self, timer_id: int, now: float) -> None:
        timer = self.get(timer_id)
        if timer.state == "running":
            self._run("UPDATE timers SET state = 'paused', paused_remaining = ? WHERE id = ?",
                      (timer.remaining(now), timer_id))

    def resume(self, timer_id: int, now: float) -> None:
        timer = self.get(timer_id)
        if timer.state == "paused":
            self._run("UPDATE timers SET state = 'running', ends_at = ?, paused_remaining = NULL "
                      "WHERE id = ?", (now + (timer.paused_remaining or 0.0), timer_id))

    def extend(self, timer_id: int, seconds: float, now: float) -> Timer:
        """Add (or with a negative `seconds`, take) time; never below zero left."""
        timer = self.get(timer_id)
        if timer.paused_remaining is not None:
            self._run("UPDATE timers SET paused_remaining = ? WHERE id = ?",
                      (max(0.0, timer.paused_remaining + seconds), timer_id))
        else:
            self._run("UPDATE timers SET ends_at = ? WHERE id = ?",
                      (max(now, timer.ends_at + seconds), timer_id))
        return self.get(timer_id)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def countdown(seconds: float) -> str:
    """A compact countdown for screens and logs: "4:05", "1:02:03"."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def alarm_sound(sample_rate: int, volume: float = 0.3) -> AudioChunk:
    """Three short two-note beeps (about 1.2 s): a kitchen timer, generated."""
    note = round(0.12 * sample_rate)
    gap = np.zeros(round(0.08 * sample_rate))
    t = np.arange(note) / sample_rate
    fade = max(1, round(0.005 * sample_rate))
    envelope = np.ones(note)
    envelope[:fade] = np.linspace(0.0, 1.0, fade)
    envelope[-fade:] = np.linspace(1.0, 0.0, fade)
    beep = [np.sin(2 * np.pi * 988.0 * t) * envelope, gap,
            np.sin(2 * np.pi * 1319.0 * t) * envelope, gap, gap]
    return AudioChunk.from_float(volume * np.concatenate(beep * 3), sample_rate)


Announce = Callable[[str, AudioChunk | None], None]
"""Say `text` after playing the sound (`Assistant.announce`)."""
Describe = Callable[[Timer, bool], str]
"""The message for a timer that went off; the flag says it ended while Hearth was down."""


class TimerService:
    """Rings timers from the store when they end, until silenced; see the module doc."""

    _running: ClassVar[dict[Path, TimerService]] = {}
    _running_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, store: TimerStore, describe: Describe, *,
                 clock: Callable[[], float] = time.time, poll_seconds: float = 0.2,
                 ring_every_seconds: float = 8.0, ring_for_seconds: float = 600.0,
                 log_every_seconds: float = 30.0) -> None:
        self.store = store
        self._describe = describe
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._ring_every_seconds = ring_every_seconds
        self._ring_for_seconds = ring_for_seconds
        self._log_every_seconds = log_every_seconds
        self._announce: Announce | None = None
        self._sound: AudioChunk | None = None
        self._started_at = 0.0
        self._next_ring: dict[int, float] = {}
        self._snapshot: list[Timer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_log = 0.0

    def start(self, announce: Announce, sample_rate: int) -> None:
        """Watch the store from a thread; `announce` says what rang, after an alarm sound
        made at `sample_rate`."""
        self._announce = announce
        self._sound = alarm_sound(sample_rate)
        self._started_at = self._clock()
        with TimerService._running_lock:  # one ringing service per database and process
            previous = TimerService._running.get(self.store.path)
            TimerService._running[self.store.path] = self
        if previous is not None and previous is not self:
            previous.stop()  # e.g. the window rebuilt its assistant after a settings change
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="hearth-timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None

    def snapshot(self) -> list[Timer]:
        """The active timers as of the last look (no disk access: for the GUI thread)."""
        with self._lock:
            return list(self._snapshot)

    def silence(self) -> list[Timer]:
        """Stop every ringing timer (it is done); which ones were ringing."""
        ringing = self.store.ringing()
        for timer in ringing:
            self.store.set_state(timer.id, "done")
        with self._lock:
            for timer in ringing:
                self._next_ring.pop(timer.id, None)
        if ringing:
            log.info("silenced: %s", ", ".join(_label(t) for t in ringing))
        return ringing

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.tick()
            except TimerError as exc:  # a locked or failing database: try again shortly
                log.warning("%s", exc)

    def tick(self) -> None:
        """One look at the store: ring what is due, repeat what rings, log the countdown."""
        now = self._clock()
        for timer in self.store.due(now):
            self.store.set_state(timer.id, "ringing", now)
            log.info("%s went off", _label(timer))
        ringing = self.store.ringing()
        for timer in ringing:
            # (after a restart it rings afresh: nobody has heard it yet)
            since = now - max(timer.rang_at or now, self._started_at)
            if since > self._ring_for_seconds:
                self.store.set_state(timer.id, "done")
                log.info("%s rang for %.0f s unanswered; stopped", _label(timer), since)
                continue
            with self._lock:
                due = self._next_ring.get(timer.id, 0.0) <= now
                if due:
                    self._next_ring[timer.id] = now + self._ring_every_seconds
            if due and self._announce is not None:
                # it ended before this service started: while Hearth was not running
                text = self._describe(timer, timer.ends_at < self._started_at - 1.0)
                log.info("announcing: %s", text)
                self._announce(text, self._sound)
        active = self.store.active()
        with self._lock:
            self._snapshot = active
            live = {t.id for t in active}
            for gone in set(self._next_ring) - live:
                del self._next_ring[gone]
        running = [t for t in active if t.state == "running"]
        if running and now - self._last_log >= self._log_every_seconds:
            self._last_log = now
            log.info("timers: %s", "; ".join(
                f"{_label(t)} {countdown(t.remaining(now))} left"
                for t in running))


def _label(timer: Timer) -> str:
    return f"{timer.kind} {timer.id}" + (f" ({timer.name})" if timer.name else "")


def local_time(unix_time: float) -> datetime:
    """`unix_time` in the machine's time zone."""
    return datetime.fromtimestamp(unix_time).astimezone()

