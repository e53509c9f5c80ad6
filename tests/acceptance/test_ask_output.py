"""`hearth ask` says what the README says: `--json` gives null for a recognizer or voice
it did not use, and a typed question brings no warning about audio devices it never
opens."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Home, run_hearth

QUESTION = "What is the capital of France?"


def test_typed_question_json_has_null_recognizer_and_voice_and_no_device_warning(
        hearth: Path, home: Home) -> None:
    done = run_hearth(["ask", "--text", QUESTION, "--json"], home)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["transcript"] == QUESTION and result["reply"]
    assert result["recognizer"] is None and result["voice"] is None and result["out"] is None
    assert "microphone" not in done.stderr.lower(), done.stderr
    assert "speaker" not in done.stderr.lower(), done.stderr


def test_typed_question_streamed_has_no_device_warning(hearth: Path, home: Home) -> None:
    done = run_hearth(["ask", "--text", QUESTION], home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "warning" not in done.stderr, done.stderr


def test_spoken_question_json_names_the_recognizer_and_voice_it_used(
        hearth: Path, home: Home) -> None:
    question = home.path / "question.wav"
    said = run_hearth(["say", QUESTION, "--out", str(question)], home)
    assert said.returncode == 0 and question.stat().st_size > 10_000, said.stderr
    answer = home.path / "answer.wav"
    done = run_hearth(["ask", "--wav", str(question), "--out", str(answer), "--json"], home)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result["recognizer"], str) and result["recognizer"]
    assert isinstance(result["voice"], str) and result["voice"]
    assert result["transcript"] and result["reply"]
    assert result["out"] == str(answer) and answer.stat().st_size > 10_000
    assert result["reply_audio_seconds"] > 0
