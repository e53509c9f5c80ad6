"""`hearth ask` says what the README says: `--json` gives null for a recognizer or voice
it did not use, and a typed question brings no warning about audio devices it never
opens. (Every documented `hearth ask` line, spoken ones too, is also run and checked in
test_documented_commands.py.)"""

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
