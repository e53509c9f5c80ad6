"""The one door from the pipeline's worker threads into the GUI thread.

`Assistant.subscribe` calls `EventBridge.publish` from whatever thread produced an
event. `publish` only emits a signal with a queued connection, so every event
reaches `_dispatch` on the GUI thread, in the order it was published, and is
re-emitted there as typed signals that widgets connect to directly.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.events import (
    AudioLevel,
    ErrorEvent,
    Event,
    FinalTranscript,
    Notice,
    PartialTranscript,
    StateChanged,
    TurnMetrics,
)


class AssistantLike(Protocol):
    """What the window needs from `app.assistant.pipeline.Assistant`."""

    def subscribe(self, callback: object) -> None: ...
    def start(self) -> None: ...
    def shutdown(self, timeout: float = 2.0) -> None: ...
    def push_to_talk_pressed(self) -> None: ...
    def push_to_talk_released(self) -> None: ...
    def submit_text(self, text: str) -> None: ...
    def cancel(self) -> None: ...


class EventBridge(QObject):
    """Pipeline events in, GUI-thread signals out."""

    event_received = Signal(object)
    """Every event, in order (the conversation model listens here)."""
    state_changed = Signal(object)
    """The new `State`."""
    level_changed = Signal(float)
    """Microphone RMS level, 0..1."""
    partial_transcript = Signal(str)
    final_transcript = Signal(str)
    metrics = Signal(object)
    """A `TurnMetrics`."""
    error = Signal(str, str)
    """(text, code) of an `ErrorEvent`."""
    notice = Signal(str, str)
    """(text, code) of a `Notice`."""

    _incoming = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Queued even when published from the GUI thread itself, so ordering never
        # depends on which thread an event came from.
        self._incoming.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self._closed = False

    def publish(self, event: Event) -> None:
        """Hand over one event; safe to call from any thread."""
        if not self._closed:
            self._incoming.emit(event)

    def close(self) -> None:
        """Drop events that arrive after the window has gone."""
        self._closed = True

    @Slot(object)
    def _dispatch(self, event: Event) -> None:
        if self._closed:
            return
        self.event_received.emit(event)
        if isinstance(event, StateChanged):
            self.state_changed.emit(event.state)
        elif isinstance(event, AudioLevel):
            self.level_changed.emit(float(event.rms))
        elif isinstance(event, PartialTranscript):
            self.partial_transcript.emit(event.text)
        elif isinstance(event, FinalTranscript):
            self.final_transcript.emit(event.text)
        elif isinstance(event, TurnMetrics):
            self.metrics.emit(event)
        elif isinstance(event, ErrorEvent):
            self.error.emit(event.text, event.code)
        elif isinstance(event, Notice):
            self.notice.emit(event.text, event.code)

