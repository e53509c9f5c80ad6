"""`hearth chat`: a text conversation with the chat model in the terminal, streaming.

Each line typed is a user turn; the reply is printed word by word as the model writes
it. The conversation is remembered for the session by `engine.conversation.Conversation`
(the voice assistant's rule: the last `max_history_turns` exchanges, old ones dropped in
blocks so the prompt cache stays valid) and trimmed to the model's context, so it can
go on for as long as you like.
Ctrl-C stops a reply early (the conversation continues); Ctrl-C at the prompt, Ctrl-D,
`/quit` or `/exit` leave; `/reset` starts a new conversation. Input may also be piped in,
one question per line; the prompt and speed notes are then left out.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from app.config import Settings, replace
from app.engine_setup import build_engine
from app.generation import generation_options
from engine.base import ChatEngine, GenerationOptions
from engine.conversation import Conversation

QUIT_COMMANDS = ("/quit", "/exit")
RESET_COMMAND = "/reset"


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """While a reply streams, Ctrl-C sets `cancel` instead of raising KeyboardInterrupt,
    so the engine stops cleanly at the next token."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class ChatSession:
    """One terminal conversation: remembers the turns and streams each reply."""

    def __init__(self, engine: ChatEngine, system_prompt: str, options: GenerationOptions,
                 max_history_turns: int) -> None:
        self.engine = engine
        self.options = options
        self.conversation = Conversation(system_prompt, max_history_turns)

    def reset(self) -> None:
        self.conversation.reset()

    def reply(self, question: str, out: TextIO) -> str:
        """Stream the answer to `question` into `out`; returns the text (even if cut short)."""
        messages = self.conversation.fit(self.engine, question, self.options.max_tokens)
        cancel = threading.Event()
        pieces: list[str] = []
        with _ctrl_c_cancels(cancel):
            for piece in self.engine.chat(messages, self.options, cancel):
                pieces.append(piece)
                out.write(piece)
                out.flush()
        out.write("\n")
        out.flush()
        answer = "".join(pieces).strip()
        self.conversation.add(question, answer)
        return answer

    def stats_line(self) -> str:
        stats = self.engine.last_stats
        if stats is None:
            return ""
        note = " · stopped" if stats.stop_reason == "cancelled" else ""
        return (f"[{stats.generated_tokens} tokens · {stats.decode_tokens_per_second:.1f} tok/s"
                f" · first word after {stats.first_token_ms:.0f} ms{note}]")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.memory_mode:
        settings = replace(settings, "engine", memory_mode=args.memory_mode)
    engine, choice = build_engine(settings, args.engine, args.model)
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - gives input() line editing and history
        name = choice.model_id or (choice.model_path.name if choice.model_path else "server")
        print(f"Hearth chat with {name} ({choice.backend}). Ctrl-C stops a reply; "
              "/reset forgets the conversation; Ctrl-D or /quit leaves.", file=sys.stderr)
    options = generation_options(settings, temperature=args.temperature,
                                 max_tokens=args.max_tokens, seed=args.seed)
    session = ChatSession(engine, settings.engine.system_prompt, options,
                          settings.assistant.max_history_turns)
    with engine:
        while True:
            try:
                line = input("you> ") if interactive else sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                break
            if not interactive and not line:
                break  # end of piped input
            question = line.strip()
            if not question:
                continue
            if question in QUIT_COMMANDS:
                break
            if question == RESET_COMMAND:
                session.reset()
                print("(new conversation)", file=sys.stderr)
                continue
            session.reply(question, sys.stdout)
            if interactive:
                print(session.stats_line(), file=sys.stderr)
    if interactive:
        print(file=sys.stderr)
    return 0
