"""Conversation memory that always fits the model's context window.

The system prompt and the latest turns are kept; the oldest turns are dropped until
the rendered prompt plus the longest reply fits. Token counts come from the engine's
own tokenizer and chat template (`ChatEngine.count_prompt_tokens`), so the same logic
serves every backend.

Old turns go a few exchanges at a time rather than one per turn: the kept history then
starts at the same message for several turns in a row, so an engine's prompt cache
(llama.cpp reuses the KV state of the longest common prefix) stays valid and only the
newest exchange is evaluated. Dropping one exchange per turn would shift the prompt on
every turn and force a re-evaluation of the whole history each time.

`Conversation` keeps one conversation by these rules; the voice pipeline and
`hearth chat` both use it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engine.base import ChatEngine, ChatMessage
from engine.errors import ContextOverflowError

log = logging.getLogger(__name__)

DROP_STEP = 4
"""User turns dropped together when the history no longer fits."""


def fit_to_context(
    engine: ChatEngine,
    messages: Sequence[ChatMessage],
    max_reply_tokens: int,
    drop_step: int = DROP_STEP,
) -> list[ChatMessage]:
    """A recent part of `messages` whose prompt leaves room for the reply.

    Leading system messages are always kept, and so is the last message (the one
    being answered). History is cut only at the start of a user message, so the model
    never sees an assistant reply without its question, and only before every
    `drop_step`-th user message (counted from the oldest), so the cut stays put while
    the conversation grows; 1 keeps as much history as fits. Raises
    ContextOverflowError when even the system prompt plus the last message do not fit.
    """
    messages = list(messages)
    budget = engine.context_length - max_reply_tokens
    if budget <= 0:
        raise ContextOverflowError(
            f"a reply of {max_reply_tokens} tokens does not fit a context of "
            f"{engine.context_length} tokens"
        )
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    system, turns = messages[:head], messages[head:]
    if not turns or engine.count_prompt_tokens(messages) <= budget:
        return messages

    # Where the kept history may start: at every drop_step-th user message, or at the
    # last message when nothing earlier fits.
    user_at = [i for i, m in enumerate(turns) if m.role == "user"]
    starts = [i for n, i in enumerate(user_at) if n > 0 and n % max(1, drop_step) == 0]
    starts = sorted({*starts, len(turns) - 1})

    def fits(start: int) -> bool:
        return engine.count_prompt_tokens(system + turns[start:]) <= budget

    # Prompt length only shrinks as the start moves later, so binary search the
    # earliest start that fits (few tokenizer calls even for long histories).
    if not fits(starts[-1]):
        raise ContextOverflowError(
            f"the system prompt and the last message need more than {budget} tokens "
            f"(context {engine.context_length} minus {max_reply_tokens} for the reply)"
        )
    low, high = 0, len(starts) - 1
    while low < high:
        mid = (low + high) // 2
        if fits(starts[mid]):
            high = mid
        else:
            low = mid + 1
    kept = system + turns[starts[low]:]
    log.debug("conversation memory: dropped %d old messages to fit the context",
              len(messages) - len(kept))
    return kept


def limit_turns(
    messages: Sequence[ChatMessage], max_earlier_turns: int, drop_step: int = DROP_STEP
) -> list[ChatMessage]:
    """`messages` with at most `max_earlier_turns` user turns before the last message.

    For a "remember the last N exchanges" setting. Leading system messages stay. Old
    turns go in blocks (of up to `drop_step`, at most half the limit, so a short memory
    never drops to nothing) for the same reason as in `fit_to_context`: the kept history
    then starts at the same message for several turns and the prompt cache stays valid.
    """
    messages = list(messages)
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    system, turns = messages[:head], messages[head:]
    users = [i for i, m in enumerate(turns) if m.role == "user"]
    extra = len(users) - 1 - max(0, max_earlier_turns)
    if extra <= 0:
        return messages
    step = max(1, min(drop_step, max_earlier_turns // 2))
    drop = min(-(-extra // step) * step, len(users) - 1)
    return system + turns[users[drop]:]


class Conversation:
    """A conversation's memory: the system prompt plus its latest turns, bounded.

    Holds at most `max_turns` earlier exchanges; when one more would not fit, the oldest
    go in a block (the rule of `limit_turns`), so what is sent starts at the same
    message for several turns in a row and the engine's prompt cache stays valid.
    Not thread-safe: the voice pipeline changes it under its turn lock.
    """

    def __init__(self, system_prompt: str, max_turns: int, drop_step: int = DROP_STEP) -> None:
        self.system = [ChatMessage("system", system_prompt)] if system_prompt.strip() else []
        self.max_turns = max(0, max_turns)
        self.drop_step = drop_step
        self.turns: list[ChatMessage] = []
        """Earlier exchanges kept, oldest first: user, assistant, user, assistant, ..."""

    @property
    def messages(self) -> list[ChatMessage]:
        """What the model sees before the next question: system prompt plus kept turns."""
        return [*self.system, *self.turns]

    def prompt(self, question: str) -> list[ChatMessage]:
        """The messages that ask `question` (before any trimming to a context window)."""
        return [*self.system, *self.turns, ChatMessage("user", question)]

    def fit(self, engine: ChatEngine, question: str, max_reply_tokens: int) -> list[ChatMessage]:
        """`prompt(question)` trimmed to `engine`'s context (see `fit_to_context`)."""
        return fit_to_context(engine, self.prompt(question), max_reply_tokens)

    def add(self, question: str, answer: str) -> None:
        """Remember one exchange; drops a block of old ones past `max_turns`."""
        self.turns += [ChatMessage("user", question), ChatMessage("assistant", answer)]
        kept = limit_turns([*self.turns, ChatMessage("user", "")], self.max_turns,
                           self.drop_step)
        self.turns = kept[:-1]

    def reset(self) -> None:
        """Forget every turn (the system prompt stays)."""
        self.turns = []
