"""User skills (templates + a shell command or a Python function), build_skills from the
settings, and the bias phrases for recognizers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import settings_from_dict
from app.errors import ConfigError
from app.skills import bias_phrases, build_skills, timers_path

PORCH = """\
language: en
intents:
  PorchLightOn:
    data:
      - sentences:
          - "turn on the porch light"
          - "porch light on"
  PorchLightDim:
    data:
      - sentences:
          - "dim the porch light to {level} percent"
lists:
  level:
    range:
      from: 0
      to: 100
actions:
  PorchLightOn:
    command: "cat > porch.json; echo light is $HEARTH_INTENT"
    response: "The porch light is on."
  PorchLightDim:
    python: "porch:dim"
"""

PORCH_PY = """\
def dim(slots, text):
    return f"Porch light at {slots['level']} percent."
"""


def settings_for(tmp_path: Path, **skills: object) -> object:
    return settings_from_dict({
        "general": {"data_dir": str(tmp_path / "data")},
        "skills": {"user_dir": str(tmp_path / "skills"), **skills}})


def test_a_user_skill_runs_its_command_and_says_its_response(tmp_path: Path) -> None:
    folder = tmp_path / "skills"
    folder.mkdir()
    (folder / "porch.yaml").write_text(PORCH)
    (folder / "porch.py").write_text(PORCH_PY)
    skills = build_skills(settings_for(tmp_path))  # type: ignore[arg-type]
    assert skills is not None
    answer = skills.answer("Turn on the porch light.")
    assert answer is not None and answer.intent == "PorchLightOn"
    assert answer.text == "The porch light is on."
    sent = json.loads((folder / "porch.json").read_text())
    assert sent == {"intent": "PorchLightOn", "slots": {}, "text": "Turn on the porch light."}
    dim = skills.answer("dim the porch light to forty percent")
    assert dim is not None and dim.text == "Porch light at 40 percent."
    assert dim.slots == {"level": "40"}
    # the built-in skills and the engine's questions are untouched
    assert skills.answer("what is two plus two").slots["result"] == "4"  # type: ignore[union-attr]
    assert skills.answer("what is the porch light made of") is None


def test_a_failing_command_is_said_not_raised(tmp_path: Path) -> None:
    folder = tmp_path / "skills"
    folder.mkdir()
    (folder / "broken.yaml").write_text(
        "language: en\nintents:\n  Broken:\n    data:\n      - sentences: ['open the garage']\n"
        "actions:\n  Broken:\n    command: ['false']\n")
    skills = build_skills(settings_for(tmp_path))  # type: ignore[arg-type]
    assert skills is not None
    answer = skills.answer("open the garage")
    assert answer is not None and answer.text == "Sorry, that did not work."


def test_an_action_without_sentences_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "skills"
    folder.mkdir()
    (folder / "bad.yaml").write_text(
        "language: en\nintents: {}\nactions:\n  Nothing:\n    command: 'true'\n")
    with pytest.raises(ConfigError, match=r"actions\.Nothing has no sentences"):
        build_skills(settings_for(tmp_path))  # type: ignore[arg-type]


def test_skills_can_be_switched_off(tmp_path: Path) -> None:
    assert build_skills(settings_for(tmp_path, enabled=False)) is None  # type: ignore[arg-type]


def test_timers_live_in_hearths_database(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    skills = build_skills(settings)  # type: ignore[arg-type]
    assert skills is not None
    skills.answer("set a timer for 5 minutes")
    skills.close()
    assert (tmp_path / "data" / "history.sqlite3").exists()
    off = settings_from_dict({"general": {"data_dir": str(tmp_path / "off")},
                              "history": {"enabled": False}})
    assert timers_path(off) == tmp_path / "off" / "timers.sqlite3"


def test_bias_phrases_cover_what_the_skills_understand() -> None:
    english = bias_phrases("en")
    assert "set a timer for" in english and "what time is it" in english
    assert len(english) == len(set(english))
    chinese = bias_phrases("zh")
    assert "计时器" in chinese and "现在几点" in chinese
