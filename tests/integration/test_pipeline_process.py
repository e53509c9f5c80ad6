"""`hearth headless` as a real process with the real llama.cpp engine: killed with
SIGKILL mid-turn the history keeps every earlier turn; stopped with SIGTERM mid-reply
it saves the turn (marked interrupted) and exits 0.

The process runs with no microphone and no voice (typed questions on stdin), so these
tests need no sound server; the history database is read from this process while the
other one writes it, as `hearth history` would.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LONG_QUESTION = "Write a very long story about a dragon who learns to fly, with many details."


def rows(db: Path) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute("SELECT * FROM turns ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []  # the schema is not there yet
    finally:
        connection.close()


def wait_for_rows(db: Path, proc: subprocess.Popen[str], count: int, complete: int,
                  timeout: float = 90.0) -> list[sqlite3.Row]:
    """Until the history holds `count` turns of which `complete` are finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(db)
        if len(found) >= count and sum(r["complete"] for r in found) >= complete:
            return found
        assert proc.poll() is None, f"hearth headless exited early: {proc.stderr.read()}"
        time.sleep(0.05)
    raise TimeoutError(f"history never reached {count} turns / {complete} complete")


@pytest.fixture
def headless(tmp_path: Path, smollm2_gguf: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    db = tmp_path / "history.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(
        "[engine]\n"
        'backend = "llama-cpp"\n'
        f'model = "{smollm2_gguf}"\n'
        "temperature = 0.0\n"
        "max_tokens = 400\n"
        "[audio]\n"
        'input_device = "no-such-microphone-here"\n'
        "[tts]\n"
        "enabled = false\n"
        "[history]\n"
        f'path = "{db}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--config", str(config), "headless"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, db
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def ask(proc: subprocess.Popen[str], question: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(question + "\n")
    proc.stdin.flush()


def test_sigkill_mid_turn_keeps_every_earlier_turn(
        headless: tuple[subprocess.Popen[str], Path]) -> None:
    proc, db = headless
    ask(proc, "What is the capital of France?")
    wait_for_rows(db, proc, 1, 1)
    ask(proc, "Name a color.")
    before = wait_for_rows(db, proc, 2, 2)
    ask(proc, LONG_QUESTION)
    wait_for_rows(db, proc, 3, 2)
    time.sleep(0.5)  # well into the reply
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    after = rows(db)
    assert [dict(r) for r in after[:2]] == [dict(r) for r in before[:2]]
    assert "paris" in after[0]["reply"].lower()
    assert all(r["complete"] and r["reply"] for r in after[:2])
    # the turn in progress: its question is there, it is not marked finished
    assert len(after) == 3 and after[2]["user_text"] == LONG_QUESTION
    assert not after[2]["complete"]


def test_sigterm_mid_reply_saves_the_turn_and_exits_0(
        headless: tuple[subprocess.Popen[str], Path]) -> None:
    proc, db = headless
    assert proc.stdout is not None
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(lambda: proc.stdout.read(1), "")))
    reader.start()
    ask(proc, LONG_QUESTION)
    deadline = time.monotonic() + 90
    while len("".join(output).partition("you: ")[2].partition("hearth: ")[2]) < 40:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    reader.join(5)
    turns = rows(db)
    assert len(turns) == 1
    assert turns[0]["complete"] and turns[0]["interrupted"]
    assert len(turns[0]["reply"]) >= 30
    assert turns[0]["reply"][:30] in "".join(output)
