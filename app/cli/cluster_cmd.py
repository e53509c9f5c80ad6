"""`hearth cluster status`: each configured worker's handshake, memory and share."""

from __future__ import annotations

import argparse
import json

from app.cluster import cluster_plan, pooled_memory
from app.config import Settings
from app.errors import HearthError
from app.models.tiers import format_bytes
from engine.rpc import ClusterError


def run(args: argparse.Namespace, settings: Settings) -> int:
    pooled = pooled_memory(settings)
    if pooled is None:
        print("no workers configured: add [cluster] workers = [\"host:port\", ...] to "
              f"{settings.source}")
        return 1
    try:
        plan = cluster_plan(settings, pooled)
        summary = plan.reason
    except (ClusterError, HearthError) as exc:
        plan, summary = None, f"{pooled.describe()}: {exc}"
    shares = dict(zip(plan.workers, plan.split, strict=True)) if plan else {}
    if args.json:
        print(json.dumps({
            "workers": [{
                "address": str(w.endpoint), "protocol": w.protocol, "busy": w.busy,
                "hearth_worker": w.hearth, "total_bytes": w.total_bytes,
                "usable_bytes": w.usable_bytes, "round_trip_ms": round(w.round_trip_ms, 3),
                "share": shares.get(str(w.endpoint), 0.0)} for w in pooled.workers],
            "unreachable": list(pooled.unreachable),
            "pooled_bytes": pooled.usable_bytes, "plan": summary,
        }, indent=2))
        return 0 if not pooled.unreachable else 1
    for w in pooled.workers:
        state = "busy (serving Hearth)" if w.busy else (
            f"ok, protocol {w.protocol}, handshake {w.round_trip_ms:.2f} ms")
        share = f", {100 * shares[str(w.endpoint)]:.0f}% of the layers" if shares else ""
        kind = "hearth worker" if w.hearth else "bare ggml-rpc-server"
        print(f"{w.endpoint}: {state}; {format_bytes(w.usable_bytes)} usable of "
              f"{format_bytes(w.total_bytes)} ({kind}){share}")
    for line in pooled.unreachable:
        print(f"{line}")
    print(f"pooled: {summary}")
    return 0 if not pooled.unreachable else 1
