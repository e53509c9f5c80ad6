"""Each headless trigger starts a turn, with `hearth headless` run as a user runs it.

The console script runs in a pseudo-terminal, in a temporary home whose config picks the
trigger, recording from and playing into a private PulseAudio daemon (two null sinks:
the test plays speech into "mic" and Hearth records its monitor). The speech is made
with `hearth say` (Piper). Triggers: the keyboard key, hands-free voice activity, and
the wake word selected by `[assistant] trigger = "wake-word"` alone (issue 12, defect 2:
that setting used to do nothing without `[wake] enabled`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import Home, Terminal, run_hearth

QUESTION = "What is the capital of France?"
START_SECONDS = 120.0
"""Loading the models and warming the engine up, on a busy 2-core machine."""

_PULSE_CONFIG = """\
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-null-sink sink_name=mic rate=48000 channels=1
load-module module-null-sink sink_name=speaker rate=48000 channels=1
set-default-sink speaker
set-default-source mic.monitor
"""


@pytest.fixture(scope="module")
def pulse() -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon; the environment variables that reach it."""
    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed (make test installs it)")
    directory = Path(tempfile.mkdtemp(prefix="hearth-pulse-"))
    socket = directory / "native"
    env = {"PULSE_SERVER": f"unix:{socket}", "PULSE_RUNTIME_PATH": str(directory / "runtime"),
           "XDG_RUNTIME_DIR": str(directory), "PULSE_SOURCE": "mic.monitor",
           "PULSE_SINK": "speaker"}
    (directory / "test.pa").write_text(_PULSE_CONFIG.format(socket=socket))
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1",
         "--use-pid-file=false", "--disable-shm=yes", "-n", "-F", str(directory / "test.pa")],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env={**os.environ, **env},
                             capture_output=True, check=False).returncode != 0:
            assert daemon.poll() is None and time.monotonic() < deadline, "no PulseAudio"
            time.sleep(0.1)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """WAV files spoken by `hearth say`: the question, and the wake word then the question."""
    folder = tmp_path_factory.mktemp("speech")
    home = Home(folder / "home")
    files = {}
    for name, text in (("question", QUESTION), ("wake", "Okay Nabu.")):
        files[name] = folder / f"{name}.wav"
        said = run_hearth(["say", text, "--out", str(files[name])], home)
        assert said.returncode == 0, said.stderr
    files["wake_then_question"] = folder / "wake_then_question.wav"
    _join([files["wake"], files["question"]], files["wake_then_question"], gap_seconds=0.7)
    return files


def _join(parts: list[Path], out: Path, gap_seconds: float) -> None:
    with wave.open(str(parts[0])) as first:
        params = first.getparams()
    gap = b"\0" * (round(gap_seconds * params.framerate) * params.sampwidth * params.nchannels)
    with wave.open(str(out), "wb") as joined:
        joined.setparams(params)
        for part in parts:
            with wave.open(str(part)) as w:
                joined.writeframes(w.readframes(w.getnframes()) + gap)


def _start(hearth: Path, home: Home, pulse: dict[str, str], trigger: str) -> Terminal:
    home.write_config(f"""\
[engine]
temperature = 0.0
max_tokens = 12
[audio]
input_device = "pulse"
output_device = "pulse"
beeps = false
[history]
enabled = false
[assistant]
trigger = "{trigger}"
""")
    return Terminal([str(hearth), "-v", "headless"], cwd=home.path, env={**home.env, **pulse})


def _play(pulse: dict[str, str], wav: Path) -> None:
    subprocess.run(["paplay", "--device=mic", str(wav)], env={**os.environ, **pulse},
                   check=True, timeout=60)


def _turn_done(terminal: Terminal, since: int) -> str:
    """The recognized question of the turn that started after `since`."""
    heard = terminal.expect(r"you: (.+)\n", timeout=90, start=since)
    terminal.expect(r"hearth: .+\S.*\n", timeout=90, start=heard.start())
    return heard.group(1)


def test_keyboard_key_starts_a_turn(hearth: Path, home: Home, pulse: dict[str, str],
                                    speech: dict[str, Path]) -> None:
    terminal = _start(hearth, home, pulse, "push-to-talk")
    try:
        ready = terminal.expect(r"Hearth is ready: .*press space to talk", START_SECONDS)
        terminal.type(" ")
        listening = terminal.expect(r"\(listening\)", 30, start=ready.end())
        _play(pulse, speech["question"])
        terminal.type(" ")
        assert _turn_done(terminal, listening.start()).strip()
        assert terminal.stop() == 0
    finally:
        terminal.close()


def test_hands_free_voice_activity_starts_a_turn(hearth: Path, home: Home,
                                                 pulse: dict[str, str],
                                                 speech: dict[str, Path]) -> None:
    terminal = _start(hearth, home, pulse, "hands-free")
    try:
        ready = terminal.expect(r"Hearth is ready: .*just speak", START_SECONDS)
        time.sleep(1.0)  # the microphone stream is open
        _play(pulse, speech["question"])
        listening = terminal.expect(r"\(listening\)", 30, start=ready.end())
        assert _turn_done(terminal, listening.start()).strip()
        assert terminal.stop() == 0
    finally:
        terminal.close()


def test_wake_word_trigger_alone_starts_a_turn_when_the_wake_word_is_said(
        hearth: Path, home: Home, pulse: dict[str, str], speech: dict[str, Path]) -> None:
    terminal = _start(hearth, home, pulse, "wake-word")
    try:
        ready = terminal.expect(r"Hearth is ready: .*say 'okay nabu'", START_SECONDS)
        time.sleep(1.0)
        _play(pulse, speech["question"])  # no wake word: no turn
        time.sleep(1.0)
        assert "(listening)" not in terminal.output[ready.end():]
        _play(pulse, speech["wake_then_question"])
        listening = terminal.expect(r"\(listening\)", 30, start=ready.end())
        assert _turn_done(terminal, listening.start()).strip()
        assert terminal.stop() == 0
    finally:
        terminal.close()
