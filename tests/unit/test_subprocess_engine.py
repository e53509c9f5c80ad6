"""The engine in a child process streams like the engine itself: the same greedy reply,
its stats, and a cancelled reply that leaves the child ready for the next one. Engines
implement `_stream` and leave `chat` (its defaults) to `ChatEngine`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.cluster import ClusterChatEngine
from engine.base import ChatEngine, ChatMessage, EngineConfig, GenerationOptions
from engine.numpy_runner.engine import NumpyChatEngine
from engine.remote import FallbackChatEngine, RemoteChatEngine
from engine.subprocess_engine import SubprocessChatEngine
from engine.token_stream import TokenStreamEngine
from tests.unit.numpy_models import TinyConfig, random_weights, write_tiny_gguf

CONFIG = TinyConfig(vocab_size=320, seq_len=256)
GREEDY = GenerationOptions(max_tokens=12, temperature=0.0, repeat_penalty=1.0)
MESSAGES = [ChatMessage("system", "be brief"), ChatMessage("user", "hello there")]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> EngineConfig:
    path = tmp_path_factory.mktemp("engine") / "tiny.gguf"
    write_tiny_gguf(path, CONFIG, random_weights(CONFIG, seed=5), "q8_0")
    return EngineConfig(model_path=Path(path), context_length=200, memory_mode="mmap",
                        threads=1)


def test_a_child_process_engine_streams_cancels_and_counts_like_the_engine(
        config: EngineConfig) -> None:
    with NumpyChatEngine(config) as local:
        expected = "".join(local.chat(MESSAGES, GREEDY))
        expected_stats = local.last_stats
    child = SubprocessChatEngine("engine.numpy_runner.engine:NumpyChatEngine", (config,))
    try:
        cancel = threading.Event()
        pieces = []
        for piece in child.chat(MESSAGES, GREEDY, cancel):
            pieces.append(piece)
            if len(pieces) == 2:
                cancel.set()
        assert child.last_stats is not None
        assert child.last_stats.stop_reason == "cancelled"
        assert len(pieces) < expected_stats.generated_tokens
        assert "".join(child.chat(MESSAGES, GREEDY)) == expected
        stats = child.last_stats
    finally:
        child.close()
    assert (stats.stop_reason, stats.generated_tokens) == (
        expected_stats.stop_reason, expected_stats.generated_tokens)


@pytest.mark.parametrize("engine", [SubprocessChatEngine, ClusterChatEngine,
                                    RemoteChatEngine, FallbackChatEngine, TokenStreamEngine])
def test_engines_leave_chat_to_the_base_class(engine: type[ChatEngine]) -> None:
    assert engine.chat is ChatEngine.chat, f"{engine.__name__} overrides chat()"
