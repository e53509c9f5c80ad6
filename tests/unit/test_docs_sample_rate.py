"""Docstrings and comments do not promise 16 kHz where the rate is a setting.

The recognition rate is `[audio] sample_rate_hz`; only components whose model has a
fixed rate (Silero VAD, the micro wake-word model) may state 16 kHz flatly. Anywhere
else a mention of 16 kHz must say it is the default.
"""

from __future__ import annotations

import re

from tests.conftest import ROOT

FIXED_RATE_WORDS = ("silero", "micro")
"""A line naming one of these is about a model that only takes 16 kHz."""


def test_16_khz_is_only_stated_as_a_default_or_for_fixed_rate_models() -> None:
    claims = []
    for folder in ("app", "speech", "engine"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not re.search(r"16 ?kHz", line, re.IGNORECASE):
                    continue
                lowered = line.lower()
                if "default" in lowered or any(w in lowered for w in FIXED_RATE_WORDS):
                    continue
                if path.stem in {"silero_vad", "wake_micro"}:
                    continue
                claims.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not claims, "16 kHz stated where the rate is configurable:\n" + "\n".join(claims)
