"""Open a model file of any supported format and make it ready to run.

The format is recognised from the first bytes (GGUF magic, llama2.c "ak42" magic, or
else a legacy llama2.c v0 header), the reader yields `Config` + file tensors, and the
memory planner turns those into the matrices the `Transformer` multiplies with.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelFormatError
from engine.numpy_runner import memory
from engine.numpy_runner.gguf_reader import GGUF_MAGIC, GGUFFile, load_gguf_model
from engine.numpy_runner.llama2c_reader import load_llama2c_model
from engine.numpy_runner.model import Transformer, kv_cache_bytes

log = logging.getLogger(__name__)

STREAM_BATCH = 32
"""Longest prompt chunk in "stream" mode."""


@dataclass
class LoadedModel:
    """A runnable model and what was learned while loading it."""

    transformer: Transformer
    plan: memory.MemoryPlan
    format: str
    """"gguf" or "llama2c"."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """GGUF key/values (empty for llama2.c)."""
    gguf: GGUFFile | None = None
    mm: mmap.mmap | None = None


def detect_format(path: Path) -> str:
    """ "gguf" or "llama2c", from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from exc
    return "gguf" if head == GGUF_MAGIC else "llama2c"


def load_model(
    path: Path | str,
    mode: str = "auto",
    context_length: int = 2048,
    budget_bytes: int = 0,
    batch: int = 64,
) -> LoadedModel:
    """Load `path` with memory `mode` and a KV cache of `context_length` positions."""
    path = Path(path)
    kind = detect_format(path)
    gguf: GGUFFile | None = None
    mm: mmap.mmap | None = None
    if kind == "gguf":
        config, tensors, gguf = load_gguf_model(path)
        metadata = gguf.metadata
    else:
        config, tensors, mm = load_llama2c_model(path)
        metadata: Mapping[str, Any] = {}
    context = min(context_length, config.seq_len) if context_length > 0 else config.seq_len
    weights, plan = memory.plan(
        config, tensors, mode, budget_bytes, kv_cache_bytes(config, context)
    )
    if mode == "stream":
        # stream mode is for the smallest footprint: short prompt chunks keep the
        # activation buffers and temporaries of a batch small
        batch = min(batch, STREAM_BATCH)
    transformer = Transformer(config, weights, context, batch, plan.kernels)
    log.info(
        "loaded %s (%s): %d layers, dim %d, vocab %d, context %d",
        path.name, kind, config.n_layers, config.dim, config.vocab_size, context,
    )
    return LoadedModel(transformer, plan, kind, metadata, gguf, mm)
