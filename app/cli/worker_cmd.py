"""`hearth worker`: serve this machine's memory to a Hearth on the network (llama.cpp RPC).

Runs until SIGTERM or Ctrl-C; see app/cluster_worker.py for what it starts and
docs/cluster.md for the firewall rules that go with it.
"""

from __future__ import annotations

import argparse
import signal
import threading

from app.cluster_worker import WorkerOptions, WorkerService
from app.config import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    allow = tuple(h.strip() for h in (args.allow or "127.0.0.1").split(",") if h.strip())
    options = WorkerOptions(host=args.host, port=args.port, threads=args.threads,
                            allow=allow, any_address=args.any_address)
    service = WorkerService(options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host, port = service.proxy.address
    print(f"hearth worker: listening on {host}:{port}, accepting "
          f"{', '.join(sorted(service.allowed))} (Ctrl-C stops)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0
