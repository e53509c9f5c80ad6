"""The main window (desktop) and its kiosk variant.

Layout, top to bottom: a message banner, the conversation, the state indicator with
the microphone level, the push-to-talk and Stop buttons, the text box, and a status
bar (engine, model, RAM tier, last turn's time to first audio and tokens/s). The
window only reacts to bridge signals and forwards user actions to the assistant; it
never waits on the pipeline.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.config import Settings, default_config_path
from app.events import Code, State, TurnMetrics
from app.gui.banner import ERROR, NOTICE, MessageBanner
from app.gui.bridge import EventBridge
from app.gui.bubble_delegate import ConversationView
from app.gui.conversation_model import ConversationModel
from app.gui.elided_label import ElidedLabel
from app.gui.level_meter import LevelMeter
from app.gui.ptt_button import PushToTalkButton
from app.gui.session import AssistantFactory, AssistantSession, SessionInfo
from app.gui.timer_strip import SkillBadge, TimerStrip
from app.skills import timers_path

STATE_TEXT = {
    State.IDLE: "Ready",
    State.LISTENING: "Listening…",
    State.THINKING: "Thinking…",
    State.SPEAKING: "Speaking…",
    State.ERROR: "Something went wrong",
}

KIOSK_FONT_FACTOR = 1.6
_TEXT_FIELDS = (QLineEdit, QTextEdit, QPlainTextEdit)
"""Widgets where the space bar types a space (elsewhere in the window it is talking)."""

# Fonts are set here too: once a style sheet applies, QWidget.setFont no longer
# propagates to children, so sizes must come from the sheet.
STYLE = """
QWidget { font-size: %(base_pt).1fpt; }
#pushToTalk, #stopButton { font-size: %(big_pt).1fpt; font-weight: bold; }
#pushToTalk { border-radius: 14px; padding: 10px 18px;
  background: palette(highlight); color: palette(highlighted-text); border: none; }
#pushToTalk[talking="true"] { background: #c0392b; color: white; }
#pushToTalk:disabled { background: palette(mid); color: palette(window); }
#pushToTalk:focus { outline: none; border: 3px solid palette(text); }
#stopButton { border-radius: 14px; padding: 10px 18px; border: 2px solid palette(mid);
  background: palette(button); color: palette(button-text); }
#stopButton:disabled { color: palette(mid); }
#stopButton:focus { border: 3px solid palette(highlight); }
QStatusBar QLabel { padding: 0 4px; font-size: %(small_pt).1fpt; }
#banner[kind="error"] { background: rgba(192, 57, 43, 0.20); border: 1px solid #c0392b;
  border-radius: 6px; }
#banner[kind="notice"] { background: rgba(41, 128, 185, 0.18); border: 1px solid #2980b9;
  border-radius: 6px; }
#stateDot[state="idle"] { color: #7f8c8d; }
#stateDot[state="listening"] { color: #c0392b; }
#stateDot[state="thinking"] { color: #e0a030; }
#stateDot[state="speaking"] { color: #2980b9; }
#stateDot[state="error"] { color: #c0392b; }
#stateDot[state="loading"] { color: #7f8c8d; }
"""


class StateIndicator(QWidget):
    """A coloured dot and a word: idle / listening / thinking / speaking (or loading)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dot = QLabel("●", self)
        self.dot.setObjectName("stateDot")
        self.label = QLabel(self)
        self.label.setObjectName("stateLabel")
        bold = QFont(self.label.font())
        bold.setBold(True)
        self.label.setFont(bold)
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)  # indeterminate: loading time is unknown
        self.busy.setTextVisible(False)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(self.fontMetrics().height() // 2 + 4)
        self.busy.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.dot)
        layout.addWidget(self.label)
        layout.addWidget(self.busy)
        self.setAccessibleName("Assistant state")
        self.set_state(State.IDLE)

    def set_state(self, state: State) -> None:
        self._show(state.value, STATE_TEXT[state])
        self.busy.hide()

    def set_loading(self, text: str) -> None:
        self._show("loading", text)
        self.busy.show()

    def _show(self, key: str, text: str) -> None:
        self.label.setText(text)
        self.setAccessibleDescription(text)
        self.dot.setProperty("state", key)
        self.dot.style().unpolish(self.dot)
        self.dot.style().polish(self.dot)


class MainWindow(QMainWindow):
    """Conversation, push-to-talk, Stop, text input and status; optionally as a kiosk."""

    def __init__(
        self,
        settings: Settings,
        factory: AssistantFactory,
        *,
        kiosk: bool = False,
        config_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.kiosk = kiosk
        self.config_path = config_path or default_config_path()
        self.state = State.IDLE
        self.bridge = EventBridge(self)
        self.model = ConversationModel(self)
        self.session = AssistantSession(factory, self.bridge, self)
        self._closing = False
        self._build_ui()
        self._connect()
        self._apply_look()
        self.setWindowTitle("Hearth")
        self._set_ready(False)

    # --- construction -----------------------------------------------------------------------

    def _build_ui(self) -> None:
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 8, 10, 6)
        layout.setSpacing(8)

        self.banner = MessageBanner(central)
        self.view = ConversationView(central)
        self.view.setModel(self.model)

        self.state_indicator = StateIndicator(central)
        self.level_meter = LevelMeter(central)
        state_row = QHBoxLayout()
        state_row.addWidget(self.state_indicator)
        state_row.addStretch(1)
        mic_label = QLabel("Mic", central)
        mic_label.setBuddy(self.level_meter)
        state_row.addWidget(mic_label)
        state_row.addWidget(self.level_meter, 1)

        self.ptt = PushToTalkButton(self.settings.gui.click_to_toggle, central)
        self.ptt.setToolTip("Hold the button or the space bar while you speak")
        self.stop_button = QPushButton("Stop", central)
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop listening, thinking or speaking (Esc)")
        self.stop_button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        button_row = QHBoxLayout()
        button_row.addWidget(self.ptt, 1)
        button_row.addWidget(self.stop_button)

        self.text_input = QLineEdit(central)
        self.text_input.setPlaceholderText("Type a question and press Enter")
        self.text_input.setAccessibleName("Question")
        self.text_input.setClearButtonEnabled(True)
        self.send_button = QPushButton("Send", central)
        text_row = QHBoxLayout()
        text_row.addWidget(self.text_input, 1)
        text_row.addWidget(self.send_button)

        self.timer_strip = TimerStrip(timers_path(self.settings), central)

        layout.addWidget(self.banner)
        layout.addWidget(self.timer_strip)
        layout.addWidget(self.view, 1)
        layout.addLayout(state_row)
        layout.addLayout(button_row)
        layout.addLayout(text_row)
        self.setCentralWidget(central)

        # squeezed by a narrow window, these elide ("model: smollm2-13…"); the tooltip
        # has the whole story
        self.engine_label = ElidedLabel("engine: …")
        self.model_label = ElidedLabel("model: …")
        self.tier_label = ElidedLabel("")
        self.speech_label = ElidedLabel("")
        self.metrics_label = QLabel("")
        self.skill_badge = SkillBadge("")
        bar = self.statusBar()
        bar.setSizeGripEnabled(not self.kiosk)
        for label in (self.engine_label, self.model_label, self.tier_label, self.speech_label):
            bar.addWidget(label)
        bar.addPermanentWidget(self.skill_badge)
        bar.addPermanentWidget(self.metrics_label)

        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.models_action = QAction("&Models…", self)
        self.models_action.setShortcut(QKeySequence("Ctrl+M"))
        self.clear_action = QAction("&Clear conversation", self)
        self.clear_action.setShortcut(QKeySequence("Ctrl+L"))
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        menu = self.menuBar().addMenu("&Hearth")
        for action in (self.settings_action, self.models_action, self.clear_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        for action in (self.settings_action, self.models_action, self.clear_action,
                       self.quit_action):
            self.addAction(action)  # shortcuts keep working while the menu bar is hidden
        self.stop_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        if self.kiosk:
            self.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
            self.menuBar().hide()
            # In kiosk mode the quit shortcut is the configured combination only.
            self.quit_action.setShortcut(QKeySequence())
            self.settings_action.setEnabled(False)
            self.models_action.setEnabled(False)
            self.exit_shortcut = QShortcut(QKeySequence(self.settings.gui.kiosk_exit_keys), self)
            self.exit_shortcut.activated.connect(self.close)
        QWidget.setTabOrder(self.ptt, self.stop_button)
        QWidget.setTabOrder(self.stop_button, self.text_input)
        QWidget.setTabOrder(self.text_input, self.send_button)
        QWidget.setTabOrder(self.send_button, self.view)

    def _connect(self) -> None:
        self.bridge.event_received.connect(self.model.apply_event)
        self.bridge.event_received.connect(self.skill_badge.on_event)
        self.bridge.state_changed.connect(self._on_state)
        self.bridge.level_changed.connect(self.level_meter.set_level)
        self.bridge.metrics.connect(self._on_metrics)
        self.bridge.error.connect(self._on_error)
        self.bridge.notice.connect(self._on_notice)
        self.session.loading.connect(self._on_loading)
        self.session.ready.connect(self._on_ready)
        self.session.failed.connect(self._on_load_failed)
        self.ptt.talk_started.connect(self._on_talk_started)
        self.ptt.talk_stopped.connect(self._on_talk_stopped)
        self.stop_button.clicked.connect(self.stop)
        self.stop_shortcut.activated.connect(self.stop)
        self.text_input.returnPressed.connect(self.send_text)
        self.send_button.clicked.connect(self.send_text)
        self.settings_action.triggered.connect(self.open_settings)
        self.models_action.triggered.connect(self.open_model_manager)
        self.clear_action.triggered.connect(self.model.clear)
        self.quit_action.triggered.connect(self.close)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def _apply_look(self) -> None:
        scale = self.settings.gui.font_scale * (KIOSK_FONT_FACTOR if self.kiosk else 1.0)
        base_pt = QApplication.font().pointSizeF() * scale
        # The status bar keeps the desktop size in kiosk mode: it is for the curious, not
        # for a finger.
        small_pt = QApplication.font().pointSizeF() * self.settings.gui.font_scale
        self.setStyleSheet(STYLE % {"base_pt": base_pt, "big_pt": base_pt * 1.3,
                                    "small_pt": small_pt})
        font = QFont(QApplication.font())
        font.setPointSizeF(base_pt)
        line = QFontMetrics(font).height()
        self.ptt.setMinimumHeight(int(line * (3.8 if self.kiosk else 2.6)))
        self.stop_button.setMinimumHeight(self.ptt.minimumHeight())
        self.stop_button.setMinimumWidth(int(line * (6 if self.kiosk else 5)))
        self.text_input.setMinimumHeight(int(line * 1.8))
        self.send_button.setMinimumHeight(int(line * 1.8))
        self.level_meter.setFixedHeight(max(8, line // 2))

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin loading the assistant (in the background)."""
        self.session.load(self.settings)
        self.timer_strip.start()

    def show_for_mode(self) -> None:
        """Show as a normal window, or fullscreen without decorations in kiosk mode."""
        if self.kiosk:
            # Size to the screen as well: without a window manager (a Pi kiosk often has
            # none) the fullscreen request alone is not honoured.
            screen = self.screen() or QGuiApplication.primaryScreen()
            if screen is not None:
                self.setGeometry(screen.geometry())
            self.showFullScreen()
        else:
            self.resize(840, 640)
            self.show()
        self.ptt.setFocus()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing:
            self._closing = True
            self.hide()  # look gone at once; the shutdown below is bounded
            self.bridge.close()
            self.timer_strip.stop()
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
            self.session.shutdown(timeout=2.0)
        event.accept()

    # --- user actions -----------------------------------------------------------------------

    @Slot()
    def send_text(self) -> None:
        text = self.text_input.text().strip()
        assistant = self.session.assistant
        if not text:
            return
        if assistant is None:
            self.banner.show_message("The assistant is still loading; try again in a moment.",
                                     NOTICE)
            return
        self.text_input.clear()
        self.model.add_typed_question(text)
        assistant.submit_text(text)

    @Slot()
    def stop(self) -> None:
        assistant = self.session.assistant
        self.ptt.reset()
        if assistant is not None:
            assistant.cancel()

    @Slot()
    def _on_talk_started(self) -> None:
        assistant = self.session.assistant
        if assistant is None:
            self.ptt.reset()
            return
        assistant.push_to_talk_pressed()

    @Slot()
    def _on_talk_stopped(self) -> None:
        assistant = self.session.assistant
        if assistant is not None:
            assistant.push_to_talk_released()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Holding space anywhere in the window (outside text fields and buttons) is talking."""
        if (event.type() == QEvent.Type.WindowDeactivate and watched is self
                and self.ptt.talking and not self.ptt.click_to_toggle):
            # The key or button release would go to another window: end the question now.
            self.ptt.key_up()
        elif event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            key_event: QKeyEvent = event  # type: ignore[assignment]
            if (key_event.key() == Qt.Key.Key_Space
                    and key_event.modifiers() == Qt.KeyboardModifier.NoModifier
                    and self._space_is_talk(watched)):
                if not key_event.isAutoRepeat():
                    if event.type() == QEvent.Type.KeyPress:
                        self.ptt.key_down()
                    else:
                        self.ptt.key_up()
                return True
        return super().eventFilter(watched, event)

    def _space_is_talk(self, watched: QObject) -> bool:
        if not isinstance(watched, QWidget) or watched.window() is not self:
            return False
        if isinstance(watched, _TEXT_FIELDS):
            return False  # a key delivered to a text field is typing, wherever focus is
        focus = QApplication.focusWidget()
        if focus is None:
            return True
        if focus.window() is not self:
            return False
        typing = isinstance(focus, _TEXT_FIELDS)
        other_button = isinstance(focus, QAbstractButton) and focus is not self.ptt
        return not typing and not other_button

    # --- pipeline signals -------------------------------------------------------------------

    @Slot(object)
    def _on_state(self, state: State) -> None:
        self.state = state
        self.state_indicator.set_state(state)
        if state != State.LISTENING:
            self.level_meter.reset()
            if self.ptt.talking:  # the pipeline ended listening on its own (endpoint, error)
                self.ptt.reset()
        self.stop_button.setEnabled(state != State.IDLE)

    @Slot(object)
    def _on_metrics(self, metrics: TurnMetrics) -> None:
        parts = []
        if metrics.first_audio_ms > 0:
            parts.append(f"first audio {metrics.first_audio_ms:.0f} ms")
        elif metrics.first_token_ms > 0:
            parts.append(f"first token {metrics.first_token_ms:.0f} ms")
        if metrics.tokens_per_second > 0:
            parts.append(f"{metrics.tokens_per_second:.1f} tok/s")
        self.metrics_label.setText(" · ".join(parts))

    @Slot(str, str)
    def _on_error(self, text: str, code: str) -> None:
        self.banner.show_message(text, ERROR)

    @Slot(str, str)
    def _on_notice(self, text: str, code: str) -> None:
        self.banner.show_message(text, NOTICE)
        if code == Code.MICROPHONE_BACK:  # a microphone appeared (or came back): talk again
            self._set_ready(True, has_microphone=True)

    @Slot(str)
    def _on_loading(self, text: str) -> None:
        self._set_ready(False)
        self.state_indicator.set_loading(text)

    @Slot(object)
    def _on_ready(self, info: SessionInfo) -> None:
        self.show_session_info(info)
        self._set_ready(True, has_microphone=info.has_microphone)
        self.state_indicator.set_state(State.IDLE)
        for notice in info.notices:
            self.banner.show_message(notice, NOTICE)

    @Slot(str)
    def _on_load_failed(self, text: str) -> None:
        self.state_indicator.set_state(State.ERROR)
        self.banner.show_message(text, ERROR)

    def show_session_info(self, info: SessionInfo) -> None:
        self.engine_label.setText(f"engine: {info.engine}")
        self.model_label.setText(f"model: {info.model}")
        self.tier_label.setText(f"RAM tier: {info.ram_tier}" if info.ram_tier else "")
        self.speech_label.setText(f"speech: {info.speech}" if info.speech else "")
        for label in (self.engine_label, self.model_label, self.tier_label, self.speech_label):
            label.setToolTip(f"{label.text()}\n\n{info.why}" if info.why else label.text())

    def _set_ready(self, ready: bool, has_microphone: bool = True) -> None:
        self.ptt.setEnabled(ready and has_microphone)
        self.send_button.setEnabled(ready)
        self.stop_button.setEnabled(ready and self.state != State.IDLE)
        if ready and not has_microphone:
            self.ptt.setToolTip("No microphone: type your question below")
            self.text_input.setPlaceholderText("No microphone: type a question and press Enter")
            self.view.set_placeholder("Type a question below to start.")
            self.text_input.setFocus()
        elif ready:
            self.view.set_placeholder("Hold the button (or the space bar) and speak, "
                                      "or type a question below.")

    # --- dialogs ----------------------------------------------------------------------------

    @Slot()
    def open_settings(self) -> None:
        from app.gui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.config_path, self)
        dialog.saved.connect(self.apply_settings)
        dialog.open()

    @Slot()
    def open_model_manager(self) -> None:
        from app.gui.model_manager import ModelManagerDialog

        dialog = ModelManagerDialog(self.settings, self)
        dialog.finished.connect(self._after_model_manager)
        dialog.open()

    @Slot()
    def _after_model_manager(self) -> None:
        # A load that failed for want of a model may work now that one was installed.
        if self.session.assistant is None and not self.session.is_loading:
            self.session.load(self.settings)

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """Apply saved settings: window options at once, pipeline changes by a background reload."""
        old, self.settings = self.settings, settings
        if settings.gui != old.gui:
            self.ptt.set_click_to_toggle(settings.gui.click_to_toggle)
            self._apply_look()
        pipeline_changed = any(
            getattr(settings, name) != getattr(old, name)
            for name in ("general", "engine", "remote", "audio", "vad", "stt", "wake", "tts",
                         "assistant", "history")
        )
        if pipeline_changed:
            self.session.load(settings)
