"""A chat engine on another machine of the local network, spoken to over HTTP.

Any OpenAI-compatible server works: llama.cpp's `llama-server`, `python -m
llama_cpp.server`, Ollama. Replies stream as server-sent events from
`/v1/chat/completions`; only the standard library is used (http.client).

Token counting asks the server's tokenizer: `/extras/tokenize` (llama_cpp.server) or
`/tokenize` (llama-server). A server with neither (Ollama) gets an estimate of one token
per three bytes plus a per-message allowance, which errs on the long side so that
conversation memory drops history a little early rather than overflowing.

`FallbackChatEngine` wraps a remote engine and switches to a local one the first time
the server cannot be reached.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from engine.base import (
    ChatEngine,
    ChatMessage,
    EngineConfig,
    EngineInfo,
    GenerationOptions,
    GenerationStats,
)
from engine.errors import RemoteEngineError
from engine.token_stream import StatsClock

log = logging.getLogger(__name__)

BYTES_PER_TOKEN_ESTIMATE = 3
MESSAGE_OVERHEAD_TOKENS = 8
"""Role markers and separators a chat template adds around each message (estimate)."""

_FINISH_REASONS = {"stop": "eos", "length": "length"}


class _HttpStatusError(RemoteEngineError):
    """The server answered, but not with 200 (e.g. an endpoint it does not have)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RemoteChatEngine(ChatEngine):
    """Streams replies from an OpenAI-compatible server at `config.remote_url`.

    Nothing is sent before the first call; `check()` probes the server on demand.
    """

    backend_name = "remote"

    def __init__(self, config: EngineConfig) -> None:
        if not config.remote_url:
            raise RemoteEngineError(
                "no inference server configured: set remote.url, e.g. http://192.168.1.20:8080"
            )
        url = urllib.parse.urlsplit(config.remote_url.strip())
        if url.scheme not in ("http", "https") or not url.hostname:
            raise RemoteEngineError(
                f"the inference server URL {config.remote_url!r} is not an http(s) URL"
            )
        self.config = config
        self.url = config.remote_url.strip().rstrip("/")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        # A base URL given as ".../v1" must not become ".../v1/v1/chat/completions".
        path = url.path.rstrip("/")
        self._prefix = path[:-3] if path.endswith("/v1") else path
        self._tokenize_route: str | None = None  # found on first use
        self._context_length: int | None = None
        self._stats: GenerationStats | None = None

    # -- HTTP ---------------------------------------------------------------------

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.remote_api_key:
            headers["Authorization"] = f"Bearer {self.config.remote_api_key}"
        return headers

    def _unreachable(self, reason: object) -> RemoteEngineError:
        text = str(reason).strip() or type(reason).__name__
        if isinstance(reason, OSError) and reason.strerror:
            text = reason.strerror.lower()  # "connection refused", not "[Errno 111] ..."
        if isinstance(reason, TimeoutError | socket.timeout):
            text = f"no answer within {self.config.timeout_seconds:g} s"
        return RemoteEngineError(f"cannot reach the inference server at {self.url}: {text}")

    def _open(
        self, method: str, route: str, body: dict[str, Any] | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connect(self.config.timeout_seconds)
        try:
            data = json.dumps(body).encode("utf-8") if body is not None else None
            conn.request(method, self._prefix + route, body=data, headers=self._headers())
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._unreachable(exc) from exc

    def _json(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        conn, response = self._open(method, route, body)
        try:
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from exc
        finally:
            conn.close()
        if response.status != 200:
            raise _HttpStatusError(
                f"the inference server at {self.url} answered {route} with HTTP "
                f"{response.status}: {payload[:200].decode('utf-8', 'replace').strip()}",
                response.status,
            )
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise RemoteEngineError(
                f"the inference server at {self.url} sent invalid JSON for {route}"
            ) from exc

    def check(self) -> list[str]:
        """Ask the server which models it serves; raises RemoteEngineError when it is down."""
        answer = self._json("GET", "/v1/models")
        return [str(m.get("id", "")) for m in answer.get("data", []) if isinstance(m, dict)]

    # -- tokens -------------------------------------------------------------------

    def _tokenize_remote(self, text: str) -> list[int] | None:
        """Token ids from the server, or None when it has no tokenize endpoint."""
        if self._tokenize_route == "":
            return None
        routes = [self._tokenize_route] if self._tokenize_route else [
            "/extras/tokenize", "/tokenize"
        ]
        for route in routes:
            body = {"input": text} if route == "/extras/tokenize" else {"content": text}
            try:
                answer = self._json("POST", route, body)
            except _HttpStatusError:
                continue  # not this server family: try the other route
            if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
                self._tokenize_route = route
                return [int(t) for t in answer["tokens"]]
        self._tokenize_route = ""
        log.info("%s has no tokenize endpoint; token counts are estimates", self.url)
        return None

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        tokens = self._tokenize_remote(text)
        if tokens is None:
            raise RemoteEngineError(f"the inference server at {self.url} cannot tokenize text")
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        for route, key in (("/extras/detokenize", "text"), ("/detokenize", "content")):
            try:
                answer = self._json("POST", route, {"tokens": list(tokens)})
            except _HttpStatusError:
                continue
            if isinstance(answer, dict) and isinstance(answer.get(key), str):
                return answer[key]
        raise RemoteEngineError(f"the inference server at {self.url} cannot detokenize")

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        # The server's template is unknown here, so each message gets an allowance for
        # its role markers on top of its text's tokens (one request for all of them).
        text = "\n".join(f"{m.role}: {m.content}" for m in messages)
        tokens = self._tokenize_remote(text)
        count = len(tokens) if tokens is not None else -(-len(text.encode()) //
                                                          BYTES_PER_TOKEN_ESTIMATE)
        return count + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)

    @property
    def context_length(self) -> int:
        """The server's context when it tells (llama-server /props), else the config's."""
        if self._context_length is None:
            self._context_length = self.config.context_length
            try:
                props = self._json("GET", "/props")
                n_ctx = props.get("default_generation_settings", {}).get("n_ctx")
                if isinstance(n_ctx, int) and n_ctx > 0:
                    self._context_length = n_ctx
            except (_HttpStatusError, AttributeError):
                pass  # llama_cpp.server and Ollama have no /props
        return self._context_length

    @property
    def last_stats(self) -> GenerationStats | None:
        return self._stats

    def info(self) -> EngineInfo:
        return EngineInfo(
            backend=self.backend_name,
            model_path=self.config.remote_model,
            context_length=self.config.context_length,
            details={"url": self.url},
        )

    # -- chat ---------------------------------------------------------------------

    def _request_body(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            # the final event then carries token counts (OpenAI, llama-server, Ollama)
            "stream_options": {"include_usage": True},
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            # not OpenAI, but understood by llama.cpp servers and ignored by others
            "top_k": options.top_k,
            "min_p": options.min_p,
            "repeat_penalty": options.repeat_penalty,
        }
        if self.config.remote_model:
            body["model"] = self.config.remote_model
        if options.seed is not None:
            body["seed"] = options.seed
        if options.stop:
            body["stop"] = list(options.stop)
        return body

    def _stream(
        self, messages: list[ChatMessage], options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        clock = StatsClock(GenerationStats(stop_reason="error"))
        stats = self._stats = clock.stats
        if cancel.is_set():
            stats.stop_reason = "cancelled"
            return
        conn, response = self._open("POST", "/v1/chat/completions",
                                    self._request_body(messages, options))
        done = threading.Event()
        # A blocked socket read does not look at `cancel`; this watcher shuts the socket
        # down so that cancelling returns at once even while the server is thinking.
        watcher = threading.Thread(target=self._watch, args=(conn, cancel, done),
                                   name="remote-cancel", daemon=True)
        watcher.start()
        try:
            if response.status != 200:
                detail = response.read()[:200].decode("utf-8", "replace").strip()
                raise RemoteEngineError(
                    f"the inference server at {self.url} answered HTTP {response.status}: "
                    f"{detail}"
                )
            for event in self._events(response, cancel):
                choice = (event.get("choices") or [{}])[0]  # the usage event has none
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    first = not clock.first_token_at
                    clock.token()
                    clock.text_out()
                    if first:  # the server says nothing sooner: the prompt took this long
                        stats.prompt_ms = stats.first_token_ms
                    yield piece
                if choice.get("finish_reason"):
                    stats.stop_reason = _FINISH_REASONS.get(choice["finish_reason"], "stop")
                self._read_usage(event, stats)
            if cancel.is_set():
                stats.stop_reason = "cancelled"
            elif stats.stop_reason == "error":
                stats.stop_reason = "eos"  # stream ended without a finish_reason
            if not stats.prompt_tokens and not cancel.is_set():
                # llama_cpp.server reports no usage when streaming: count it here (an
                # estimate, see count_prompt_tokens), after the reply so it costs no latency.
                with contextlib.suppress(RemoteEngineError):
                    stats.prompt_tokens = self.count_prompt_tokens(messages)
        except (OSError, http.client.HTTPException) as exc:
            if not cancel.is_set():
                raise self._unreachable(exc) from exc
            stats.stop_reason = "cancelled"
        finally:
            done.set()
            conn.close()
            clock.finish()

    @staticmethod
    def _watch(conn: http.client.HTTPConnection, cancel: threading.Event,
               done: threading.Event) -> None:
        while not done.is_set():
            if cancel.wait(0.05):
                if not done.is_set() and conn.sock is not None:
                    with contextlib.suppress(OSError):  # already closed by the server
                        conn.sock.shutdown(socket.SHUT_RDWR)
                return

    def _events(self, response: http.client.HTTPResponse,
                cancel: threading.Event) -> Iterator[dict[str, Any]]:
        """Parsed `data:` events of a server-sent event stream, until [DONE] or cancel."""
        while not cancel.is_set():
            line = response.readline()
            if not line:
                return
            line = line.strip()
            if not line.startswith(b"data:"):
                continue  # comments, pings, event names, blank separators
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError as exc:
                raise RemoteEngineError(
                    f"the inference server at {self.url} sent a malformed event: {data[:80]!r}"
                ) from exc
            if isinstance(event, dict) and "error" in event:
                raise RemoteEngineError(
                    f"the inference server at {self.url} failed: {event['error']}"
                )
            if isinstance(event, dict):
                yield event

    @staticmethod
    def _read_usage(event: dict[str, Any], stats: GenerationStats) -> None:
        usage = event.get("usage")
        if isinstance(usage, dict):
            stats.prompt_tokens = int(usage.get("prompt_tokens") or stats.prompt_tokens)
            stats.generated_tokens = int(
                usage.get("completion_tokens") or stats.generated_tokens
            )
        timings = event.get("timings")  # llama-server's own measurements
        if isinstance(timings, dict):
            stats.cached_prompt_tokens = int(timings.get("cache_n") or 0)
            if timings.get("prompt_ms"):
                stats.prompt_ms = float(timings["prompt_ms"])


class FallbackChatEngine(ChatEngine):
    """Uses `primary` (a remote engine) until it fails to connect, then a local engine.

    The switch is permanent for this object and logged once. A failure after part of a
    reply has streamed is raised (the reply cannot be continued elsewhere); the next
    call goes to the fallback. The fallback is built only when first needed.
    """

    def __init__(self, primary: ChatEngine, fallback_factory: Callable[[], ChatEngine]) -> None:
        self._primary = primary
        self._factory = fallback_factory
        self._fallback: ChatEngine | None = None
        self._lock = threading.Lock()

    @property
    def backend_name(self) -> str:  # type: ignore[override]
        return self.active.backend_name

    @property
    def active(self) -> ChatEngine:
        """The engine answering now."""
        return self._fallback or self._primary

    @property
    def switched(self) -> bool:
        return self._fallback is not None

    def _switch(self, error: RemoteEngineError) -> ChatEngine:
        with self._lock:
            if self._fallback is None:
                log.warning("%s; answering with the local engine from now on", error)
                self._fallback = self._factory()
            return self._fallback

    def _call(self, method: str, *args: Any) -> Any:
        if self._fallback is None:
            try:
                return getattr(self._primary, method)(*args)
            except RemoteEngineError as exc:
                return getattr(self._switch(exc), method)(*args)
        return getattr(self._fallback, method)(*args)

    @property
    def context_length(self) -> int:
        if self._fallback is None:
            try:
                return self._primary.context_length  # may ask the server
            except RemoteEngineError as exc:
                return self._switch(exc).context_length
        return self._fallback.context_length

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return self._call("tokenize", text, add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._call("detokenize", tokens)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self._call("count_prompt_tokens", messages)

    @property
    def last_stats(self) -> GenerationStats | None:
        return self.active.last_stats

    def info(self) -> EngineInfo:
        return self.active.info()

    def _stream(
        self, messages: list[ChatMessage], options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[str]:
        if self._fallback is not None:
            yield from self._fallback.chat(messages, options, cancel)
            return
        started = False
        try:
            for piece in self._primary.chat(messages, options, cancel):
                started = True
                yield piece
        except RemoteEngineError as exc:
            fallback = self._switch(exc)
            if started:
                raise
            yield from fallback.chat(messages, options, cancel)

    def close(self) -> None:
        self._primary.close()
        if self._fallback is not None:
            self._fallback.close()
