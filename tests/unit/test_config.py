"""Configuration: defaults, round trip through `hearth config`, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.config import (
    Settings,
    load_settings,
    render_toml,
    replace,
    settings_from_dict,
    write_default_config,
)
from app.errors import ConfigError


def hearth(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(env_home), "XDG_CONFIG_HOME": str(env_home / "c"),
           "XDG_DATA_HOME": str(env_home / "d"), "XDG_STATE_HOME": str(env_home / "s")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, env=env, check=False, timeout=60)


def test_default_file_round_trips(tmp_path: Path) -> None:
    path = write_default_config(tmp_path / "hearth.toml")
    text = path.read_text()
    assert "# Tokens of context" in text  # every key is documented
    assert load_settings(path) == Settings()


def test_config_init_then_show_round_trips(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    init = hearth("--config", str(cfg), "config", "init", env_home=tmp_path)
    assert init.returncode == 0, init.stderr
    assert cfg.exists()
    again = hearth("--config", str(cfg), "config", "init", env_home=tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr
    show = hearth("--config", str(cfg), "config", "show", env_home=tmp_path)
    assert show.returncode == 0, show.stderr
    shown = settings_from_dict(tomllib.loads(show.stdout))
    assert shown == Settings()


def test_config_path_uses_platform_dirs(tmp_path: Path) -> None:
    out = hearth("config", "path", env_home=tmp_path)
    assert out.stdout.strip() == str(tmp_path / "c" / "hearth" / "config.toml")


BAD_CONFIGS = [
    ("unknown key", "[engine]\nthreadz = 2\n", "engine.threadz"),
    ("unknown section", "[speaker]\nvolume = 2\n", "[speaker]"),
    ("wrong type", "[engine]\ncontext_length = \"big\"\n", "engine.context_length"),
    ("sample rate of 0", "[audio]\nsample_rate_hz = 0\n", "audio.sample_rate_hz"),
    ("missing model file", "[engine]\nmodel = \"/nowhere/model.gguf\"\n", "engine.model"),
    ("bad choice", "[engine]\nbackend = \"gpt\"\n", "engine.backend"),
    ("not TOML", "[engine\n", "not valid TOML"),
]


@pytest.mark.parametrize(("kind", "text", "named"), BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_gives_one_line_naming_the_key(
    tmp_path: Path, kind: str, text: str, named: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out = hearth("--config", str(cfg), "config", "show", env_home=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert named in lines[0] and str(cfg) in lines[0]
    assert "Traceback" not in out.stderr


def test_ints_are_accepted_for_floats_and_bools_are_not_ints() -> None:
    s = settings_from_dict({"engine": {"temperature": 1}})
    assert s.engine.temperature == 1.0 and isinstance(s.engine.temperature, float)
    with pytest.raises(ConfigError, match=r"engine\.threads"):
        settings_from_dict({"engine": {"threads": True}})


def test_replace_validates_the_change() -> None:
    s = replace(Settings(), "tts", speaking_rate=1.5)
    assert s.tts.speaking_rate == 1.5
    with pytest.raises(ConfigError, match=r"tts\.speaking_rate"):
        replace(s, "tts", speaking_rate=0)


def test_grammar_list_round_trips() -> None:
    s = settings_from_dict({"stt": {"grammar": ["lights on", "lights off"]}})
    assert s.stt.grammar == ("lights on", "lights off")
    assert settings_from_dict(tomllib.loads(render_toml(s))) == s
