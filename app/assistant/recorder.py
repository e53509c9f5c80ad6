"""The history recorder: writes each turn to the history database from the events, logs
its timings and gives the C heap's free memory back after each turn.

It is an `EventBus` subscriber, so the SQLite writes (an fsync can take a third of a
second on an SD card) and `malloc_trim` run on the bus's dispatcher thread: never under
the turn lock and never on the GUI thread. Events arrive in order, and a turn's
`TurnMetrics` always comes before the next turn's `TurnStarted`, so one turn is tracked
at a time.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

from app.errors import HistoryError
from app.events import (
    Code,
    Event,
    FinalTranscript,
    Notice,
    ReplyFinished,
    TurnMetrics,
    TurnStarted,
)
from app.history import History, TurnRecord

log = logging.getLogger(__name__)


class HistoryRecorder:
    """Call it with every event (subscribe it to the bus). `model_ids()` names the engine,
    model, recognizer and voice stored with each question."""

    def __init__(self, history: History | None, emit: Callable[[Event], None],
                 model_ids: Callable[[], dict[str, str]]) -> None:
        self.history = history
        self._emit = emit
        self._model_ids = model_ids
        self._lock = threading.Lock()
        self._failing = False
        """The last history write failed (and the user was told)."""
        self._trigger = ""
        self._row: int | None = None
        self._reply = ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, TurnStarted):
            self._trigger, self._row, self._reply = str(event.trigger), None, ""
        elif isinstance(event, FinalTranscript) and event.text:
            self._row = self._write(lambda h: h.start_turn(
                user_text=event.text, trigger=self._trigger, **self._model_ids()))
        elif isinstance(event, ReplyFinished):
            self._reply = event.text
        elif isinstance(event, TurnMetrics):
            _log_metrics(event)
            if self._row is not None:
                record = TurnRecord.from_metrics(reply=self._reply,
                                                 interrupted=event.interrupted,
                                                 error=event.error, metrics=event)
                row = self._row
                self._write(lambda h: h.finish_turn(row, record))
            self._row = None
            _give_free_memory_back()

    def failed(self, text: str) -> None:
        """Tell the user (a `Notice`) that the conversation is not being saved: once while
        saving keeps failing, and again after a save has worked in between (say, once
        the disk was cleared)."""
        log.info("%s", text)  # info: the Notice is what the user sees
        with self._lock:
            if self._failing:
                return
            self._failing = True
        self._emit(Notice(text, Code.HISTORY_FAILED))

    def _write(self, write: Callable[[History], int | None]) -> int | None:
        history = self.history
        if history is None:
            return None
        try:
            result = write(history)
        except HistoryError as exc:  # the turn goes on; it is just not saved
            self.failed(str(exc))
            return None
        except Exception:  # history must never take the assistant down
            log.exception("could not save a turn to the history")
            self.failed(f"could not save the conversation to {history.path}")
            return None
        with self._lock:
            self._failing = False
        return result


def _log_metrics(m: TurnMetrics) -> None:
    log.info("turn %d%s: stt_final %.0f ms, first token %.0f ms, first audio %.0f ms, "
             "total %.0f ms, %.1f tokens/s", m.turn_id, " (interrupted)" if m.interrupted else "",
             m.stt_final_ms, m.first_token_ms, m.first_audio_ms, m.total_ms, m.tokens_per_second)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _give_free_memory_back() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`), once per
    turn: the engine, recognizer and voice free much of what a turn allocated, but glibc
    keeps it, and over a thousand turns that showed up as slow RSS growth (bench/soak.py).
    It takes a few milliseconds, after the reply."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
