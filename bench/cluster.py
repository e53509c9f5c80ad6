"""Cluster benchmark: one model split across loopback llama.cpp RPC workers vs local.

Run: `python -m bench.cluster [--model M.gguf] [--tokens 64] [--rounds 3]`
(or `hearth bench cluster`). Prints a table and writes bench/results/cluster.json and
bench/results/cluster.md.

Every configuration runs the same GGUF, the same prompt, greedy, in a child process
(`SubprocessChatEngine`, as Hearth runs the cluster), with one compute thread in the
main process and in each worker:

- local:            llama.cpp alone in the child;
- 1 worker:         all layers on one bare ggml-rpc-server;
- 2 workers:        the layers split 50/50 over two bare ggml-rpc-servers;
- 2 hearth workers: the same through `hearth worker` (its allow-list proxy in between).

Configurations alternate within each round so that load from other processes hits all
alike; the median decode speed of the rounds is reported. "added ms/token per worker" is
(ms per token split - ms per token local) / workers: what each network hop costs on
loopback, with the layers' compute moved, not added. The wall clock swings on a shared
machine, so the CPU time of all processes involved (main, workers, proxies) per token
is reported too: steadier, and what the hops cost in work. All runs must give the same
text.
On a real network add about one round trip per worker per token. The round trip of one
small RPC command is measured too, to a bare ggml-rpc-server and through `hearth worker`
(what its allow-list proxy adds per hop), and how long after a worker is killed or
frozen (SIGSTOP) mid-reply the local model's answer begins, with the default timeouts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.subprocess_engine import SubprocessChatEngine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PROMPT = [ChatMessage("user", "Write a long essay about the history of Europe.")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def _servers(count: int, hearth: bool) -> Iterator[tuple[list[str], list[int]]]:
    """`count` workers on loopback (bare ggml-rpc-servers or `hearth worker`s): their
    addresses and process ids."""
    processes: list[subprocess.Popen[bytes]] = []
    addresses: list[str] = []
    try:
        for _ in range(count):
            port = _free_port()
            if hearth:
                command = [sys.executable, "-m", "app.cli", "worker", "--port", str(port),
                           "--threads", "1"]
            else:
                command = [str(Path(sys.prefix) / "bin" / "ggml-rpc-server"), "-H",
                           "127.0.0.1", "-p", str(port), "-t", "1"]
            processes.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            _wait_port(port)
            addresses.append(f"127.0.0.1:{port}")
        time.sleep(0.5)  # a hearth worker prints "listening" once its proxy accepts
        yield addresses, [p.pid for p in processes]
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def _round_trips_ms(address: str, count: int) -> float:
    """Median round trip of one small RPC command (GET_DEVICE_MEMORY) on one connection:
    what a worker hop costs before any compute."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hello = struct.pack("<BQ", 14, 24) + bytes(24)  # HELLO, empty capabilities
        sock.sendall(hello)
        _recv(sock, 8 + 28)
        request = struct.pack("<BQI", 11, 4, 0)  # GET_DEVICE_MEMORY of device 0
        times = []
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            _recv(sock, 8 + 16)
            times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise RuntimeError("the worker closed the connection")
        data += chunk
    return data


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and all their children."""
    import psutil

    total = 0.0
    for pid in pids:
        process = psutil.Process(pid)
        for p in (process, *process.children(recursive=True)):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def _run(config: EngineConfig, workers: list[str], tokens: int,
         server_pids: list[int]) -> dict[str, object]:
    if workers:
        engine = SubprocessChatEngine("engine.rpc:load_rpc_engine", (config, workers),
                                      label="the cluster engine")
    else:
        engine = SubprocessChatEngine("engine.llama_cpp:LlamaCppEngine", (config,))
    pids = [p for p in (engine.pid, *server_pids) if p]
    try:
        cpu_before = _cpu_seconds(pids)
        text = "".join(engine.chat(PROMPT, GenerationOptions(
            max_tokens=tokens, temperature=0.0, repeat_penalty=1.0)))
        cpu = _cpu_seconds(pids) - cpu_before
        stats = engine.last_stats
        assert stats is not None
    finally:
        engine.close()
    return {"text": text, "tokens": stats.generated_tokens,
            "decode_tokens_per_second": stats.decode_tokens_per_second,
            "prompt_ms": stats.prompt_ms,
            "cpu_ms_per_token": 1000.0 * cpu / max(1, stats.generated_tokens)}


CONFIGS = {"local": (0, False), "1 worker": (1, False), "2 workers": (2, False),
           "2 hearth workers": (2, True)}


def _fault_seconds(model: Path, fault: str) -> tuple[float, str]:
    """Seconds from a fault (after the first token) to the fallback notice, with the
    default [cluster] timeouts, and the notice."""
    import os
    import signal

    import psutil

    from app.cluster import build_cluster_engine
    from app.config import settings_from_dict

    with _servers(2, True) as (workers, _pids):
        settings = settings_from_dict({
            "engine": {"backend": "llama-cpp", "model": str(model), "threads": 1,
                       "context_length": 512},
            "cluster": {"workers": workers}})
        engine, _ = build_cluster_engine(settings)
        port = int(workers[1].rsplit(":", 1)[1])
        server = next(c for c in psutil.net_connections("tcp")
                      if c.laddr and c.laddr.port == port and c.status == "LISTEN")
        rpc = psutil.Process(server.pid).children()[0].pid
        try:
            started = 0.0
            for piece in engine.chat(PROMPT, GenerationOptions(max_tokens=200, temperature=0)):
                if not started:
                    os.kill(rpc, signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
                    started = time.monotonic()
                elif piece.startswith("("):
                    return time.monotonic() - started, piece.strip()
            return float("nan"), "no notice"
        finally:
            if fault == "frozen":
                os.kill(rpc, signal.SIGCONT)
            engine.close()


def run_cluster_bench(model: Path, tokens: int = 64, rounds: int = 3) -> int:
    config = EngineConfig(model_path=model, context_length=512, threads=1)
    samples: dict[str, list[dict[str, object]]] = {name: [] for name in CONFIGS}
    for _ in range(rounds):
        for name, (count, hearth) in CONFIGS.items():
            with _servers(count, hearth) as (workers, pids):
                samples[name].append(_run(config, workers, tokens, pids))
    round_trips = {}
    for name, hearth in (("ggml-rpc-server", False), ("hearth worker", True)):
        with _servers(1, hearth) as (workers, _pids):
            round_trips[name] = round(_round_trips_ms(workers[0], 2000), 4)
    faults = {}
    for fault in ("killed", "frozen"):
        seconds, notice = _fault_seconds(model, fault)
        faults[fault] = {"seconds_to_fallback": round(seconds, 2), "notice": notice}
    texts = {s["text"] for runs in samples.values() for s in runs}
    rows: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        tps = statistics.median(float(r["decode_tokens_per_second"]) for r in runs)
        rows[name] = {"workers": CONFIGS[name][0], "decode_tokens_per_second": round(tps, 2),
                      "ms_per_token": round(1000.0 / tps, 3),
                      "prompt_ms": round(statistics.median(float(r["prompt_ms"])
                                                           for r in runs), 1),
                      "cpu_ms_per_token": round(statistics.median(
                          float(r["cpu_ms_per_token"]) for r in runs), 3)}
    local_ms = rows["local"]["ms_per_token"]
    for row in rows.values():
        n = row["workers"]
        row["ratio_to_local"] = round(row["decode_tokens_per_second"]
                                      / rows["local"]["decode_tokens_per_second"], 3)
        row["added_ms_per_token_per_worker"] = (
            round((row["ms_per_token"] - local_ms) / n, 3) if n else 0.0)
        row["added_cpu_ms_per_token_per_worker"] = (
            round((row["cpu_ms_per_token"] - rows["local"]["cpu_ms_per_token"]) / n, 3)
            if n else 0.0)
    report = {
        "model": model.name, "tokens": tokens, "rounds": rounds, "threads": 1,
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "same_text_everywhere": len(texts) == 1, "runs": rows,
        "round_trip_ms": round_trips, "faults": faults,
    }
    lines = [f"# Cluster (llama.cpp RPC over loopback): {model.name}, {tokens} tokens, "
             f"median of {rounds}", "",
             "| run | tokens/s | ms/token | vs local | added ms/token per worker | "
             "CPU ms/token (all processes) | added CPU ms/token per worker | prompt ms |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['decode_tokens_per_second']} | {row['ms_per_token']} "
                     f"| {row['ratio_to_local']} | {row['added_ms_per_token_per_worker']} "
                     f"| {row['cpu_ms_per_token']} | "
                     f"{row['added_cpu_ms_per_token_per_worker']} | {row['prompt_ms']} |")
    lines += ["", f"Same greedy text in every run: {report['same_text_everywhere']}", "",
              "Round trip of one small RPC command over loopback (median of 2000): "
              + ", ".join(f"{k} {v} ms" for k, v in round_trips.items()), ""]
    for fault, figures in faults.items():
        lines.append(f"Worker {fault} mid-reply (default timeouts): the local model's answer "
                     f"began {figures['seconds_to_fallback']} s later; {figures['notice']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    (RESULTS / "cluster.md").write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))
    return 0 if report["same_text_everywhere"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="GGUF file (default: the bundled Q8_0)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    model = args.model
    if model is None:
        from app.models.store import ModelStore

        model = ModelStore().path("smollm2-135m-instruct-q8_0")
    return run_cluster_bench(model, args.tokens, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
