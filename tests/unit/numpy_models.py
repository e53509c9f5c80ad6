"""Tiny random llama models written by the tests, in every format the numpy runner reads.

One set of float32 weights is written as GGUF (F32, F16, Q8_0, Q4_0, Q4_1, through
Hearth's own GGUF writer in engine.quantize) and as llama2.c checkpoints (v0 with a
shared or separate classifier, v2 with int8 groups), so tests can check that every
reader and tensor type gives the same logits. `reference_logits` is an independent,
deliberately naive float64 implementation of the llama forward pass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.quantize import write_gguf

U32, I32, F32, STRING, ARRAY = 4, 5, 6, 8, 9


@dataclass(frozen=True)
class TinyConfig:
    dim: int = 64
    hidden_dim: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    vocab_size: int = 300
    seq_len: int = 128
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass
class TinyWeights:
    """float32 weights, matrices (out, in)."""

    embedding: np.ndarray
    layers: list[dict[str, np.ndarray]]
    rms_final: np.ndarray
    classifier: np.ndarray | None  # None = tied to the embedding


def random_weights(config: TinyConfig, seed: int = 0, tied: bool = True) -> TinyWeights:
    rng = np.random.default_rng(seed)
    c = config
    kv = c.n_kv_heads * c.head_dim

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(c.dim)).astype(np.float32)

    layers = [
        {
            "rms_att": norm(), "wq": mat(c.dim, c.dim), "wk": mat(kv, c.dim),
            "wv": mat(kv, c.dim), "wo": mat(c.dim, c.dim), "rms_ffn": norm(),
            "w1": mat(c.hidden_dim, c.dim), "w2": mat(c.dim, c.hidden_dim),
            "w3": mat(c.hidden_dim, c.dim),
        }
        for _ in range(c.n_layers)
    ]
    embedding = rng.standard_normal((c.vocab_size, c.dim)).astype(np.float32)
    classifier = None if tied else mat(c.vocab_size, c.dim)
    return TinyWeights(embedding, layers, norm(), classifier)


# ---- vocabulary: <unk> <s> </s>, 256 byte tokens, chatml markers, letters ---------------

SPACE = "\u2581"
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_vocab(size: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary of `size` tokens that can spell any text."""
    texts = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    texts += ["<|im_start|>", "<|im_end|>"]
    types += [3, 3]
    letters = [SPACE] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    letters += [SPACE + chr(c) for c in range(ord("a"), ord("z") + 1)]
    for piece in letters:
        if len(texts) >= size:
            break
        texts.append(piece)
        types.append(1)
    while len(texts) < size:
        texts.append(f"tok{len(texts)}")
        types.append(1)
    scores = [0.0] * 261 + [-float(i) for i in range(size - 261)]
    return texts[:size], scores[:size], types[:size]


def gguf_metadata(config: TinyConfig, chat_template: str = CHATML_TEMPLATE) -> list:
    c = config
    texts, scores, types = tiny_vocab(c.vocab_size)
    return [
        ("general.name", "tiny", STRING, None),
        ("llama.context_length", c.seq_len, U32, None),
        ("llama.embedding_length", c.dim, U32, None),
        ("llama.feed_forward_length", c.hidden_dim, U32, None),
        ("llama.block_count", c.n_layers, U32, None),
        ("llama.attention.head_count", c.n_heads, U32, None),
        ("llama.attention.head_count_kv", c.n_kv_heads, U32, None),
        ("llama.rope.freq_base", c.rope_theta, F32, None),
        ("llama.rope.dimension_count", c.head_dim, U32, None),
        ("llama.attention.layer_norm_rms_epsilon", c.norm_eps, F32, None),
        ("llama.vocab_size", c.vocab_size, U32, None),
        ("tokenizer.ggml.model", "llama", STRING, None),
        ("tokenizer.ggml.tokens", texts, ARRAY, STRING),
        ("tokenizer.ggml.scores", scores, ARRAY, F32),
        ("tokenizer.ggml.token_type", types, ARRAY, I32),
        ("tokenizer.ggml.bos_token_id", 1, U32, None),
        ("tokenizer.ggml.eos_token_id", 2, U32, None),
        ("tokenizer.ggml.unknown_token_id", 0, U32, None),
        ("tokenizer.chat_template", chat_template, STRING, None),
    ]


def gguf_tensors(w: TinyWeights) -> list[tuple[str, np.ndarray]]:
    names = {"rms_att": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
             "wo": "attn_output", "rms_ffn": "ffn_norm", "w1": "ffn_gate", "w2": "ffn_down",
             "w3": "ffn_up"}
    out = [("token_embd.weight", w.embedding)]
    for i, layer in enumerate(w.layers):
        out += [(f"blk.{i}.{names[k]}.weight", v) for k, v in layer.items()]
    out.append(("output_norm.weight", w.rms_final))
    if w.classifier is not None:
        out.append(("output.weight", w.classifier))
    return out


def write_tiny_gguf(path: Path, config: TinyConfig, w: TinyWeights, out_type: str) -> Path:
    write_gguf(path, gguf_metadata(config), iter(gguf_tensors(w)), out_type)
    return path


def _q80(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    groups = w.reshape(-1, group)
    scale = np.abs(groups).max(axis=1) / 127.0
    q = np.round(groups / scale[:, None]).astype(np.int8)
    return q.reshape(-1), scale.astype(np.float32)


def write_llama2c(
    path: Path, config: TinyConfig, w: TinyWeights, version: int, group: int = 32
) -> Path:
    """A llama2.c checkpoint in the layout of karpathy/llama2.c export.py (v0 or v2)."""
    c = config
    shared = w.classifier is None
    ints = (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len)
    with open(path, "wb") as f:
        if version == 0:
            header = list(ints)
            header[5] = c.vocab_size if shared else -c.vocab_size
            f.write(struct.pack("<7i", *header))
            f.write(w.embedding.tobytes())
            for key in ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"):
                for layer in w.layers:
                    f.write(layer[key].tobytes())
            f.write(w.rms_final.tobytes())
            f.write(np.zeros(c.seq_len * c.head_dim, np.float32).tobytes())  # RoPE tables
            if not shared:
                f.write(w.classifier.tobytes())
        else:
            f.write(struct.pack("<Ii", 0x616B3432, 2) + struct.pack("<7i", *ints))
            f.write(struct.pack("<B", int(shared)) + struct.pack("<i", group))
            f.write(b"\0" * (256 - f.tell()))
            for key in ("rms_att", "rms_ffn"):
                for layer in w.layers:
                    f.write(layer[key].tobytes())
            f.write(w.rms_final.tobytes())
            mats = [w.embedding]
            for key in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
                mats += [layer[key] for layer in w.layers]
            if not shared:
                mats.append(w.classifier)
            for m in mats:
                q, s = _q80(m, group)
                f.write(q.tobytes() + s.tobytes())
    return path


def write_llama2c_tokenizer(path: Path, config: TinyConfig) -> Path:
    """tokenizer.bin as llama2.c's tokenizer.py writes it (spaces for ▁, padded BOS/EOS)."""
    texts, scores, _ = tiny_vocab(config.vocab_size)
    texts = [t.replace(SPACE, " ") for t in texts]
    texts[1], texts[2] = "\n<s>\n", "\n</s>\n"
    encoded = [t.encode() for t in texts]
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(b) for b in encoded)))
        for b, score in zip(encoded, scores, strict=True):
            f.write(struct.pack("<fi", score, len(b)) + b)
    return path


def reference_logits(config: TinyConfig, w: TinyWeights, tokens: list[int]) -> np.ndarray:
    """Logits after each token, computed one token and one head at a time in float64."""
    c = config
    hd = c.head_dim
    group = c.n_heads // c.n_kv_heads
    keys: list[list[np.ndarray]] = [[] for _ in range(c.n_layers)]
    values: list[list[np.ndarray]] = [[] for _ in range(c.n_layers)]
    out = []

    def rmsnorm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x) + c.norm_eps) * weight

    def rope(vec: np.ndarray, pos: int) -> np.ndarray:
        vec = vec.copy()
        for i in range(0, hd, 2):
            angle = pos * c.rope_theta ** (-i / hd)
            a, b = vec[i], vec[i + 1]
            vec[i] = a * np.cos(angle) - b * np.sin(angle)
            vec[i + 1] = a * np.sin(angle) + b * np.cos(angle)
        return vec

    for pos, token in enumerate(tokens):
        x = w.embedding[token].astype(np.float64)
        for li, layer in enumerate(w.layers):
            h = rmsnorm(x, layer["rms_att"])
            q = layer["wq"] @ h
            k = layer["wk"] @ h
            v = layer["wv"] @ h
            keys[li].append(np.concatenate([rope(k[j * hd:(j + 1) * hd], pos)
                                            for j in range(c.n_kv_heads)]))
            values[li].append(v)
            heads = []
            for head in range(c.n_heads):
                kvh = head // group
                qh = rope(q[head * hd:(head + 1) * hd], pos)
                scores = np.array([kk[kvh * hd:(kvh + 1) * hd] @ qh for kk in keys[li]])
                scores /= np.sqrt(hd)
                p = np.exp(scores - scores.max())
                p /= p.sum()
                heads.append(sum(pi * vv[kvh * hd:(kvh + 1) * hd]
                                 for pi, vv in zip(p, values[li], strict=True)))
            x = x + layer["wo"] @ np.concatenate(heads)
            h = rmsnorm(x, layer["rms_ffn"])
            gate = layer["w1"] @ h
            up = layer["w3"] @ h
            x = x + layer["w2"] @ (gate / (1 + np.exp(-gate)) * up)
        classifier = w.embedding if w.classifier is None else w.classifier
        out.append(classifier @ rmsnorm(x, w.rms_final))
    return np.array(out)


def stored_weights_gguf(path: Path, config: TinyConfig) -> TinyWeights:
    """The weights as a GGUF file stores them, decoded by the `gguf` package (not by the
    runner's own dequantization, which is what is under test)."""
    import gguf

    reader = gguf.GGUFReader(path)
    values = {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        .reshape(tuple(reversed([int(d) for d in t.shape])))
        for t in reader.tensors
    }
    names = {"rms_att": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v",
             "wo": "attn_output", "rms_ffn": "ffn_norm", "w1": "ffn_gate", "w2": "ffn_down",
             "w3": "ffn_up"}
    layers = [
        {k: values[f"blk.{i}.{n}.weight"] for k, n in names.items()}
        for i in range(config.n_layers)
    ]
    return TinyWeights(values["token_embd.weight"], layers, values["output_norm.weight"],
                       values.get("output.weight"))


def stored_weights_llama2c_v2(w: TinyWeights, group: int = 32) -> TinyWeights:
    """The weights as write_llama2c(version=2) stores them (int8 groups, decoded)."""

    def roundtrip(m: np.ndarray) -> np.ndarray:
        q, s = _q80(m, group)
        return (q.reshape(-1, group) * s[:, None]).reshape(m.shape).astype(np.float32)

    layers = [
        {k: (v if k.startswith("rms") else roundtrip(v)) for k, v in layer.items()}
        for layer in w.layers
    ]
    classifier = None if w.classifier is None else roundtrip(w.classifier)
    return TinyWeights(roundtrip(w.embedding), layers, w.rms_final, classifier)
