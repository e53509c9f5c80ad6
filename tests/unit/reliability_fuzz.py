"""Shared machinery of the hostile-file tests (`test_reliability_fuzz_*.py`, `bench/fuzz.py`).

- `mutations()`: a hypothesis strategy of byte-level edits (bit flips, "interesting"
  integers written over counts and lengths, deletions, insertions, truncation) applied
  by `mutate()` to a real file's bytes.
- `case_file()`: one case's bytes in a fresh file of the shared `workdir` (the module
  fixture in tests/unit/conftest.py), deleted afterwards.
- `check_load()`: runs one load under a time budget (SIGALRM) and tracemalloc, and
  asserts it either succeeds or raises one of the project's typed errors — with a
  message — and that its peak allocation stays proportional to the file.
- Writers of tiny but real files of each format (GGUF through the `gguf` package,
  llama2.c v0/v2 checkpoints, llama2.c tokenizer.bin, WAV).

`HEARTH_FUZZ_SCALE` (default 1) multiplies every test's example count; `bench/fuzz.py`
sets it to run ten times as many cases.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import tempfile
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

FUZZ_SCALE = max(1, int(os.environ.get("HEARTH_FUZZ_SCALE", "1")))

INTERESTING_INTS = (
    0, 1, 2, 3, 7, 8, 9, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 2**62, 2**63 - 1, 2**63, 2**64 - 1,
)
"""Values that break size arithmetic: zero, one, sign and width boundaries."""


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for one fuzz test: `examples` cases (times the scale), no
    wall-clock deadline (the per-case budget is SIGALRM's) and no database writes."""
    return settings(
        max_examples=examples * FUZZ_SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
    )


@dataclass(frozen=True)
class Edit:
    """One byte-level change; `mutate` applies a list of them in order."""

    kind: str
    """"flip", "byte", "u16", "u32", "u64", "delete" or "insert"."""
    position: int
    """Fraction of the mutable region (0..1) where the edit lands."""
    value: int
    payload: bytes = b""


def _edits() -> st.SearchStrategy[Edit]:
    position = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
    number = st.one_of(st.sampled_from(INTERESTING_INTS), st.integers(0, 2**64 - 1))
    return st.one_of(
        st.builds(Edit, st.just("flip"), position, st.integers(0, 7)),
        st.builds(Edit, st.just("byte"), position, st.integers(0, 255)),
        st.builds(Edit, st.sampled_from(["u16", "u32", "u64"]), position, number),
        st.builds(Edit, st.just("delete"), position, st.integers(1, 64)),
        st.builds(Edit, st.just("insert"), position, st.just(0),
                  st.binary(min_size=1, max_size=32)),
    )


@dataclass(frozen=True)
class Mutation:
    edits: tuple[Edit, ...]
    truncate_at: float | None
    """Keep this fraction of the result (None keeps it whole)."""


def mutations(max_edits: int = 6) -> st.SearchStrategy[Mutation]:
    """Up to `max_edits` edits, and sometimes a truncation."""
    return st.builds(
        Mutation,
        st.lists(_edits(), min_size=0, max_size=max_edits).map(tuple),
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0, allow_nan=False)),
    )


def mutate(data: bytes, mutation: Mutation, region: int | None = None) -> bytes:
    """`data` with the edits applied inside its first `region` bytes (all of it when None)."""
    buf = bytearray(data)
    for edit in mutation.edits:
        limit = min(region or len(buf), len(buf))
        if limit == 0:
            break
        at = min(int(edit.position * limit), limit - 1)
        if edit.kind == "flip":
            buf[at] ^= 1 << edit.value
        elif edit.kind == "byte":
            buf[at] = edit.value
        elif edit.kind in ("u16", "u32", "u64"):
            width = {"u16": 2, "u32": 4, "u64": 8}[edit.kind]
            raw = (edit.value % (1 << (8 * width))).to_bytes(width, "little")
            buf[at : at + width] = raw[: len(buf) - at]
        elif edit.kind == "delete":
            del buf[at : at + edit.value]
        elif edit.kind == "insert":
            buf[at:at] = edit.payload
    if mutation.truncate_at is not None:
        del buf[int(mutation.truncate_at * len(buf)) :]
    return bytes(buf)


@contextmanager
def case_file(directory: Path, data: bytes, suffix: str) -> Iterator[Path]:
    """`data` in a new file of `directory`, deleted when the block ends. A fresh name per
    case: a file still memory-mapped by an earlier case is never rewritten under it."""
    fd, name = tempfile.mkstemp(suffix=suffix, dir=directory)
    with open(fd, "wb") as fh:
        fh.write(data)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink()


class CaseTimeout(BaseException):
    """A single load ran past its time budget (a BaseException so no `except Exception`
    in the code under test can swallow it)."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Raise `CaseTimeout` in the main thread if the block runs longer than `seconds`."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"a single load took longer than {seconds} s (a hang?)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_load(
    load: Callable[[], Any],
    *,
    allowed: tuple[type[BaseException], ...],
    file_bytes: int,
    budget_seconds: float = 20.0,
    memory_factor: float = 16.0,
    memory_slack_bytes: int = 16 * 1024 * 1024,
) -> str:
    """Run `load()`; return "loaded" or "rejected" (an `allowed` error with a message).

    Any other exception propagates (hypothesis reports the smallest input causing it);
    a hang raises `CaseTimeout`; a peak Python/numpy allocation above
    `memory_factor * file_bytes + memory_slack_bytes` fails the assertion.
    """
    tracemalloc.start()
    outcome = "loaded"
    try:
        with time_budget(budget_seconds):
            try:
                load()
            except allowed as exc:
                assert str(exc).strip(), f"{type(exc).__name__} without a message"
                outcome = "rejected"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    limit = memory_factor * file_bytes + memory_slack_bytes
    assert peak <= limit, f"peak allocation {peak} bytes for a {file_bytes}-byte file"
    with contextlib.suppress(InvalidArgument):  # outside a hypothesis test there is no tally
        event(outcome)  # counted by pytest --hypothesis-show-statistics
    return outcome


@dataclass(frozen=True)
class Sample:
    """A file's bytes to mutate (kept out of hypothesis' failure report)."""

    name: str
    data: bytes = field(repr=False)


# ---------------------------------------------------------------- tiny real files


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def byte_level_vocab() -> list[str]:
    """GPT-2's byte-to-unicode alphabet (every byte gets a printable character)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tiny_gguf(path: Path, *, quantized: bool = True) -> Path:
    """A complete llama-architecture GGUF (1 layer, dim 32, byte-level BPE vocabulary of
    259 tokens + 2 merges, chatml-style specials), written with the `gguf` package."""
    import gguf

    dim, hidden, heads, kv_heads = 32, 64, 4, 2
    head_dim = dim // heads
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = specials + byte_level_vocab() + ["he", "hel"]
    vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("hearth-fuzz-tiny")
    writer.add_context_length(64)
    writer.add_embedding_length(dim)
    writer.add_feed_forward_length(hidden)
    writer.add_block_count(1)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (vocab - 3))
    writer.add_token_merges(["h e", "he l"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n"
                             "{{ m.content }}<|im_end|>\n{% endfor %}")
    rng = _rng(7)

    def matrix(name: str, rows: int, cols: int) -> None:
        values = (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32)
        if quantized:
            q = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, q, raw_shape=q.shape,
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, values)

    def vector(name: str, size: int) -> None:
        writer.add_tensor(name, np.ones(size, dtype=np.float32))

    matrix("token_embd.weight", vocab, dim)
    vector("blk.0.attn_norm.weight", dim)
    matrix("blk.0.attn_q.weight", heads * head_dim, dim)
    matrix("blk.0.attn_k.weight", kv_heads * head_dim, dim)
    matrix("blk.0.attn_v.weight", kv_heads * head_dim, dim)
    matrix("blk.0.attn_output.weight", dim, heads * head_dim)
    vector("blk.0.ffn_norm.weight", dim)
    matrix("blk.0.ffn_gate.weight", hidden, dim)
    matrix("blk.0.ffn_down.weight", dim, hidden)
    matrix("blk.0.ffn_up.weight", hidden, dim)
    vector("output_norm.weight", dim)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@dataclass(frozen=True)
class TinyLlama2cShape:
    dim: int = 16
    hidden_dim: int = 32
    n_layers: int = 1
    n_heads: int = 2
    n_kv_heads: int = 1
    vocab_size: int = 32
    seq_len: int = 8


def write_llama2c(path: Path, version: int, shape: TinyLlama2cShape = TinyLlama2cShape(),
                  shared: bool = True, group_size: int = 8) -> Path:
    """A llama2.c checkpoint in the layout of karpathy/llama2.c's export (v0 or v2)."""
    s = shape
    head_dim = s.dim // s.n_heads
    kv_dim = s.n_kv_heads * head_dim
    rng = _rng(11 + version)
    per_layer = [(s.dim, s.dim), (kv_dim, s.dim), (kv_dim, s.dim), (s.dim, s.dim)]
    ffn = [(s.hidden_dim, s.dim), (s.dim, s.hidden_dim), (s.hidden_dim, s.dim)]

    def weights(shape_: tuple[int, ...]) -> np.ndarray:
        return (rng.standard_normal(shape_) * 0.1).astype(np.float32)

    def q80(values: np.ndarray) -> bytes:
        groups = values.reshape(-1, group_size)
        scale = np.abs(groups).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        q = np.round(groups / scale[:, None]).astype(np.int8)
        return q.tobytes() + scale.astype(np.float32).tobytes()

    out = bytearray()
    vocab_field = s.vocab_size if shared else -s.vocab_size
    ints = (s.dim, s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads, vocab_field, s.seq_len)
    if version == 0:
        out += struct.pack("<7i", *ints)
        out += weights((s.vocab_size, s.dim)).tobytes()
        out += np.ones(s.n_layers * s.dim, np.float32).tobytes()
        for shape_ in per_layer:
            for _ in range(s.n_layers):
                out += weights(shape_).tobytes()
        out += np.ones(s.n_layers * s.dim, np.float32).tobytes()
        for shape_ in ffn:
            for _ in range(s.n_layers):
                out += weights(shape_).tobytes()
        out += np.ones(s.dim, np.float32).tobytes()
        out += np.zeros(s.seq_len * head_dim, np.float32).tobytes()  # legacy RoPE tables
        if not shared:
            out += weights((s.vocab_size, s.dim)).tobytes()
    else:
        header = struct.pack("<Ii", 0x616B3432, 2) + struct.pack("<7i", *ints)
        header += struct.pack("<B", int(shared)) + struct.pack("<i", group_size)
        out += header + b"\0" * (256 - len(header))
        out += np.ones(2 * s.n_layers * s.dim + s.dim, np.float32).tobytes()
        out += q80(weights((s.vocab_size, s.dim)))
        for shape_ in per_layer + ffn:
            for _ in range(s.n_layers):
                out += q80(weights(shape_))
        if not shared:
            out += q80(weights((s.vocab_size, s.dim)))
    path.write_bytes(bytes(out))
    return path


def write_llama2c_tokenizer(path: Path, vocab_size: int = 300) -> Path:
    """A tokenizer.bin as llama2.c's tokenizer export writes it: max length, then per
    token (float32 score, int32 length, bytes); ids 3..258 are the <0xNN> byte tokens."""
    texts = ["<unk>", "\n<s>\n", "\n</s>\n"] + [f"<0x{b:02X}>" for b in range(256)]
    words = [" ", " the", " a", "he", "llo", " hello", "wor", "ld", " world", "in", "on"]
    while len(texts) < vocab_size:
        texts.append(words[len(texts) % len(words)] + ("" if len(texts) < 269 else
                                                       str(len(texts))))
    encoded = [t.encode("utf-8") for t in texts[:vocab_size]]
    out = bytearray(struct.pack("<i", max(len(e) for e in encoded)))
    for i, raw in enumerate(encoded):
        out += struct.pack("<fi", -float(i), len(raw)) + raw
    path.write_bytes(bytes(out))
    return path


def write_wav(path: Path, seconds: float = 0.05, rate: int = 16000, channels: int = 1) -> Path:
    """A 16-bit PCM WAV of a quiet tone."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 3000).astype(np.int16)
    frames = np.repeat(samples[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return path
