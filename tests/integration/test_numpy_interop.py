"""The numpy runner's files and engine next to llama.cpp: GGUFs written by Hearth's
quantizer (from llama2.c and GGUF input) load in llama-cpp-python with the logits the
runner computes, and `NumpyChatEngine` on the bundled model renders and tokenizes chats
exactly like the llama-cpp engine and answers sensibly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.llama_cpp import LlamaCppEngine
from engine.numpy_runner.engine import NumpyChatEngine
from engine.numpy_runner.loader import load_model
from engine.quantize import quantize_model
from tests.unit.numpy_models import (
    TinyConfig,
    random_weights,
    write_llama2c,
    write_llama2c_tokenizer,
    write_tiny_gguf,
)

CONFIG = TinyConfig(vocab_size=320, seq_len=128)
TOKENS = [1, 270, 280, 290, 300, 5, 17]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread() -> Iterator[None]:
    with threadpool_limits(1, user_api="blas"):
        yield


def llama_logits(path: Path, tokens: list[int]) -> np.ndarray:
    llm = llama_cpp.Llama(str(path), n_ctx=128, logits_all=True, verbose=False)
    try:
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)])
    finally:
        llm.close()


@pytest.mark.parametrize("source_format", ["llama2c_v0", "llama2c_v2", "gguf_f32"])
@pytest.mark.parametrize("out_type", ["q8_0", "q4_0"])
def test_quantized_tiny_models_load_in_llama_cpp(
    tmp_path: Path, source_format: str, out_type: str
) -> None:
    weights = random_weights(CONFIG, seed=4, tied=source_format != "llama2c_v0")
    if source_format == "gguf_f32":
        source = write_tiny_gguf(tmp_path / "model.gguf", CONFIG, weights, "f32")
    else:
        version = int(source_format[-1])
        source = write_llama2c(tmp_path / "model.bin", CONFIG, weights, version=version)
        write_llama2c_tokenizer(tmp_path / "tokenizer.bin", CONFIG)
    out = tmp_path / f"model-{out_type}.gguf"
    quantize_model(source, out, out_type)

    reference = llama_logits(out, TOKENS)
    logits = load_model(out, mode="mmap").transformer.forward_batch(TOKENS, 0, all_logits=True)
    # two small layers leave no room for rounding flips: agreement to float precision
    assert np.abs(logits - reference).max() < 1e-3 * reference.std()


def test_bundled_model_requantized_to_q4_0(tmp_path: Path, smollm2_gguf: Path) -> None:
    out = tmp_path / "smollm2-q4_0.gguf"
    quantize_model(smollm2_gguf, out, "q4_0")
    llm = llama_cpp.Llama(str(out), n_ctx=128, logits_all=True, verbose=False)
    tokens = llm.tokenize(b"The capital of France is", add_bos=True)
    llm.eval(tokens)
    reference = np.array(llm.scores[: len(tokens)])
    llm.close()
    logits = load_model(out, mode="mmap").transformer.forward_batch(tokens, 0, all_logits=True)
    # the same arithmetic-order tolerance as the golden test (see test_numpy_golden)
    assert np.abs(logits - reference).max() < 3.0
    assert np.abs(logits - reference).mean() < 0.3
    assert logits[-1].argmax() == reference[-1].argmax()


def test_engine_matches_llama_cpp_prompts_and_answers(smollm2_q8_gguf: Path) -> None:
    config = EngineConfig(model_path=smollm2_q8_gguf, context_length=512, memory_mode="cache")
    messages = [
        ChatMessage("system", "You are a helpful assistant."),
        ChatMessage("user", "What is the capital of France? Answer in one sentence."),
    ]
    with LlamaCppEngine(config) as reference:
        expected_count = reference.count_prompt_tokens(messages)
        expected_ids = reference.tokenize("Bonjour, ça va? 😀  spaces\ttabs", add_special=True)
    with NumpyChatEngine(config) as engine:
        assert engine.count_prompt_tokens(messages) == expected_count
        assert engine.tokenize("Bonjour, ça va? 😀  spaces\ttabs", add_special=True) == expected_ids
        options = GenerationOptions(max_tokens=16, temperature=0.0, repeat_penalty=1.0)
        reply = "".join(engine.chat(messages, options))
        stats = engine.last_stats
    assert "Paris" in reply
    assert stats is not None and stats.prompt_tokens == expected_count
    assert stats.stop_reason in ("eos", "length") and stats.generated_tokens > 3
