"""Pick the next token from a row of logits: greedy or seeded random sampling.

The filters follow llama.cpp's default sampler chain, in its order: repetition
penalty over the last `repeat_last_n` tokens (positive logits divided, negative
ones multiplied by the penalty), then top-k, top-p, min-p, temperature, and a draw
from the softmax with a `numpy.random.Generator` seeded from the options, so a
fixed seed reproduces the same reply. Temperature 0 is greedy (argmax after the
repetition penalty). This runs once per generated token, so it never sorts the
whole vocabulary: top-k uses argpartition and later steps work on the k survivors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.base import GenerationOptions

# Top-p over many candidates first sorts only the best few hundred, which usually
# hold the probability mass already (llama.cpp's adaptive sort does the same).
_PARTIAL_SORT_FROM = 1024
_PARTIAL_SORT_SIZE = 256


class Sampler:
    """Chooses tokens for one generation call (holds its own random state)."""

    def __init__(self, options: GenerationOptions, vocab_size: int) -> None:
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        self.options = options
        self.vocab_size = vocab_size
        self.seed = (
            options.seed
            if options.seed is not None and options.seed >= 0
            else int(np.random.SeedSequence().generate_state(1)[0])
        )
        self._rng = np.random.default_rng(self.seed)

    def sample(self, logits: np.ndarray, recent_tokens: Sequence[int]) -> int:
        """The next token id given this step's `logits` (shape [vocab]) and the
        tokens generated or read so far (only the last `repeat_last_n` matter)."""
        if self.options.temperature <= 0.0:
            return int(np.argmax(self._penalized(logits, recent_tokens)))
        candidates, probs = self.distribution(logits, recent_tokens)
        return int(candidates[self._rng.choice(len(candidates), p=probs)])

    def distribution(
        self, logits: np.ndarray, recent_tokens: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The tokens that survive the filters, most likely first, and the
        probabilities `sample` draws them with (temperature applied)."""
        opts = self.options
        row = self._penalized(logits, recent_tokens)
        candidates = self._top_k(row, opts.top_k)
        values = row[candidates].astype(np.float64)
        best = values.max()
        # Probabilities relative to the best token; `total` normalizes them over
        # every top-k survivor, which is what top-p's running sum is measured in.
        weights = np.exp(values - best)
        total = weights.sum()
        if opts.min_p > 0.0:
            # min-p keeps tokens at least min_p times as likely as the best one.
            # Top-p and min-p both keep a prefix of the sorted candidates, so the
            # min-p cut can come first and spare sorting the rest.
            keep = values >= best + np.log(opts.min_p)
            candidates, values, weights = candidates[keep], values[keep], weights[keep]
        top_p = opts.top_p if 0.0 < opts.top_p < 1.0 else 1.0
        if top_p < 1.0 and len(values) > _PARTIAL_SORT_FROM:
            # Like llama.cpp, first try whether the best few already reach top_p.
            best_few = np.argpartition(-values, _PARTIAL_SORT_SIZE)[:_PARTIAL_SORT_SIZE]
            if weights[best_few].sum() / total >= top_p:
                candidates, values, weights = (
                    candidates[best_few],
                    values[best_few],
                    weights[best_few],
                )
        order = np.argsort(-values)
        candidates, values, weights = candidates[order], values[order], weights[order]
        if top_p < 1.0:
            # The smallest prefix whose probability mass reaches top_p.
            keep_n = int(np.searchsorted(np.cumsum(weights) / total, top_p)) + 1
            candidates, values = candidates[:keep_n], values[:keep_n]
        temperature = opts.temperature if opts.temperature > 0.0 else 1.0
        probs = np.exp((values - values[0]) / temperature)
        return candidates, probs / probs.sum()

    def _penalized(self, logits: np.ndarray, recent_tokens: Sequence[int]) -> np.ndarray:
        row = np.asarray(logits, dtype=np.float32)[: self.vocab_size]
        opts = self.options
        if opts.repeat_penalty != 1.0 and opts.repeat_last_n != 0 and len(recent_tokens):
            row = self._penalize(row, recent_tokens)
        return row

    def _penalize(self, row: np.ndarray, recent_tokens: Sequence[int]) -> np.ndarray:
        last_n = self.options.repeat_last_n
        window = recent_tokens if last_n < 0 else recent_tokens[-last_n:]
        ids = np.unique(np.asarray(window, dtype=np.int64))
        ids = ids[(ids >= 0) & (ids < row.shape[0])]
        if not ids.size:
            return row
        row = row.copy()
        picked = row[ids]
        penalty = self.options.repeat_penalty
        row[ids] = np.where(picked > 0, picked / penalty, picked * penalty)
        return row

    @staticmethod
    def _top_k(row: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k largest logits (all of them when k <= 0 or k >= vocab)."""
        n = row.shape[0]
        if k <= 0 or k >= n:
            return np.arange(n)
        return np.argpartition(row, n - k)[n - k :]
