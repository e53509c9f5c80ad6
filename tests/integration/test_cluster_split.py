"""One model across two loopback `hearth worker`s (llama.cpp RPC): the same greedy tokens
as single-process llama.cpp, each worker holding its share of the weights, and a model
larger than any one process's memory limit answering once split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf

from app.cluster import ClusterChatEngine, build_cluster_engine
from app.engine_setup import choose_engine, engine_config
from engine.base import ChatMessage, GenerationOptions
from engine.llama_cpp import LlamaCppEngine
from tests.integration.cluster_workers import (
    ROOT,
    MemoryCgroup,
    Worker,
    cluster_settings,
    without_cluster,
)

QUESTION = [ChatMessage("user", "Name three colours of the rainbow and say why the sky is blue.")]
GREEDY = GenerationOptions(max_tokens=48, temperature=0.0)


def layer_bytes(path: Path) -> int:
    """Bytes of the repeating layers (blk.*): what the workers hold between them."""
    reader = gguf.GGUFReader(path)
    return sum(int(t.n_bytes) for t in reader.tensors if t.name.startswith("blk."))


def test_two_workers_give_local_greedy_tokens_and_hold_their_shares(smollm2_q8_gguf: Path
                                                                     ) -> None:
    workers = [Worker(), Worker()]
    try:
        before = [w.rss_bytes() for w in workers]
        settings = cluster_settings(smollm2_q8_gguf, [w.address for w in workers])
        engine, _choice = build_cluster_engine(settings)
        assert isinstance(engine, ClusterChatEngine)
        try:
            assert engine.on_cluster, engine.last_fault
            grown = [w.rss_bytes() - b for w, b in zip(workers, before, strict=True)]
            split_text = "".join(engine.chat(QUESTION, GREEDY))
            split_tokens = engine.last_stats.generated_tokens
            assert "cluster" in engine.info().details
        finally:
            engine.close()
    finally:
        for w in workers:
            w.stop()
    local_settings = without_cluster(settings)
    local = LlamaCppEngine(engine_config(local_settings, choose_engine(local_settings)))
    try:
        local_text = "".join(local.chat(QUESTION, GREEDY))
        local_tokens = local.last_stats.generated_tokens
    finally:
        local.close()
    assert split_tokens == local_tokens == GREEDY.max_tokens
    assert split_text == local_text
    # Each worker holds about half of the layers (the second also the output layer).
    share = layer_bytes(smollm2_q8_gguf) / 2
    for growth in grown:
        assert 0.8 * share <= growth <= share + 64 * 2**20, (grown, share)


def test_a_model_larger_than_each_process_limit_runs_split(smollm2_q8_gguf: Path,
                                                           tmp_path: Path) -> None:
    """An F16 conversion of the bundled model (271 MB) answers across two workers while
    the main process and each worker sit in memory cgroups of 0.8 x its size, as it
    does locally without a limit; alone, under the same limit, it is killed."""
    import ctypes

    import llama_cpp

    f16 = tmp_path / "smollm2-f16.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = 1, True, 1  # 1 = MOSTLY_F16
    assert llama_cpp.llama_model_quantize(str(smollm2_q8_gguf).encode(), str(f16).encode(),
                                          ctypes.byref(params)) == 0
    limit = int(0.8 * f16.stat().st_size)
    groups = [MemoryCgroup(f"hearth-test-{name}-{tmp_path.name}", limit)
              for name in ("w1", "w2", "main", "alone")]
    workers: list[Worker] = []
    try:
        workers = [Worker(cgroup=groups[0]), Worker(cgroup=groups[1])]
        config = tmp_path / "config.toml"
        config.write_text(
            f'[history]\nenabled = false\n'
            f'[engine]\nmodel = "{f16}"\nbackend = "llama-cpp"\nuse_mmap = false\n'
            f'context_length = 512\nthreads = 1\n[cluster]\nworkers = '
            f'{json.dumps([w.address for w in workers])}\ntoken_timeout_seconds = 5.0\n')
        ask = [sys.executable, "-m", "app.cli", "--config", str(config), "ask", "--json",
               "--text", QUESTION[0].content, "--temperature", "0", "--max-tokens", "24"]
        split = subprocess.run(ask, cwd=ROOT, capture_output=True, text=True, timeout=300,
                               preexec_fn=groups[2].enter)
        assert split.returncode == 0, split.stderr
        reply = json.loads(split.stdout)["reply"]
        assert reply and not reply.startswith("("), reply  # no fallback notice
        alone = subprocess.run(
            [sys.executable, "-c", _ALONE, str(f16)], cwd=ROOT, capture_output=True,
            text=True, timeout=300, preexec_fn=groups[3].enter)
        assert alone.returncode != 0 and groups[3].oom_kills() > 0, alone.stdout
        for group in groups[:3]:
            assert group.oom_kills() == 0
            assert group.peak_bytes() <= limit
    finally:
        for w in workers:
            w.stop()
        for group in groups:
            group.remove()
    config.write_text(config.read_text().split("[cluster]")[0])  # the same, locally
    local = subprocess.run(ask, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    assert reply == json.loads(local.stdout)["reply"]


_ALONE = """
import sys
from engine.base import EngineConfig, ChatMessage, GenerationOptions
from engine.llama_cpp import LlamaCppEngine
e = LlamaCppEngine(EngineConfig(model_path=sys.argv[1], context_length=512, threads=1,
                                use_mmap=False))
print("".join(e.chat([ChatMessage("user", "Hi")], GenerationOptions(max_tokens=4))))
"""
