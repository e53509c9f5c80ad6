"""Reading command lines and systemd units out of the files the repository ships.

What a user is told to run comes from three places: README.md (fenced code blocks,
the command table, and `hearth ...` spans in the prose), packaging/*.md, and the
`Exec=` / `ExecStart=` lines of packaging/*.desktop and packaging/*.service. The doc
syntax is the README's: `[optional parts]`, `a|b` for a choice of values, ` | ` between
alternative actions of one command, and upper-case placeholders (`ID`, `IN.wav`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PACKAGING = ROOT / "packaging"

_SPAN = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```")


@dataclass(frozen=True)
class DocCommand:
    """One command line as a document writes it."""

    text: str
    """The line, doc syntax and all (after `\\|` is unescaped)."""
    where: str
    """file:line it comes from."""
    complete: bool
    """A whole command line (code block, command table, unit file), not a prose mention."""

    @property
    def words(self) -> tuple[str, ...]:
        """The command words after the executable: ('models', 'list')."""
        return command_words(tokens(self.text))

    def variants(self) -> list[list[str]]:
        """The argv lists (without the executable) the line stands for: without and with
        its optional parts, one per value choice."""
        return expand(self.text)

    def real_variant(self, placeholders: set[str]) -> list[str]:
        """The line as run for real: with each optional part that offers no choice of
        values and whose placeholders are all in `placeholders`; a choice in a required
        part resolved to its first value."""
        return expand(self.text, real_placeholders=placeholders)[0]


def is_hearth(token: str) -> bool:
    """`hearth`, `.venv/bin/hearth`, `%h/hearth/.venv/bin/hearth`..."""
    return token == "hearth" or token.endswith("/bin/hearth")


def tokens(text: str) -> list[str]:
    return text.replace("\\|", "|").split()


def command_words(argv: list[str]) -> tuple[str, ...]:
    """Leading words that are not options, placeholders or values, after the executable."""
    start = next((i + 1 for i, t in enumerate(argv) if is_hearth(t)), 0)
    words: list[str] = []
    for token in argv[start:]:
        if token.startswith("-"):
            if words:
                break
            continue  # a global option before the command
        if not re.fullmatch(r"[a-z][a-z-]*", token):
            break
        words.append(token)
    return tuple(words)


def _strip_comment(line: str) -> str:
    return re.split(r"\s#\s|\s#$", line, maxsplit=1)[0].rstrip()


def alternatives(text: str) -> list[str]:
    """`hearth models list | install ID | path ID` as one line per action."""
    argv = text.replace("\\|", "|").split()
    start = next((i + 1 for i, t in enumerate(argv) if is_hearth(t)), 0)
    head, body = argv[:start], " ".join(argv[start:])
    parts = [a.strip() for a in body.split(" | ")]
    prefix = parts[0].split()[:1]  # the command whose actions are listed
    return [" ".join([*head, parts[0]])] + [" ".join([*head, *prefix, a]) for a in parts[1:]]


def expand(text: str, *, real_placeholders: set[str] | None = None) -> list[list[str]]:
    """Doc syntax (one action) to argv lists, the executable dropped: every variant, or
    the one variant run for real (see `DocCommand.real_variant`)."""
    argv = text.replace("\\|", "|").split()
    start = next((i + 1 for i, t in enumerate(argv) if is_hearth(t)), 0)
    line = " ".join(argv[start:])
    optional = re.findall(r"\[([^\[\]]*)\]", line)
    required = re.sub(r"\s*\[[^\[\]]*\]", "", line)
    if real_placeholders is not None:
        kept = [o for o in optional if "|" not in o
                and all(t in real_placeholders for t in o.split() if _is_placeholder(t))]
        return [_choose(" ".join([required, *kept]).split(), 0)]
    result: list[list[str]] = []
    for form in (required, " ".join([required, *optional])):
        parts = form.split()
        choices = max((t.count("|") + 1 for t in parts), default=1)
        for i in range(choices):
            variant = _choose(parts, i)
            if variant not in result:
                result.append(variant)
    return result


def _is_placeholder(token: str) -> bool:
    """`ID`, `IN.wav`, `2GB`: upper case, not an option."""
    return not token.startswith("-") and token != token.lower()


def _choose(parts: list[str], index: int) -> list[str]:
    out = []
    for token in parts:
        options = token.split("|")
        out.append(options[min(index, len(options) - 1)])
    return out


@dataclass
class _Scan:
    commands: list[DocCommand] = field(default_factory=list)

    def add(self, text: str, where: str, complete: bool) -> None:
        first = text.split()[0] if text.split() else ""
        if is_hearth(first):
            self.commands += [DocCommand(a, where, complete) for a in alternatives(text)]
        elif first == "make" and complete:
            self.commands.append(DocCommand(text, where, complete))


def _scan_markdown(path: Path, scan: _Scan) -> None:
    in_code = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        where = f"{path.relative_to(ROOT)}:{number}"
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            scan.add(_strip_comment(line), where, complete=True)
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)] if line.startswith("|") else []
        if cells and len(cells) > 2 and "`hearth " in cells[1]:
            spans = _SPAN.findall(cells[1])
            previous: list[str] = []
            for span in spans:
                if span.startswith("-") and previous:  # `hearth ask --text T` / `--wav IN.wav`
                    span = " ".join(["hearth", *previous, span])
                scan.add(span, where, complete=True)
                previous = list(command_words(tokens(span)))
            rest = "|".join(cells[2:])
            for span in _SPAN.findall(rest):
                scan.add(span, where, complete=False)
            continue
        for span in _SPAN.findall(line):
            scan.add(span, where, complete=False)


def _scan_exec_lines(path: Path, scan: _Scan) -> None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.match(r"\s*(Exec|ExecStart)\s*=\s*[-@:+!]*(.+)$", line)
        if match:
            scan.add(match.group(2).strip(), f"{path.relative_to(ROOT)}:{number}", complete=True)


def documented_commands() -> list[DocCommand]:
    """Every `hearth ...` (and `make ...`) line in README.md and packaging/, in order."""
    scan = _Scan()
    _scan_markdown(README, scan)
    for path in sorted(PACKAGING.glob("*.md")):
        _scan_markdown(path, scan)
    for path in sorted(PACKAGING.glob("*.desktop")) + sorted(PACKAGING.glob("*.service")):
        _scan_exec_lines(path, scan)
    return scan.commands


def code_lines(path: Path = README) -> list[str]:
    """Every line of the fenced code blocks in a markdown file, comments dropped."""
    lines, in_code = [], False
    for line in path.read_text().splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif in_code and _strip_comment(line).strip():
            lines.append(_strip_comment(line).strip())
    return lines


def desktop_execs() -> list[tuple[Path, str]]:
    """(file, command line) of every Exec= in packaging/*.desktop."""
    found = []
    for path in sorted(PACKAGING.glob("*.desktop")):
        for line in path.read_text().splitlines():
            if line.startswith("Exec="):
                found.append((path, line[len("Exec="):].strip()))
    return found


def command_table() -> list[str]:
    """The first column of README's "Command line" table, doc syntax."""
    rows = []
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)] if line.startswith("|") else []
        if len(cells) > 2 and cells[1].startswith("`hearth "):
            rows.append(cells[1].replace("\\|", "|"))
    return rows


def readme_section(title: str) -> str:
    """The text of the README section `## title` (up to the next `## `)."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise AssertionError(f"README.md has no section '## {title}'")
    return match.group(1)


def json_keys_table() -> list[str]:
    """The keys README's "JSON output" table gives for `hearth ask --json`."""
    section = readme_section("Command line")
    table = section.split("### JSON output", 1)[1]
    keys: list[str] = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("|")] if line.startswith("|") else []
        if len(cells) > 2 and cells[1].startswith("`"):
            keys += _SPAN.findall(cells[1])
    return keys


# --- systemd units ---------------------------------------------------------------------------

@dataclass
class Unit:
    """A systemd unit file: section -> key -> values (a key may repeat)."""

    path: Path
    sections: dict[str, dict[str, list[str]]]

    def get(self, section: str, key: str, default: str = "") -> str:
        values = self.sections.get(section, {}).get(key, [])
        return values[-1] if values else default

    def all(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])


def parse_unit(path: Path) -> Unit:
    """Sections, keys and values as systemd reads them: comments (# ;), continuation lines
    (a trailing backslash), an empty assignment resets a list."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"{path}: not a unit file line: {raw!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if value == "":
            current[key] = []
        else:
            current.setdefault(key, []).append(value)
    return Unit(path, sections)


def expand_specifiers(text: str, specifiers: dict[str, str]) -> str:
    """systemd's %-specifiers (%h, %u, %U, %t, %n, %%...); an unknown one is an error."""
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "%":
            return "%"
        if key not in specifiers:
            raise ValueError(f"specifier %{key} is not handled by this test")
        return specifiers[key]

    return re.sub(r"%(.)", replace, text)


def exec_argv(value: str, specifiers: dict[str, str]) -> list[str]:
    """An Exec line as the argv systemd runs: prefixes (-@:+!) dropped, specifiers
    expanded, split with systemd's (shell-like) quoting."""
    value = re.sub(r"^[-@:+!|]+", "", value.strip())
    return [expand_specifiers(word, specifiers) for word in shlex.split(value)]


def unit_environment(unit: Unit, specifiers: dict[str, str]) -> dict[str, str]:
    """Environment= assignments of [Service] (quoted words, later ones win)."""
    env: dict[str, str] = {}
    for value in unit.all("Service", "Environment"):
        for word in shlex.split(value):
            key, _, val = word.partition("=")
            env[key] = expand_specifiers(val, specifiers)
    return env


def seconds(value: str) -> float:
    """A systemd time span ("15", "15s", "1min 30s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "": 1}
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total
