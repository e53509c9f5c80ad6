"""The timer strip and the skill badge in the real window (offscreen Qt): a timer set by
voice or by another process shows up counting down, a tap cancels it, and the kiosk
still fits 800×480 with the strip showing."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt

from app.assistant.pipeline import Assistant
from app.config import Settings
from app.gui.main_window import MainWindow
from app.gui.session import SessionInfo
from app.gui.timer_strip import MAX_CHIPS, TimerStrip
from app.skills import timer_store, timers_path
from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore
from tests.fakes import FakeEngine, FakeRecognizer, FakeSpeaker, FakeSynthesizer, fake_settings

WAIT_MS = 10_000


def test_the_strip_counts_down_and_a_tap_cancels(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = TimerStore(path)
    now = time.time()
    store.add(kind="timer", name="pasta", duration_seconds=600, ends_at=now + 600)
    store.add(kind="alarm", ends_at=now + 3600)
    for number in range(MAX_CHIPS):
        store.add(kind="timer", duration_seconds=60, ends_at=now + 7200 + number)
    strip = TimerStrip(path)
    qtbot.addWidget(strip)
    strip.show()
    strip.start()
    try:
        qtbot.waitUntil(lambda: strip.chips[0].isVisible(), timeout=WAIT_MS)
        assert strip.chips[0].text().startswith("⏲ pasta 9:5")
        assert strip.chips[1].text().startswith("⏰ ")
        assert strip.more.text() == "+2"
        qtbot.mouseClick(strip.chips[0], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "pasta" not in strip.chips[0].text(), timeout=WAIT_MS)
        assert store.get(1).state == "cancelled"
    finally:
        strip.stop()


def test_a_timer_set_by_voice_shows_in_the_kiosk_window(qtbot, tmp_path: Path) -> None:
    settings = fake_settings(general={"data_dir": str(tmp_path)})
    skills = SkillSet(IntentMatcher(), timer_store(settings))

    def factory(s: Settings) -> tuple[Assistant, SessionInfo]:
        assistant = Assistant(s, engine=FakeEngine(), recognizer=FakeRecognizer(),
                              synthesizer=FakeSynthesizer(), speaker=FakeSpeaker(speed=0.2),
                              warm_up=False, skills=skills)
        skills.attach(assistant)
        return assistant, SessionInfo("fake", "fake-model", has_microphone=False)

    window = MainWindow(settings, factory, kiosk=True)
    qtbot.addWidget(window)
    window.show()
    window.start()
    try:
        qtbot.waitUntil(lambda: window.session.assistant is not None, timeout=WAIT_MS)
        assert not window.timer_strip.isVisible()
        window.text_input.setText("set a pasta timer for ten minutes")
        window.send_text()
        qtbot.waitUntil(lambda: window.timer_strip.isVisible(), timeout=WAIT_MS)
        assert window.timer_strip.chips[0].text().startswith("⏲ pasta ")
        qtbot.waitUntil(lambda: window.skill_badge.text() == "skill: Timers", timeout=WAIT_MS)
        assert timers_path(settings) == tmp_path / "timers.sqlite3"
        hint = window.minimumSizeHint()
        assert hint.width() <= 800 and hint.height() <= 480
        window.text_input.setText("hello there")
        window.send_text()
        qtbot.waitUntil(lambda: window.skill_badge.text() == "", timeout=WAIT_MS)
    finally:
        window.close()
        skills.close()
