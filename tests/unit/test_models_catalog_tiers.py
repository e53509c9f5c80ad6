"""The shipped catalog is valid; `choose_stack` picks a stack that fits, the same for
doctor, recommend, ask and the README; memory checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.cluster import PooledMemory, cluster_plan
from app.config import Settings, replace
from app.engine_setup import choose_engine, engine_config
from app.errors import (
    CatalogError,
    HearthError,
    InsufficientMemoryError,
    ModelNotInstalledError,
)
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
)
from app.speech_setup import choose_recognizer, choose_synthesizer
from app.stack import RUNTIME_BYTES, choose_stack, engine_bytes
from engine.numpy_runner.model import Config, RunState, kv_cache_bytes
from engine.rpc import Endpoint, WorkerStatus


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
                       "pocketsphinx-en-us", "piper-en_US-joe-medium", "whisper-tiny.en"}


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


@pytest.mark.parametrize("ram, tier, backend, llm, voice", [
    ("512MB", "tiny", "llama-cpp", "smollm2-135m-instruct-q4_1", "espeak-ng"),
    ("1GB", "small", "llama-cpp", "smollm2-135m-instruct-q4_1", "piper"),
    ("2GB", "small", "llama-cpp", "smollm2-135m-instruct-q4_1", "piper"),
    ("4GB", "medium", "llama-cpp", "tinyllama-1.1b-chat-q4_k_m", "piper"),
    ("16GB", "large", "llama-cpp", "llama-2-7b-chat-q4_k_m", "piper"),
])
def test_recommend_cli_picks_the_expected_stack(
    tmp_path: Path, ram: str, tier: str, backend: str, llm: str, voice: str
) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "recommend", "--ram", ram, "--json"],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )
    result = json.loads(out.stdout)
    assert (result["tier"], result["backend"], result["llm"], result["voice"]) == (
        tier, backend, llm, voice)
    assert result["simulated"] is True and result["reason"]
    assert result["needed_bytes"] <= result["budget_bytes"]
    assert llm in result["to_install"]  # an empty home has no chat model yet
    assert result["now"] is None


def _cgroup_machine(limit: int) -> MachineMemory:
    """A big machine with Hearth in a memory cgroup of `limit` bytes."""
    return MachineMemory(total_bytes=24 * 2**30, available_bytes=limit, limit_bytes=limit,
                         limit_source="cgroup memory limit")


def test_512_mib_cgroup_counts_the_whole_stack() -> None:
    """Issue 12 defect 3: the numpy engine holding float32 weights plus Piper was picked
    in 512 MiB and killed by the kernel."""
    stack = choose_stack(Settings(), memory=_cgroup_machine(512 * 2**20))
    assert stack.needed_bytes <= stack.budget_bytes < 512 * 2**20
    assert stack.voice == "espeak-ng"
    assert (stack.engine, stack.model) == ("llama-cpp", "smollm2-135m-instruct-q4_1")
    catalog = load_catalog()
    parts = (RUNTIME_BYTES + catalog.get(stack.model).ram_bytes
             + catalog.get(stack.recognizer_model).ram_bytes)
    assert stack.needed_bytes >= parts  # runtime, engine and recognizer all counted


@pytest.mark.parametrize("limit_mib, modes", [
    (512, {"auto", "mmap", "stream"}), (1024, {"auto", "mmap"}), (4096, {"cache"}),
])
def test_numpy_memory_mode_follows_the_budget(limit_mib: int, modes: set[str]) -> None:
    settings = Settings()
    memory = _cgroup_machine(limit_mib * 2**20)
    stack = choose_stack(settings, memory=memory, engine="numpy")
    assert stack.memory_mode in modes
    assert stack.needed_bytes <= stack.budget_bytes
    config = engine_config(settings, choose_engine(settings, "numpy", memory=memory))
    assert config.memory_mode == stack.memory_mode  # the engine loads what was counted
    assert config.memory_budget_bytes == stack.weights_budget_bytes


def test_without_llama_cpp_the_numpy_engine_runs_in_a_mode_that_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.stack._llama_cpp_available", lambda: False)
    stack = choose_stack(Settings(), memory=_cgroup_machine(512 * 2**20))
    assert stack.engine == "numpy" and stack.memory_mode != "cache"
    assert stack.needed_bytes <= stack.budget_bytes
    assert "not installed" in stack.reasons["engine"]


def test_a_longer_context_counts_its_kv_cache() -> None:
    memory = detect_memory(parse_size("4GB"))
    short = choose_stack(Settings(), memory=memory)
    long = choose_stack(replace(Settings(), "engine", context_length=8192), memory=memory)
    # SmolLM2-135M: K and V in f16, 30 layers x 3 KV heads x 64 = 23040 bytes a token
    assert long.needed_bytes - short.needed_bytes == (8192 - 2048) * 23040
    assert long.engine_bytes - short.engine_bytes == (8192 - 2048) * 23040
    numpy = replace(Settings(), "engine", backend="numpy")
    short = choose_stack(numpy, memory=memory)
    long = choose_stack(replace(numpy, "engine", context_length=8192), memory=memory)
    assert long.engine_bytes - short.engine_bytes == (8192 - 2048) * 23040  # f16 too


def test_numpy_reference_mode_counts_float32_weights_like_cache() -> None:
    """Reference mode unpacks every matrix to float32 (836 MB peak measured for SmolLM2),
    not the mapped file."""
    entry = load_catalog().get("smollm2-135m-instruct-q4_1")
    cache = engine_bytes(entry, "numpy", "cache")
    assert engine_bytes(entry, "numpy", "reference") == cache
    assert cache > engine_bytes(entry, "numpy", "mmap") + 3 * entry.size_bytes


def test_the_numpy_kv_cache_estimate_is_what_the_runner_allocates() -> None:
    """The runner's KV cache is float16: the planner's figure is its real size."""
    smollm2 = Config(dim=576, hidden_dim=1536, n_layers=30, n_heads=9, n_kv_heads=3,
                     vocab_size=49152, seq_len=8192, head_dim=64)
    state = RunState(smollm2, 2048, batch=1)
    assert kv_cache_bytes(smollm2, 2048) == state.kv_cache_bytes == 2048 * 23040


def test_a_derived_file_is_never_preferred_over_its_source() -> None:
    """Issue 12 defect 4: with the tier's model missing, llama.cpp took the larger Q8_0
    re-quantization of the bundled Q4_1 (its rounding plus its own)."""
    memory = detect_memory(parse_size("16GB"))
    for engine in ("llama-cpp", "numpy", None):
        choice = choose_engine(Settings(), engine, memory=memory)
        assert choice.model_id == "smollm2-135m-instruct-q4_1", engine


def test_the_cluster_never_prefers_a_derived_file_over_its_source_either() -> None:
    """`hearth models recommend` with workers took the Q8_0 made from the bundled Q4_1."""
    store = ModelStore()
    derived, source = "smollm2-135m-instruct-q8_0", "smollm2-135m-instruct-q4_1"
    assert store.is_installed(derived) and store.is_installed(source)
    for gib in (2, 8, 32):  # tiers whose own model is not installed
        worker = WorkerStatus(Endpoint("192.0.2.5", 50052), usable_bytes=gib * 2**30)
        plan = cluster_plan(Settings(), PooledMemory(workers=(worker, worker)), store)
        assert plan.model_id == source, gib


def test_speech_auto_is_what_the_stack_says() -> None:
    settings = Settings()
    stack = choose_stack(settings)
    assert choose_recognizer(settings) == (stack.recognizer, stack.recognizer_model)
    assert choose_synthesizer(settings) == (stack.voice, stack.voice_model)


def test_speech_alone_is_chosen_without_a_chat_model(tmp_path: Path) -> None:
    """`hearth transcribe` / `say` on a machine with no chat model installed."""
    settings = replace(Settings(), "general", data_dir=str(tmp_path))
    with pytest.raises(ModelNotInstalledError):
        choose_stack(settings)
    assert choose_recognizer(settings)[0] in ("pocketsphinx", "whisper")
    assert choose_synthesizer(settings) == ("espeak-ng", "en-us")  # no Piper voice here


def test_configured_speech_is_kept_and_said() -> None:
    settings = replace(replace(Settings(), "tts", backend="espeak-ng"), "stt",
                       backend="pocketsphinx")
    stack = choose_stack(settings, memory=detect_memory(parse_size("16GB")))
    assert (stack.recognizer, stack.voice, stack.voice_model) == (
        "pocketsphinx", "espeak-ng", "en-us")
    assert "configured" in stack.reasons["voice"]


def test_chinese_gets_a_chinese_stack() -> None:
    settings = replace(Settings(), "general", language="zh")
    stack = choose_stack(settings, memory=detect_memory(parse_size("4GB")),
                         as_if_installed=True)
    assert stack.model == "qwen2.5-0.5b-instruct-q4_k_m"
    assert (stack.recognizer, stack.recognizer_model) == ("vosk", "vosk-model-small-cn-0.22")


def test_doctor_and_recommend_report_the_same_stack_for_a_simulated_machine() -> None:
    """`--ram` goes through the same chooser in `hearth doctor` and `models recommend`."""
    def hearth(*argv: str) -> str:
        return subprocess.run([sys.executable, "-m", "app.cli", *argv], capture_output=True,
                              text=True, timeout=120).stdout

    now = json.loads(hearth("models", "recommend", "--ram", "512MB", "--json"))["now"]
    doctor = hearth("doctor", "--ram", "512MB")
    line = next(x for x in doctor.splitlines() if "stack (" in x)
    assert f"stack ({now['tier']} tier): {now['backend']} + {now['llm']} " \
           f"({now['memory_mode']}), {now['recognizer']}, {now['voice']};" in line


def test_each_tier_gets_its_own_stack_from_its_threshold_up() -> None:
    """A tier's threshold leaves room for the tier's whole stack by the catalog's figures,
    so nothing of it is traded for something lighter on the machines it names."""
    catalog = load_catalog()
    for tier in catalog.tiers:
        for ram in (max(tier.min_ram_bytes, 400 * 2**20), tier.min_ram_bytes * 2 or 2**30):
            stack = choose_stack(Settings(), memory=detect_memory(ram), as_if_installed=True)
            if stack.tier != tier.name:
                continue  # twice the threshold is the next tier's
            wanted = tier.stt["en"], tier.tts["en"]
            assert (stack.model, stack.recognizer_model, stack.voice_model) == (
                tier.llm["en"], wanted[0], wanted[1] if wanted[1] != "espeak-ng" else "en-us"
            ), (tier.name, ram, stack.reasons)
            assert stack.fits


def test_readme_tier_table_is_what_the_chooser_picks() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = [line for line in readme.splitlines()
            if line.startswith("| ") and "`--ram " in line]
    assert len(rows) >= 4
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        ram = re.search(r"`--ram (\S+)`", cells[0]).group(1)  # type: ignore[union-attr]
        stack = choose_stack(Settings(), memory=detect_memory(parse_size(ram)),
                             as_if_installed=True)
        ids = [re.search(r"`([^`]+)`", c).group(1) for c in cells[1:5]]  # type: ignore[union-attr]
        assert ids == [stack.engine, stack.model, stack.recognizer, stack.voice], row


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
