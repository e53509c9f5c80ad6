"""`hearth bench engine | speech | latency`: runs the measurements in bench/.

The benchmarks live in the repository's bench/ folder (they are development tools,
not part of the installed package), so this needs a source checkout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

from app.config import Settings
from app.errors import HearthError

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def _bench_module(name: str) -> ModuleType:
    if not (REPO_ROOT / "bench" / f"{name}.py").exists():
        raise HearthError(f"bench/{name}.py is not here: run benchmarks from a source checkout")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    return importlib.import_module(f"bench.{name}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.bench_command == "engine":
        from app.models.store import ModelStore

        model = args.model or ModelStore(settings.data_dir / "models").path(
            "smollm2-135m-instruct-q8_0")
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        return int(_bench_module("engine").run_engine_bench(model, args.tokens, modes))
    if args.bench_command == "llama":
        from app.models.store import ModelStore

        model = args.model or ModelStore(settings.data_dir / "models").path(
            "smollm2-135m-instruct-q4_1")
        return int(_bench_module("llama_cpp_bench").run_llama_bench(model, args.tokens))
    if args.bench_command == "speech":
        return int(_bench_module("speech").main([]) or 0)
    if args.bench_command == "tiers":
        return int(_bench_module("tiers").main(
            ["--limits", args.limits, *(["--components"] if args.components else [])]))
    if args.bench_command == "stt":
        return int(_bench_module("stt").main(["--quick"] if args.quick else []))
    if args.bench_command == "latency":
        return int(_bench_module("latency").run_latency_bench(args.turns))
    if args.bench_command == "wake":
        return int(_bench_module("wake").run_wake_bench(args.hours, live=not args.no_live,
                                                        noisy_hours=args.noisy_hours))
    if args.bench_command == "live":
        return int(_bench_module("live_latency").run_live_bench(args.turns, args.replies,
                                                                args.trials))
    if args.bench_command == "cluster":
        from app.models.store import ModelStore

        model = args.model or ModelStore(settings.data_dir / "models").path(
            "smollm2-135m-instruct-q8_0")
        return int(_bench_module("cluster").run_cluster_bench(model, args.tokens))
    raise HearthError(f"unknown benchmark {args.bench_command}")
