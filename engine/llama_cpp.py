"""The llama.cpp backend: `ChatEngine` on top of llama-cpp-python.

Hearth drives the token loop itself (`engine.token_stream`; this module supplies its
hooks) instead of using `create_chat_completion`, so that:

- `cancel` is checked before every token (and between prompt batches), and a
  cancelled reply stops within one token's time;
- the KV cache is reused across calls: the evaluated tokens are kept, and a new prompt
  only evaluates the part after the longest common prefix. The system prompt (and in a
  continuing conversation, the earlier turns) is therefore evaluated once, and
  `prefill(messages)` evaluates a prompt ahead of its `chat()` (the assistant does it
  with what it has heard so far while it waits for the end of the question);
- the stats have the same shape as the numpy runner's.

llama.cpp's native log is routed into Python logging (debug level) instead of stderr;
its first error line explains a load failure in the `ModelFormatError`.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import logging
import random
import re
import threading
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from engine.base import ChatMessage, EngineConfig, EngineInfo, GenerationOptions
from engine.cpu import cpu_info, pinned
from engine.errors import EngineError, EngineUnavailableError, ModelFormatError
from engine.token_stream import TokenDecoder, TokenStreamEngine

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


@functools.cache
def _install_native_log() -> _NativeLog:
    """The one receiver of llama.cpp's log (installed on first use)."""
    return _NativeLog()


class LlamaCppEngine(TokenStreamEngine):
    """A GGUF model run by llama.cpp, with streaming, cancellation and a prompt cache."""

    backend_name = "llama-cpp"

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
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

    def prefill(self, messages: Sequence[ChatMessage]) -> int:
        """Evaluate the prompt `chat(messages)` would, so that a chat whose prompt starts
        the same finds it in the KV cache; the number of tokens it evaluated."""
        prompt, _ = self._render(messages)
        with self._lock, pinned(self.config.cpu_affinity):
            cached = self._evaluate_prompt(prompt, threading.Event())
        return len(prompt) - (cached or 0)

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()

    # -- TokenStreamEngine hooks ----------------------------------------------------

    def _cached_tokens(self) -> list[int]:
        return self._llm.input_ids[: self._llm.n_tokens].tolist()

    def _keep_cached(self, count: int) -> None:
        if count == 0:
            self._llm.reset()
        else:
            self._llm.n_tokens = count  # eval() drops the KV entries after this position

    def _evaluate(self, tokens: list[int], pos: int) -> None:
        self._llm.eval(tokens)

    def _sample(
        self, prompt: list[int], options: GenerationOptions
    ) -> Generator[int, None, None]:
        llm = self._llm
        llm.set_seed(options.seed if options.seed is not None else random.randrange(2**31))
        llm.last_n_tokens_size = options.repeat_last_n
        # The whole prompt is in the KV cache, so generate() samples right away; each
        # further next() evaluates exactly one token.
        return llm.generate(
            prompt,
            temp=options.temperature,
            top_k=options.top_k,
            top_p=options.top_p,
            min_p=options.min_p,
            repeat_penalty=options.repeat_penalty,
            reset=True,
        )

    def _is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _decoder(self) -> TokenDecoder:
        return _BytesDecoder(self._llm)


class _BytesDecoder:
    """llama.cpp's token bytes to text, holding back an incomplete UTF-8 character."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._llm = llm
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self._llm.detokenize([token_id]))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)
