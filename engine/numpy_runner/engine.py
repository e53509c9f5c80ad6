"""`NumpyChatEngine`: the built-in pure Python + numpy backend behind `ChatEngine`.

It loads a GGUF or llama2.c model with the memory planner, renders the chat with the
model's template, evaluates only the part of the prompt that the KV cache does not
already hold (the system prompt and earlier turns are reused between calls), and streams
the reply token by token, checking the cancel event before each one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from engine.base import ChatMessage, EngineConfig, EngineInfo, GenerationOptions
from engine.chat_template import render_chat, template_for
from engine.errors import EngineError, ModelFormatError
from engine.numpy_runner.loader import LoadedModel, load_model
from engine.numpy_runner.threads import ComputeThreads
from engine.sampling import Sampler
from engine.token_stream import TokenDecoder, TokenStreamEngine
from engine.tokenizer import (
    IncrementalDecoder,
    Tokenizer,
    load_llama2c_tokenizer,
    load_tokenizer_from_gguf_metadata,
)

log = logging.getLogger(__name__)


class NumpyChatEngine(TokenStreamEngine):
    """A llama model run by `engine.numpy_runner` (no compiled dependencies)."""

    backend_name = "numpy"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        path = config.model_path
        if path is None or not Path(path).is_file():
            raise ModelFormatError(f"no model file at {path}" if path else "no model file given")
        self._path = Path(path)
        self._threads = ComputeThreads(config.threads)
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
        self._logits = np.zeros(0, np.float32)  # after the last token evaluated
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
                "kernels": plan.kernels.__name__,
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

    # -- TokenStreamEngine hooks ----------------------------------------------------

    def _render(self, messages: Sequence[ChatMessage]) -> tuple[list[int], list[str]]:
        tok = self._tokenizer
        bos = tok.token_text(tok.bos_id) if tok.bos_id is not None else ""
        eos = tok.token_text(tok.eos_id) if tok.eos_id is not None else ""
        text = render_chat(messages, self._template, bos_token=bos, eos_token=eos)
        return tok.encode_prompt(text), []

    def _cached_tokens(self) -> list[int]:
        return self._cached

    def _keep_cached(self, count: int) -> None:
        del self._cached[count:]  # the positions after it are overwritten when reached

    def _prompt_batches(self) -> contextlib.AbstractContextManager[None]:
        return self._threads.prompt()

    def _evaluate(self, tokens: list[int], pos: int) -> None:
        self._logits = self.model.transformer.forward_batch(tokens, pos)
        self._cached.extend(tokens)

    def _sample(
        self, prompt: list[int], options: GenerationOptions
    ) -> Generator[int, None, None]:
        transformer = self.model.transformer
        sampler = Sampler(options, transformer.config.vocab_size)
        # the repetition penalty looks at the reply's own tokens, as llama.cpp's does in
        # the llama-cpp engine (llama-cpp-python's penalty sampler sees only sampled ones)
        history: list[int] = []
        with self._threads.decode():
            while True:
                token = sampler.sample(self._logits, history)
                yield token
                history.append(token)
                self._evaluate([token], len(self._cached))

    def _is_end(self, token: int) -> bool:
        return token in self._tokenizer.eot_ids

    def _decoder(self) -> TokenDecoder:
        return IncrementalDecoder(self._tokenizer)
