"""The llama.cpp engine's stop-string matcher: text is streamed, but never a stop string."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from engine.streaming import StopMatcher


def _run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


def test_stop_split_over_pieces_is_never_emitted() -> None:
    assert _run(["<|im_end|>"], ["Hello", " <|", "im_", "end|> more"]) == ("Hello ", True)


def test_held_back_prefix_is_released_when_it_is_no_stop() -> None:
    matcher = StopMatcher(["\nUser:"])
    assert matcher.feed("Fine.\n") == ("Fine.", False)  # "\n" might start the stop
    assert matcher.feed("Thanks") == ("\nThanks", False)


def test_earliest_of_several_stops_wins() -> None:
    assert _run(["END", "STOP"], ["a STOP b END"]) == ("a ", True)


def test_without_stops_everything_streams_at_once() -> None:
    matcher = StopMatcher([])
    assert matcher.feed("<|") == ("<|", False)


def test_flush_returns_what_was_held() -> None:
    assert _run(["</s>"], ["tail </"]) == ("tail </", False)
