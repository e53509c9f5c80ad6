"""The llama.cpp backend: `ChatEngine` on top of llama-cpp-python.

Hearth drives the token loop itself instead of using `create_chat_completion`, so that:

- `cancel` is checked before every token (and between prompt batches), and a
  cancelled reply stops within one token's time;
- the KV cache is reused across calls: the evaluated tokens are kept, and a new prompt
  only evaluates the part after the longest common prefix. The system prompt (and in a
  continuing conversation, the earlier turns) is therefore evaluated once;
- the stats have the same shape as the numpy runner's.

llama.cpp's native log is routed into Python logging (debug level) instead of stderr;
its first error line explains a load failure in the `ModelFormatError`.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.base import (
    ChatEngine,
    ChatMessage,
    EngineConfig,
    EngineInfo,
    GenerationOptions,
    GenerationStats,
)
from engine.cpu import cpu_info, pin_current_thread
from engine.errors import (
    EngineError,
    EngineUnavailableError,
    ModelFormatError,
)
from engine.streaming import StopMatcher, common_prefix, reply_budget

try:
    import llama_cpp
    from llama_cpp import llama_chat_format
except ImportError as exc:  # registry turns this into "install the llama extra"
    raise EngineUnavailableError(
        "the llama-cpp engine needs llama-cpp-python (pip install 'hearth[llama]')"
    ) from exc

log = logging.getLogger(__name__)
native_log = logging.getLogger("engine.llama_cpp.native")

# Catalog / config names -> llama-cpp-python's formatter for that template.
NAMED_TEMPLATES: dict[str, Callable[..., Any]] = {
    "chatml": llama_chat_format.format_chatml,
    "zephyr": llama_chat_format.format_zephyr,
    "llama-2": llama_chat_format.format_llama2,
}

# ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line
_GGML_ERROR = 4


class _NativeLog:
    """Receives llama.cpp's C log lines; keeps the errors for load-failure messages."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._callback = llama_cpp.llama_log_callback(self._on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def _on_log(self, level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", errors="replace").strip()
        if not line:
            return
        if level == _GGML_ERROR:
            self.errors.append(line)
        # All of it is debug for Hearth: a voice assistant's console must stay quiet,
        # and the errors that matter come back as a ModelFormatError.
        native_log.debug("%s", line)

    def first_error(self) -> str:
        """The first error since the last `errors.clear()`, without its C function name."""
        if not self.errors:
            return ""
        return re.sub(r"^\w+: ", "", self.errors[0])


_native_log: _NativeLog | None = None


def _install_native_log() -> _NativeLog:
    global _native_log
    if _native_log is None:
        _native_log = _NativeLog()
    return _native_log


class LlamaCppEngine(ChatEngine):
    """A GGUF model run by llama.cpp, with streaming, cancellation and a prompt cache."""

    backend_name = "llama-cpp"

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        path = Path(config.model_path) if config.model_path else None
        if path is None or not path.is_file():
            raise ModelFormatError(f"no model file at {path}" if path else "no model file given")
        if config.chat_template and config.chat_template not in NAMED_TEMPLATES:
            raise EngineError(
                f"unknown chat template {config.chat_template!r}; choose one of: "
                + ", ".join(NAMED_TEMPLATES)
            )
        native = _install_native_log()
        native.errors.clear()
        self._threads = config.threads or (
            len(config.cpu_affinity) if config.cpu_affinity else cpu_info().default_threads
        )
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=config.context_length,
                n_batch=config.batch_size,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                use_mmap=config.use_mmap,
                use_mlock=config.use_mlock,
                seed=config.seed if config.seed >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            reason = native.first_error() or str(exc).strip().splitlines()[0]
            raise ModelFormatError(f"llama.cpp cannot load {path.name}: {reason}") from None
        self._vocab = self._llm._model.vocab  # for end-of-generation checks
        # llama.cpp may round its context up, but llama-cpp-python's token buffer has
        # exactly the requested size: the smaller one is the real limit.
        self._n_ctx = min(self._llm.n_ctx(), len(self._llm.input_ids))
        self._template_name, self._formatter = self._pick_template()
        self._lock = threading.Lock()
        self._stats: GenerationStats | None = None
        log.info(
            "llama.cpp loaded %s (context %d, %d threads, template %s)",
            path.name, self.context_length, self._threads, self._template_name,
        )

    # -- template -----------------------------------------------------------------

    def _pick_template(self) -> tuple[str, Callable[..., Any]]:
        if self.config.chat_template:
            name = self.config.chat_template
            return name, NAMED_TEMPLATES[name]
        template = self._llm.metadata.get("tokenizer.chat_template", "")
        if not template:
            log.warning("%s has no chat template; using chatml", self.config.model_path)
            return "chatml", NAMED_TEMPLATES["chatml"]

        def token_text(token: int) -> str:
            return self._llm._model.token_get_text(token) if token >= 0 else ""

        try:
            formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=token_text(self._llm.token_eos()),
                bos_token=token_text(self._llm.token_bos()),
                add_generation_prompt=True,
            )
        except Exception as exc:  # jinja2 raises several kinds for a bad template
            log.warning("%s has a chat template jinja cannot read (%s); using chatml",
                        self.config.model_path, exc)
            return "chatml", NAMED_TEMPLATES["chatml"]
        return "gguf", formatter

    def _render(self, messages: Sequence[ChatMessage]) -> tuple[list[int], list[str]]:
        """Prompt tokens for `messages` and the template's stop strings."""
        try:
            result = self._formatter(
                messages=[{"role": m.role, "content": m.content} for m in messages]
            )
        except Exception as exc:  # a jinja template may raise anything
            raise EngineError(f"the chat template failed on these messages: {exc}") from exc
        # llama.cpp adds BOS only when the model asks for it; a template that writes
        # the BOS text itself would then give two.
        tokens = self._llm.tokenize(result.prompt.encode("utf-8"), add_bos=True, special=True)
        bos = self._llm.token_bos()
        if len(tokens) > 1 and tokens[0] == tokens[1] == bos:
            tokens = tokens[1:]
        stop = result.stop or []
        return tokens, [stop] if isinstance(stop, str) else list(stop)

    # -- ChatEngine ---------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=False)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._llm.detokenize(list(tokens)).decode("utf-8", errors="replace")

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._render(messages)[0])

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The token ids `chat(messages)` evaluates: the chat template applied, tokenized."""
        return self._render(messages)[0]

    @property
    def last_stats(self) -> GenerationStats | None:
        return self._stats

    def info(self) -> EngineInfo:
        return EngineInfo(
            backend=self.backend_name,
            model_path=str(self.config.model_path),
            context_length=self.context_length,
            details={
                "threads": str(self._threads),
                "template": self._template_name,
                "affinity": ",".join(map(str, self.config.cpu_affinity)) or "none",
                "llama_cpp": llama_cpp.__version__,
            },
        )

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()

    def chat(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        return self._stream(list(messages), options or GenerationOptions(),
                            cancel or threading.Event())

    # -- generation ---------------------------------------------------------------

    def _stream(
        self, messages: list[ChatMessage], options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        started = time.perf_counter()
        prompt, template_stops = self._render(messages)
        max_tokens = reply_budget(len(prompt), self.context_length, options.max_tokens)
        stats = GenerationStats(prompt_tokens=len(prompt), stop_reason="error")
        self._stats = stats
        with self._lock:
            owner = threading.get_ident()
            previous_cpus = pin_current_thread(self.config.cpu_affinity)
            try:
                yield from self._generate(
                    prompt, template_stops, options, max_tokens, cancel, stats, started
                )
            finally:
                if previous_cpus and threading.get_ident() == owner:
                    pin_current_thread(previous_cpus)
                stats.total_ms = (time.perf_counter() - started) * 1000.0

    def _eval_prompt(self, prompt: list[int], cancel: threading.Event) -> int | None:
        """Evaluate what the KV cache lacks of `prompt`; the cached token count, or None
        when cancelled."""
        llm = self._llm
        cached = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), prompt)
        # The last prompt token is always evaluated again, and always alone: sampling
        # needs its fresh logits, and llama.cpp rounds a lone token differently from a
        # batch, so doing it the same way cold or cached keeps a seeded (or greedy)
        # reply the same whether or not the prompt was cached.
        last = len(prompt) - 1
        cached = min(cached, last)
        if cached == 0:
            llm.reset()
        else:
            llm.n_tokens = cached  # eval() drops the KV entries after this position
        for i in [*range(cached, last, llm.n_batch), last]:
            if cancel.is_set():
                llm.reset()  # a half-evaluated prompt must not be mistaken for a cache
                return None
            llm.eval(prompt[i : min(i + llm.n_batch, last)] if i < last else prompt[last:])
        return cached

    def _generate(
        self,
        prompt: list[int],
        template_stops: list[str],
        options: GenerationOptions,
        max_tokens: int,
        cancel: threading.Event,
        stats: GenerationStats,
        started: float,
    ) -> Iterator[str]:
        llm = self._llm
        cached = self._eval_prompt(prompt, cancel)
        if cached is None:
            stats.stop_reason = "cancelled"
            return
        stats.cached_prompt_tokens = cached
        stats.prompt_ms = (time.perf_counter() - started) * 1000.0

        seed = options.seed
        if seed is None:
            seed = self.config.seed if self.config.seed >= 0 else random.randrange(2**31)
        llm.set_seed(seed)
        llm.last_n_tokens_size = options.repeat_last_n
        # The whole prompt is now in the KV cache, so generate() samples right away;
        # each further next() evaluates exactly one token.
        tokens = llm.generate(
            prompt,
            temp=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            min_p=options.min_p,
            repeat_penalty=options.repeat_penalty,
            reset=True,
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher([*template_stops, *options.stop])
        first_sampled_at = last_sampled_at = 0.0
        stop_reason = ""  # stays empty when the consumer abandons the stream
        try:
            while True:
                if stats.generated_tokens >= max_tokens:
                    stop_reason = "length"
                    break
                if cancel.is_set():
                    stop_reason = "cancelled"
                    break
                token = next(tokens)
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    stop_reason = "eos"
                    break
                stats.generated_tokens += 1
                last_sampled_at = time.perf_counter()
                first_sampled_at = first_sampled_at or last_sampled_at
                text, stopped = stops.feed(decoder.decode(llm.detokenize([token])))
                if text:
                    if not stats.first_token_ms:
                        stats.first_token_ms = (last_sampled_at - started) * 1000.0
                    yield text
                if stopped:
                    stop_reason = "stop"
                    break
            if stop_reason != "cancelled":
                tail = stops.flush() + decoder.decode(b"", final=True)
                if tail:
                    yield tail
        except Exception as exc:
            stop_reason = "error"
            raise EngineError(f"llama.cpp failed while generating: {exc}") from exc
        finally:
            tokens.close()
            stats.stop_reason = stop_reason or "cancelled"
            if stats.generated_tokens > 1 and last_sampled_at > first_sampled_at:
                stats.decode_tokens_per_second = (stats.generated_tokens - 1) / (
                    last_sampled_at - first_sampled_at
                )
