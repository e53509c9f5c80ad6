"""User skills: a folder of sentence templates, each intent tied to a command to run or
a Python function to call.

A skill file (`*.yaml` in `[skills] user_dir`) is a hassil template file with one more
key, `actions`, naming for each intent what to do:

    language: en
    intents:
      PorchLightOn:
        data:
          - sentences: ["turn on the porch light", "porch light on"]
    actions:
      PorchLightOn:
        command: "gpioset gpiochip0 17=1"      # run by /bin/sh; or a list of arguments
        response: "The porch light is on."     # optional; else the command's output

or `python: "porch:light_on"` (module `porch.py` in the same folder, function
`light_on(slots, text) -> str | None`). A command gets the match as JSON on stdin
(`{"intent", "slots", "text"}`) and in the environment (`HEARTH_INTENT`,
`HEARTH_TEXT`, `HEARTH_SLOT_<NAME>`), like wyoming-satellite's event commands.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.errors import ConfigError

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_SECONDS = 10.0


class SkillActionError(Exception):
    """A user skill's command or function failed (the message says how)."""


@dataclass(frozen=True)
class UserAction:
    intent: str
    source: Path
    command: str | list[str] | None = None
    python: str | None = None
    """ "module:function", the module found next to the skill file."""
    response: str | None = None
    """A template with {slot} placeholders; without one, what the action returned."""

    def run(self, slots: Mapping[str, str], text: str) -> str:
        """Do the action; what Hearth says (may be empty)."""
        result = self._call(slots, text) if self.python else self._execute(slots, text)
        if self.response is not None:
            return self.response.format_map(_Blank(slots))
        return result.strip()

    def _execute(self, slots: Mapping[str, str], text: str) -> str:
        env = {**os.environ, "HEARTH_INTENT": self.intent, "HEARTH_TEXT": text,
               **{f"HEARTH_SLOT_{k.upper()}": v for k, v in slots.items()}}
        payload = json.dumps({"intent": self.intent, "slots": dict(slots), "text": text})
        shell = isinstance(self.command, str)
        try:
            done = subprocess.run(self.command or [], input=payload, capture_output=True,
                                  text=True, shell=shell, env=env, cwd=self.source.parent,
                                  timeout=COMMAND_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise SkillActionError(f"{self.intent}: the command took longer than "
                                   f"{COMMAND_TIMEOUT_SECONDS:.0f} s") from None
        except OSError as exc:
            raise SkillActionError(f"{self.intent}: cannot run the command: {exc}") from None
        if done.returncode != 0:
            raise SkillActionError(f"{self.intent}: the command exited with {done.returncode}: "
                                   f"{done.stderr.strip()[:200]}")
        return done.stdout

    def _call(self, slots: Mapping[str, str], text: str) -> str:
        function = _load_function(self.source.parent, str(self.python))
        try:
            result = function(dict(slots), text)
        except Exception as exc:  # the user's code: any failure is that skill's failure
            raise SkillActionError(f"{self.intent}: {type(exc).__name__}: {exc}") from None
        return "" if result is None else str(result)


class _Blank(dict[str, str]):
    """Slots for a response template; a slot that was not said becomes ""."""

    def __missing__(self, key: str) -> str:
        return ""


def _load_function(folder: Path, target: str) -> Callable[..., Any]:
    module_name, _, function_name = target.partition(":")
    path = folder / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"hearth_user_skill_{module_name}", path)
    if spec is None or spec.loader is None or not path.exists():
        raise SkillActionError(f"no Python file {path} for the skill entry point {target}")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise SkillActionError(f"{path}: {type(exc).__name__}: {exc}") from None
        sys.modules[spec.name] = module
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SkillActionError(f"{path} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]


def load_user_skills(folder: Path) -> tuple[list[Path], dict[str, UserAction]]:
    """The template files in `folder` and the action of each intent they define."""
    if not folder.is_dir():
        return [], {}
    files = sorted(folder.glob("*.yaml"))
    actions: dict[str, UserAction] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the user skill {path}: {exc}") from None
        for intent, spec in (data.get("actions") or {}).items():
            if not isinstance(spec, dict) or not (spec.get("command") or spec.get("python")):
                raise ConfigError(f"{path}: actions.{intent} needs a 'command' or 'python'")
            if intent not in (data.get("intents") or {}):
                raise ConfigError(f"{path}: actions.{intent} has no sentences under intents")
            actions[intent] = UserAction(intent, path, command=spec.get("command"),
                                         python=spec.get("python"),
                                         response=spec.get("response"))
    return files, actions
