"""The interface every inference backend implements, and the values it exchanges.

`EngineConfig` holds load-time settings (which file, how much context, how many
threads); `GenerationOptions` holds per-call settings (sampling, limits). A backend
streams its reply as text pieces and records `GenerationStats` for the last call.
Cancellation is a `threading.Event` checked before every generated token.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation."""

    role: str
    """"system", "user" or "assistant"."""
    content: str


@dataclass(frozen=True)
class EngineConfig:
    """Load-time settings shared by all backends (each ignores what it has no use for)."""

    model_path: Path | None = None
    context_length: int = 2048
    """Tokens of context to allocate (prompt + reply)."""
    threads: int = 0
    """Compute threads; 0 means one per physical core (big cores on big.LITTLE)."""
    batch_size: int = 256
    """Prompt tokens evaluated per batch."""
    use_mmap: bool = True
    use_mlock: bool = False
    memory_mode: str = "auto"
    """numpy runner only: "mmap", "cache", "auto" or "stream"."""
    memory_budget_bytes: int = 0
    """numpy runner "auto" mode: bytes it may spend on dequantized weights; 0 = derive."""
    cpu_affinity: tuple[int, ...] = ()
    """CPU ids the inference threads are pinned to; empty means no pinning."""
    chat_template: str = ""
    """Named template ("chatml", "zephyr", "llama-2") overriding the model's own; "" = model's."""
    remote_url: str = ""
    """remote backend only: base URL of an OpenAI-compatible server, e.g. http://pi5.local:8080."""
    remote_model: str = ""
    remote_api_key: str = ""
    timeout_seconds: float = 30.0
    seed: int = -1


@dataclass(frozen=True)
class GenerationOptions:
    """Per-call sampling settings. temperature 0 means greedy decoding."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    seed: int | None = None
    """None draws a fresh seed; a fixed seed makes sampling reproducible."""
    stop: tuple[str, ...] = ()


@dataclass
class GenerationStats:
    """What one `chat()` call cost. Identical in shape across backends."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_prompt_tokens: int = 0
    """Prompt tokens whose KV state was reused from an earlier call."""
    prompt_ms: float = 0.0
    """Time spent evaluating the prompt."""
    first_token_ms: float = 0.0
    """From the call to the first text piece."""
    decode_tokens_per_second: float = 0.0
    total_ms: float = 0.0
    stop_reason: str = ""
    """"eos", "length", "stop", "cancelled" or "error"."""

    @property
    def prompt_tokens_per_second(self) -> float:
        evaluated = self.prompt_tokens - self.cached_prompt_tokens
        return evaluated / (self.prompt_ms / 1000.0) if self.prompt_ms > 0 else 0.0


@dataclass
class EngineInfo:
    """Describes a loaded engine for status bars and `hearth doctor`."""

    backend: str
    model_path: str = ""
    context_length: int = 0
    details: dict[str, str] = field(default_factory=dict)


class ChatEngine(ABC):
    """A loaded model that turns a conversation into a streamed reply."""

    backend_name: str = "?"

    @property
    @abstractmethod
    def context_length(self) -> int:
        """Tokens of context this engine was loaded with."""

    @abstractmethod
    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        """Token ids of `text` with this model's own tokenizer."""

    @abstractmethod
    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of `tokens`."""

    @abstractmethod
    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the rendered chat prompt for `messages` takes (template included)."""

    def chat(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Stream the assistant's reply to `messages` as text pieces.

        Checks `cancel` before every token and stops (without raising) once it is set;
        `last_stats.stop_reason` is then "cancelled". A backend implements `_stream`
        (or overrides this method).
        """
        return self._stream(list(messages), options or GenerationOptions(),
                            cancel or threading.Event())

    def _stream(
        self, messages: list[ChatMessage], options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        """`chat()` with its defaults filled in."""
        raise NotImplementedError(f"{type(self).__name__} implements neither chat nor _stream")

    @property
    @abstractmethod
    def last_stats(self) -> GenerationStats | None:
        """Stats of the most recent `chat()` call, complete once its iterator ends."""

    def info(self) -> EngineInfo:
        return EngineInfo(backend=self.backend_name, context_length=self.context_length)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model's memory. The engine is unusable afterwards."""

    def __enter__(self) -> ChatEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
