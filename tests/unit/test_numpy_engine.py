"""`NumpyChatEngine` on a tiny random GGUF with a byte-fallback SentencePiece vocabulary:
streaming, stats, KV-cache reuse between calls, cancellation, limits and stop strings."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.errors import ContextOverflowError
from engine.numpy_runner.engine import NumpyChatEngine
from engine.registry import create_engine
from engine.streaming import StopMatcher
from tests.unit.numpy_models import (
    TinyConfig,
    random_weights,
    write_llama2c,
    write_llama2c_tokenizer,
    write_tiny_gguf,
)

CONFIG = TinyConfig(vocab_size=320, seq_len=256)
GREEDY = GenerationOptions(max_tokens=12, temperature=0.0, repeat_penalty=1.0)
MESSAGES = [ChatMessage("system", "be brief"), ChatMessage("user", "hello there")]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "tiny.gguf"
    return write_tiny_gguf(path, CONFIG, random_weights(CONFIG, seed=5), "q8_0")


@pytest.fixture()
def engine(model_path: Path) -> NumpyChatEngine:
    eng = NumpyChatEngine(EngineConfig(model_path=model_path, context_length=200,
                                       memory_mode="mmap", threads=1))
    yield eng
    eng.close()


def test_streams_a_reply_with_stats(engine: NumpyChatEngine) -> None:
    pieces = list(engine.chat(MESSAGES, GREEDY))
    stats = engine.last_stats
    assert stats is not None
    assert stats.prompt_tokens == engine.count_prompt_tokens(MESSAGES) > 10
    assert stats.cached_prompt_tokens == 0
    assert 1 <= stats.generated_tokens <= GREEDY.max_tokens
    assert stats.stop_reason in ("length", "eos")
    assert stats.prompt_ms > 0 and stats.total_ms >= stats.prompt_ms
    if "".join(pieces):
        assert stats.first_token_ms >= stats.prompt_ms
    if stats.generated_tokens > 1:
        assert stats.decode_tokens_per_second > 0


def test_prompt_cache_is_reused_and_changes_nothing(model_path: Path,
                                                    engine: NumpyChatEngine) -> None:
    first = "".join(engine.chat(MESSAGES, GREEDY))
    again = "".join(engine.chat(MESSAGES, GREEDY))
    stats = engine.last_stats
    assert again == first
    assert stats is not None and stats.cached_prompt_tokens == stats.prompt_tokens - 1

    follow_up = [*MESSAGES, ChatMessage("assistant", first), ChatMessage("user", "more")]
    continued = "".join(engine.chat(follow_up, GREEDY))
    stats = engine.last_stats
    assert stats is not None and stats.cached_prompt_tokens > len(MESSAGES) * 4

    fresh = NumpyChatEngine(EngineConfig(model_path=model_path, context_length=200,
                                         memory_mode="cache"))
    try:
        assert "".join(fresh.chat(follow_up, GREEDY)) == continued
        assert fresh.last_stats is not None and fresh.last_stats.cached_prompt_tokens == 0
    finally:
        fresh.close()


def test_cancel_stops_within_a_token(engine: NumpyChatEngine) -> None:
    cancel = threading.Event()
    options = GenerationOptions(max_tokens=50, temperature=1.0, seed=3)
    produced = 0
    for _ in engine.chat(MESSAGES, options, cancel):
        produced += 1
        cancel.set()
    stats = engine.last_stats
    assert stats is not None and stats.stop_reason == "cancelled"
    assert stats.generated_tokens <= produced + 1 and stats.generated_tokens < 50


def test_cancelled_before_start_generates_nothing(engine: NumpyChatEngine) -> None:
    cancel = threading.Event()
    cancel.set()
    assert list(engine.chat(MESSAGES, GREEDY, cancel)) == []
    assert engine.last_stats is not None and engine.last_stats.stop_reason == "cancelled"
    assert engine.last_stats.generated_tokens == 0


def test_seeded_sampling_is_reproducible(engine: NumpyChatEngine) -> None:
    options = GenerationOptions(max_tokens=10, temperature=1.0, seed=11, top_k=0, min_p=0.0)
    assert "".join(engine.chat(MESSAGES, options)) == "".join(engine.chat(MESSAGES, options))


def test_length_limit_and_context_overflow(engine: NumpyChatEngine) -> None:
    list(engine.chat(MESSAGES, GenerationOptions(max_tokens=1, temperature=0.0)))
    assert engine.last_stats is not None and engine.last_stats.generated_tokens <= 1
    with pytest.raises(ContextOverflowError):
        list(engine.chat([ChatMessage("user", "word " * 300)], GREEDY))


def test_tokenize_round_trip(engine: NumpyChatEngine) -> None:
    text = "hello world, émoji 🙂"
    ids = engine.tokenize(text)
    assert ids and all(0 <= i < CONFIG.vocab_size for i in ids)
    assert engine.detokenize(ids) == text
    assert engine.tokenize(text, add_special=True)[0] == 1  # BOS


def test_info_describes_the_memory_plan(engine: NumpyChatEngine) -> None:
    info = engine.info()
    assert info.backend == "numpy"
    assert info.context_length == engine.context_length == 200
    assert info.details["memory"] == "mmap"
    assert int(info.details["mapped_matrices"]) > 0


def test_stop_strings_hold_back_partial_matches() -> None:
    stops = StopMatcher(["END"])
    assert stops.feed("abc E") == ("abc ", False)
    assert stops.feed("N") == ("", False)
    assert stops.feed("Dx") == ("", True)
    stops = StopMatcher(["END"])
    assert stops.feed("E") == ("", False)
    assert stops.feed("gg") == ("Egg", False)
    assert stops.flush() == ""


def test_registry_and_llama2c_checkpoint(tmp_path: Path) -> None:
    weights = random_weights(CONFIG, seed=6)
    path = write_llama2c(tmp_path / "model.bin", CONFIG, weights, version=2)
    write_llama2c_tokenizer(tmp_path / "tokenizer.bin", CONFIG)
    engine = create_engine("numpy", EngineConfig(model_path=path, memory_mode="stream",
                                                 context_length=128))
    try:
        assert engine.backend_name == "numpy"
        list(engine.chat(MESSAGES, GREEDY))
        assert engine.last_stats is not None and engine.last_stats.prompt_tokens > 10
        assert engine.detokenize(engine.tokenize("abc def")) == "abc def"
    finally:
        engine.close()
