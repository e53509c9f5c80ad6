"""`hearth cluster status` and `hearth models recommend` count the workers' pooled memory:
three `hearth worker`s in 4 GB memory cgroups (like three 4 GB Pis) reach the tier of
Llama-2-7B-chat, with the split Hearth will use; a worker serving Hearth shows as busy,
an unreachable one is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.cluster import build_cluster_engine
from tests.integration.cluster_workers import (
    ROOT,
    MemoryCgroup,
    Worker,
    cluster_settings,
    free_port,
)

FOUR_GB = 4 * 2**30


def hearth(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "--config", str(config), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_three_4gb_workers_pool_to_the_llama_2_7b_tier(tmp_path: Path) -> None:
    groups = [MemoryCgroup(f"hearth-test-pool{i}-{tmp_path.name}", FOUR_GB) for i in range(3)]
    workers: list[Worker] = []
    try:
        workers = [Worker(cgroup=g) for g in groups]
        config = tmp_path / "config.toml"
        config.write_text(f"[cluster]\nworkers = {json.dumps([w.address for w in workers])}\n")
        status = hearth(config, "cluster", "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [w["usable_bytes"] for w in report["workers"]] == [FOUR_GB] * 3
        assert all(w["protocol"] == "7.0.0" and w["hearth_worker"] for w in report["workers"])
        assert report["pooled_bytes"] == 3 * FOUR_GB
        recommend = hearth(config, "models", "recommend")
        assert recommend.returncode == 0, recommend.stderr
        assert ("cluster: 3 x 4.0 GiB = 12.0 GiB -> llama-2-7b-chat-q4_k_m (large tier), "
                "layers split 33/33/33%") in recommend.stdout
    finally:
        for w in workers:
            w.stop()
        for g in groups:
            g.remove()


def test_status_shows_a_busy_worker_and_names_an_unreachable_one(
        smollm2_q8_gguf: Path, tmp_path: Path) -> None:
    worker = Worker()
    down = f"127.0.0.1:{free_port()}"
    engine, _ = build_cluster_engine(cluster_settings(smollm2_q8_gguf, [worker.address]))
    try:
        assert engine.on_cluster, engine.last_fault
        config = tmp_path / "config.toml"
        config.write_text(f'[cluster]\nworkers = ["{worker.address}", "{down}"]\n'
                          "connect_timeout_seconds = 1.0\n")
        status = hearth(config, "cluster", "status")
        assert status.returncode == 1  # a worker is unreachable
        assert f"{worker.address}: busy (serving Hearth)" in status.stdout
        assert f"worker {down} cannot be reached: Connection refused" in status.stdout
    finally:
        engine.close()
        worker.stop()
