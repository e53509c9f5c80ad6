"""Sentence templates -> intent and slots, with hassil.

For each language the templates are Home Assistant's (the `home-assistant-intents`
wheel's data, only the intents Hearth handles: time, date, timers, never mind,
volume), merged with Hearth's own (assets/skills/<lang>/*.yaml) and the user's
skill folders, all in hassil's template format. Home Assistant's "do X in 5
minutes" delayed-command sentences are left out: their wildcard would capture
general questions ("what happens in 5 minutes"); Hearth's reminders cover them.

`IntentMatcher.matches(text)` yields every way the text matches, best first (fewest
wildcards, most literal words), so a skill that cannot use a match (a wildcard that
is not a number or a time) can decline and let the next one, or the engine, answer.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hassil import Intents, TextSlotList, recognize_ranked
from hassil.errors import HassilError
from hassil.util import merge_dict
from home_assistant_intents import get_intents

from app.errors import ConfigError
from app.skills.wording import ASSETS_DIR

log = logging.getLogger(__name__)

HOME_ASSISTANT_INTENTS = frozenset({
    "HassGetCurrentTime", "HassGetCurrentDate", "HassStartTimer", "HassCancelTimer",
    "HassCancelAllTimers", "HassPauseTimer", "HassUnpauseTimer", "HassIncreaseTimer",
    "HassDecreaseTimer", "HassTimerStatus", "HassNevermind", "HassSetVolume",
    "HassSetVolumeRelative",
})
"""The Home Assistant intents Hearth answers (the rest are about smart-home devices)."""

_HA_LANGUAGE = {"en": "en", "zh": "zh-CN"}
_CJK = re.compile(r"[\u3400-\u9fff]")
_CONTEXT = {"area": {"value": "hearth", "text": "hearth"}}
"""Hearth is the one "area": Home Assistant's volume sentences require one."""


@dataclass(frozen=True)
class Match:
    """One way a sentence matched."""

    intent: str
    language: str
    slots: dict[str, Any]
    """Slot values: numbers for number lists, text for wildcards and fixed slots."""
    source: str = "hearth"
    """"home-assistant", "hearth" or the user skill file it came from."""
    texts: dict[str, str] = field(default_factory=dict)
    """The words each slot matched, as said."""
    text: str = ""
    """The whole sentence."""


def language_of(text: str) -> str:
    """ "zh" when `text` has Chinese characters, else "en"."""
    return "zh" if _CJK.search(text) else "en"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the skill templates {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("intents", {}), dict):
        raise ConfigError(f"{path}: expected a mapping with 'language' and 'intents'")
    return data


def home_assistant_templates(language: str) -> dict[str, Any]:
    """Home Assistant's templates for the intents Hearth handles, minus the delayed
    commands."""
    data = get_intents(_HA_LANGUAGE[language])
    if data is None:
        raise ConfigError(f"home-assistant-intents has no sentences for {language!r}")
    kept: dict[str, Any] = {}
    for name, intent in data["intents"].items():
        if name not in HOME_ASSISTANT_INTENTS:
            continue
        blocks = [b for b in intent["data"]
                  if not str(b.get("metadata", {}).get("slot_combination", "")).startswith(
                      "command")]
        kept[name] = {**intent, "data": blocks}
    data["intents"] = kept
    data["language"] = language
    return data


def _mark_source(data: dict[str, Any], source: str) -> None:
    for intent in data.get("intents", {}).values():
        for block in intent.get("data", []):
            block.setdefault("metadata", {})["source"] = source


class IntentMatcher:
    """Hassil over the merged templates of each language."""

    def __init__(self, languages: Iterable[str] = ("en", "zh"),
                 extra_files: Iterable[Path] = (), assets: Path = ASSETS_DIR) -> None:
        self._intents: dict[str, Intents] = {}
        self._sentences: dict[str, dict[str, Any]] = {}
        extra = [(path, _read_yaml(path)) for path in extra_files]
        for language in languages:
            merged = home_assistant_templates(language)
            _mark_source(merged, "home-assistant")
            for path in sorted((assets / language).glob("*.yaml")):
                if path.name == "responses.yaml":
                    continue
                data = _read_yaml(path)
                _mark_source(data, "hearth")
                merge_dict(merged, data)
            for path, data in extra:
                if data.get("language", "en") != language:
                    continue
                data = copy.deepcopy({k: v for k, v in data.items() if k != "actions"})
                _mark_source(data, str(path))
                merge_dict(merged, data)
            try:
                self._intents[language] = Intents.from_dict(merged)
            except (HassilError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"bad skill templates for {language!r}: {exc}") from None
            self._sentences[language] = merged
        self._slot_lists = {name: TextSlotList(name=name, values=[])
                            for name in ("area", "floor", "name")}

    @property
    def languages(self) -> list[str]:
        return list(self._intents)

    def templates(self, language: str) -> dict[str, Any]:
        """The merged template document of `language` (for bias phrases and tests)."""
        return self._sentences[language]

    def matches(self, text: str) -> Iterator[Match]:
        """Every match of `text`, best first, in the language its script suggests."""
        language = language_of(text)
        intents = self._intents.get(language)
        text = text.strip()
        if intents is None or not text:
            return
        try:
            results = recognize_ranked(text, intents, slot_lists=self._slot_lists,
                                       intent_context=_CONTEXT, language=language)
        except HassilError as exc:
            log.warning("template matching failed for %r: %s", text, exc)
            return
        for result in results:
            slots = {name: entity.value for name, entity in result.entities.items()}
            texts = {name: entity.text for name, entity in result.entities.items()}
            metadata = result.intent_metadata or {}
            yield Match(result.intent.name, language, slots,
                        str(metadata.get("source", "hearth")), texts, text.lower())
