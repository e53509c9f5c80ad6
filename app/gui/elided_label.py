"""A status-bar label that shortens its text with "…" when the bar is too narrow, instead
of cutting it off mid-letter; the whole text stays in `text()` and in the tooltip."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QStyle, QStyleOption, QWidget

MIN_CHARACTERS = 8
"""The narrowest a label gets: about this many average characters (then it is elided)."""


class ElidedLabel(QLabel):
    """A one-line QLabel that elides at the right end when squeezed."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        narrow = self.fontMetrics().averageCharWidth() * MIN_CHARACTERS
        return QSize(min(hint.width(), narrow + self._padding()), hint.height())

    def shown_text(self) -> str:
        """The text as it fits the label's current width."""
        width = self.contentsRect().width() - 2 * self.margin()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             max(0, width))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawItemText(
            painter, self.contentsRect().adjusted(self.margin(), 0, -self.margin(), 0),
            int(self.alignment()), option.palette, self.isEnabled(), self.shown_text(),
            self.foregroundRole())
        painter.end()

    def _padding(self) -> int:
        margins = self.contentsMargins()
        return margins.left() + margins.right() + 2 * self.margin() + self.style().pixelMetric(
            QStyle.PixelMetric.PM_DefaultFrameWidth)
