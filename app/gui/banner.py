"""A non-blocking message strip at the top of the window (errors and notices).

Errors never open modal dialogs: a burst of identical errors becomes one banner with
a repeat count, a new message replaces the old one, and the banner hides itself
after a while or when dismissed (button or Escape).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

ERROR = "error"
NOTICE = "notice"


class MessageBanner(QFrame):
    """Shows one message at a time; `show_message` may be called as often as events come."""

    def __init__(self, parent: QWidget | None = None, hide_after_ms: int = 12000) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setAccessibleName("Message")
        self._text = ""
        self._count = 0
        self._label = QLabel(self)
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("✕")
        close.setAccessibleName("Dismiss message")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(hide_after_ms)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    @property
    def text(self) -> str:
        """The message shown (without the repeat count); empty when hidden."""
        return self._text if self.isVisibleTo(self.parentWidget()) else ""

    @property
    def count(self) -> int:
        return self._count

    def show_message(self, text: str, kind: str = ERROR) -> None:
        if text == self._text and not self.isHidden():
            self._count += 1
        else:
            self._text, self._count = text, 1
        suffix = f"  (×{self._count})" if self._count > 1 else ""
        self._label.setText(text + suffix)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.show()
        self._timer.start()

    @Slot()
    def dismiss(self) -> None:
        self._timer.stop()
        self._text, self._count = "", 0
        self.hide()
