"""RemoteChatEngine against a real `python -m llama_cpp.server` on 127.0.0.1, and a dead one."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import EngineSettings
from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.conversation import fit_to_context
from engine.errors import RemoteEngineError
from engine.llama_cpp import LlamaCppEngine
from engine.remote import FallbackChatEngine, RemoteChatEngine

SYSTEM = ChatMessage("system", EngineSettings().system_prompt)
QUESTION = ChatMessage("user", "What is the capital of France?")
GREEDY = GenerationOptions(temperature=0.0, max_tokens=48)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024",
             "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "False"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start:\n" + log_path.read_text()[-2000:])
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def local(smollm2_gguf: Path) -> Iterator[LlamaCppEngine]:
    with LlamaCppEngine(EngineConfig(model_path=smollm2_gguf, context_length=1024,
                                     threads=1)) as eng:
        yield eng


def test_remote_answer_streams_and_mentions_paris(server_url: str) -> None:
    engine = RemoteChatEngine(EngineConfig(remote_url=server_url, timeout_seconds=60))
    assert engine.check()  # the server lists its model
    pieces = list(engine.chat([SYSTEM, QUESTION], GREEDY))
    assert "Paris" in "".join(pieces)
    assert len(pieces) > 3
    stats = engine.last_stats
    assert stats is not None and stats.stop_reason == "eos"
    assert stats.generated_tokens >= len(pieces) - 1
    assert stats.prompt_tokens >= 20  # system prompt + question, reported or counted
    assert 0 < stats.first_token_ms <= stats.total_ms


def test_remote_tokens_come_from_the_servers_tokenizer(server_url: str,
                                                       local: LlamaCppEngine) -> None:
    engine = RemoteChatEngine(EngineConfig(remote_url=server_url + "/v1/"))
    text = "The quick brown fox jumps over the lazy dog."
    assert engine.tokenize(text) == local.tokenize(text)
    assert engine.detokenize(local.tokenize(text)) == text
    # the template is unknown remotely, so the estimate must never be short
    messages = [SYSTEM, QUESTION, ChatMessage("assistant", "Paris."), QUESTION]
    assert engine.count_prompt_tokens(messages) >= local.count_prompt_tokens(messages)


def test_remote_cancel_stops_the_stream(server_url: str) -> None:
    engine = RemoteChatEngine(EngineConfig(remote_url=server_url, timeout_seconds=60))
    cancel = threading.Event()
    pieces = []
    messages = [ChatMessage("user", "Write a long essay about the history of Europe.")]
    for piece in engine.chat(messages, GenerationOptions(temperature=0, max_tokens=300),
                             cancel=cancel):
        pieces.append(piece)
        if len(pieces) == 10:
            cancel.set()
    assert len(pieces) == 10
    assert engine.last_stats is not None and engine.last_stats.stop_reason == "cancelled"
    # the server is still fine for the next question
    assert "Paris" in "".join(engine.chat([SYSTEM, QUESTION], GREEDY))


def test_server_down_gives_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    engine = RemoteChatEngine(EngineConfig(remote_url=url, timeout_seconds=5))
    with pytest.raises(RemoteEngineError,
                       match=f"^cannot reach the inference server at {url}: .*refused"):
        list(engine.chat([QUESTION]))
    with pytest.raises(RemoteEngineError, match="cannot reach"):
        engine.check()


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        engine = RemoteChatEngine(EngineConfig(remote_url=url, timeout_seconds=0.5))
        with pytest.raises(RemoteEngineError, match=r"no answer within 0\.5 s"):
            list(engine.chat([QUESTION]))


def test_missing_or_bad_url_is_refused() -> None:
    with pytest.raises(RemoteEngineError, match=r"remote\.url"):
        RemoteChatEngine(EngineConfig())
    with pytest.raises(RemoteEngineError, match="not an http"):
        RemoteChatEngine(EngineConfig(remote_url="pi5.local:8080"))


def test_fallback_answers_locally_and_logs_once(
    local: LlamaCppEngine, caplog: pytest.LogCaptureFixture
) -> None:
    down = RemoteChatEngine(EngineConfig(remote_url=f"http://127.0.0.1:{_free_port()}"))
    built = []

    def factory() -> LlamaCppEngine:
        built.append(local)
        return local

    engine = FallbackChatEngine(down, factory)
    with caplog.at_level(logging.WARNING, logger="engine.remote"):
        # conversation memory asks for the context and token counts first
        messages = fit_to_context(engine, [SYSTEM, QUESTION], GREEDY.max_tokens)
        assert messages == [SYSTEM, QUESTION] and engine.context_length == 1024
        first = "".join(engine.chat(messages, GREEDY))
        second = "".join(engine.chat([SYSTEM, QUESTION], GREEDY))
    assert "Paris" in first and first == second
    assert engine.switched and engine.backend_name == "llama-cpp" and len(built) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot reach the inference server" in warnings[0].message


def test_fallback_is_not_used_while_the_server_answers(server_url: str) -> None:
    def factory() -> LlamaCppEngine:
        raise AssertionError("the fallback must not be built")

    engine = FallbackChatEngine(RemoteChatEngine(EngineConfig(remote_url=server_url)), factory)
    assert "Paris" in "".join(engine.chat([SYSTEM, QUESTION], GREEDY))
    assert not engine.switched and engine.backend_name == "remote"
