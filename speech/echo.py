"""Finding the sound server's echo canceller, so Hearth can listen while it speaks.

PulseAudio's `module-echo-cancel` (aec_method=webrtc) and PipeWire's
`libpipewire-module-echo-cancel` each offer a source carrying the microphone with
what was played into their sink subtracted. When Hearth records from that source and
plays into that sink, its own voice is (mostly) gone from what it hears, so the wake
word, a "stop" word or plain speech can interrupt a reply. `find_echo_canceller`
asks the server with `pactl` (which talks to PipeWire's pulse layer too);
`ENABLE_HINT` says how to turn one on.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PACTL_TIMEOUT_SECONDS = 2.0
_PULSE_DRIVER = "module-echo-cancel.c"
_NAME_MARKS = ("echo-cancel", "echo_cancel", "echocancel")

ENABLE_HINT = (
    "PulseAudio: pactl load-module module-echo-cancel aec_method=webrtc (add "
    "'load-module module-echo-cancel aec_method=webrtc' to /etc/pulse/default.pa to keep "
    "it); PipeWire: put a libpipewire-module-echo-cancel block in "
    "~/.config/pipewire/pipewire.conf.d/echo-cancel.conf and restart pipewire"
)
"""How to enable an echo canceller, for `hearth doctor`."""


@dataclass(frozen=True)
class EchoCanceller:
    """An echo canceller the sound server runs."""

    server: str
    """"pulseaudio" or "pipewire"."""
    source: str
    """The echo-cancelled source to record from."""
    sink: str
    """The sink whose output is cancelled: play here."""

    def describe(self) -> str:
        module = ("module-echo-cancel" if self.server == "pulseaudio"
                  else "libpipewire-module-echo-cancel")
        return f"{self.server} {module} (record {self.source}, play {self.sink})"


def _rows(text: str) -> list[list[str]]:
    """Tab-separated rows of `pactl list short ...` whose first field is an index."""
    return [[f.strip() for f in line.split("\t")] for line in text.splitlines()
            if line.split("\t")[0].strip().isdigit()]


def _is_echo_cancel(row: list[str]) -> bool:
    name = row[1].lower() if len(row) > 1 else ""
    driver = row[2] if len(row) > 2 else ""
    return driver == _PULSE_DRIVER or any(mark in name for mark in _NAME_MARKS)


def parse_echo_canceller(info: str, sources: str, sinks: str) -> EchoCanceller | None:
    """The echo canceller in the output of `pactl info` and `pactl list short
    sources|sinks`, or None. Monitor sources are never the cancelled signal."""
    server = "pipewire" if "pipewire" in info.lower() else "pulseaudio"
    source = next((r[1] for r in _rows(sources)
                   if _is_echo_cancel(r) and not r[1].endswith(".monitor")), None)
    sink = next((r[1] for r in _rows(sinks) if _is_echo_cancel(r)), None)
    if source is None or sink is None:
        return None
    return EchoCanceller(server, source, sink)


def _pactl(args: list[str], env: Mapping[str, str] | None) -> str | None:
    pactl = shutil.which("pactl")
    if pactl is None:
        return None
    try:
        done = subprocess.run([pactl, *args], capture_output=True, text=True, check=False,
                              timeout=_PACTL_TIMEOUT_SECONDS,
                              env=dict(env) if env is not None else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("pactl %s: %s", " ".join(args), exc)
        return None
    return done.stdout if done.returncode == 0 else None


def find_echo_canceller(env: Mapping[str, str] | None = None) -> EchoCanceller | None:
    """The echo canceller of the sound server `env` (default: this process's) reaches,
    or None (none loaded, no server, or no pactl)."""
    info = _pactl(["info"], env)
    if info is None:
        return None
    sources = _pactl(["list", "short", "sources"], env) or ""
    sinks = _pactl(["list", "short", "sinks"], env) or ""
    found = parse_echo_canceller(info, sources, sinks)
    log.debug("echo canceller: %s", found.describe() if found else "none")
    return found


def use_echo_canceller(canceller: EchoCanceller,
                       environ: dict[str, str] | os._Environ[str] | None = None) -> None:
    """Steer PulseAudio clients opened from now on (PortAudio's "pulse" device) to the
    cancelled source and its sink."""
    environ = os.environ if environ is None else environ
    environ["PULSE_SOURCE"] = canceller.source
    environ["PULSE_SINK"] = canceller.sink
