"""Conversation memory that always fits the model's context window.

The system prompt and the latest turns are kept; the oldest turns are dropped, a
user/assistant exchange at a time, until the rendered prompt plus the longest reply
fits. Token counts come from the engine's own tokenizer and chat template
(`ChatEngine.count_prompt_tokens`), so the same logic serves every backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engine.base import ChatEngine, ChatMessage
from engine.errors import ContextOverflowError

log = logging.getLogger(__name__)


def fit_to_context(
    engine: ChatEngine, messages: Sequence[ChatMessage], max_reply_tokens: int
) -> list[ChatMessage]:
    """The longest recent part of `messages` whose prompt leaves room for the reply.

    Leading system messages are always kept, and so is the last message (the one
    being answered). History is cut only at the start of a user message, so the model
    never sees an assistant reply without its question. Raises ContextOverflowError
    when even the system prompt plus the last message do not fit.
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

    # Where the kept history may start: at a user message, never later than the last one.
    starts = [i for i, m in enumerate(turns) if m.role == "user" and i > 0]
    starts.append(len(turns) - 1)
    starts = sorted(set(starts))

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
