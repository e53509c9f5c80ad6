"""GPT-2 style byte-level BPE (GGUF `tokenizer.ggml.model = "gpt2"`), e.g. SmolLM2, Llama 3, Qwen2.

Encoding follows llama.cpp's llm_tokenizer_bpe: the text is cut into words by the
model's pre-tokenizer (a list of regular expressions chosen by `tokenizer.ggml.pre`,
each splitting the pieces the previous one left), each word's UTF-8 bytes are mapped
to GPT-2's printable byte alphabet, and the word is merged by merge rank (lowest
rank first, leftmost on ties). Words repeat a lot in prompts, so each word's ids are
cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import regex

from engine.errors import ModelFormatError
from engine.tokenizer.base import Tokenizer, Vocabulary, WordCache, merge_pairs
from engine.tokenizer.unicode_newer import ASSIGNED_AFTER_15_1

# The split patterns of llama.cpp's pre-tokenizers (llama-vocab.cpp). Where llama.cpp
# runs a hand-written splitter for a pattern, the hand-written one also takes any
# whitespace the pattern leaves over ("\s+"), so that alternative is added here.
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN35 = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+"
    r"|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class PreTokenizer:
    """How one family of models cuts text into words before merging."""

    patterns: tuple[str, ...]
    ignore_merges: bool = False
    """A word that is itself a token becomes that token without merging (Llama 3)."""
    add_bos: bool = False
    """The default for `add_bos_token` when the file does not say."""
    clean_spaces: bool = True
    """Apply llama.cpp's clean-up of " ," / " 's" when decoding."""


_FAMILIES: dict[str, PreTokenizer] = {
    "default": PreTokenizer((r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]")),
    "gpt2": PreTokenizer((_GPT2,)),
    "starcoder": PreTokenizer((r"\p{N}", _GPT2)),
    "starcoder-raw": PreTokenizer((r"\p{N}", _GPT2), clean_spaces=False),
    "falcon": PreTokenizer((r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]")),
    "deepseek-coder": PreTokenizer(
        (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"),
        clean_spaces=False,
    ),
    "llama3": PreTokenizer((_LLAMA3,), ignore_merges=True, add_bos=True),
    "dbrx": PreTokenizer((_LLAMA3,)),
    "qwen2": PreTokenizer((_QWEN2,), clean_spaces=False),
    "stablelm2": PreTokenizer((_QWEN2,)),
    "qwen35": PreTokenizer((_QWEN35,), clean_spaces=False),
}

# Family -> the tokenizer.ggml.pre values llama.cpp maps to it (llama_vocab::impl::load).
_PRE_NAMES: dict[str, str] = {
    "default": "default",
    "gpt2": "gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de a.x-4.0 mellum "
    "modern-bert mpt olmo jais exaone4 jina-v1-en jina-v2-code roberta-bpe",
    "starcoder": "starcoder refact codeshell exaone minerva-7b mellum2",
    "starcoder-raw": "smollm command-r",
    "falcon": "falcon",
    "deepseek-coder": "deepseek-coder",
    "llama3": "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
    "dbrx": "dbrx smaug-bpe",
    "qwen2": "qwen2 deepseek-r1-qwen kormo f2llmv2",
    "stablelm2": "stablelm2 megrez",
    "qwen35": "qwen35",
}
_PRE_TYPES: dict[str, str] = {
    name: family for family, names in _PRE_NAMES.items() for name in names.split()
}
_PRE_TYPES[""] = "default"  # files converted before tokenizer.ggml.pre existed

SUPPORTED_PRE_TYPES = tuple(sorted(k for k in _PRE_TYPES if k))


def pre_tokenizer_for(pre: str) -> PreTokenizer:
    """The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre = pre`."""
    try:
        return _FAMILIES[_PRE_TYPES[pre]]
    except KeyError:
        raise ModelFormatError(
            f"unsupported BPE pre-tokenizer {pre!r} (tokenizer.ggml.pre); "
            f"supported: {', '.join(SUPPORTED_PRE_TYPES)}"
        ) from None


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTE_TO_CHAR = _byte_alphabet()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}
# str.translate table from alphabet characters to the latin-1 character of their byte.
_CHAR_TO_LATIN1 = {ord(c): chr(b) for c, b in _CHAR_TO_BYTE.items()}
# Byte value -> its alphabet character, as a list for fast indexing.
_BYTE_CHARS = [_BYTE_TO_CHAR[b] for b in range(256)]


# Characters newer than llama.cpp's Unicode tables, and the unassigned code point
# they are read as while finding word boundaries.
_NEWER_CHARS = regex.compile(
    "[" + "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in ASSIGNED_AFTER_15_1) + "]"
)
_UNASSIGNED = "\U0010ffff"


class BpeTokenizer(Tokenizer):
    """Byte-level BPE with GPT-2's byte alphabet and a ranked merge list."""

    def __init__(
        self,
        vocab: Vocabulary,
        merges: Sequence[str],
        *,
        pre: str = "default",
        bos_id: int | None,
        eos_id: int | None,
        add_bos: bool | None = None,
        add_eos: bool = False,
    ) -> None:
        self.pre_type = pre
        self._pre = pre_tokenizer_for(pre)
        self._patterns = [regex.compile(p) for p in self._pre.patterns]
        # Byte-level symbols never contain a plain space (GPT-2 writes it "Ġ"), so a
        # merge's own text "left right" is an unambiguous key. The first of
        # duplicate merges keeps its rank, as in llama.cpp.
        ranks = range(len(merges) - 1, -1, -1)
        self._ranks: dict[str, int] = dict(zip(reversed(merges), ranks, strict=True))
        self._word_cache = WordCache(self._encode_word)
        super().__init__(
            vocab,
            bos_id=bos_id,
            eos_id=eos_id,
            add_bos=self._pre.add_bos if add_bos is None else add_bos,
            add_eos=add_eos,
            clean_spaces=self._pre.clean_spaces,
        )

    def _normal_piece(self, text: str) -> bytes:
        try:
            return text.translate(_CHAR_TO_LATIN1).encode("latin-1")
        except UnicodeEncodeError:
            # A character outside GPT-2's byte alphabet stands for itself.
            return b"".join(
                bytes((_CHAR_TO_BYTE[c],)) if c in _CHAR_TO_BYTE else c.encode("utf-8")
                for c in text
            )

    def split_words(self, text: str) -> list[str]:
        """The pre-tokenizer's words (plain text, before byte mapping)."""
        probe = _NEWER_CHARS.sub(_UNASSIGNED, text)
        if probe == text:
            return self._split(text)
        # Cut where the one-for-one substituted text is cut.
        words: list[str] = []
        start = 0
        for word in self._split(probe):
            words.append(text[start : start + len(word)])
            start += len(word)
        return words

    def _split(self, text: str) -> list[str]:
        pieces = [text]
        for pattern in self._patterns:
            out: list[str] = []
            for piece in pieces:
                # Text between matches stays a piece of its own (llama.cpp's
                # unicode_regex_split_stl), so nothing is ever dropped.
                end = 0
                for match in pattern.finditer(piece):
                    start = match.start()
                    if start > end:
                        out.append(piece[end:start])
                    if match.end() > start:
                        out.append(match.group())
                    end = match.end()
                if end < len(piece):
                    out.append(piece[end:])
            pieces = out
        return pieces

    def _encode_fragment(self, text: str, after_special: bool) -> list[int]:
        return self._word_cache.encode(self.split_words(text))

    def _encode_word(self, word: str) -> tuple[int, ...]:
        mapped = "".join(_BYTE_CHARS[b] for b in word.encode("utf-8"))
        token_ids = self.vocab.ids
        if self._pre.ignore_merges and mapped in token_ids:
            return (token_ids[mapped],)
        ranks = self._ranks
        symbols = merge_pairs(list(mapped), lambda a, b: ranks.get(a + " " + b))
        out: list[int] = []
        for symbol in symbols:
            token = token_ids.get(symbol)
            if token is not None:
                out.append(token)
                continue
            # No token for the merged symbol: llama.cpp looks up each of its UTF-8
            # bytes as a one-byte token text, silently skipping the ones it lacks.
            for b in symbol.encode("utf-8"):
                byte_token = token_ids.get(chr(b)) if b < 0x80 else None
                if byte_token is not None:
                    out.append(byte_token)
        return tuple(out)
