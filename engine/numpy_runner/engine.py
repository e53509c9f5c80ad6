"""`NumpyChatEngine`: the built-in pure Python + numpy backend behind `ChatEngine`.

It loads a GGUF or llama2.c model with the memory planner, renders the chat with the
model's template, evaluates only the part of the prompt that the KV cache does not
already hold (the system prompt and earlier turns are reused between calls), and streams
the reply token by token, checking the cancel event before each one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from engine.base import (
    ChatEngine,
    ChatMessage,
    EngineConfig,
    EngineInfo,
    GenerationOptions,
    GenerationStats,
)
from engine.chat_template import render_chat, template_for
from engine.errors import EngineError, ModelFormatError
from engine.numpy_runner.loader import LoadedModel, load_model
from engine.numpy_runner.threads import ComputeThreads
from engine.sampling import Sampler
from engine.streaming import StopMatcher, common_prefix, reply_budget
from engine.tokenizer import (
    IncrementalDecoder,
    Tokenizer,
    load_llama2c_tokenizer,
    load_tokenizer_from_gguf_metadata,
)

log = logging.getLogger(__name__)


class NumpyChatEngine(ChatEngine):
    """A llama model run by `engine.numpy_runner` (no compiled dependencies)."""

    backend_name = "numpy"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        path = config.model_path
        if path is None or not Path(path).is_file():
            raise ModelFormatError(f"no model file at {path}" if path else "no model file given")
        self._path = Path(path)
        self._threads = ComputeThreads(config.threads, config.cpu_affinity)
        started = time.perf_counter()
        self._model: LoadedModel | None = load_model(
            self._path,
            mode=config.memory_mode,
            context_length=config.context_length,
            budget_bytes=config.memory_budget_bytes,
            batch=max(1, min(config.batch_size, 512)),
        )
        self.load_seconds = time.perf_counter() - started
        self._tokenizer = self._load_tokenizer(self._model)
        self._template = template_for(self._model.metadata, config.chat_template)
        self._cached: list[int] = []  # tokens whose keys and values are in the KV cache
        self._lock = threading.Lock()
        self._stats: GenerationStats | None = None
        log.info(
            "numpy engine loaded %s in %.2f s (memory %s, context %d)",
            self._path.name, self.load_seconds, config.memory_mode, self.context_length,
        )

    def _load_tokenizer(self, model: LoadedModel) -> Tokenizer:
        vocab_size = model.transformer.config.vocab_size
        if model.format == "gguf":
            tokenizer = load_tokenizer_from_gguf_metadata(model.metadata)
        else:
            beside = self._path.with_name("tokenizer.bin")
            if not beside.exists():
                raise ModelFormatError(
                    f"a llama2.c checkpoint needs its tokenizer.bin beside it ({beside})"
                )
            tokenizer = load_llama2c_tokenizer(beside, vocab_size)
        if tokenizer.vocab_size != vocab_size:
            raise ModelFormatError(
                f"{self._path.name}: the tokenizer has {tokenizer.vocab_size} tokens, the "
                f"model {vocab_size}"
            )
        return tokenizer

    @property
    def model(self) -> LoadedModel:
        if self._model is None:
            raise EngineError("the numpy engine was closed")
        return self._model

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    # -- ChatEngine -------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self.model.transformer.context_length

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return self._tokenizer.encode(text, add_special=add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._tokenizer.decode(tokens)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._prompt_tokens(messages))

    @property
    def last_stats(self) -> GenerationStats | None:
        return self._stats

    def info(self) -> EngineInfo:
        model = self.model
        plan = model.plan
        return EngineInfo(
            backend=self.backend_name,
            model_path=str(self._path),
            context_length=self.context_length,
            details={
                "format": model.format,
                "memory": plan.mode,
                "cached_matrices": str(plan.cached_matrices),
                "mapped_matrices": str(plan.mapped_matrices),
                "cached_mb": f"{plan.cached_bytes / 1e6:.0f}",
                "prompt_threads": str(self._threads.prompt_threads),
                "decode_threads": str(self._threads.decode_threads),
                "affinity": ",".join(map(str, self.config.cpu_affinity)) or "none",
            },
        )

    def close(self) -> None:
        model, self._model = self._model, None
        if model is None:
            return
        handle = model.gguf
        mm = model.mm
        del model
        if handle is not None:
            handle.close()
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                log.debug("model map still referenced; the OS unmaps it at exit")

    def chat(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        return self._stream(
            list(messages), options or GenerationOptions(), cancel or threading.Event()
        )

    # -- generation -------------------------------------------------------------------

    def _prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        tok = self._tokenizer
        bos = tok.token_text(tok.bos_id) if tok.bos_id is not None else ""
        eos = tok.token_text(tok.eos_id) if tok.eos_id is not None else ""
        text = render_chat(messages, self._template, bos_token=bos, eos_token=eos)
        return tok.encode_prompt(text)

    def _stream(
        self, messages: list[ChatMessage], options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        started = time.perf_counter()
        prompt = self._prompt_tokens(messages)
        max_tokens = reply_budget(len(prompt), self.context_length, options.max_tokens)
        stats = GenerationStats(prompt_tokens=len(prompt), stop_reason="error")
        self._stats = stats
        with self._lock, self._threads.pinned():
            try:
                yield from self._generate(prompt, options, max_tokens, cancel, stats, started)
            finally:
                stats.total_ms = (time.perf_counter() - started) * 1000.0

    def _eval_prompt(self, prompt: list[int], cancel: threading.Event) -> np.ndarray | None:
        """Evaluate what the KV cache lacks of `prompt`; its last logits, or None when
        cancelled. Sets `self._cached` to the tokens now in the cache."""
        transformer = self.model.transformer
        # the last prompt token is always evaluated again: sampling needs its logits
        reuse = min(common_prefix(self._cached, prompt), len(prompt) - 1)
        self._cached = prompt[:reuse]
        step = max(1, self.config.batch_size)
        logits = None
        with self._threads.prompt():
            for begin in range(reuse, len(prompt), step):
                if cancel.is_set():
                    return None
                chunk = prompt[begin : begin + step]
                logits = transformer.forward_batch(chunk, begin)
                self._cached.extend(chunk)
        return logits

    def _generate(
        self,
        prompt: list[int],
        options: GenerationOptions,
        max_tokens: int,
        cancel: threading.Event,
        stats: GenerationStats,
        started: float,
    ) -> Iterator[str]:
        stats.cached_prompt_tokens = min(common_prefix(self._cached, prompt), len(prompt) - 1)
        logits = self._eval_prompt(prompt, cancel)
        if logits is None:
            stats.stop_reason = "cancelled"
            return
        stats.prompt_ms = (time.perf_counter() - started) * 1000.0
        if options.seed is None and self.config.seed >= 0:
            options = dataclasses.replace(options, seed=self.config.seed)
        sampler = Sampler(options, self.model.transformer.config.vocab_size)
        transformer = self.model.transformer
        tokenizer = self._tokenizer
        end_ids = tokenizer.eot_ids
        decoder = IncrementalDecoder(tokenizer)
        stops = StopMatcher(options.stop)
        history = list(prompt)
        first_sampled_at = last_sampled_at = 0.0
        stop_reason = ""  # stays empty when the consumer abandons the stream
        try:
            with self._threads.decode():
                while True:
                    if stats.generated_tokens >= max_tokens:
                        stop_reason = "length"
                        break
                    if cancel.is_set():
                        stop_reason = "cancelled"
                        break
                    token = sampler.sample(logits, history)
                    if token in end_ids:
                        stop_reason = "eos"
                        break
                    stats.generated_tokens += 1
                    history.append(token)
                    last_sampled_at = time.perf_counter()
                    first_sampled_at = first_sampled_at or last_sampled_at
                    text, stopped = stops.feed(decoder.feed(token))
                    if text:
                        if not stats.first_token_ms:
                            stats.first_token_ms = (last_sampled_at - started) * 1000.0
                        yield text
                    if stopped:
                        stop_reason = "stop"
                        break
                    if stats.generated_tokens < max_tokens and not cancel.is_set():
                        logits = transformer.forward(token, len(self._cached))
                        self._cached.append(token)
            if stop_reason != "cancelled":
                tail = stops.flush() + decoder.flush()
                if tail:
                    yield tail
        except EngineError:
            stop_reason = "error"
            raise
        finally:
            stats.stop_reason = stop_reason or "cancelled"
            if stats.generated_tokens > 1 and last_sampled_at > first_sampled_at:
                stats.decode_tokens_per_second = (stats.generated_tokens - 1) / (
                    last_sampled_at - first_sampled_at
                )
