"""The history database: turns stored as they happen, listing, export, clearing, the
privacy switch, and the pipeline writing every turn (interrupted ones marked)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.config import Settings, replace
from app.errors import HistoryError
from app.events import SpeechStarted, TurnMetrics
from app.history import History, TurnRecord
from tests.fakes import FakeEngine, FakeSpeaker, Stages, run_pipeline


def test_a_turn_is_stored_before_it_finishes(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with History(db) as history:
        turn_id = history.start_turn(user_text="hello", trigger="text", engine="llama-cpp",
                                     model="m.gguf")
        # a second connection (another process) sees the question already
        with History(db) as other:
            stored = other.get(turn_id)
        assert stored["user_text"] == "hello" and not stored["complete"]
        history.finish_turn(turn_id, TurnRecord(reply="hi", interrupted=True, total_ms=12.5))
        done = history.get(turn_id)
    assert done["complete"] and done["interrupted"] and done["reply"] == "hi"
    assert done["total_ms"] == 12.5 and done["model"] == "m.gguf"


def test_list_export_and_clear(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        for i in range(3):
            history.finish_turn(history.start_turn(user_text=f"q{i}"), TurnRecord(reply=f"a{i}"))
        assert [t["user_text"] for t in history.recent(2)] == ["q1", "q2"]
        out = io.StringIO()
        assert history.export_jsonl(out) == 3
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [t["reply"] for t in lines] == ["a0", "a1", "a2"]
        assert history.clear() == 3
        assert history.recent() == []
        with pytest.raises(HistoryError, match="no turn 1"):
            history.get(1)


def test_history_switch_off_stores_nothing(tmp_path: Path) -> None:
    settings = replace(Settings(), "history", enabled=False, path=str(tmp_path / "h.db"))
    assert History.open(settings) is None
    assert not (tmp_path / "h.db").exists()


def test_wal_mode_is_on(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        history.start_turn(user_text="x")
    assert (tmp_path / "h.sqlite3-wal").exists() or (tmp_path / "h.sqlite3").exists()
    import sqlite3

    mode = sqlite3.connect(tmp_path / "h.sqlite3").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"


def test_unwritable_place_is_a_history_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HistoryError, match="cannot open"):
        History(blocker / "h.sqlite3")


def test_pipeline_stores_every_turn_with_timings_and_interruptions(tmp_path: Path) -> None:
    long_reply = " ".join(["This goes on and on."] * 60)
    history = History(tmp_path / "h.sqlite3")
    stages = Stages(engine=FakeEngine([long_reply, "Short."], token_seconds=0.003),
                    speaker=FakeSpeaker(speed=1.0), history=history)
    run_pipeline([("text", "first"), ("wait", SpeechStarted), ("text", "second"),
                  ("wait", TurnMetrics, 2)], stages)
    turns = history.recent()
    history.close()
    assert [t["user_text"] for t in turns] == ["first", "second"]
    assert [t["interrupted"] for t in turns] == [True, False]
    assert all(t["complete"] for t in turns)
    assert turns[1]["reply"] == "Short." and turns[1]["engine"] == "fake"
    assert turns[1]["first_audio_ms"] > 0 and turns[1]["total_ms"] >= turns[1]["first_audio_ms"]
    assert 0 < len(turns[0]["reply"]) < len(long_reply)
