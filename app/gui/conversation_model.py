"""The conversation as a Qt list model: one row per message bubble.

`ConversationModel.apply_event` turns pipeline events into rows: a live partial
transcript becomes a pending user bubble that the final transcript settles, and
reply tokens grow the last assistant bubble in place (one `dataChanged` per token,
never a reset), so a view stays smooth however long the history gets. What Hearth
says on its own (an `Announcement`: a timer going off) is an assistant bubble marked
as an announcement. The model needs no window and is tested on its own.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from app.events import (
    Announcement,
    Event,
    FinalTranscript,
    PartialTranscript,
    ReplyFinished,
    ReplyToken,
    State,
    StateChanged,
)

USER = "user"
ASSISTANT = "assistant"

_Index = QModelIndex | QPersistentModelIndex


@dataclass
class Message:
    """One bubble of the conversation."""

    role: str
    """USER or ASSISTANT."""
    text: str
    turn_id: int = 0
    """Turn the message belongs to; 0 for a typed question the pipeline has not confirmed yet."""
    pending: bool = False
    """Still changing: a partial transcript, or a reply being streamed."""
    interrupted: bool = False
    """The reply was cut short (Stop, barge-in, closing)."""
    announcement: bool = False
    """Said by Hearth on its own (a timer going off), not a reply to a question."""
    started_at: float = field(default_factory=time.monotonic)
    """Monotonic time of the first text (same clock as event timestamps)."""
    finished_at: float | None = None
    """Monotonic time the text was final; None while pending."""
    wall_time: datetime = field(default_factory=datetime.now)
    """Clock time shown next to the bubble."""


class MessageRole(enum.IntEnum):
    """Item data roles beyond Qt.DisplayRole (which is the bubble's text)."""

    ROLE = Qt.ItemDataRole.UserRole + 1
    TEXT = Qt.ItemDataRole.UserRole + 2
    PENDING = Qt.ItemDataRole.UserRole + 3
    INTERRUPTED = Qt.ItemDataRole.UserRole + 4
    TIME = Qt.ItemDataRole.UserRole + 5
    TURN = Qt.ItemDataRole.UserRole + 6
    STARTED_AT = Qt.ItemDataRole.UserRole + 7
    FINISHED_AT = Qt.ItemDataRole.UserRole + 8
    ANNOUNCEMENT = Qt.ItemDataRole.UserRole + 9


class ConversationModel(QAbstractListModel):
    """Message bubbles in order, fed by pipeline events."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._messages: list[Message] = []

    # --- Qt model interface ---------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._messages)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._messages):
            return None
        msg = self._messages[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, MessageRole.TEXT):
            return msg.text
        if role == Qt.ItemDataRole.AccessibleTextRole:
            who = "You" if msg.role == USER else "Hearth"
            if msg.announcement:
                who += " (announcement)"
            return f"{who}: {msg.text}" + (" (interrupted)" if msg.interrupted else "")
        values = {
            MessageRole.ROLE: msg.role,
            MessageRole.PENDING: msg.pending,
            MessageRole.INTERRUPTED: msg.interrupted,
            MessageRole.ANNOUNCEMENT: msg.announcement,
            MessageRole.TIME: msg.wall_time.strftime("%H:%M"),
            MessageRole.TURN: msg.turn_id,
            MessageRole.STARTED_AT: msg.started_at,
            MessageRole.FINISHED_AT: msg.finished_at,
        }
        return values.get(role)

    def roleNames(self) -> dict[int, bytes]:
        names = {int(r): r.name.lower().encode() for r in MessageRole}
        names[int(Qt.ItemDataRole.DisplayRole)] = b"display"
        return names

    def flags(self, index: _Index) -> Qt.ItemFlag:
        # Selectable so a keyboard user can walk the history and copy a message.
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # --- reading ----------------------------------------------------------------------------

    def message(self, row: int) -> Message:
        return self._messages[row]

    def messages(self) -> list[Message]:
        """A copy of all messages, oldest first."""
        return list(self._messages)

    # --- changing -------------------------------------------------------------------------

    def clear(self) -> None:
        self.beginResetModel()
        self._messages.clear()
        self.endResetModel()

    def add_typed_question(self, text: str) -> None:
        """Show a question the user typed at once, before the pipeline confirms it.

        The pipeline's `FinalTranscript` for that turn adopts this bubble instead of
        adding a second one.
        """
        self._append(Message(USER, text, turn_id=0, pending=False, finished_at=time.monotonic()))

    def apply_event(self, event: Event) -> None:
        """Update the bubbles for one pipeline event (others are ignored)."""
        if isinstance(event, PartialTranscript):
            self._on_partial(event)
        elif isinstance(event, FinalTranscript):
            self._on_final(event)
        elif isinstance(event, ReplyToken):
            self._on_token(event)
        elif isinstance(event, ReplyFinished):
            self._on_reply_finished(event)
        elif isinstance(event, Announcement) and event.text.strip():
            self._append(Message(ASSISTANT, event.text, event.turn_id, announcement=True,
                                 started_at=event.timestamp, finished_at=event.timestamp))
        elif isinstance(event, StateChanged) and event.state in (State.IDLE, State.ERROR):
            self._settle(event.timestamp)

    def _on_partial(self, event: PartialTranscript) -> None:
        row = self._find(USER, event.turn_id, pending_only=True)
        if row is None:
            if not event.text.strip():
                return
            self._append(Message(USER, event.text, event.turn_id, pending=True,
                                 started_at=event.timestamp))
        else:
            self._messages[row].text = event.text
            self._changed(row)

    def _on_final(self, event: FinalTranscript) -> None:
        row = self._find(USER, event.turn_id, pending_only=True)
        if row is None:
            row = self._unconfirmed_typed(event.text)
        if row is None:
            if not event.text.strip():
                return
            self._append(Message(USER, event.text, event.turn_id, finished_at=event.timestamp,
                                 started_at=event.timestamp))
            return
        msg = self._messages[row]
        if not event.text.strip():  # nothing was understood: drop the partial bubble
            self._remove(row)
            return
        msg.text, msg.turn_id, msg.pending, msg.finished_at = (
            event.text, event.turn_id, False, event.timestamp)
        self._changed(row)

    def _on_token(self, event: ReplyToken) -> None:
        row = self._find(ASSISTANT, event.turn_id, pending_only=True)
        if row is None:
            self._append(Message(ASSISTANT, event.text, event.turn_id, pending=True,
                                 started_at=event.timestamp))
        else:
            self._messages[row].text += event.text
            self._changed(row)

    def _on_reply_finished(self, event: ReplyFinished) -> None:
        row = self._find(ASSISTANT, event.turn_id, pending_only=False)
        if row is None:
            if event.text.strip() or event.interrupted:
                self._append(Message(ASSISTANT, event.text, event.turn_id,
                                     interrupted=event.interrupted, started_at=event.timestamp,
                                     finished_at=event.timestamp))
            return
        msg = self._messages[row]
        # The pipeline's final text wins: it is what went into the history.
        if event.text:
            msg.text = event.text
        msg.pending, msg.interrupted, msg.finished_at = False, event.interrupted, event.timestamp
        self._changed(row)

    def _settle(self, timestamp: float) -> None:
        """The turn is over: nothing stays pending (an abandoned partial is dropped)."""
        for row in range(len(self._messages) - 1, -1, -1):
            msg = self._messages[row]
            if not msg.pending:
                continue
            if msg.role == USER:
                self._remove(row)
            else:
                msg.pending, msg.interrupted, msg.finished_at = False, True, timestamp
                self._changed(row)

    # --- helpers ----------------------------------------------------------------------------

    def _find(self, role: str, turn_id: int, pending_only: bool) -> int | None:
        """Row of the newest message of `role` in `turn_id` (only recent rows are searched)."""
        for row in range(len(self._messages) - 1, max(-1, len(self._messages) - 8), -1):
            msg = self._messages[row]
            if (msg.role == role and msg.turn_id == turn_id and not msg.announcement
                    and (msg.pending or not pending_only)):
                return row
        return None

    def _unconfirmed_typed(self, text: str) -> int | None:
        for row in range(len(self._messages) - 1, max(-1, len(self._messages) - 4), -1):
            msg = self._messages[row]
            if msg.role == USER and msg.turn_id == 0 and msg.text.strip() == text.strip():
                return row
        return None

    def _append(self, message: Message) -> None:
        row = len(self._messages)
        self.beginInsertRows(QModelIndex(), row, row)
        self._messages.append(message)
        self.endInsertRows()

    def _remove(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._messages[row]
        self.endRemoveRows()

    def _changed(self, row: int) -> None:
        index = self.index(row, 0)
        self.dataChanged.emit(index, index)
