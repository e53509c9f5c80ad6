"""What the window shows, as JSON, for tests that drive `hearth gui` from outside.

With HEARTH_GUI_DUMP=FILE in the environment, `hearth gui` keeps FILE up to date
(replaced atomically, at most every 100 ms) with the conversation's bubbles, the
state, the status bar and the banner. tests/acceptance/test_gui_real.py types into
the real window with xdotool and reads its answer here. Without the variable nothing
happens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

ENV = "HEARTH_GUI_DUMP"


def window_state(window: MainWindow) -> dict[str, Any]:
    """The conversation and status as the window shows them."""
    focus = QApplication.focusWidget()
    return {
        "state": window.state.name,
        "ready": window.session.assistant is not None,
        "status": [w.text() for w in (window.engine_label, window.model_label,
                                      window.tier_label, window.metrics_label)],
        "banner": window.banner.text,
        "focus": (focus.accessibleName() or type(focus).__name__) if focus is not None else "",
        "messages": [{"role": m.role, "text": m.text, "pending": m.pending,
                      "interrupted": m.interrupted, "announcement": m.announcement}
                     for m in window.model.messages()],
    }


def install_dump(window: MainWindow) -> None:
    """Start dumping when HEARTH_GUI_DUMP is set."""
    target = os.environ.get(ENV)
    if not target:
        return
    path = Path(target)
    timer = QTimer(window)
    timer.setSingleShot(True)
    timer.setInterval(100)

    def write() -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(window_state(window), ensure_ascii=False))
        os.replace(tmp, path)

    timer.timeout.connect(write)
    for signal in (window.model.rowsInserted, window.model.dataChanged, window.model.modelReset,
                   window.bridge.state_changed, window.session.ready, window.session.failed,
                   window.bridge.notice, window.bridge.error):
        signal.connect(lambda *_: timer.start())
    app = QApplication.instance()
    if isinstance(app, QApplication):
        app.focusChanged.connect(lambda *_: timer.start())
    timer.start()
