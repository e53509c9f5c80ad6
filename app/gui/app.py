"""The Qt application: created once, with high-DPI scaling, the app icon and the
system palette, then the main window runs until it is closed.

The palette is left to Qt and the platform theme, so the window is light or dark
like the desktop around it (Qt 6.5+ follows the colour scheme live); all custom
drawing takes its colours from that palette.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from app.config import Settings
from app.gui.session import AssistantFactory

ICON_PATH = Path(__file__).resolve().parents[2] / "assets" / "icons" / "hearth.svg"


def app_icon() -> QIcon:
    """Hearth's icon (an empty icon when the assets folder is missing)."""
    return QIcon(str(ICON_PATH)) if ICON_PATH.exists() else QIcon()


def create_application(argv: list[str] | None = None) -> QApplication:
    """The process's QApplication (created on first call, reused after)."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    # Fractional scale factors (125 %, 150 %) as the screen asks, instead of rounding.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(argv if argv is not None else [sys.argv[0] if sys.argv else "hearth"])
    app.setApplicationName("hearth")
    app.setApplicationDisplayName("Hearth")
    app.setDesktopFileName("hearth")  # matches packaging/hearth.desktop for the taskbar icon
    app.setWindowIcon(app_icon())
    return app


def run_gui(
    settings: Settings,
    factory: AssistantFactory,
    *,
    kiosk: bool = False,
    config_path: Path | None = None,
) -> int:
    """Show the window, load the assistant in the background, run until closed."""
    from app.gui.dump import install_dump
    from app.gui.main_window import MainWindow

    app = create_application()
    window = MainWindow(settings, factory, kiosk=kiosk, config_path=config_path)
    install_dump(window)  # only with HEARTH_GUI_DUMP set (tests that drive the window)
    window.show_for_mode()
    window.start()
    # Ctrl+C in the terminal closes the window (and so cancels the turn) cleanly. Python
    # only runs signal handlers between bytecodes, so a timer wakes the interpreter.
    previous = signal.signal(signal.SIGINT, lambda *_: window.close())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(250)
    try:
        return int(app.exec())
    finally:
        tick.stop()
        signal.signal(signal.SIGINT, previous)
