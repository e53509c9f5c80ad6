"""Hostile configuration: the fully commented default config.toml mutated byte by byte,
and arbitrary TOML-shaped documents fed to `settings_from_dict`.

Each must give valid `Settings` or a one-line `ConfigError`; settings that load must
survive a render -> parse round trip unchanged.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import Settings, load_settings, render_toml, settings_from_dict, settings_to_dict
from app.errors import ConfigError
from tests.unit import reliability_fuzz as fuzz

DEFAULTS = settings_to_dict(Settings())
SECTION_NAMES = sorted(DEFAULTS)
KEY_NAMES = sorted({key for section in DEFAULTS.values() for key in section})


@pytest.fixture(scope="module")
def default_toml() -> fuzz.Sample:
    return fuzz.Sample("config.toml", render_toml(Settings()).encode("utf-8"))


@fuzz.fuzz_settings(250)
@given(mutation=fuzz.mutations(max_edits=8))
def test_mutated_config_file_loads_or_is_rejected(
    workdir: Path, default_toml: fuzz.Sample, mutation: fuzz.Mutation
) -> None:
    data = fuzz.mutate(default_toml.data, mutation)
    with fuzz.case_file(workdir, data, ".toml") as path:
        fuzz.check_load(lambda: _load_and_round_trip(path), allowed=(ConfigError,),
                        file_bytes=len(data))


def _load_and_round_trip(path: Path) -> None:
    settings = load_settings(path)
    _assert_round_trip(settings)


def _assert_round_trip(settings: Settings) -> None:
    again = settings_from_dict(tomllib.loads(render_toml(settings)))
    assert _comparable(settings_to_dict(again)) == _comparable(settings_to_dict(settings))


def _comparable(data: Any) -> Any:
    # NaN never equals itself; compare it as a marker instead
    if isinstance(data, dict):
        return {k: _comparable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_comparable(v) for v in data]
    if isinstance(data, float) and math.isnan(data):
        return "nan"
    return data


_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["auto", "", "llama-cpp", "numpy", "remote", "en", "zh", "piper",
                     "espeak-ng", "vosk", "pocketsphinx", "push-to-talk", "model.gguf"]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4),
                    st.dictionaries(st.text(max_size=8), _scalars, max_size=3))
_keys = st.one_of(st.sampled_from(KEY_NAMES), st.text(max_size=12))
_sections = st.one_of(st.sampled_from(SECTION_NAMES), st.text(max_size=12))
_documents = st.dictionaries(
    _sections,
    st.one_of(st.dictionaries(_keys, _values, max_size=6), _scalars),
    max_size=5,
)


@fuzz.fuzz_settings(350)
@given(document=_documents)
def test_arbitrary_settings_documents_load_or_are_rejected(document: dict[str, Any]) -> None:
    def load() -> None:
        _assert_round_trip(settings_from_dict(document, source="fuzz.toml"))

    fuzz.check_load(load, allowed=(ConfigError,), file_bytes=len(repr(document)))


def test_the_baseline_loads(workdir: Path, default_toml: fuzz.Sample) -> None:
    path = workdir / "config.toml"
    path.write_bytes(default_toml.data)
    assert load_settings(path) == Settings()
