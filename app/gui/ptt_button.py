"""The push-to-talk button: hold to talk (mouse, touch or keyboard), or click to toggle.

Touch presses arrive as synthesized mouse presses, so one code path serves mouse and
touchscreen. The window forwards the space bar to `key_down`/`key_up`, so holding
space works wherever the keyboard focus is not in a text field.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtWidgets import QPushButton, QSizePolicy, QWidget


class PushToTalkButton(QPushButton):
    """A large button that starts listening while held (or between two clicks)."""

    talk_started = Signal()
    talk_stopped = Signal()

    def __init__(self, click_to_toggle: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._toggle = click_to_toggle
        self._talking = False
        self.setObjectName("pushToTalk")
        self.setAccessibleName("Push to talk")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(64)
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents, False)
        self.pressed.connect(self._on_pressed)
        self.released.connect(self._on_released)
        self._update_text()

    @property
    def talking(self) -> bool:
        return self._talking

    @property
    def click_to_toggle(self) -> bool:
        return self._toggle

    def set_click_to_toggle(self, enabled: bool) -> None:
        if self._talking:
            self._stop()
        self._toggle = enabled
        self._update_text()

    def key_down(self) -> None:
        """The space bar went down (auto-repeats must be filtered by the caller)."""
        if self.isEnabled():
            self.setDown(True)
            self._on_pressed()

    def key_up(self) -> None:
        if self.isEnabled():
            self.setDown(False)
            self._on_released()

    def reset(self) -> None:
        """Forget a press in progress without signalling (e.g. the turn was cancelled)."""
        self._talking = False
        self.setDown(False)
        self._update_text()

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(max(hint.width(), 240), max(hint.height(), self.minimumHeight()))

    @Slot()
    def _on_pressed(self) -> None:
        if self._toggle and self._talking:
            self._stop()
        elif not self._talking:
            self._talking = True
            self._update_text()
            self.talk_started.emit()

    @Slot()
    def _on_released(self) -> None:
        if not self._toggle and self._talking:
            self._stop()

    def _stop(self) -> None:
        self._talking = False
        self._update_text()
        self.talk_stopped.emit()

    def _update_text(self) -> None:
        if self._talking:
            self.setText("Listening… tap to send" if self._toggle else "Listening… release to send")
        else:
            self.setText("Tap to talk" if self._toggle else "Hold to talk")
        self.setProperty("talking", self._talking)
        # Re-polish so the style sheet's [talking="true"] rule follows the property.
        self.style().unpolish(self)
        self.style().polish(self)
