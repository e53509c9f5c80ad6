"""Faults of llama.cpp RPC workers over loopback: a worker killed mid-reply, frozen
(SIGSTOP), unreachable at start, or refusing this machine. Each ends the cluster's
reply with a clear message, the local model answers and says so, nothing hangs, and
the workers are tried again later. Plus the worker's own guards: no wildcard address
unless asked, peers outside --allow refused, ggml-rpc-server restarted when it dies."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.cluster import ClusterChatEngine, build_cluster_engine
from app.config import settings_from_dict
from app.errors import ConfigError
from engine.base import ChatMessage, GenerationOptions
from engine.rpc import Endpoint, WorkerUnreachableError, probe_worker, tensor_split
from tests.integration.cluster_workers import ROOT, Worker, cluster_settings, free_port

QUESTION = [ChatMessage("user", "Tell me a long story about a lighthouse keeper.")]
LONG = GenerationOptions(max_tokens=120, temperature=0.0)
HANG_GUARD_SECONDS = 60.0
"""Far above any expected time: exceeding it means something hung, not slowness."""


@pytest.fixture
def two_workers() -> Iterator[list[Worker]]:
    workers = [Worker(), Worker()]
    yield workers
    for w in workers:
        w.stop()


def answer_while(engine: ClusterChatEngine, fault: object) -> tuple[str, float]:
    """The whole reply, with `fault()` done right after the first piece arrived."""
    started = time.monotonic()
    pieces = []
    for i, piece in enumerate(engine.chat(QUESTION, LONG)):
        pieces.append(piece)
        if i == 0:
            fault()  # type: ignore[operator]
    return "".join(pieces), time.monotonic() - started


def back_on_cluster(engine: ClusterChatEngine) -> None:
    """Turns (each may start a retry in the background) until the cluster answers."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not engine.on_cluster:
        assert time.monotonic() < deadline, engine.last_fault
        time.sleep(1.1)  # retry_seconds is 1
        reply = "".join(engine.chat(QUESTION, GenerationOptions(max_tokens=4)))
        assert not reply.startswith("(")  # a failed retry is logged, not told again
        engine.wait_for_retry(HANG_GUARD_SECONDS)


def test_a_worker_killed_mid_reply_ends_it_and_the_local_model_answers(
        smollm2_q8_gguf: Path, two_workers: list[Worker]) -> None:
    settings = cluster_settings(smollm2_q8_gguf, [w.address for w in two_workers],
                                retry_seconds=1.0)
    engine, _ = build_cluster_engine(settings)
    assert isinstance(engine, ClusterChatEngine)
    try:
        assert engine.on_cluster, engine.last_fault
        child = psutil.Process(int(engine.info().details["process"]))
        reply, seconds = answer_while(
            engine, lambda: os.kill(two_workers[1].rpc_pid, signal.SIGKILL))
        assert seconds < HANG_GUARD_SECONDS
        assert not engine.on_cluster
        assert "the cluster engine died" in engine.last_fault
        assert "(The cluster engine died" in reply and "This machine answers with" in reply
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        # The local model's whole answer follows the notice.
        local_part = reply.split("This machine answers with", 1)[1]
        assert len(local_part.split(") ", 1)[1]) > 40
        # The worker's supervisor restarts its server; the cluster is tried again.
        back_on_cluster(engine)
        assert engine.last_fault == ""
    finally:
        engine.close()


def test_a_frozen_worker_ends_the_reply_within_the_token_timeout(
        smollm2_q8_gguf: Path, two_workers: list[Worker]) -> None:
    settings = cluster_settings(smollm2_q8_gguf, [w.address for w in two_workers])
    engine, _ = build_cluster_engine(settings)
    frozen = two_workers[0].rpc_pid
    try:
        assert engine.on_cluster, engine.last_fault
        reply, seconds = answer_while(engine, lambda: os.kill(frozen, signal.SIGSTOP))
        assert seconds < HANG_GUARD_SECONDS
        fault = engine.last_fault
        assert "did not answer within 2 s (waiting for the next token)" in fault
        # The workers were probed after the fault: the frozen one is named.
        assert f"worker {two_workers[0].address} did not answer within 1 s" in fault
        assert two_workers[1].address not in fault
        assert "This machine answers with" in reply
    finally:
        os.kill(frozen, signal.SIGCONT)
        engine.close()


def test_a_worker_unreachable_at_start_gives_the_local_answer_then_the_cluster(
        smollm2_q8_gguf: Path) -> None:
    up = Worker()
    down_port = free_port()
    settings = cluster_settings(smollm2_q8_gguf, [up.address, f"127.0.0.1:{down_port}"],
                                retry_seconds=1.0)
    late: Worker | None = None
    started = time.monotonic()
    engine, choice = build_cluster_engine(settings)
    try:
        assert time.monotonic() - started < HANG_GUARD_SECONDS
        assert not engine.on_cluster
        assert choice.backend == "llama-cpp"  # the local choice
        assert (f"the cluster could not start: worker 127.0.0.1:{down_port} cannot be "
                "reached: Connection refused") in engine.last_fault
        reply = "".join(engine.chat(QUESTION, GenerationOptions(max_tokens=16)))
        assert reply.startswith("(The cluster could not start")
        second = "".join(engine.chat(QUESTION, GenerationOptions(max_tokens=16)))
        assert not second.startswith("(")  # said once, not every turn
        late = Worker(port=down_port)
        back_on_cluster(engine)
    finally:
        engine.close()
        up.stop()
        if late is not None:
            late.stop()


def test_a_worker_that_does_not_allow_this_machine_is_refused_clearly(
        smollm2_q8_gguf: Path) -> None:
    # This machine connects from 127.0.0.1; the worker accepts only 127.0.0.2.
    worker = Worker(allow="127.0.0.2")
    try:
        settings = cluster_settings(smollm2_q8_gguf, [worker.address])
        engine, _ = build_cluster_engine(settings)
        try:
            assert not engine.on_cluster
            assert (f"worker {worker.address} refused: this machine is not in its --allow "
                    "list") in engine.last_fault
            assert "".join(engine.chat(QUESTION, GenerationOptions(max_tokens=8)))
        finally:
            engine.close()
        assert "refused a connection from 127.0.0.1" in worker.output()
    finally:
        worker.stop()


def test_the_worker_refuses_a_second_loopback_address_not_allowed() -> None:
    worker = Worker(allow="127.0.0.1")
    try:
        assert probe_worker(worker.address, 2.0, source_address="127.0.0.1").hearth
        with pytest.raises(WorkerUnreachableError, match="not in its --allow list"):
            probe_worker(worker.address, 2.0, source_address="127.0.0.2")
        assert "refused a connection from 127.0.0.2" in worker.output()
    finally:
        worker.stop()


def ignores_sigpipe(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("SigIgn:")), 16)
    return bool(ignored & (1 << (signal.SIGPIPE - 1)))


def test_the_worker_restarts_its_server_and_refuses_a_wildcard_address() -> None:
    worker = Worker()
    try:
        first = worker.rpc_pid
        assert ignores_sigpipe(first)
        # Clients that leave before their answer: the server writes into closed sockets.
        host, port = worker.address.split(":")
        for _ in range(20):
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(struct.pack("<BQ", 14, 24) + bytes(24))
        probe_worker(worker.address, 2.0)
        assert worker._rpc_pid() == first
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while True:
            try:
                status = probe_worker(worker.address, 1.0)
                # a proxied connection to the killed server may still count as a client
                # for a moment (busy: no handshake asked); wait for the new server's answer
                if not status.busy:
                    break
            except WorkerUnreachableError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert status.protocol and worker._rpc_pid() != first
    finally:
        worker.stop()
    refused = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--host", "0.0.0.0",
         "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "listens on every network interface" in refused.stderr


def test_hearth_ask_answers_locally_and_says_so_when_no_worker_answers(
        smollm2_q8_gguf: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\nenabled = false\n[engine]\nmodel = "{smollm2_q8_gguf}"\n'
                      f'[cluster]\nworkers = ["127.0.0.1:{free_port()}"]\n'
                      "connect_timeout_seconds = 1.0\n")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--config", str(config), "ask", "--json", "--text",
         "Hello!", "--max-tokens", "8"], cwd=ROOT, capture_output=True, text=True,
        timeout=HANG_GUARD_SECONDS)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)["reply"]
    assert reply.startswith("(The cluster could not start: worker 127.0.0.1:")
    assert "This machine answers with SmolLM2-135M-Instruct.Q8_0.gguf.)" in reply
    assert "the cluster could not start" in done.stderr  # logged as a warning too


def test_worker_addresses_and_splits() -> None:
    assert str(Endpoint.parse("192.168.1.21:50052")) == "192.168.1.21:50052"
    for bad in ("192.168.1.21", "host:0", ":50052", "[::1]:50052", "pi:port"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)
    assert tensor_split([4 * 2**30, 4 * 2**30, 8 * 2**30]) == [0.25, 0.25, 0.5]
    with pytest.raises(ConfigError, match=r"cluster\.workers"):
        settings_from_dict({"cluster": {"workers": ["pi.local"]}})
