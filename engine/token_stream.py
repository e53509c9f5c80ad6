"""The token loop every local engine shares, written once: `TokenStreamEngine`.

`chat()` renders the conversation, cuts the reply to what the context has left, takes
the engine's lock, pins the thread to the configured CPUs, evaluates the part of the
prompt the KV cache lacks (in batches, checking `cancel` between them), then samples
token after token until the length limit, `cancel`, an end-of-generation token or a
stop string, streaming the text as it completes and recording `GenerationStats`.

A backend supplies only its hooks (the template-method pattern):

- `_render(messages)`: prompt token ids and the template's own stop strings;
- `_cached_tokens()`, `_keep_cached(n)`, `_evaluate(tokens, pos)`: its KV cache;
- `_sample(prompt, options)`: an endless iterator of sampled tokens, each `next()`
  evaluating the previous token first;
- `_is_end(token)` and `_decoder()`: end-of-generation test and token-to-text decoder.

`StatsClock` is the timing half of the stats, shared with the remote engine: time to
first token, total time and the decode rate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from abc import abstractmethod
from collections.abc import Generator, Iterator, Sequence
from typing import Protocol

from engine.base import ChatEngine, ChatMessage, EngineConfig, GenerationOptions, GenerationStats
from engine.cpu import pinned
from engine.errors import EngineError
from engine.streaming import StopMatcher, common_prefix, reply_budget


class StatsClock:
    """Times one `chat()` call from its start and fills in `stats`' timing fields."""

    def __init__(self, stats: GenerationStats) -> None:
        self.stats = stats
        self.started = time.perf_counter()
        self.first_token_at = 0.0
        self.last_token_at = 0.0

    def elapsed_ms(self, at: float = 0.0) -> float:
        """Milliseconds from the start of the call to `at` (default: now)."""
        return ((at or time.perf_counter()) - self.started) * 1000.0

    def token(self) -> None:
        """One more token was generated, now."""
        self.stats.generated_tokens += 1
        self.last_token_at = time.perf_counter()
        self.first_token_at = self.first_token_at or self.last_token_at

    def text_out(self) -> None:
        """Text of the latest token leaves the engine: the first time, that is the
        time to first token."""
        if not self.stats.first_token_ms:
            self.stats.first_token_ms = self.elapsed_ms(self.last_token_at)

    def finish(self) -> None:
        """Total time, and the decode rate over the tokens after the first."""
        stats = self.stats
        stats.total_ms = self.elapsed_ms()
        if stats.generated_tokens > 1 and self.last_token_at > self.first_token_at:
            stats.decode_tokens_per_second = (stats.generated_tokens - 1) / (
                self.last_token_at - self.first_token_at
            )


class TokenDecoder(Protocol):
    """Token ids to text, holding back an incomplete UTF-8 character."""

    def feed(self, token_id: int) -> str: ...

    def flush(self) -> str: ...


class TokenStreamEngine(ChatEngine):
    """A local engine whose token loop Hearth drives itself (see the module docstring)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._stats: GenerationStats | None = None

    # -- hooks ----------------------------------------------------------------------

    @abstractmethod
    def _render(self, messages: Sequence[ChatMessage]) -> tuple[list[int], list[str]]:
        """Prompt tokens for `messages` (chat template applied) and the template's stop
        strings."""

    @abstractmethod
    def _cached_tokens(self) -> list[int]:
        """The tokens whose keys and values the KV cache holds, in order."""

    @abstractmethod
    def _keep_cached(self, count: int) -> None:
        """Forget the KV cache after its first `count` tokens."""

    @abstractmethod
    def _evaluate(self, tokens: list[int], pos: int) -> None:
        """Run `tokens` at positions pos.. into the KV cache (and keep the last logits)."""

    @abstractmethod
    def _sample(
        self, prompt: list[int], options: GenerationOptions
    ) -> Generator[int, None, None]:
        """Sampled tokens after the evaluated `prompt`, without end; each `next()` first
        evaluates the token before it."""

    @abstractmethod
    def _is_end(self, token: int) -> bool:
        """Whether `token` ends the reply (end of turn / end of text)."""

    @abstractmethod
    def _decoder(self) -> TokenDecoder:
        """A fresh decoder for one reply."""

    def _prompt_batches(self) -> contextlib.AbstractContextManager[None]:
        """Context in which the prompt is evaluated (e.g. a BLAS thread limit)."""
        return contextlib.nullcontext()

    # -- ChatEngine -----------------------------------------------------------------

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._render(messages)[0])

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The token ids `chat(messages)` evaluates: the chat template applied, tokenized."""
        return self._render(messages)[0]

    @property
    def last_stats(self) -> GenerationStats | None:
        return self._stats

    def _stream(
        self, messages: list[ChatMessage], options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        clock = StatsClock(GenerationStats(stop_reason="error"))
        prompt, template_stops = self._render(messages)
        max_tokens = reply_budget(len(prompt), self.context_length, options.max_tokens)
        clock.stats.prompt_tokens = len(prompt)
        self._stats = clock.stats
        if options.seed is None and self.config.seed >= 0:
            options = dataclasses.replace(options, seed=self.config.seed)
        stops = StopMatcher([*template_stops, *options.stop])
        with self._lock, pinned(self.config.cpu_affinity):
            try:
                yield from self._generate(prompt, stops, options, max_tokens, cancel, clock)
            finally:
                clock.finish()

    # -- the loop -------------------------------------------------------------------

    def _evaluate_prompt(self, prompt: list[int], cancel: threading.Event) -> int | None:
        """Evaluate what the KV cache lacks of `prompt`; the number of cached tokens
        reused, or None when cancelled.

        The last prompt token is always evaluated again, and always alone: sampling
        needs its fresh logits, and a lone token is summed in another order than a
        batch (in llama.cpp's kernels and in BLAS), so doing it the same way cold or
        cached keeps a seeded (or greedy) reply the same whether or not the prompt
        was cached.
        """
        last = len(prompt) - 1
        cached = min(common_prefix(self._cached_tokens(), prompt), last)
        self._keep_cached(cached)
        starts = [*range(cached, last, max(1, self.config.batch_size)), last]
        with self._prompt_batches():
            for begin, end in zip(starts, [*starts[1:], last + 1], strict=True):
                if cancel.is_set():
                    self._keep_cached(0)  # a half-evaluated prompt is not a cache
                    return None
                self._evaluate(prompt[begin:end], begin)
        return cached

    def _generate(
        self,
        prompt: list[int],
        stops: StopMatcher,
        options: GenerationOptions,
        max_tokens: int,
        cancel: threading.Event,
        clock: StatsClock,
    ) -> Iterator[str]:
        stats = clock.stats
        cached = self._evaluate_prompt(prompt, cancel)
        if cached is None:
            stats.stop_reason = "cancelled"
            return
        stats.cached_prompt_tokens = cached
        stats.prompt_ms = clock.elapsed_ms()
        tokens = self._sample(prompt, options)
        decoder = self._decoder()
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
                if self._is_end(token):
                    stop_reason = "eos"
                    break
                clock.token()
                text, stopped = stops.feed(decoder.feed(token))
                if text:
                    clock.text_out()
                    yield text
                if stopped:
                    stop_reason = "stop"
                    break
            if stop_reason != "cancelled":
                tail = stops.flush() + decoder.flush()
                if tail:
                    yield tail
        except EngineError:
            stop_reason = "error"
            raise
        except Exception as exc:
            stop_reason = "error"
            raise EngineError(f"{self.backend_name} failed while generating: {exc}") from exc
        finally:
            tokens.close()
            stats.stop_reason = stop_reason or "cancelled"
