"""Golden agreement of the numpy runner with llama-cpp-python on the bundled SmolLM2-135M
(its Q4_1 file and Hearth's Q8_0 re-quantization).

For each of 10 prompts llama.cpp produces a greedy continuation of 48 tokens, recording
its logits. The numpy runner reads the prompt plus that continuation as one batch
(teacher forcing: up to the first disagreement this is exactly its own greedy run, since
its input is the same), so each position yields its greedy choice and its logits:

- tokens: the runner's greedy continuation equals llama.cpp's token for token, except
  where llama.cpp's two best logits differ by less than `TIE_MARGIN` at the divergence.
  Every divergence is printed (run with -s) with its margin.
- logits at every prompt position agree within `MAX_LOGIT_ERROR` (absolute, on logits
  spanning about ±30) and on average within `MEAN_LOGIT_ERROR`.

Why the tolerances are not tighter: the runner reproduces llama.cpp's arithmetic (8-bit
activation rounding per block of 32 with float16 scales, float16 KV cache, float16
queries and attention weights): with F32 weights the logits agree to 3e-5, and through
one Q8_0 layer most tokens agree to 2e-5. But llama.cpp sums exact integer block
products in its own order and the runner sums float32 products in BLAS's; the last-bit
differences now and then flip a float16 or int8 rounding (one such token differs by 0.25
after a single layer), and over 30 layers this adds up to about 0.2 logits on average
(2 at worst). Divergences therefore
happen where llama.cpp's margin is small but not always below the 0.05 the issue hoped
for: measured 0.001-0.34 on these prompts (8 of 19 divergences above 0.05), so
`TIE_MARGIN` is 0.5.

One prompt is also generated token by token through `forward` (the decode path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine.numpy_runner.loader import load_model

NEW_TOKENS = 48
TIE_MARGIN = 0.5
ISSUE_MARGIN = 0.05
"""The margin the issue asked for: divergences above it are reported separately."""
MAX_LOGIT_ERROR = 3.0
MEAN_LOGIT_ERROR = 0.3

CHAT = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{}"
CHAT_END = "<|im_end|>\n<|im_start|>assistant\n"
PROMPTS = [
    CHAT.format("What is the capital of France? Answer in one sentence.") + CHAT_END,
    CHAT.format("Give me three tips for sleeping better.") + CHAT_END,
    CHAT.format("Write a haiku about the sea.") + CHAT_END,
    CHAT.format("How many legs does a spider have?") + CHAT_END,
    CHAT.format("Translate 'good morning' into Spanish and German.") + CHAT_END,
    "Once upon a time, in a small village,",
    "def fibonacci(n):\n",
    "The three primary colors are",
    "Photosynthesis is the process by which",
    "1, 2, 3, 5, 8, 13,",
]


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread() -> Iterator[None]:
    """As the engine does by default (see engine.numpy_runner.threads): spinning BLAS
    threads are many times slower on a shared machine."""
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module", params=["q4_1", "q8_0"])
def model_file(request: pytest.FixtureRequest) -> Path:
    name = "smollm2_gguf" if request.param == "q4_1" else "smollm2_q8_gguf"
    return request.getfixturevalue(name)


def llama_greedy(llm: object, prompt: list[int]) -> tuple[np.ndarray, list[int], list[float]]:
    """llama.cpp's logits at the prompt positions, its greedy continuation and, for each
    generated token, the gap between its two best logits."""
    llm.reset()
    llm.eval(prompt)
    prompt_logits = np.array(llm.scores[: len(prompt)], dtype=np.float32)
    tokens, margins = [], []
    for _ in range(NEW_TOKENS):
        row = np.asarray(llm.scores[llm.n_tokens - 1])
        best, second = np.sort(np.partition(row, -2)[-2:])[::-1]
        token = int(row.argmax())
        tokens.append(token)
        margins.append(float(best - second))
        llm.eval([token])
    return prompt_logits, tokens, margins


def first_divergence(choices: list[int], reference: list[int]) -> int | None:
    for i, (mine, theirs) in enumerate(zip(choices, reference, strict=True)):
        if mine != theirs:
            return i
    return None


def test_greedy_tokens_and_prompt_logits_agree_with_llama_cpp(model_file: Path) -> None:
    llm = llama_cpp.Llama(str(model_file), n_ctx=512, n_batch=512, logits_all=True,
                          verbose=False)
    transformer = load_model(model_file, mode="mmap", context_length=512, batch=128).transformer
    near_ties, failures, wide, errors = [], [], [], []
    for text in PROMPTS:
        prompt = llm.tokenize(text.encode(), add_bos=True, special=True)
        ref_logits, ref_tokens, margins = llama_greedy(llm, prompt)

        sequence = prompt + ref_tokens[:-1]
        logits = transformer.forward_batch(sequence, 0, all_logits=True)
        errors.append(np.abs(logits[: len(prompt)] - ref_logits))
        choices = [int(t) for t in logits[len(prompt) - 1 :].argmax(axis=1)]
        at = first_divergence(choices, ref_tokens)
        if at is not None:
            case = (f"{model_file.name} {text[-40:]!r}: token {at} numpy {choices[at]} vs "
                    f"llama.cpp {ref_tokens[at]}, llama.cpp top-2 margin {margins[at]:.3f}")
            (near_ties if margins[at] < TIE_MARGIN else failures).append(case)
            if margins[at] >= ISSUE_MARGIN:
                wide.append(case)

    for case in near_ties:
        print("divergence at a near tie:", case)
    all_errors = np.concatenate([e.ravel() for e in errors])
    print(f"{model_file.name}: prompt logits max |diff| {all_errors.max():.3f}, "
          f"mean {all_errors.mean():.4f}; {len(near_ties)} of {len(PROMPTS)} prompts diverge "
          f"at a near tie, {len(wide)} of them with a margin above {ISSUE_MARGIN}")
    assert not failures, "\n".join(failures)
    assert all_errors.max() < MAX_LOGIT_ERROR
    assert all_errors.mean() < MEAN_LOGIT_ERROR
    llm.close()


def test_token_by_token_decode_agrees(smollm2_q8_gguf: Path) -> None:
    llm = llama_cpp.Llama(str(smollm2_q8_gguf), n_ctx=256, logits_all=True, verbose=False)
    prompt = llm.tokenize(PROMPTS[0].encode(), add_bos=True, special=True)
    _, ref_tokens, margins = llama_greedy(llm, prompt)
    llm.close()
    transformer = load_model(smollm2_q8_gguf, mode="cache", context_length=256).transformer
    logits = transformer.forward_batch(prompt, 0)
    choices = []
    for i in range(24):
        token = int(logits.argmax())
        choices.append(token)
        if token != ref_tokens[i]:
            break
        logits = transformer.forward(token, len(prompt) + i)
    at = first_divergence(choices, ref_tokens[: len(choices)])
    assert at is None or margins[at] < TIE_MARGIN, (at, margins[at] if at is not None else 0)
