"""The generation options of a reply, from the settings: one rule for `hearth chat`,
`hearth ask` and the voice pipeline."""

from __future__ import annotations

import dataclasses

from app.config import Settings
from engine.base import GenerationOptions


def generation_options(settings: Settings, **overrides: object) -> GenerationOptions:
    """`[engine]`'s sampling settings as `GenerationOptions`; `overrides` that are not
    None replace a setting (e.g. `max_tokens=args.max_tokens` from a CLI flag)."""
    e = settings.engine
    values: dict[str, object] = {
        "max_tokens": e.max_tokens, "temperature": e.temperature, "top_k": e.top_k,
        "top_p": e.top_p, "min_p": e.min_p, "repeat_penalty": e.repeat_penalty,
        "seed": None if e.seed < 0 else e.seed,
    }
    unknown = set(overrides) - {f.name for f in dataclasses.fields(GenerationOptions)}
    if unknown:
        raise TypeError(f"not a generation option: {', '.join(sorted(unknown))}")
    values.update({key: value for key, value in overrides.items() if value is not None})
    return GenerationOptions(**values)  # type: ignore[arg-type]
