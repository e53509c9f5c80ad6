"""SentencePiece-style vocabularies (GGUF `tokenizer.ggml.model = "llama"`): Llama 2, TinyLlama.

Encoding follows llama.cpp's llm_tokenizer_spm: spaces become "▁", a "▁" is put in
front of the text (and after every special token) when the model says
`add_space_prefix`, then the characters are merged pairwise, always taking the pair
whose merged piece has the highest score (leftmost on ties), as long as the merged
piece is in the vocabulary. Characters that end up in no token are spelled as
byte tokens <0xAB>.

llama.cpp merges the whole text at once. When no piece of the vocabulary has a "▁"
after another character (true of Llama's), no merge can cross the start of a word,
so each word is merged on its own, with the same result, and cached.
"""

from __future__ import annotations

import re

from engine.tokenizer.base import Tokenizer, Vocabulary, WordCache, merge_pairs

SPACE = "▁"
_WORD_START = re.compile(f"(?<=[^{SPACE}])(?={SPACE})")
_INNER_SPACE = re.compile(f"[^{SPACE}]{SPACE}")


class SpmTokenizer(Tokenizer):
    """Score-merging tokenizer over a SentencePiece vocabulary with byte fallback."""

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        bos_id: int | None = 1,
        eos_id: int | None = 2,
        add_bos: bool = True,
        add_eos: bool = False,
        add_space_prefix: bool = True,
    ) -> None:
        self._words_are_independent = not any(_INNER_SPACE.search(t) for t in vocab.texts)
        self._word_cache = WordCache(self._merge)
        self._byte_ids: list[int | None] = [
            vocab.ids.get(f"<0x{b:02X}>", vocab.ids.get(chr(b)) if b < 0x80 else None)
            for b in range(256)
        ]
        super().__init__(
            vocab,
            bos_id=bos_id,
            eos_id=eos_id,
            add_bos=add_bos,
            add_eos=add_eos,
            add_space_prefix=add_space_prefix,
        )

    def _normal_piece(self, text: str) -> bytes:
        return text.replace(SPACE, " ").encode("utf-8")

    def _encode_fragment(self, text: str, after_special: bool) -> list[int]:
        if self.add_space_prefix and after_special:
            text = " " + text
        text = text.replace(" ", SPACE)
        if not self._words_are_independent:
            return self._merge(text)
        return self._word_cache.encode(_WORD_START.split(text))

    def _merge(self, text: str) -> list[int]:
        token_ids = self.vocab.ids
        scores = self.vocab.scores

        def pair_key(left: str, right: str) -> float | None:
            token = token_ids.get(left + right)
            # The highest score merges first, so rank by its negative.
            return None if token is None else -scores[token]

        out: list[int] = []
        for symbol in merge_pairs(list(text), pair_key):
            token = token_ids.get(symbol)
            if token is not None:
                out.append(token)
                continue
            for b in symbol.encode("utf-8"):
                byte_token = self._byte_ids[b]
                if byte_token is not None:
                    out.append(byte_token)
        return out
