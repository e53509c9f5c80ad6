"""`hearth models list | install | remove | verify | path | recommend | quantize`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.errors import HearthError
from app.models.catalog import CatalogEntry
from app.models.download import Progress
from app.models.store import ModelStore
from app.models.tiers import detect_memory, fit_label, format_bytes, parse_size
from app.stack import Stack, choose_stack


def _size(entry: CatalogEntry) -> str:
    return format_bytes(entry.size_bytes) if entry.size_bytes else "?"


def _progress_bar() -> tuple[Progress, Callable[[], None]]:
    """A tqdm bar per file on stderr (silent when stderr is not a terminal)."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    quiet = not sys.stderr.isatty()

    def update(label: str, done: int, total: int) -> None:
        if quiet:
            return
        bar = bars.get(label)
        if bar is None:
            bar = bars[label] = tqdm(total=total or None, desc=label, unit="B",
                                     unit_scale=True, unit_divisor=1024, leave=True)
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def _list(store: ModelStore, as_json: bool) -> int:
    memory = detect_memory()
    rows = []
    for entry in store.catalog.entries:
        rows.append({
            "id": entry.id, "kind": entry.kind, "name": entry.name,
            "languages": list(entry.languages), "license": entry.license,
            "size_bytes": entry.size_bytes, "ram_bytes": entry.ram_bytes,
            "installed": store.is_installed(entry.id), "bundled": entry.bundled,
            "fit": fit_label(entry.ram_bytes, memory), "engines": list(entry.engines),
        })
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'':2}{'ID':34} {'KIND':4} {'LANG':6} {'SIZE':>9} {'RAM':>9}  {'FIT':13} LICENSE")
    for row, entry in zip(rows, store.catalog.entries, strict=True):
        mark = "*" if row["installed"] else " "
        print(f"{mark} {entry.id:34} {entry.kind:4} {','.join(entry.languages):6} "
              f"{_size(entry):>9} {format_bytes(entry.ram_bytes):>9}  {row['fit']:13} "
              f"{entry.license}")
    print("\n* installed.  Install with: hearth models install ID")
    return 0


def _install(store: ModelStore, args: argparse.Namespace, settings: Settings) -> int:
    ids = list(args.ids)
    if args.defaults:
        ids += [e.id for e in store.catalog.bundled() if e.id not in ids]
    if not ids:
        raise HearthError("name the models to install (see: hearth models list), or --defaults")
    if args.from_file and len(ids) != 1:
        raise HearthError("--from-file installs exactly one model")
    for model_id in ids:
        store.catalog.get(model_id)  # unknown ids fail before anything is downloaded
    for model_id in ids:
        if store.is_installed(model_id):
            print(f"{model_id}: already installed")
            continue
        update, close = _progress_bar()
        try:
            path = store.install(model_id, from_file=args.from_file, progress=update)
        finally:
            close()
        print(f"{model_id}: installed at {path}")
    return 0


def _verify(store: ModelStore, ids: list[str]) -> int:
    ids = ids or store.installed_ids()
    failed = 0
    for model_id in ids:
        result = store.verify(model_id)
        if result.ok:
            print(f"{model_id}: ok")
        else:
            failed += 1
            print(f"{model_id}: FAILED: {'; '.join(result.problems)} "
                  f"(reinstall with: hearth models remove {model_id} && "
                  f"hearth models install {model_id})")
    return 1 if failed else 0


def _stack_json(stack: Stack) -> dict[str, Any]:
    return {"tier": stack.tier, "backend": stack.engine, "llm": stack.model,
            "memory_mode": stack.memory_mode, "recognizer": stack.recognizer,
            "stt": stack.recognizer_model, "voice": stack.voice, "tts": stack.voice_model,
            "budget_bytes": stack.budget_bytes, "needed_bytes": stack.needed_bytes,
            "reasons": stack.reasons, "reason": stack.explain(),
            "to_install": list(stack.to_install)}


def _recommend(store: ModelStore, args: argparse.Namespace, settings: Settings) -> int:
    """The stack for this (or a --ram) machine with the catalog's models installed, and
    what runs now: both from `choose_stack`, the choice `hearth doctor` and `ask` make."""
    memory = detect_memory(parse_size(args.ram) if args.ram else None)
    best = choose_stack(settings, store, memory, as_if_installed=True)
    try:
        now: Stack | None = choose_stack(settings, store, memory)
    except HearthError:
        now = None
    rows = [
        {"id": e.id, "kind": e.kind, "ram_bytes": e.ram_bytes,
         "fit": fit_label(e.ram_bytes, memory), "installed": store.is_installed(e.id)}
        for e in store.catalog.entries if e.kind == "llm"
    ]
    if args.json:
        print(json.dumps({
            "usable_ram_bytes": memory.usable_bytes, "simulated": memory.simulated,
            **_stack_json(best), "now": _stack_json(now) if now else None, "models": rows,
        }, indent=2))
        return 0
    print(f"Machine: {memory.describe()}\n")
    print(f"{'MODEL':34} {'NEEDS':>9}  {'ON THIS MACHINE':15} INSTALLED")
    for row in rows:
        print(f"{row['id']:34} {format_bytes(row['ram_bytes']):>9}  {row['fit']:15} "
              f"{'yes' if row['installed'] else 'no'}")
    print(f"\nRecommended ({best.tier} tier): {best.summary()}, about "
          f"{format_bytes(best.needed_bytes)} of {format_bytes(best.budget_bytes)}")
    for part, why in best.reasons.items():
        print(f"  {part.replace('_', ' ')}: {why}")
    if best.to_install:
        print(f"To install: hearth models install {' '.join(best.to_install)}")
    if now is None:
        print("Runs now: nothing (no chat model that fits is installed)")
    elif now.summary() != best.summary():
        print(f"Runs now: {now.summary()}")
    if settings.cluster.workers:  # issue 17: the workers' pooled memory (app/cluster.py)
        from app.cluster import recommend_line

        print(recommend_line(settings, store))
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = ModelStore(settings.data_dir / "models")
    action = args.models_command
    if action == "list":
        return _list(store, args.json)
    if action == "install":
        return _install(store, args, settings)
    if action == "remove":
        for model_id in args.ids:
            store.remove(model_id)
            print(f"{model_id}: removed")
        return 0
    if action == "verify":
        return _verify(store, list(args.ids))
    if action == "path":
        print(store.path(args.id))
        return 0
    if action == "recommend":
        return _recommend(store, args, settings)
    if action == "quantize":
        from app.cli.quantize_cmd import run as run_quantize

        return run_quantize(args, settings)
    raise HearthError(f"unknown action {action}")
