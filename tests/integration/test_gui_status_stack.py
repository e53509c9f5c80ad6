"""The GUI's status bar tells the stack `choose_stack` picked, the one `hearth doctor`
reports: the same engine, memory mode, model, recognizer and voice, with the reasons as
its tooltip (issue 12 defect 4). Real components: the bundled models are loaded."""

from __future__ import annotations

from app.cli.gui_cmd import build_assistant
from app.config import Settings, replace
from app.gui.main_window import MainWindow
from app.stack import choose_stack


def test_status_bar_shows_the_chosen_stack(qtbot, tmp_path) -> None:
    settings = replace(Settings(), "history", path=str(tmp_path / "history.sqlite3"))
    stack = choose_stack(settings)
    assistant, info = build_assistant(settings)
    try:
        window = MainWindow(settings, lambda s: (assistant, info))
        qtbot.addWidget(window)
        window.show_session_info(info)
        assert window.engine_label.text() == f"engine: {stack.engine} ({stack.memory_mode})"
        assert window.model_label.text() == f"model: {stack.model}"
        assert window.tier_label.text().startswith(f"RAM tier: {stack.tier} ")
        assert window.speech_label.text() == f"speech: {stack.recognizer}, {stack.voice}"
        why = window.engine_label.toolTip()  # the reasons (free memory moves between calls)
        for part in ("engine", "model", "memory_mode", "recognizer", "voice"):
            assert f"{part}: {stack.reasons[part]}" in why
    finally:
        assistant.shutdown()
