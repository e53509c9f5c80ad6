"""A horizontal microphone level meter with a falling peak.

Levels arrive as linear RMS (0..1) from `AudioLevel` events; the bar shows them on a
decibel scale (-60 dB .. 0 dB) because speech spans a wide range of linear values.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0


def level_fraction(rms: float) -> float:
    """RMS 0..1 to the bar's fill 0..1 on a -60..0 dB scale."""
    if rms <= 0.0:
        return 0.0
    db = 20.0 * math.log10(min(rms, 1.0))
    return max(0.0, min(1.0, (db - FLOOR_DB) / -FLOOR_DB))


class LevelMeter(QWidget):
    """Shows the microphone level; `set_level` is cheap enough for every audio block."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._level = 0.0
        self._peak = 0.0
        self.setAccessibleName("Microphone level")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # Decay timer: the bar falls smoothly instead of jumping to zero between blocks.
        self._decay = QTimer(self)
        self._decay.setInterval(50)
        self._decay.timeout.connect(self._fall)

    @property
    def level(self) -> float:
        """Current fill, 0..1."""
        return self._level

    @Slot(float)
    def set_level(self, rms: float) -> None:
        fill = level_fraction(rms)
        self._level = max(fill, self._level)
        self._peak = max(self._peak, fill)
        if not self._decay.isActive():
            self._decay.start()
        self.update()

    def reset(self) -> None:
        self._level = self._peak = 0.0
        self._decay.stop()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(160, max(10, self.fontMetrics().height() // 2))

    def _fall(self) -> None:
        self._level = max(0.0, self._level - 0.06)
        self._peak = max(0.0, self._peak - 0.02)
        if self._level == 0.0 and self._peak == 0.0:
            self._decay.stop()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        radius = rect.height() / 2
        palette = self.palette()
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(rect, radius, radius)
        if self._level > 0:
            fill = QRectF(rect.x(), rect.y(), rect.width() * self._level, rect.height())
            # Green for speech, amber near clipping.
            color = QColor("#3fa34d") if self._level < 0.85 else QColor("#e0a030")
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(fill, radius, radius)
        if self._peak > 0:
            x = rect.x() + rect.width() * self._peak
            painter.setPen(palette.color(QPalette.ColorRole.Text))
            painter.drawLine(int(x), int(rect.top()) + 1, int(x), int(rect.bottom()) - 1)
        painter.end()
