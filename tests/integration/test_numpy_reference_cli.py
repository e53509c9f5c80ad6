"""`hearth ask --engine numpy --memory-mode reference` gives llama.cpp's greedy reply token
for token (issue 12, defect 6): the same question on the bundled Q4_1 file through the
console script, once with the llama-cpp engine and once with the numpy engine in its
reference mode (llama.cpp's x86 arithmetic, see engine/numpy_runner/replica.py), with
the default sampling settings (repetition penalty 1.1) at temperature 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Give me three tips for sleeping better."
MAX_TOKENS = "40"


def _ask(tmp_path: Path, model: Path, *engine: str) -> dict:
    config = tmp_path / "config.toml"
    # one compute thread: llama.cpp's spinning workers crawl on a shared, busy machine
    config.write_text("[engine]\nthreads = 1\n\n[history]\nenabled = false\n",
                      encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "ask", *engine, "--model", str(model),
         "--text", QUESTION, "--temperature", "0", "--max-tokens", MAX_TOKENS, "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "HEARTH_CONFIG": str(config)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_reference_mode_replies_like_llama_cpp(smollm2_gguf: Path, tmp_path: Path) -> None:
    llama = _ask(tmp_path, smollm2_gguf, "--engine", "llama-cpp")
    numpy = _ask(tmp_path, smollm2_gguf, "--engine", "numpy", "--memory-mode", "reference")
    assert (llama["engine"], numpy["engine"]) == ("llama-cpp", "numpy")
    assert numpy["prompt_tokens"] == llama["prompt_tokens"]
    assert numpy["generated_tokens"] == llama["generated_tokens"] == int(MAX_TOKENS)
    assert numpy["reply"] == llama["reply"]
