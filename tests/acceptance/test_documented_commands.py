"""Every command line README.md and packaging/ give works as written.

The lines are read out of the documents (tests/acceptance/docs.py), so a change to the
docs is tested with them. The rule:

* every whole command line (code blocks, README's command table, the `Exec=` lines of
  packaging/) parses: run with its placeholders filled in and a config file that is
  broken on purpose, Hearth gets as far as reading the config (exit 2, "configuration
  error"), never stopping at its arguments ("usage: ...");
* the lines whose command is in `RUN_FOR_REAL` below are also run for real in a
  temporary home, and what they print or write is checked;
* the commands run elsewhere in this folder: `hearth gui` (test_gui_real.py),
  `hearth headless` from the systemd unit (test_systemd_units.py), `make run`
  (test_make_run.py); the rest (bench: minutes; models install/remove/quantize: the
  network or the shared model store; worker, cluster: a network of machines) parse;
* a `hearth ...` mention in the prose names a real command and real options;
* every command `hearth --help` lists has a row in README's command table, naming its
  actions, and for a command without actions, each of its options (in the row, or in
  a sentence of the "Command line" section that names the command).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import HEARTH, ROOT, Home, run_hearth
from tests.acceptance.docs import (
    DocCommand,
    command_table,
    command_words,
    documented_commands,
    expand_specifiers,
    json_keys_table,
    readme_section,
    tokens,
)

QUESTION = "What is the capital of France?"
BUNDLED_CHAT_MODEL = "smollm2-135m-instruct-q4_1"
BUNDLED_VOICE = "piper-en_US-joe-medium"
BROKEN_CONFIG = "[general]\nno_such_setting = 1\n"
REAL_PLACEHOLDERS = {"OUT.wav", "2GB", "V", "FILE"}
"""Optional parts with these placeholders are kept when a line is run for real; others
(`--model M`) and choices (`--stt vosk|pocketsphinx`) only parse."""
GLOBAL_OPTIONS = {"-h", "--help", "--config", "-v", "--verbose", "-q", "--quiet", "--version"}

COMMANDS = documented_commands()
HEARTH_LINES = [c for c in COMMANDS if c.complete and c.text.split()[0] != "make"]
MAKE_LINES = [c for c in COMMANDS if c.text.split()[0] == "make"]
MENTIONS = [c for c in COMMANDS if not c.complete]


@dataclass
class Context:
    home: Home
    argv: list[str]


@dataclass(frozen=True)
class Real:
    """How a command is run for real: what it reads on stdin, what happens first, and the
    checks on its result."""

    check: Callable[[subprocess.CompletedProcess[str], Context], None]
    stdin: str | None = None
    prepare: Callable[[Home], None] | None = None
    asked: bool = False
    """Run in a home whose history holds one answered question (shared, read only)."""


def option_value(argv: list[str], option: str) -> str | None:
    return argv[argv.index(option) + 1] if option in argv else None


def is_wav(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"RIFF"


def check_ask(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    assert "warning" not in done.stderr, done.stderr  # e.g. about devices it does not use
    if "--json" in ctx.argv:
        result = json.loads(done.stdout)
        assert set(result) == set(json_keys_table()), \
            f"keys {sorted(set(result) ^ set(json_keys_table()))} differ from README's table"
        assert result["reply"]
        # README: the recognizer and voice used, null when not used
        assert (result["recognizer"] is None) == ("--wav" not in ctx.argv), result
        spoken = "--out" in ctx.argv or "--wav" in ctx.argv  # a voice turn speaks its reply
        assert (result["voice"] is None) == (not spoken), result
    else:
        assert done.stdout.strip()
    out = option_value(ctx.argv, "--out")
    if out:
        assert is_wav(Path(out))


def check_say(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    out = option_value(ctx.argv, "--out")
    assert out and is_wav(Path(out))


def check_transcribe(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    if "--json" in ctx.argv:
        result = json.loads(done.stdout)
        assert {"text", "words"} <= set(result) and result["text"]
    else:
        assert done.stdout.strip()


def ask_once(home: Home) -> None:
    done = run_hearth(["ask", "--text", QUESTION], home)
    assert done.returncode == 0, done.stderr


def no_config(home: Home) -> None:
    home.config.unlink()


def check_history_list(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    assert "capital of France" in done.stdout


def check_history_export(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    turns = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(turns) == 1 and QUESTION in json.dumps(turns[0])


def check_history_clear(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    assert "Deleted 1" in done.stdout
    after = run_hearth(["history", "list"], ctx.home)
    assert after.returncode == 0 and "capital of France" not in after.stdout


def check_config_init(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    text = ctx.home.config.read_text()
    assert "[engine]" in text and text.count("#") > 20


def check_contains(*words: str) -> Callable[[subprocess.CompletedProcess[str], Context], None]:
    def check(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
        for word in words:
            assert word in done.stdout, f"{word!r} not in the output"
    return check


def check_path_exists(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    assert Path(done.stdout.strip()).exists()


def check_config_path(done: subprocess.CompletedProcess[str], ctx: Context) -> None:
    assert done.stdout.strip() == str(ctx.home.config)


RUN_FOR_REAL: dict[tuple[str, ...], Real] = {
    ("ask",): Real(check_ask),
    ("say",): Real(check_say),
    ("transcribe",): Real(check_transcribe),
    ("chat",): Real(check_contains("\n"), stdin=QUESTION + "\n"),
    ("models", "list"): Real(check_contains(BUNDLED_CHAT_MODEL)),
    ("models", "verify"): Real(check_contains("ok")),
    ("models", "path"): Real(check_path_exists),
    ("models", "recommend"): Real(check_contains("smollm2")),
    ("config", "init"): Real(check_config_init, prepare=no_config),
    ("config", "show"): Real(check_contains("[engine]")),
    ("config", "path"): Real(check_config_path),
    ("history", "list"): Real(check_history_list, asked=True),
    ("history", "show"): Real(check_contains("capital of France"), asked=True),
    ("history", "export"): Real(check_history_export, asked=True),
    ("history", "clear"): Real(check_history_clear, stdin="y\n", prepare=ask_once),
    ("doctor",): Real(check_contains("memory", "CPU")),
}
"""Command words -> how a documented line with that command is run for real."""


def real_spec(command: DocCommand) -> Real | None:
    for length in (2, 1):
        if command.words[:length] in RUN_FOR_REAL:
            return RUN_FOR_REAL[command.words[:length]]
    return None


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The question, spoken by Hearth's own voice (`hearth say ... --out`)."""
    home = Home(tmp_path_factory.mktemp("say-home"))
    wav = home.path / "question.wav"
    done = run_hearth(["say", QUESTION, "--out", str(wav)], home)
    assert done.returncode == 0, done.stderr
    yield wav


@pytest.fixture(scope="module")
def asked_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A home whose history holds one answered question."""
    home = Home(tmp_path_factory.mktemp("asked-home"))
    ask_once(home)
    return home


def fill_in(argv: list[str], command: DocCommand, home: Home, question: Path) -> list[str]:
    """Placeholders replaced by real values (files in `home`)."""
    values = {
        "T": QUESTION,
        "TEXT": "Hello from the acceptance tests.",
        "IN.wav": str(question),
        "OUT.wav": str(home.path / "out.wav"),
        "FILE": str(home.config),
        "ID": "1" if command.words[:1] == ("history",) else BUNDLED_CHAT_MODEL,
        "IN": str(home.path / "in.gguf"),
        "OUT": str(home.path / "out.gguf"),
        "V": BUNDLED_VOICE,
    }
    return [expand_specifiers(values.get(a, a), {"h": str(home.path)}) for a in argv]


def ident(command: DocCommand) -> str:
    return f"{command.where}:{command.text}"


@pytest.mark.parametrize("command", HEARTH_LINES, ids=ident)
def test_documented_line_parses(command: DocCommand, hearth: Path, home: Home,
                                question_wav: Path) -> None:
    broken = home.path / "broken.toml"
    broken.write_text(BROKEN_CONFIG)
    for variant in command.variants():
        argv = [*fill_in(variant, command, home, question_wav), "--config", str(broken)]
        done = run_hearth(argv, home, timeout=60)
        for _ in range(4):  # a numeric placeholder (`--port N`, `cancel ID`) gets a number
            bad = re.search(r"invalid (?:int|float) value: '([^']+)'", done.stderr)
            numeric = [i for i, a in enumerate(argv[:len(variant)])
                       if bad and a == bad.group(1) and variant[i] != variant[i].lower()]
            if not numeric:
                break
            argv = [("1" if i in numeric else a) for i, a in enumerate(argv)]
            done = run_hearth(argv, home, timeout=60)
        shown = f"hearth {' '.join(argv)} ({command.where}): {done.stderr[-600:]}"
        assert "usage:" not in done.stderr, shown
        if done.returncode == 2:
            assert "configuration error" in done.stderr, shown


@pytest.mark.parametrize("command", [c for c in HEARTH_LINES if real_spec(c)], ids=ident)
def test_documented_line_runs_for_real(command: DocCommand, hearth: Path, home: Home,
                                       question_wav: Path,
                                       request: pytest.FixtureRequest) -> None:
    spec = real_spec(command)
    assert spec is not None
    if spec.asked:
        home = request.getfixturevalue("asked_home")
    if spec.prepare is not None:
        spec.prepare(home)
    argv = fill_in(command.real_variant(REAL_PLACEHOLDERS), command, home, question_wav)
    done = run_hearth(argv, home, stdin=spec.stdin, timeout=180)
    assert done.returncode == 0, f"hearth {' '.join(argv)}: {done.stderr[-1500:]}"
    spec.check(done, Context(home, argv))


def help_text(words: tuple[str, ...]) -> str:
    done = subprocess.run([str(HEARTH), *words, "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"hearth {' '.join(words)} --help: {done.stderr}"
    return done.stdout


def listed_commands(help_output: str) -> list[str]:
    """The commands (or actions) an argparse --help lists under COMMAND / ACTION / WHAT."""
    names = []
    block = re.search(r"^positional arguments:\n  [A-Z]+\n(.*?)(?:\n\S|\Z)", help_output,
                      re.M | re.S)
    for line in (block.group(1) if block else "").splitlines():
        found = re.match(r"^    (\w[\w-]*)(\s|$)", line)
        if found:
            names.append(found.group(1))
    return names


def listed_options(help_output: str) -> set[str]:
    return set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", help_output, re.M)) - GLOBAL_OPTIONS


@pytest.mark.parametrize("command", MENTIONS, ids=ident)
def test_prose_mention_names_a_real_command_and_options(command: DocCommand,
                                                        hearth: Path) -> None:
    text = help_text(command.words)
    for option in (t.split("=")[0] for t in tokens(command.text) if t.startswith("--")):
        assert option in text, f"{command.where}: hearth {' '.join(command.words)} has no {option}"


@pytest.mark.parametrize("command", MAKE_LINES, ids=ident)
def test_documented_make_target_exists(command: DocCommand) -> None:
    target = command.text.split()[1]
    done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def table_rows() -> dict[str, list[str]]:
    """Command -> the first-column cells of README's command table that start with it."""
    rows: dict[str, list[str]] = {}
    for cell in command_table():
        words = command_words(tokens(cell.replace("`", " ")))
        rows.setdefault(words[0], []).append(cell)
    return rows


def test_every_command_and_action_has_a_row_in_the_command_table(hearth: Path) -> None:
    rows = table_rows()
    missing = []
    for name in listed_commands(help_text(())):
        if name not in rows:
            missing.append(name)
            continue
        row = " ".join(rows[name])
        missing += [f"{name} {action}" for action in listed_commands(help_text((name,)))
                    if not re.search(rf"(?<![\w-]){re.escape(action)}(?![\w-])", row)]
    assert not missing, f"README's command table lacks: {', '.join(missing)}"


def test_every_option_of_a_command_is_in_its_row_or_named_with_it(hearth: Path) -> None:
    rows = table_rows()
    section = readme_section("Command line")
    sentences = re.split(r"(?<=[.!?])\s+", section)
    missing = []
    for name in listed_commands(help_text(())):
        text = help_text((name,))
        if listed_commands(text) or name not in rows:
            continue  # actions are checked above; a missing row too
        named = " ".join(s for s in sentences if f"`{name}`" in s)
        where = " ".join(rows[name]) + " " + named
        missing += [f"{name} {option}" for option in sorted(listed_options(text))
                    if option not in where]
    assert not missing, f"README's command table lacks: {', '.join(missing)}"
