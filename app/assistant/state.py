"""The assistant's explicit state machine: which state may follow which.

An impossible transition is a bug in the pipeline, so it raises instead of being
papered over; the supervisor then reports it like any other stage failure.
"""

from __future__ import annotations

import threading

from app.events import State, StateChanged

# state -> states it may change to
TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.LISTENING, State.THINKING, State.ERROR}),
    State.LISTENING: frozenset({State.IDLE, State.THINKING, State.ERROR}),
    State.THINKING: frozenset({State.SPEAKING, State.IDLE, State.LISTENING, State.ERROR}),
    State.SPEAKING: frozenset({State.IDLE, State.LISTENING, State.THINKING, State.ERROR}),
    State.ERROR: frozenset({State.IDLE}),
}


class StateMachine:
    """Holds the current `State`; `change` validates a transition and describes it."""

    def __init__(self) -> None:
        self._state = State.IDLE
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        return self._state

    def change(self, new: State, turn_id: int = 0) -> StateChanged | None:
        """Move to `new`; the event to emit, or None when already there.

        Raises ValueError for a transition the pipeline never makes.
        """
        with self._lock:
            old = self._state
            if new == old:
                return None
            if new not in TRANSITIONS[old]:
                raise ValueError(f"impossible assistant state change {old.value} -> {new.value}")
            self._state = new
            return StateChanged(new, old, turn_id=turn_id)
