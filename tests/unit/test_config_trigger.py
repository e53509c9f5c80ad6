"""Issue 12, defect 2: one setting, [assistant] trigger, selects how a turn starts, and a
combination that cannot work is a one-line `ConfigError` naming the keys."""

from __future__ import annotations

import pytest

from app.config import settings_from_dict
from app.errors import ConfigError
from app.speech_setup import build_wake_detector, choose_wake_backend


def test_wake_word_trigger_alone_turns_the_wake_word_on() -> None:
    settings = settings_from_dict({"assistant": {"trigger": "wake-word"}})
    assert settings.wake.enabled
    detector = build_wake_detector(settings)
    assert detector is not None
    assert (detector.name, detector.wake_word) == ("micro", "okay nabu")
    detector.close()


def test_other_triggers_leave_the_wake_word_off_unless_enabled() -> None:
    assert build_wake_detector(settings_from_dict({"assistant": {"trigger": "hands-free"}})) \
        is None
    both = settings_from_dict({"assistant": {"trigger": "hands-free"}, "wake": {"enabled": True}})
    assert both.wake.enabled


def test_auto_backend_picks_a_phrase_spotter_for_other_phrases() -> None:
    settings = settings_from_dict({"wake": {"enabled": True, "phrase": "hey computer"}})
    assert choose_wake_backend(settings) == "pocketsphinx"
    chinese = settings_from_dict({"general": {"language": "zh"},
                                  "wake": {"enabled": True, "phrase": "你好"}})
    assert choose_wake_backend(chinese) == "vosk"


@pytest.mark.parametrize(("data", "keys"), [
    ({"assistant": {"trigger": "button"}}, ("assistant.trigger", "gpio.button_pin")),
    ({"assistant": {"trigger": "wake-word"}, "wake": {"backend": "micro", "phrase": "hey hearth"}},
     ("wake.phrase", "wake.backend")),
    ({"general": {"language": "zh"}, "assistant": {"trigger": "wake-word"},
      "wake": {"backend": "pocketsphinx"}}, ("wake.backend", "general.language")),
])
def test_a_combination_that_cannot_work_is_a_one_line_error(data: dict, keys: tuple) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(data, source="hearth.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("hearth.toml: ")
    assert all(key in message for key in keys), message


def test_button_trigger_with_a_pin_is_fine() -> None:
    settings = settings_from_dict({"assistant": {"trigger": "button"}, "gpio": {"button_pin": 17}})
    assert settings.assistant.trigger == "button"
