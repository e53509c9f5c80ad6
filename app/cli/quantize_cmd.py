"""`hearth models quantize IN OUT --type q8_0|q4_0`: re-quantize a GGUF or llama2.c model.

The work is done by `engine.quantize`; this prints what was written. Errors
(`ModelFormatError`, `EngineError`) are left to the CLI's one-line error handler.
"""

from __future__ import annotations

import argparse
import time

from app.config import Settings
from engine.quantize import quantize_model


def run(args: argparse.Namespace, settings: Settings | None) -> int:
    started = time.perf_counter()
    result = quantize_model(args.input, args.output, args.type)
    seconds = time.perf_counter() - started
    print(
        f"wrote {result.output} ({result.bytes_written / 1e6:.1f} MB, "
        f"{result.quantized} of {result.tensors} tensors as {args.type.upper()}) "
        f"in {seconds:.1f} s"
    )
    return 0
