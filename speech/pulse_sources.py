"""Whether the PulseAudio source a capture is pinned to still exists (asked with pactl).

Through PortAudio's ALSA "pulse" device, PULSE_SOURCE pins the capture to one source.
When that source goes away (a USB microphone unplugged, its module unloaded),
PulseAudio silently moves the stream to the fallback source: blocks keep arriving
and PortAudio reports nothing. `pinned_source_check` gives the `Microphone` a way to
notice: it asks the sound server, with `pactl list short sources`, whether the pinned
source is still listed. Without pactl (pulseaudio-utils) the check is left out.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

PULSE_DEVICE = "pulse"
"""The PortAudio (ALSA plugin) device name that records through PulseAudio."""
_PACTL_TIMEOUT_SECONDS = 1.0
"""pactl answers in ~10 ms; a server too busy to answer within this counts as 'not known'."""


def parse_short_sources(text: str) -> list[str]:
    """Source names from `pactl list short sources` output (tab-separated: index, name,
    driver, sample spec, state)."""
    names = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0].strip().isdigit():
            names.append(fields[1].strip())
    return names


def list_sources(pactl: str = "pactl") -> list[str] | None:
    """The names of the sources the PulseAudio server has, or None when it cannot be
    asked (pactl failing, timing out or missing)."""
    try:
        done = subprocess.run([pactl, "list", "short", "sources"], capture_output=True,
                              text=True, timeout=_PACTL_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("cannot list PulseAudio sources: %s", exc)
        return None
    if done.returncode != 0:
        log.debug("pactl list short sources failed: %s", done.stderr.strip())
        return None
    return parse_short_sources(done.stdout)


def pinned_source_check(device_name: str,
                        environ: Mapping[str, str] | None = None) -> Callable[[], bool] | None:
    """A check 'is the pinned source still there?' for a capture from `device_name`, or
    None when there is nothing to check: another device than PulseAudio's, no
    PULSE_SOURCE in `environ` (default: this process's environment), or no pactl.

    The check answers False only when the server lists its sources and the pinned one
    is not among them; a server that cannot be asked is not taken as a lost source
    (a sound server that went away ends the stream itself).
    """
    environ = os.environ if environ is None else environ
    source = environ.get("PULSE_SOURCE", "").strip()
    if device_name != PULSE_DEVICE or not source:
        return None
    pactl = shutil.which("pactl")
    if pactl is None:
        log.debug("pactl is missing (pulseaudio-utils): a vanished PulseAudio source %r "
                  "will not be noticed", source)
        return None

    def source_present() -> bool:
        names = list_sources(pactl)
        if names is None or source in names:
            return True
        log.warning("the PulseAudio source %r is gone (sources now: %s)", source,
                    ", ".join(names) or "none")
        return False

    return source_present
