"""`make run` in a terminal with no display: it says so, starts the voice loop in the
terminal, and a typed question gets a reply there.

It runs in a pseudo-terminal (what a terminal window or an ssh session gives), with a
temporary home and no sound server, so there is no microphone: Hearth takes typed
questions. `make test` has set everything up by then, so `make run`'s set-up steps
find their stamps and the models installed, and it starts at once.
"""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.conftest import ROOT, Home, Terminal

QUESTION = "What is the capital of France?"


def test_make_run_without_a_display_answers_a_typed_question(hearth: Path, home: Home) -> None:
    terminal = Terminal(["make", "run"], cwd=ROOT, env=home.env)
    try:
        terminal.expect(r"no display.*terminal", timeout=600)
        terminal.expect(r"\btype", timeout=120)  # it says questions can be typed
        start = len(terminal.output)
        terminal.type(QUESTION + "\n")
        reply = terminal.expect(r"^you: (.+)\nhearth: (\S[^\n]*)\n", timeout=120, start=start)
        assert "capital of France" in reply.group(1)
        assert len(reply.group(2).strip()) > 3
        terminal.type("\x03")  # Ctrl-C ends it
        terminal.process.wait(30)
    finally:
        terminal.close()
    assert "Traceback" not in terminal.output, terminal.output[-3000:]
