"""The event bus: every pipeline event, delivered in order on one dispatcher thread.

`emit` only queues, so no stage (and no control action from the GUI thread) waits for
a subscriber; subscribers run one after another on the bus's own thread. A subscriber
that raises is logged and the others still get the event.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from app.assistant.frames import Stop
from app.events import Code, Event, Notice

log = logging.getLogger(__name__)

Callback = Callable[[Event], None]

LAST_EVENTS_SECONDS = 5.0
"""`close` waits at least this long: the history recorder's last write must land before
whoever owns the history closes it."""


class EventBus:
    """Subscribe callbacks, emit events from any thread; `start` the dispatcher once."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Event | Stop] = queue.Queue()
        self._callbacks: list[Callback] = []
        self._told: set[Code] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self, callback: Callback) -> None:
        """Call `callback(event)` for every event, in order, from the dispatcher thread."""
        with self._lock:
            self._callbacks.append(callback)

    def emit(self, event: Event) -> None:
        self._queue.put(event)

    def tell_once(self, code: Code, text: str) -> None:
        """A `Notice`, at most once per `code` for the life of this bus."""
        with self._lock:
            if code in self._told:
                return
            self._told.add(code)
        log.info("%s", text)
        self.emit(Notice(text, code))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hearth-events", daemon=True)
        self._thread.start()

    def close(self, timeout: float) -> None:
        """Deliver what is queued (and what subscribers emit meanwhile), then stop; waits
        `timeout`, but at least `LAST_EVENTS_SECONDS`."""
        self._queue.put(Stop())
        if self._thread is not None:
            self._thread.join(max(LAST_EVENTS_SECONDS, timeout))

    def _run(self) -> None:
        stopping = False
        while True:
            if stopping:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return
            else:
                item = self._queue.get()
            if isinstance(item, Stop):
                stopping = True
                continue
            with self._lock:
                callbacks = list(self._callbacks)
            for callback in callbacks:
                try:
                    callback(item)
                except Exception:  # a broken subscriber must not silence the others
                    log.exception("event subscriber %r failed on %r", callback, item)
