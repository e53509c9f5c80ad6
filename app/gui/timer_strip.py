"""The timer strip: one chip per running timer, alarm or reminder, counting down.

A thin row for the 800×480 kiosk: it is hidden while nothing runs, shows at most
`MAX_CHIPS` chips (then "+N"), and a chip is tapped to cancel its timer (a ringing one
stops at once). The timers come from Hearth's database, read by a small poller thread
once a second (so timers set by `hearth ask` or cancelled by `hearth timers cancel`
show up too); the GUI thread only paints what arrives through a queued signal.

`SkillBadge` is the status-bar label that says which skill answered the last question.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from app.events import Event, IntentMatched, TurnStarted
from app.skills import skill_title
from app.skills.timers import Timer, TimerError, TimerStore, countdown

log = logging.getLogger(__name__)

MAX_CHIPS = 4
POLL_SECONDS = 1.0

STYLE = """
#timerChip { border-radius: 10px; padding: 2px 10px; border: 1px solid palette(mid);
  background: palette(alternate-base); }
#timerChip[state="paused"] { color: palette(mid); }
#timerChip[state="ringing"] { background: #c0392b; color: white; border: none;
  font-weight: bold; }
"""


class _Poller(QObject):
    """Reads the active timers on its own thread; cancels on request."""

    timers = Signal(object)
    """A list of `Timer`s, soonest first."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._requests: queue.Queue[int | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="hearth-timer-strip",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._requests.put(None)
            self._thread.join(2.0)

    def cancel(self, timer_id: int) -> None:
        self._requests.put(timer_id)

    def _run(self) -> None:
        store: TimerStore | None = None
        while True:
            try:
                request = self._requests.get(timeout=POLL_SECONDS)
            except queue.Empty:
                request = -1
            if request is None:
                break
            try:
                store = store or TimerStore(self._path)
                if request > 0:
                    store.cancel(request)
                self.timers.emit(store.active())
            except TimerError as exc:  # a busy or missing database: try again next second
                log.debug("timer strip: %s", exc)
        if store is not None:
            store.close()


class TimerStrip(QWidget):
    """Chips counting down; see the module doc."""

    def __init__(self, database: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timerStrip")
        self.setStyleSheet(STYLE)
        self.setAccessibleName("Timers")
        self._timers: list[Timer] = []
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.chips = [self._chip() for _ in range(MAX_CHIPS)]
        self.more = QLabel(self)
        self._layout.addWidget(self.more)
        self._layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._poller = _Poller(database)
        self._poller.timers.connect(self.show_timers, Qt.ConnectionType.QueuedConnection)
        self.hide()

    def _chip(self) -> QPushButton:
        chip = QPushButton(self)
        chip.setObjectName("timerChip")
        chip.setFlat(True)
        chip.setToolTip("Tap to cancel")
        chip.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # never steals the space bar
        chip.clicked.connect(lambda: self._cancel(chip))
        chip.hide()
        self._layout.addWidget(chip)
        return chip

    def start(self) -> None:
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()

    def _cancel(self, chip: QPushButton) -> None:
        timer_id = chip.property("timer_id")
        if timer_id:
            self._poller.cancel(int(timer_id))

    def text_of(self, timer: Timer, now: float) -> str:
        """ "pasta 4:05", "alarm 07:30", "reminder 0:42" ("!" while ringing)."""
        if timer.state == "ringing":
            return f"⏰ {timer.name or timer.kind} !"
        if timer.kind == "alarm":
            return f"⏰ {time.strftime('%H:%M', time.localtime(timer.ends_at))}"
        label = timer.name or (timer.message[:16] if timer.kind == "reminder" else "timer")
        paused = " ⏸" if timer.state == "paused" else ""
        return f"⏲ {label} {countdown(timer.remaining(now))}{paused}"

    @Slot(object)
    def show_timers(self, timers: list[Timer]) -> None:
        self._timers = timers
        now = time.time()
        for chip, timer in zip(self.chips, timers, strict=False):
            chip.setText(self.text_of(timer, now))
            chip.setProperty("timer_id", timer.id)
            chip.setProperty("state", timer.state)
            chip.setAccessibleName(chip.text())
            chip.style().unpolish(chip)
            chip.style().polish(chip)
            chip.show()
        for chip in self.chips[len(timers):]:
            chip.setProperty("timer_id", 0)
            chip.hide()
        extra = len(timers) - MAX_CHIPS
        self.more.setText(f"+{extra}" if extra > 0 else "")
        self.setVisible(bool(timers))


class SkillBadge(QLabel):
    """ "skill: Timers" in the status bar while the last answer came from a skill."""

    @Slot(object)
    def on_event(self, event: Event) -> None:
        if isinstance(event, IntentMatched):
            self.setText(f"skill: {skill_title(event.intent)}")
            self.setToolTip(f"{event.intent} {dict(event.slots)}")
        elif isinstance(event, TurnStarted):
            self.setText("")
            self.setToolTip("")
