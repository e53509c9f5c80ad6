"""Message bubbles: a delegate that paints them and the list view that scrolls them.

A `QListView` with a painting delegate keeps long histories cheap: only visible rows
are painted, rows are laid out in batches, and a streamed token repaints one row.
Colours come from the palette, so bubbles follow the system's light or dark theme.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Slot
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QListView,
    QScroller,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.gui.conversation_model import USER, MessageRole

_Index = QModelIndex | QPersistentModelIndex

_WRAP = Qt.TextFlag.TextWordWrap


def _mix(a: QColor, b: QColor, share_of_b: float) -> QColor:
    """Blend two palette colours (used for bubble fills that suit light and dark themes)."""
    s = share_of_b
    return QColor.fromRgbF(
        a.redF() * (1 - s) + b.redF() * s,
        a.greenF() * (1 - s) + b.greenF() * s,
        a.blueF() * (1 - s) + b.blueF() * s,
    )


class BubbleDelegate(QStyledItemDelegate):
    """Paints one message as a rounded bubble: the user's on the right, Hearth's on the left."""

    H_PAD = 12
    V_PAD = 8
    SPACING = 6
    SIDE_MARGIN = 10
    MAX_SHARE = 0.78
    """Widest bubble as a share of the view width."""

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self._view = view

    def _fonts(self) -> tuple[QFont, QFont]:
        body = QFont(self._view.font())
        small = QFont(body)
        small.setPointSizeF(max(6.0, body.pointSizeF() * 0.75))
        return body, small

    def _text_width(self) -> int:
        width = self._view.viewport().width() - 2 * self.SIDE_MARGIN
        return max(80, int(width * self.MAX_SHARE) - 2 * self.H_PAD)

    @staticmethod
    def _footer(index: _Index) -> str:
        footer = index.data(MessageRole.TIME) or ""
        if index.data(MessageRole.ANNOUNCEMENT):
            footer += " · announcement"
        if index.data(MessageRole.INTERRUPTED):
            footer += " · interrupted"
        elif index.data(MessageRole.PENDING):
            footer += " · …"
        return footer

    def _layout(self, index: _Index) -> tuple[QRect, QRect, QRect]:
        """Bubble, text and footer rectangles relative to the row's top-left corner."""
        body, small = self._fonts()
        text = index.data(MessageRole.TEXT) or " "
        text_rect = QFontMetrics(body).boundingRect(
            QRect(0, 0, self._text_width(), 1_000_000), int(_WRAP), text)
        footer_metrics = QFontMetrics(small)
        footer_w = footer_metrics.horizontalAdvance(self._footer(index))
        inner_w = max(text_rect.width(), footer_w)
        bubble_w = inner_w + 2 * self.H_PAD
        bubble_h = text_rect.height() + footer_metrics.height() + 2 * self.V_PAD + 2
        full_w = self._view.viewport().width()
        if index.data(MessageRole.ROLE) == USER:
            x = full_w - self.SIDE_MARGIN - bubble_w
        else:
            x = self.SIDE_MARGIN
        bubble = QRect(x, self.SPACING // 2, bubble_w, bubble_h)
        text_box = QRect(x + self.H_PAD, bubble.top() + self.V_PAD, inner_w, text_rect.height())
        footer = QRect(x + self.H_PAD, text_box.bottom() + 2, inner_w, footer_metrics.height())
        return bubble, text_box, footer

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        bubble, _, _ = self._layout(index)
        return QSize(self._view.viewport().width(), bubble.height() + self.SPACING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        bubble, text_box, footer = self._layout(index)
        top_left = option.rect.topLeft()
        bubble.translate(top_left)
        text_box.translate(top_left)
        footer.translate(top_left)
        palette = option.palette
        is_user = index.data(MessageRole.ROLE) == USER
        pending = bool(index.data(MessageRole.PENDING))
        base = palette.color(QPalette.ColorRole.Base)
        if is_user:
            fill = _mix(base, palette.color(QPalette.ColorRole.Highlight), 0.28)
        else:
            fill = _mix(base, palette.color(QPalette.ColorRole.Text), 0.07)
        text_color = palette.color(QPalette.ColorRole.Text)
        body, small = self._fonts()

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        focus_color = palette.color(QPalette.ColorRole.Highlight)
        painter.setPen(focus_color if selected else Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(bubble, 12, 12)
        if pending and is_user:  # a live partial transcript: dimmer and italic
            body.setItalic(True)
            text_color = _mix(text_color, base, 0.35)
        painter.setFont(body)
        painter.setPen(text_color)
        painter.drawText(text_box, int(_WRAP), index.data(MessageRole.TEXT) or "")
        painter.setFont(small)
        painter.setPen(_mix(text_color, base, 0.45))
        align = Qt.AlignmentFlag.AlignRight if is_user else Qt.AlignmentFlag.AlignLeft
        painter.drawText(footer, int(align | Qt.AlignmentFlag.AlignVCenter), self._footer(index))
        painter.restore()


class ConversationView(QListView):
    """The scrolling conversation; follows new text unless the user scrolled up to read."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversation")
        self.setAccessibleName("Conversation")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setUniformItemSizes(False)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(50)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalScrollBar().setSingleStep(24)
        # Flick scrolling with a finger (touchscreens); mouse selection is unaffected.
        QScroller.grabGesture(self.viewport(), QScroller.ScrollerGestureType.TouchGesture)
        self._delegate = BubbleDelegate(self)
        self.setItemDelegate(self._delegate)
        self._follow = True
        self._placeholder = ""
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)

    def setModel(self, model: object) -> None:  # type: ignore[override]
        super().setModel(model)
        model.dataChanged.connect(self._on_data_changed)  # type: ignore[attr-defined]

    @Slot(QModelIndex, QModelIndex)
    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex) -> None:
        # A growing reply changes its row's height: ask the view to lay that row out again.
        for row in range(top_left.row(), bottom_right.row() + 1):
            self._delegate.sizeHintChanged.emit(self.model().index(row, 0))

    @Slot(int)
    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - 4

    @Slot(int, int)
    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        # New rows and growing replies both end up here once laid out (in batches), which
        # is cheaper than scrolling on every inserted row.
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy) and self.currentIndex().isValid():
            QGuiApplication.clipboard().setText(self.currentIndex().data(MessageRole.TEXT) or "")
            return
        super().keyPressEvent(event)

    def set_placeholder(self, text: str) -> None:
        """What an empty conversation shows (how to start)."""
        self._placeholder = text
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._placeholder and (self.model() is None or self.model().rowCount() == 0):
            painter = QPainter(self.viewport())
            color = self.palette().color(QPalette.ColorRole.PlaceholderText)
            painter.setPen(color)
            painter.drawText(self.viewport().rect().adjusted(24, 24, -24, -24),
                             int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                             self._placeholder)
            painter.end()

    def event(self, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.PaletteChange):
            self.scheduleDelayedItemsLayout()
        return super().event(event)
