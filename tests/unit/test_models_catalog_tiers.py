"""The shipped catalog is valid; RAM tiers pick the expected stack; memory checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from app.engine_setup import choose_engine
from app.errors import CatalogError, HearthError, InsufficientMemoryError
from app.models.catalog import load_catalog, parse_catalog
from app.models.store import ModelStore
from app.models.tiers import (
    DOES_NOT_FIT,
    FITS,
    TIGHT,
    MachineMemory,
    detect_memory,
    fit_label,
    parse_size,
    recommend,
)


def test_shipped_catalog_is_complete() -> None:
    catalog = load_catalog()
    ids = {e.id for e in catalog.entries}
    for required in ("smollm2-135m-instruct-q4_1", "smollm2-135m-instruct-q8_0",
                     "tinyllama-1.1b-chat-q4_k_m", "tinyllama-1.1b-chat-q8_0",
                     "llama-2-7b-chat-q4_k_m", "qwen2.5-0.5b-instruct-q4_k_m",
                     "vosk-model-small-en-us-0.15", "vosk-model-small-cn-0.22",
                     "pocketsphinx-en-us", "piper-en_US-joe-medium"):
        assert required in ids
    for entry in catalog.entries:
        assert entry.ram_bytes > 0 and entry.license and entry.languages
    # English and Mandarin are both covered end to end
    for language in ("en", "zh"):
        kinds = {e.kind for e in catalog.entries if language in e.languages}
        assert {"llm", "stt", "tts"} <= kinds
    bundled = {e.id for e in catalog.bundled()}
    assert bundled == {"smollm2-135m-instruct-q4_1", "smollm2-135m-instruct-q8_0",
                       "pocketsphinx-en-us", "piper-en_US-joe-medium"}


@pytest.mark.parametrize("broken, message", [
    ({"model": [{"id": "x"}]}, "missing key 'kind'"),
    ({"model": [{"id": "x", "kind": "llm", "name": "X", "engines": [], "languages": [],
                 "license": "", "ram_bytes": 1, "path": "x", "files": [],
                 "sources": [{"type": "ftp"}]}]}, "unknown source type"),
    ({"model": [{"id": "x", "kind": "llm", "name": "X", "engines": [], "languages": [],
                 "license": "", "ram_bytes": 1, "path": "x",
                 "files": [{"name": "x", "sha256": "nothex"}],
                 "sources": [{"type": "url", "urls": {"x": "https://e/x"}}]}]}, "sha256"),
])
def test_malformed_catalog_is_rejected(broken: dict, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(broken)


def test_parse_size() -> None:
    assert parse_size("2GB") == 2 * 2**30
    assert parse_size("512 MiB") == 512 * 2**20
    assert parse_size("1.5g") == int(1.5 * 2**30)
    for bad in ("lots", "-1GB", "0MB", "2 parsecs"):
        with pytest.raises(HearthError):
            parse_size(bad)


def test_fit_labels() -> None:
    memory = MachineMemory(total_bytes=4 * 2**30, available_bytes=3 * 2**30)
    assert fit_label(1 * 2**30, memory) == FITS
    assert fit_label(3 * 2**30, memory) == TIGHT
    assert fit_label(5 * 2**30, memory) == DOES_NOT_FIT


def test_limits_lower_usable_memory() -> None:
    memory = MachineMemory(total_bytes=16 * 2**30, available_bytes=15 * 2**30,
                           limit_bytes=1 * 2**30, limit_source="cgroup memory limit")
    assert memory.usable_bytes == 2**30
    assert memory.free_for_models_bytes == 2**30
    assert "cgroup" in memory.describe()


@pytest.mark.parametrize("ram, tier, backend, llm", [
    ("512MB", "tiny", "numpy", "smollm2-135m-instruct-q8_0"),
    ("1GB", "small", "llama-cpp", "smollm2-135m-instruct-q4_1"),
    ("2GB", "small", "llama-cpp", "smollm2-135m-instruct-q4_1"),
    ("4GB", "medium", "llama-cpp", "tinyllama-1.1b-chat-q4_k_m"),
    ("16GB", "large", "llama-cpp", "llama-2-7b-chat-q4_k_m"),
])
def test_recommend_cli_picks_the_expected_stack(
    tmp_path: Path, ram: str, tier: str, backend: str, llm: str
) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "recommend", "--ram", ram, "--json"],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )
    result = json.loads(out.stdout)
    assert (result["tier"], result["backend"], result["llm"]) == (tier, backend, llm)
    assert result["simulated"] is True and result["reason"]


def test_recommend_without_llama_cpp_uses_numpy() -> None:
    catalog = load_catalog()
    choice = recommend(catalog, detect_memory(parse_size("4GB")), "en",
                       llama_cpp_available=False)
    assert choice.backend == "numpy"
    assert "numpy" in catalog.get(choice.llm).engines
    assert "not installed" in choice.reason


def test_chinese_gets_a_chinese_stack() -> None:
    choice = recommend(load_catalog(), detect_memory(parse_size("4GB")), "zh", True)
    assert choice.llm == "qwen2.5-0.5b-instruct-q4_k_m"
    assert choice.stt == "vosk-model-small-cn-0.22"


def test_too_little_memory_is_refused_before_loading(tmp_path: Path) -> None:
    store = ModelStore(root=tmp_path / "models")
    model = tmp_path / "big.gguf"
    model.write_bytes(b"\0" * 4096)
    settings = Settings()
    tiny = MachineMemory(total_bytes=2048, available_bytes=1024)
    with pytest.raises(InsufficientMemoryError) as info:
        choose_engine(settings, "numpy", str(model), store=store, memory=tiny)
    message = str(info.value)
    assert "needs" in message and "available" in message and "big.gguf" in message
