"""A `ChatEngine` that lives in a child process, so a crash or a hang in native code
ends one reply instead of the application.

llama.cpp with RPC workers aborts its process when a worker fails and waits forever
when one freezes. `SubprocessChatEngine` builds the real engine in a spawned child
(from a "module:function" factory) and talks to it over a pipe: the reply streams
back token by token under a watchdog. No token within `token_timeout_seconds` (the
first within `first_token_timeout_seconds`), or the child dying, kills the child and
raises `EngineProcessError` with what happened; the object is then dead and a new
one must be built. Cancellation is forwarded to the child, which checks it before
every token.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine.base import (
    ChatEngine,
    ChatMessage,
    EngineInfo,
    GenerationOptions,
    GenerationStats,
)
from engine.errors import EngineError

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_SOURCE_PREFIX = re.compile(r"^\S+:[0-9]+: ")
_PR_SET_PDEATHSIG = 1


class EngineProcessError(EngineError):
    """The engine's child process failed to load, died, or stopped answering."""


# -- the child ---------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (no orphaned engine)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_main(conn: Connection) -> None:
    """Entry point of the child: build the engine, then serve calls until "close"."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.basicConfig(level=logging.WARNING)
    factory, args = conn.recv()
    module_name, func_name = factory.split(":")
    try:
        engine = getattr(importlib.import_module(module_name), func_name)(*args)
    except Exception as exc:  # anything the factory raises is reported, not a traceback
        conn.send(("failed", str(exc) or type(exc).__name__))
        return
    conn.send(("ready", engine.context_length, engine.info()))

    inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
    current_cancel = threading.Event()

    def read() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = ("close",)
            if message[0] == "cancel":
                current_cancel.set()
                continue
            inbox.put(message)
            if message[0] == "close":
                return

    threading.Thread(target=read, name="engine-child-reader", daemon=True).start()
    while True:
        message = inbox.get()
        kind = message[0]
        if kind == "close":
            engine.close()
            return
        if kind == "call":
            _, method, call_args = message
            try:
                conn.send(("result", getattr(engine, method)(*call_args)))
            except Exception as exc:  # returned to the caller as an EngineError
                conn.send(("error", str(exc) or type(exc).__name__))
        elif kind == "chat":
            _, messages, options = message
            current_cancel.clear()
            try:
                for piece in engine.chat(messages, options, current_cancel):
                    conn.send(("token", piece))
            except Exception as exc:  # returned to the caller as an EngineError
                conn.send(("error", str(exc) or type(exc).__name__))
            else:
                conn.send(("done", engine.last_stats))


# -- the parent --------------------------------------------------------------------


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


class SubprocessChatEngine(ChatEngine):
    """The engine `factory(*args)` builds, run in a child process under a watchdog.

    `factory` is "module:function"; it and `args` must be importable / picklable in a
    fresh interpreter. `label` names the engine in messages ("the cluster engine").
    """

    def __init__(
        self,
        factory: str,
        args: tuple[Any, ...] = (),
        *,
        label: str = "the engine process",
        load_timeout_seconds: float = 600.0,
        first_token_timeout_seconds: float = 60.0,
        token_timeout_seconds: float = 5.0,
    ) -> None:
        self.label = label
        self.first_token_timeout_seconds = first_token_timeout_seconds
        self.token_timeout_seconds = token_timeout_seconds
        self._lock = threading.Lock()
        self._stats: GenerationStats | None = None
        self._dead = ""
        fd, self._stderr_path = tempfile.mkstemp(prefix="hearth-engine-", suffix=".log")
        ours, theirs = socket.socketpair()
        # A fresh interpreter running only this module (not the caller's __main__); its
        # stderr (llama.cpp's abort message) goes to a file the errors quote. ggml's
        # abort would otherwise run gdb for a backtrace first, which takes seconds.
        env = {**os.environ, "GGML_NO_BACKTRACE": "1",
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "engine.subprocess_engine", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=fd, env=env)
        finally:
            os.close(fd)
            theirs.close()
        self._conn = Connection(ours.detach())
        self._send((factory, args))
        message = self._receive(load_timeout_seconds, "loading")
        if message[0] != "ready":
            self._kill()
            raise EngineProcessError(f"{label} could not start: {message[1]}")
        _, self._n_ctx, self._info = message
        log.info("%s is running as process %d", label, self._process.pid)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return not self._dead and self._process.poll() is None

    # -- plumbing -----------------------------------------------------------------

    def native_errors(self) -> list[str]:
        """What the child wrote to stderr (llama.cpp's abort reason, for one)."""
        try:
            text = Path(self._stderr_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._join(5.0)
        self._conn.close()

    def _join(self, timeout_seconds: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout_seconds)
        return self._process.returncode

    def _fail(self, what: str) -> EngineProcessError:
        """Kill the child; the error says what happened and what llama.cpp said."""
        self._kill()
        native = [line for line in self.native_errors()
                  if "error" in line.lower() or "abort" in line.lower()
                  or "failed" in line.lower() or "crashed" in line.lower()]
        # "/path/to/ggml-rpc.cpp:569: Remote RPC server crashed" -> the sentence only
        reason = ": " + _SOURCE_PREFIX.sub("", native[0]) if native else ""
        self._dead = f"{self.label} {what}{reason}"
        return EngineProcessError(self._dead)

    def _receive(self, timeout_seconds: float, doing: str,
                 cancel: threading.Event | None = None) -> tuple[Any, ...]:
        """The child's next message within `timeout_seconds`, or EngineProcessError."""
        deadline = time.monotonic() + timeout_seconds
        cancel_sent = False
        while True:
            if cancel is not None and cancel.is_set() and not cancel_sent:
                self._send(("cancel",))
                cancel_sent = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"did not answer within {timeout_seconds:g} s ({doing}) "
                                 "and was stopped")
            try:
                if self._conn.poll(min(_POLL_SECONDS, remaining)):
                    return self._conn.recv()
            except (EOFError, OSError):
                raise self._fail(f"died ({_signal_name(self._join(2.0))}, "
                                 f"{doing})") from None

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            raise self._fail(f"died ({_signal_name(self._join(2.0))})") from None

    def _check_alive(self) -> None:
        if self._dead:
            raise EngineProcessError(self._dead)

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            self._check_alive()
            self._send(("call", method, args))
            message = self._receive(self.token_timeout_seconds, f"answering {method}")
        if message[0] == "error":
            raise EngineError(message[1])
        return message[1]

    # -- ChatEngine ---------------------------------------------------------------

    @property
    def backend_name(self) -> str:  # type: ignore[override]
        return self._info.backend

    @property
    def context_length(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return self._call("tokenize", text, add_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._call("detokenize", list(tokens))

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self._call("count_prompt_tokens", list(messages))

    @property
    def last_stats(self) -> GenerationStats | None:
        return self._stats

    def info(self) -> EngineInfo:
        details = {**self._info.details, "process": str(self._process.pid)}
        return EngineInfo(self._info.backend, self._info.model_path,
                          self._info.context_length, details)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions,
                cancel: threading.Event) -> Iterator[str]:
        with self._lock:
            self._check_alive()
            self._stats = GenerationStats(stop_reason="error")
            self._send(("chat", messages, options))
            timeout, doing = self.first_token_timeout_seconds, "waiting for the first token"
            finished = False
            try:
                while True:
                    message = self._receive(timeout, doing, cancel)
                    kind = message[0]
                    if kind == "token":
                        timeout, doing = self.token_timeout_seconds, "waiting for the next token"
                        yield message[1]
                    elif kind == "done":
                        finished = True
                        self._stats = message[1]
                        return
                    else:
                        finished = True
                        raise EngineError(message[1])
            finally:
                if not finished and not self._dead:
                    # The consumer left early: stop the child's reply and wait for its end.
                    self._send(("cancel",))
                    while self._receive(self.token_timeout_seconds,
                                        "stopping a reply")[0] not in ("done", "error"):
                        pass

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self._process.poll() is None and not self._dead:
                self._conn.send(("close",))
                self._join(5.0)
        self._kill()
        self._dead = self._dead or f"{self.label} was closed"
        with contextlib.suppress(OSError):
            os.unlink(self._stderr_path)


if __name__ == "__main__":
    _child_main(Connection(int(sys.argv[1])))
