"""Resource limits: too little memory for a model, and a full disk while saving history or
installing a model.

Memory: `hearth ask` runs under `prlimit --as` and must refuse the model before loading
it, with exit code 1 and one line that names the memory needed and available and the
model that would fit. Disk: a 2 MB tmpfs (we are root in CI) fills up; history writes and
model installs must fail with a clear error and leave nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.assistant.build import build_assistant
from app.config import Settings, replace
from app.errors import DownloadError, HistoryError
from app.events import ErrorEvent, Notice, ReplyFinished, TurnMetrics
from app.history import History, TurnRecord
from app.models.catalog import parse_catalog
from app.models.store import MANIFEST_NAME, ModelStore
from app.models.tiers import ADDRESS_SPACE_HEADROOM
from tests.fakes import EventLog, FakeEngine, Stages, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
HEARTH = [sys.executable, "-m", "app.cli"]
BIG_MODEL = "smollm2-135m-instruct-q8_0"  # needs 235 MB by the catalog (+ runtime)
SMALL_MODEL = "smollm2-135m-instruct-q4_1"  # needs 190 MB (+ runtime)
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "KB": 1e3, "MB": 1e6, "GB": 1e9}
_AVAILABLE = re.compile(r"only ([\d.]+) ([KMG]i?B|B) is available")


def _hearth_limited(address_space_bytes: int, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["prlimit", f"--as={address_space_bytes}", *HEARTH, "--config", str(config), "ask",
         "--text", "hi", "--model", BIG_MODEL, "--max-tokens", "2"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[history]\npath = "{tmp_path / "history.sqlite3"}"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def limit_for_small_model_only(tmp_path_factory: pytest.TempPathFactory) -> int:
    """An address-space limit leaving room for the small model but not the big one.

    Hearth's own address space at the check is not known in advance: a run with room
    for neither model tells it (the limit minus the "available" it reports)."""
    config = tmp_path_factory.mktemp("memory") / "config.toml"
    config.write_text("", encoding="utf-8")
    probe = 200_000_000 + ADDRESS_SPACE_HEADROOM  # room for neither model
    first = _hearth_limited(probe, config)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    match = _AVAILABLE.search(first.stderr)
    assert match, first.stderr
    overhead = probe - float(match.group(1)) * _UNITS[match.group(2)]
    return int(overhead + 260_000_000)


def test_too_little_memory_refuses_before_loading_and_suggests_a_model(
    config: Path, limit_for_small_model_only: int
) -> None:
    proc = _hearth_limited(limit_for_small_model_only, config)
    message = proc.stderr.strip()
    assert proc.returncode == 1, message
    assert "Traceback" not in message and "MemoryError" not in message
    assert len(message.splitlines()) == 1
    assert f"{BIG_MODEL} needs" in message and "available" in message
    assert "address-space limit" in message
    assert f"{SMALL_MODEL} fits" in message


def test_the_suggested_model_runs_under_the_same_limit(
    config: Path, limit_for_small_model_only: int
) -> None:
    proc = subprocess.run(
        ["prlimit", f"--as={limit_for_small_model_only}", *HEARTH, "--config", str(config),
         "ask", "--text", "hi", "--model", SMALL_MODEL, "--max-tokens", "2", "--json"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["model"] == SMALL_MODEL


# ---------------------------------------------------------------- full disks


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for this test only."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte; the filler file."""
    filler = directory / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()
    return filler


def test_history_on_a_full_disk_fails_clearly_and_keeps_what_was_saved(
    small_disk: Path,
) -> None:
    path = small_disk / "history.sqlite3"
    history = History(path)
    for i in range(3):
        turn = history.start_turn(user_text=f"question {i}")
        history.finish_turn(turn, TurnRecord(reply=f"answer {i}"))
    filler = _fill(small_disk)
    question, answer = "a long question " * 200, "a long answer " * 400
    with pytest.raises(HistoryError) as caught:
        for _ in range(200):  # until the WAL cannot grow
            turn = history.start_turn(user_text=question)
            history.finish_turn(turn, TurnRecord(reply=answer))
    message = str(caught.value)
    assert message.startswith(f"disk full: could not save the conversation to {path} (")
    assert "MB free" in message and "\n" not in message
    history.close()
    filler.unlink()
    # Every committed turn is there and whole; the failed write was rolled back: no row
    # holds part of a reply (a question saved before its reply failed stays unanswered,
    # as after a crash).
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT user_text, reply, complete, finished_at IS NOT NULL "
                          "FROM turns ORDER BY id").fetchall()
    assert rows[:3] == [(f"question {i}", f"answer {i}", 1, 1) for i in range(3)]
    for row in rows[3:]:
        assert row in ((question, answer, 1, 1), (question, "", 0, 0))
    assert [r[2] for r in rows[3:-1]] == [1] * (len(rows) - 4)  # only the last may be open


def test_pipeline_on_a_full_disk_answers_and_says_the_turn_was_not_saved(
    small_disk: Path,
) -> None:
    history = History(small_disk / "history.sqlite3")
    history.finish_turn(history.start_turn(user_text="before"), TurnRecord(reply="ok"))
    _fill(small_disk)
    stages = Stages(engine=FakeEngine(["Fine. " * 300]), synthesizer=None, speaker=None,
                    microphone=None, history=history)
    steps = [step for i in range(3)
             for step in (("text", f"question {i} " * 100), ("wait", TurnMetrics, i + 1))]
    events = run_pipeline(steps, stages)
    rows = history.count()
    history.close()
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    replies = [e.text for e in events if isinstance(e, ReplyFinished)]
    assert replies == ["Fine. " * 300] * 3  # every question was answered
    notices = [e for e in events if isinstance(e, Notice) and e.code == "history-failed"]
    assert len(notices) == 1, notices  # told once while saving keeps failing
    assert notices[0].text.startswith("disk full: could not save the conversation to")
    assert rows == 1


def test_hearth_ask_with_history_on_a_full_disk_answers_and_says_so(
    small_disk: Path, tmp_path: Path
) -> None:
    path = small_disk / "history.sqlite3"
    with History(path) as history:
        history.finish_turn(history.start_turn(user_text="before"), TurnRecord(reply="ok"))
    filler = _fill(small_disk)
    config = tmp_path / "full.toml"
    config.write_text(f'[history]\npath = "{path}"\n', encoding="utf-8")
    proc = subprocess.run(
        [*HEARTH, "--config", str(config), "ask", "--text", "hello", "--model", SMALL_MODEL,
         "--max-tokens", "2"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()  # the answer
    # opening the WAL index fails as a bare "disk I/O error": it must still say "disk full"
    assert f"hearth: warning: disk full: could not save the conversation to {path}" \
        in proc.stderr, proc.stderr
    filler.unlink()  # reading the database back needs room for its WAL index
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT user_text, reply FROM turns").fetchall() == [("before", "ok")]


def test_assistant_starts_on_a_full_disk_and_says_turns_are_not_saved(small_disk: Path) -> None:
    path = small_disk / "history.sqlite3"
    with History(path) as history:
        history.finish_turn(history.start_turn(user_text="before"), TurnRecord(reply="ok"))
    _fill(small_disk)
    settings = replace(Settings(), "history", path=str(path))
    assistant, _ = build_assistant(settings, engine=FakeEngine(["Fine."]), voice_input=False,
                                   voice_output=False)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    try:
        assistant.submit_text("hello")
        log.wait_count(TurnMetrics)
    finally:
        assistant.shutdown()
    assert assistant.history is None
    assert [e.text for e in log.of(ReplyFinished)] == ["Fine."]
    notices = [e for e in log.of(Notice) if e.code == "history-failed"]
    assert len(notices) == 1 and notices[0].text.startswith("disk full:"), notices


PAYLOAD = os.urandom(3 * 2**20)  # 3 MiB: more than the 2 MB disk holds
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def file_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server of the payload; (its URL, the paths requested)."""
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # the http.server API names it so
            requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(PAYLOAD)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/big.gguf", requested
    finally:
        httpd.shutdown()
        httpd.server_close()


def _store(root: Path, url: str, size: int) -> ModelStore:
    catalog = parse_catalog({"model": [{
        "id": "big", "kind": "llm", "name": "Big", "engines": ["numpy"], "languages": ["en"],
        "license": "MIT", "ram_bytes": 1000, "path": "big.gguf",
        "files": [{"name": "big.gguf", "size": size, "sha256": PAYLOAD_SHA}],
        "sources": [{"type": "url", "urls": {"big.gguf": url}}],
    }]})
    return ModelStore(root=root, catalog=catalog)


def _assert_nothing_installed(store: ModelStore) -> None:
    assert not store.is_installed("big")
    assert not (store.entry_dir("big") / "big.gguf").exists()
    manifest = store.root / MANIFEST_NAME
    assert not manifest.exists() or "big" not in json.loads(manifest.read_text())
    assert not list(store.root.glob(".staging-*"))


def test_model_download_on_a_full_disk_fails_clearly(
    small_disk: Path, file_server: tuple[str, list[str]]
) -> None:
    url, requested = file_server
    store = _store(small_disk / "models", url, size=0)  # size unknown: no pre-check
    with pytest.raises(DownloadError) as caught:
        store.install("big")
    assert "disk is full" in str(caught.value)
    assert requested
    _assert_nothing_installed(store)


def test_model_download_that_cannot_fit_is_refused_before_downloading(
    small_disk: Path, file_server: tuple[str, list[str]]
) -> None:
    url, requested = file_server
    store = _store(small_disk / "models", url, size=len(PAYLOAD))
    with pytest.raises(DownloadError) as caught:
        store.install("big")
    assert "disk space" in str(caught.value)
    assert requested == []
    _assert_nothing_installed(store)


def test_model_install_from_a_local_file_on_a_full_disk_fails_clearly(
    small_disk: Path, tmp_path: Path
) -> None:
    source = tmp_path / "big.gguf"
    source.write_bytes(PAYLOAD)
    store = _store(small_disk / "models", "https://example.invalid/big.gguf", size=0)
    with pytest.raises(DownloadError) as caught:
        store.install("big", from_file=source)
    assert "disk is full" in str(caught.value)
    _assert_nothing_installed(store)
