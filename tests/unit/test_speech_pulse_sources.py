"""Asking PulseAudio whether a pinned source still exists (speech.pulse_sources), with a
stand-in pactl script on PATH (no sound server)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from speech.pulse_sources import list_sources, parse_short_sources, pinned_source_check

SHORT_SOURCES = (
    "0\thearth_mic.monitor\tmodule-null-sink.c\ts16le 1ch 48000Hz\tIDLE\n"
    "1\thearth_speaker.monitor\tmodule-null-sink.c\ts16le 1ch 48000Hz\tRUNNING\n"
    "12\talsa_input.usb-Blue_Yeti-00.analog-stereo\tmodule-alsa-card.c\t"
    "s16le 2ch 44100Hz\tSUSPENDED\n"
)


def fake_pactl(directory: Path, output: str, exit_code: int = 0) -> Path:
    """A `pactl` that prints `output` for any arguments and exits with `exit_code`."""
    (directory / "sources.txt").write_text(output)
    script = directory / "pactl"
    script.write_text(f"#!/bin/sh\ncat '{directory / 'sources.txt'}'\nexit {exit_code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def pactl_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the stand-in pactl, first on PATH."""
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    return tmp_path


def test_parse_short_sources_reads_the_name_column() -> None:
    assert parse_short_sources(SHORT_SOURCES) == [
        "hearth_mic.monitor", "hearth_speaker.monitor",
        "alsa_input.usb-Blue_Yeti-00.analog-stereo"]
    assert parse_short_sources("") == []
    # anything that is not a source line (a warning, a blank line) is skipped
    assert parse_short_sources("W: connection warning\n\n3\tmic\n") == ["mic"]


def test_list_sources_runs_pactl(pactl_dir: Path) -> None:
    script = fake_pactl(pactl_dir, SHORT_SOURCES)
    assert list_sources(str(script))[:2] == ["hearth_mic.monitor", "hearth_speaker.monitor"]
    failing = fake_pactl(pactl_dir, "Connection failure: Connection refused\n", exit_code=1)
    assert list_sources(str(failing)) is None
    assert list_sources(str(pactl_dir / "no-such-pactl")) is None


def test_the_check_follows_the_pinned_source(pactl_dir: Path) -> None:
    fake_pactl(pactl_dir, SHORT_SOURCES)
    check = pinned_source_check("pulse", {"PULSE_SOURCE": "hearth_mic.monitor"})
    assert check is not None and check() is True
    fake_pactl(pactl_dir, SHORT_SOURCES.split("\n", 1)[1])  # hearth_mic unloaded
    assert check() is False


def test_a_server_that_cannot_be_asked_is_not_a_lost_source(pactl_dir: Path) -> None:
    fake_pactl(pactl_dir, "Connection failure: Connection refused\n", exit_code=1)
    check = pinned_source_check("pulse", {"PULSE_SOURCE": "hearth_mic.monitor"})
    assert check is not None and check() is True


def test_no_check_without_a_pinned_pulse_source(pactl_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pactl(pactl_dir, SHORT_SOURCES)
    assert pinned_source_check("pulse", {}) is None
    assert pinned_source_check("pulse", {"PULSE_SOURCE": "  "}) is None
    assert pinned_source_check("USB Audio Device: - (hw:1,0)",
                               {"PULSE_SOURCE": "hearth_mic.monitor"}) is None
    monkeypatch.setenv("PATH", str(pactl_dir / "empty"))  # no pactl at all
    assert pinned_source_check("pulse", {"PULSE_SOURCE": "hearth_mic.monitor"}) is None
