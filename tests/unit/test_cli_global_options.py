"""The global options (`--config`, `-v`, `-q`) work before or after any subcommand's name,
as packaging/hearth.service writes them (`hearth headless --config FILE`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import build_parser, main


def leaf_commands(parser: argparse.ArgumentParser,
                  path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                               argparse.ArgumentParser]]:
    """(words, parser) of every command and action in the tree."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        for name, child in action.choices.items():
            yield (*path, name), child
            yield from leaf_commands(child, (*path, name))


def test_every_command_knows_the_global_options() -> None:
    commands = list(leaf_commands(build_parser()))
    assert len(commands) > 20
    for words, parser in commands:
        options = {s for a in parser._actions for s in a.option_strings}
        assert {"--config", "-v", "-q"} <= options, " ".join(words)


@pytest.mark.parametrize("argv", [
    ["headless", "--config", "F.toml"],
    ["--config", "F.toml", "headless"],
    ["ask", "--text", "hi", "--config", "F.toml", "-v"],
    ["models", "list", "--config", "F.toml", "-q"],
    ["models", "--config", "F.toml", "recommend", "--ram", "2GB"],
    ["config", "path", "--config", "F.toml"],
])
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.config == Path("F.toml")
    assert args.verbose == (1 if "-v" in argv else 0)
    assert args.quiet == ("-q" in argv)


def test_the_option_after_the_command_wins_and_defaults_do_not_clobber() -> None:
    args = build_parser().parse_args(["--config", "A.toml", "-q", "headless"])
    assert args.config == Path("A.toml") and args.quiet  # the subcommand keeps them
    args = build_parser().parse_args(["--config", "A.toml", "headless", "--config", "B.toml"])
    assert args.config == Path("B.toml")
    args = build_parser().parse_args(["headless", "-vv"])
    assert args.verbose == 2


def test_config_after_the_command_is_the_file_read(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[engine]\nno_such_key = 1\n")
    assert main(["config", "show", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no_such_key" in err and "broken.toml" in err
