"""Engine benchmark: the numpy runner in each memory mode against llama-cpp-python.

Run: `hearth bench engine [--model PATH] [--tokens 128] [--modes cache,mmap,auto,stream,reference]`
or `python -m bench.engine ...`. Every run reads the same model file, the same prompt
token ids (tokenized once here) and decodes the same number of new tokens greedily.
Each run happens in a fresh subprocess so that its peak RSS is its own. Prints a
markdown table and writes bench/results/engine.json and bench/results/engine.md.

Figures per run: load seconds, prompt tokens/s (batched prompt evaluation), time to
first token (prompt evaluation + choosing the first token), decode tokens/s (wall
clock) and per CPU-second (this process's CPU time: on a shared machine the wall-clock
rate depends on the neighbours, the CPU rate much less), peak RSS, and each figure as
a ratio to llama-cpp-python. Both engines get the same thread count (--threads,
default 1: see engine/numpy_runner/threads.py for why the numpy engine defaults to one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODES = ("cache", "mmap", "auto", "stream", "reference")
LLAMA = "llama-cpp"
PROMPT_MESSAGES = [
    ("system", "You are Hearth, a helpful voice assistant running offline on this computer. "
               "Answer in one to three short spoken sentences, without lists or markdown."),
    ("user", "I am planning a small vegetable garden on my balcony this spring. Which "
             "vegetables grow well in pots, how much sun do they need, and how often "
             "should I water them during a warm week?"),
]
CONTEXT = 1024
# targets from the issue: (run, figure, comparison, bound)
TARGETS = [
    ("numpy:cache", "decode_tok_s_ratio", ">=", 0.5),
    ("numpy:mmap", "decode_tok_s_ratio", ">=", 0.15),
    ("numpy:mmap", "peak_rss_to_file", "<=", 1.3),
    ("numpy:stream", "peak_rss_to_file", "<=", 0.35),
]


# ---- worker: one engine, one mode, in its own process ------------------------------


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _rss_now() -> int:
    return _status_bytes("VmRSS")


def _peak_rss() -> int:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss, which keeps the
    parent's RSS from before the exec of this worker."""
    return _status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run_numpy(model: Path, mode: str, prompt: list[int], tokens: int,
               threads: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from engine.numpy_runner.loader import load_model

    with threadpool_limits(threads, user_api="blas"):
        started = time.perf_counter()
        # "reference": llama.cpp's arithmetic reproduced (slow; Q8_0/Q4_1 only)
        transformer = load_model(model, mode=mode, context_length=CONTEXT,
                                 batch=256).transformer
        loaded = time.perf_counter()
        rss_loaded = _rss_now()
        logits = transformer.forward_batch(prompt, 0)
        prompt_done = time.perf_counter()
        token = int(logits.argmax())
        first = time.perf_counter()
        cpu_start = time.process_time()
        generated = [token]
        for i in range(tokens - 1):
            logits = transformer.forward(token, len(prompt) + i)
            token = int(logits.argmax())
            generated.append(token)
        end = time.perf_counter()
        cpu = time.process_time() - cpu_start
    return _figures(started, loaded, prompt_done, first, end, cpu, len(prompt), generated,
                    rss_loaded)


def _run_llama(model: Path, prompt: list[int], tokens: int, threads: int) -> dict[str, Any]:
    import llama_cpp
    import numpy as np

    started = time.perf_counter()
    llm = llama_cpp.Llama(str(model), n_ctx=CONTEXT, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    loaded = time.perf_counter()
    rss_loaded = _rss_now()
    n_vocab = llm.n_vocab()

    def last_logits() -> np.ndarray:
        # without logits_all, llama-cpp-python keeps no scores: read the context's row
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))

    llm.eval(prompt)
    prompt_done = time.perf_counter()
    token = int(np.argmax(last_logits()))
    first = time.perf_counter()
    cpu_start = time.process_time()
    generated = [token]
    for _ in range(tokens - 1):
        llm.eval([token])
        token = int(np.argmax(last_logits()))
        generated.append(token)
    end = time.perf_counter()
    cpu = time.process_time() - cpu_start
    return _figures(started, loaded, prompt_done, first, end, cpu, len(prompt), generated,
                    rss_loaded)


def _figures(started: float, loaded: float, prompt_done: float, first: float, end: float,
             cpu: float, n_prompt: int, generated: list[int], rss_loaded: int) -> dict[str, Any]:
    decode_n = len(generated) - 1
    return {
        "load_s": loaded - started,
        "prompt_tokens": n_prompt,
        "prompt_tok_s": n_prompt / (prompt_done - loaded),
        "ttft_ms": (first - loaded) * 1000.0,
        "decode_tok_s": decode_n / (end - first) if end > first else 0.0,
        "decode_tok_per_cpu_s": decode_n / cpu if cpu > 0 else 0.0,
        "rss_after_load": rss_loaded,
        "peak_rss": _peak_rss(),
        "generated": generated,
    }


def _worker(args: argparse.Namespace) -> int:
    prompt = json.loads(args.prompt_ids)
    if args.worker == LLAMA:
        result = _run_llama(args.model, prompt, args.tokens, args.threads)
    else:
        result = _run_numpy(args.model, args.worker.split(":", 1)[1], prompt, args.tokens,
                            args.threads)
    print(json.dumps(result))
    return 0


# ---- parent: run everything, compare, report ----------------------------------------


def _prompt_ids(model: Path) -> list[int]:
    from engine.base import ChatMessage
    from engine.chat_template import render_chat, template_for
    from engine.numpy_runner.gguf_reader import GGUFFile
    from engine.tokenizer import load_tokenizer_from_gguf_metadata

    gguf = GGUFFile(model)
    tokenizer = load_tokenizer_from_gguf_metadata(gguf.metadata)
    text = render_chat(
        [ChatMessage(role, content) for role, content in PROMPT_MESSAGES],
        template_for(gguf.metadata),
        bos_token=tokenizer.token_text(tokenizer.bos_id) if tokenizer.bos_id is not None else "",
        eos_token=tokenizer.token_text(tokenizer.eos_id) if tokenizer.eos_id is not None else "",
    )
    return tokenizer.encode_prompt(text)


def _spawn(run: str, model: Path, prompt: list[int], tokens: int, threads: int) -> dict:
    # imported here, not at the top: the worker processes import this module too, and
    # what they import counts in the peak RSS they measure
    import subprocess

    command = [sys.executable, "-m", "bench.engine", "--worker", run, "--model", str(model),
               "--tokens", str(tokens), "--threads", str(threads),
               "--prompt-ids", json.dumps(prompt)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _add_ratios(results: dict[str, dict], file_size: int) -> None:
    base = results.get(LLAMA, {})
    for result in results.values():
        if "error" in result:
            continue
        result["peak_rss_to_file"] = result["peak_rss"] / file_size
        for key in ("load_s", "prompt_tok_s", "ttft_ms", "decode_tok_s",
                    "decode_tok_per_cpu_s", "peak_rss"):
            if base.get(key):
                result[f"{key}_ratio"] = result[key] / base[key]
        if "generated" in base:
            same = 0
            for a, b in zip(result["generated"], base["generated"], strict=False):
                if a != b:
                    break
                same += 1
            result["tokens_equal_to_llama"] = same


def _markdown(report: dict[str, Any]) -> str:
    results = report["runs"]
    lines = [
        f"# Engine benchmark: {Path(report['model']).name}",
        "",
        f"{report['file_mb']:.1f} MB file, {report['prompt_tokens']} prompt tokens, "
        f"{report['new_tokens']} new tokens (greedy), {report['threads']} thread(s), "
        f"{report['machine']}, load average {report['load_average']}.",
        "Ratios are to llama-cpp-python on the same file in the same run (x1.00 = equal).",
        "",
        "| run | load s | prompt tok/s | TTFT ms | decode tok/s | decode tok/CPU-s | "
        "peak RSS MB | RSS / file | same tokens as llama.cpp |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(result: dict, key: str, fmt: str) -> str:
        value = result.get(key)
        if value is None:
            return "-"
        ratio = result.get(f"{key}_ratio")
        text = format(value, fmt)
        return f"{text} (x{ratio:.2f})" if ratio is not None else text

    for run, result in results.items():
        if "error" in result:
            lines.append(f"| {run} | failed: {result['error']} |||||||")
            continue
        peak = dict(result, peak_rss=result["peak_rss"] / 1e6)
        lines.append(
            f"| {run} | {cell(result, 'load_s', '.2f')} | {cell(result, 'prompt_tok_s', '.1f')}"
            f" | {cell(result, 'ttft_ms', '.0f')} | {cell(result, 'decode_tok_s', '.1f')}"
            f" | {cell(result, 'decode_tok_per_cpu_s', '.1f')} | {cell(peak, 'peak_rss', '.0f')}"
            f" | {result['peak_rss_to_file']:.2f}"
            f" | {result.get('tokens_equal_to_llama', '-')} of {report['new_tokens']} |"
        )
    lines += ["", "| target | measured | |", "|---|---|---|"]
    for target in report["targets"]:
        measured = target["measured"]
        shown = "-" if measured is None else f"{measured:.2f}"
        lines.append(f"| {target['run']} {target['figure']} {target['op']} {target['bound']}"
                     f" | {shown} | {_verdict(target['met'])} |")
    return "\n".join(lines) + "\n"


def _verdict(met: bool | None) -> str:
    return "not run" if met is None else "met" if met else "MISSED"


def run_engine_bench(model_path: Path | str, tokens: int = 128,
                     modes: Sequence[str] = DEFAULT_MODES, threads: int = 1) -> int:
    """Benchmark `model_path`; print the table, write bench/results/engine.{json,md}."""
    import platform

    model = Path(model_path).resolve()
    prompt = _prompt_ids(model)
    runs = [LLAMA, *(f"numpy:{mode}" for mode in modes)]
    results: dict[str, dict] = {}
    for run in runs:
        print(f"running {run} ...", file=sys.stderr, flush=True)
        results[run] = _spawn(run, model, prompt, tokens, threads)
    file_size = model.stat().st_size
    _add_ratios(results, file_size)
    targets = []
    for run, figure, op, bound in TARGETS:
        measured = results.get(run, {}).get(figure)
        met = None if measured is None else (measured >= bound if op == ">=" else measured <= bound)
        targets.append({"run": run, "figure": figure, "op": op, "bound": bound,
                        "measured": measured, "met": met})
    report = {
        "model": str(model),
        "file_mb": file_size / 1e6,
        "prompt_tokens": len(prompt),
        "new_tokens": tokens,
        "threads": threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": results,
        "targets": targets,
    }
    markdown = _markdown(report)
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "engine.md").write_text(markdown, encoding="utf-8")
    return 0 if all("error" not in r for r in results.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="GGUF file (default: the bundled Q8_0)")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prompt-ids", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    model = args.model
    if model is None:
        from app.models.store import ModelStore

        model = ModelStore().path("smollm2-135m-instruct-q8_0")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    return run_engine_bench(model, args.tokens, modes, args.threads)


if __name__ == "__main__":
    sys.exit(main())
