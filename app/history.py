"""The local conversation history: every turn in an SQLite database, written as it happens.

A turn is inserted the moment its question is known and completed when the reply
ends, each in its own committed transaction, in WAL mode with full sync: killing
the process or cutting the power loses at most the turn in progress, which stays
readable with `complete = 0`. Storage is off when `settings.history.enabled` is
false (`History.open` then returns None and nothing is written anywhere).

A full disk is said as such: SQLite reports it as "database or disk is full", or, when
the WAL index cannot grow, as a bare "disk I/O error"; either, on a disk with almost
no space left, becomes a `HistoryError` that says the disk is full. A failed write is
rolled back, so a turn is stored whole or not at all (its question, saved first, may
stay without its reply, as after a crash).
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from app.config import Settings
from app.errors import HistoryError
from app.events import TurnMetrics

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    trigger TEXT NOT NULL DEFAULT '',
    user_text TEXT NOT NULL,
    reply TEXT NOT NULL DEFAULT '',
    complete INTEGER NOT NULL DEFAULT 0,
    interrupted INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    stt_final_ms REAL,
    first_token_ms REAL,
    first_audio_ms REAL,
    total_ms REAL,
    prompt_tokens INTEGER,
    generated_tokens INTEGER,
    tokens_per_second REAL,
    engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    recognizer TEXT NOT NULL DEFAULT '',
    voice TEXT NOT NULL DEFAULT ''
);
"""

_FIELDS = ("id", "started_at", "finished_at", "trigger", "user_text", "reply", "complete",
           "interrupted", "error", "stt_final_ms", "first_token_ms", "first_audio_ms",
           "total_ms", "prompt_tokens", "generated_tokens", "tokens_per_second", "engine",
           "model", "recognizer", "voice")


@dataclass(frozen=True)
class TurnRecord:
    """How a turn ended: the reply and its timings (milliseconds from end of input)."""

    reply: str
    interrupted: bool = False
    error: str = ""
    stt_final_ms: float = 0.0
    first_token_ms: float = 0.0
    first_audio_ms: float = 0.0
    total_ms: float = 0.0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    tokens_per_second: float = 0.0

    @classmethod
    def from_metrics(cls, *, reply: str, interrupted: bool, error: str,
                     metrics: TurnMetrics) -> TurnRecord:
        return cls(reply=reply, interrupted=interrupted, error=error,
                   stt_final_ms=metrics.stt_final_ms, first_token_ms=metrics.first_token_ms,
                   first_audio_ms=metrics.first_audio_ms, total_ms=metrics.total_ms,
                   prompt_tokens=metrics.prompt_tokens,
                   generated_tokens=metrics.generated_tokens,
                   tokens_per_second=metrics.tokens_per_second)


_LOW_SPACE_BYTES = 1 << 20
"""An I/O error with less free space than this on the disk is taken for a full disk."""
_FULL_ERRORS = frozenset({"SQLITE_FULL"})
_IO_ERRORS = ("SQLITE_IOERR", "SQLITE_CANTOPEN")
"""SQLite result codes (and their extended forms) that a full disk can show up as."""


def _disk_full_message(path: Path, exc: sqlite3.Error | OSError) -> str | None:
    """The error to give when `exc`, raised writing `path`, is a full disk; else None."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    if isinstance(exc, OSError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    else:
        name = getattr(exc, "sqlite_errorname", "") or ""
        full = name in _FULL_ERRORS or (name.startswith(_IO_ERRORS) and free < _LOW_SPACE_BYTES)
    if not full:
        return None
    return (f"disk full: could not save the conversation to {path} "
            f"({free / 1e6:.1f} MB free); free some space or switch history off "
            "([history] enabled = false)")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class History:
    """The history database. Safe to use from several threads (one lock, one connection)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = db = sqlite3.connect(self.path, check_same_thread=False,
                                            isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed turn survives a power cut, not just a process crash
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()
            raise HistoryError(_disk_full_message(self.path, exc)
                               or f"cannot open the history database {self.path}: {exc}"
                               ) from None

    @classmethod
    def open(cls, settings: Settings) -> History | None:
        """The history the settings ask for, or None when history is switched off."""
        if not settings.history.enabled:
            return None
        return cls(settings.history_path)

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, params)
            except sqlite3.Error as exc:
                # autocommit: SQLite has undone the statement, unless an I/O error left
                # the transaction open; then it is rolled back here
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.rollback()
                raise HistoryError(_disk_full_message(self.path, exc)
                                   or f"cannot write the history database {self.path}: "
                                   f"{exc}") from None

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(f"cannot read the history database {self.path}: "
                                   f"{exc}") from None

    def start_turn(self, *, user_text: str, trigger: str = "", engine: str = "",
                   model: str = "", recognizer: str = "", voice: str = "") -> int:
        """Store the question of a new turn now; its id, for `finish_turn`."""
        cursor = self._write(
            "INSERT INTO turns (started_at, trigger, user_text, engine, model, recognizer, "
            "voice) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_now(), trigger, user_text, engine, model, recognizer, voice))
        return int(cursor.lastrowid or 0)

    def finish_turn(self, turn_id: int, record: TurnRecord) -> None:
        """Store how turn `turn_id` ended."""
        r = record
        self._write(
            "UPDATE turns SET finished_at=?, reply=?, complete=1, interrupted=?, error=?, "
            "stt_final_ms=?, first_token_ms=?, first_audio_ms=?, total_ms=?, prompt_tokens=?, "
            "generated_tokens=?, tokens_per_second=? WHERE id=?",
            (_now(), r.reply, int(r.interrupted), r.error, r.stt_final_ms, r.first_token_ms,
             r.first_audio_ms, r.total_ms, r.prompt_tokens, r.generated_tokens,
             r.tokens_per_second, turn_id))

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last `limit` turns, oldest first."""
        rows = self._read("SELECT * FROM turns ORDER BY id DESC LIMIT ?", (max(0, limit),))
        return [_row(r) for r in reversed(rows)]

    def get(self, turn_id: int) -> dict[str, Any]:
        rows = self._read("SELECT * FROM turns WHERE id=?", (turn_id,))
        if not rows:
            raise HistoryError(f"there is no turn {turn_id} in the history "
                               "(see: hearth history list)")
        return _row(rows[0])

    def all_turns(self) -> Iterator[dict[str, Any]]:
        for row in self._read("SELECT * FROM turns ORDER BY id"):
            yield _row(row)

    def export_jsonl(self, out: IO[str]) -> int:
        """Write every turn as one JSON object per line; how many were written."""
        count = 0
        for turn in self.all_turns():
            out.write(json.dumps(turn, ensure_ascii=False) + "\n")
            count += 1
        return count

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM turns")[0][0])

    def clear(self) -> int:
        """Delete every turn (and compact the file); how many were deleted."""
        deleted = self.count()
        self._write("DELETE FROM turns", ())
        self._write("VACUUM", ())
        return deleted

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row(row: sqlite3.Row) -> dict[str, Any]:
    turn = {name: row[name] for name in _FIELDS}
    turn["complete"] = bool(turn["complete"])
    turn["interrupted"] = bool(turn["interrupted"])
    return turn

