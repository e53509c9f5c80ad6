"""`hearth chat` driven through stdin in a subprocess, with llama.cpp and the bundled SmolLM2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hearth_chat(model: Path, tmp_path: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    # One compute thread: llama.cpp's spinning workers crawl on a shared, busy machine.
    config = tmp_path / "config.toml"
    config.write_text("[engine]\nthreads = 1\n", encoding="utf-8")
    env = {**os.environ, "HEARTH_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "chat", "--engine", "llama-cpp",
         "--model", str(model), "--temperature", "0", "--max-tokens", "48"],
        input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )


def test_hearth_chat_answers_the_capital_of_france(smollm2_gguf: Path, tmp_path: Path) -> None:
    done = _hearth_chat(smollm2_gguf, tmp_path, "What is the capital of France?\n")
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert "Traceback" not in done.stderr


def test_hearth_chat_remembers_resets_and_quits(smollm2_gguf: Path, tmp_path: Path) -> None:
    script = ("What is the capital of France?\n/reset\n\nWhat is the capital of France?\n"
              "/quit\nThis line is never read.\n")
    done = _hearth_chat(smollm2_gguf, tmp_path, script)
    assert done.returncode == 0, done.stderr
    replies = done.stdout.strip().splitlines()
    # after /reset the same question gets the same greedy answer; /quit ends the session
    assert len(replies) == 2 and replies[0] == replies[1] and "Paris" in replies[0]
    assert "(new conversation)" in done.stderr


def test_hearth_chat_bad_model_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + bytes(512))
    done = _hearth_chat(bad, tmp_path, "hello\n")
    assert done.returncode == 1
    assert "broken.gguf" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2
