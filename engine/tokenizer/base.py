"""What every tokenizer shares: the vocabulary, special tokens, decoding, streaming.

A `Tokenizer` turns text into the token ids of one model and back. The concrete
kinds (GPT-2 byte-level BPE, SentencePiece-style score merging) only differ in how
they cut a run of ordinary text into tokens; everything around it follows llama.cpp
(`llama-vocab.cpp`) so that ids match token for token:

* special tokens are cut out of the text first, longest text first; control tokens
  only when `parse_special` is on, user-defined tokens always;
* BOS is prepended when `add_special` is on and the model asks for it
  (`tokenizer.ggml.add_bos_token`);
* decoding drops control tokens unless asked for them.
"""

from __future__ import annotations

import codecs
import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum


class TokenType(IntEnum):
    """`tokenizer.ggml.token_type` values (SentencePiece's piece types)."""

    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


# Token texts llama.cpp (0.3.36's llama_vocab::impl::load) treats as "end of
# generation" whatever their declared type; such tokens also become control tokens.
EOG_TEXTS = frozenset(
    {
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
        "<|flush|>",
        "<|calls|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "</s>",
        "<|eom_id|>",
        "<EOT>",
        "_<EOT>",
        "[EOT]",
        "[EOS]",
        "<|end_of_text|>",
        "<end_of_utterance>",
        "<eos>",
        "<turn|>",
        "<|tool_response>",
        "<｜end▁of▁sentence｜>",
        "[e~[",
    }
)
# Fill-in-the-middle pad/repo/separator tokens also end generation in llama.cpp
# (the first text of each group found in the vocabulary).
FIM_EOG_TEXTS = (
    ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    ("<|file_sep|>",),
)


class Vocabulary:
    """Token texts, scores and types, plus the lookups every tokenizer needs.

    `texts` are the pieces exactly as stored in the model file (GPT-2 byte-encoded
    characters for "gpt2" vocabularies, "▁" for spaces in SentencePiece ones).
    """

    def __init__(
        self,
        texts: Sequence[str],
        scores: Sequence[float] | None = None,
        types: Sequence[int] | None = None,
    ) -> None:
        self.texts: list[str] = list(texts)
        n = len(self.texts)
        self.scores: list[float] = [float(s) for s in scores] if scores is not None else [0.0] * n
        kinds = list(TokenType)
        self.types: list[TokenType] = (
            [kinds[t] if 0 <= t < len(kinds) else TokenType.UNDEFINED for t in types]
            if types is not None
            else [TokenType.NORMAL] * n
        )
        # A later duplicate wins, as in llama.cpp's token_to_id map.
        self.ids: dict[str, int] = {text: i for i, text in enumerate(self.texts)}
        self._mark_end_of_generation_tokens()

    def __len__(self) -> int:
        return len(self.texts)

    def _mark_end_of_generation_tokens(self) -> None:
        """Collect end-of-generation ids; such tokens are always control tokens."""
        eog: set[int] = set()
        for text in EOG_TEXTS:
            if text in self.ids:
                eog.add(self.ids[text])
        for alternatives in FIM_EOG_TEXTS:
            for text in alternatives:
                if text in self.ids:
                    eog.add(self.ids[text])
                    break
        for i in eog:
            if self.types[i] not in (TokenType.CONTROL, TokenType.UNKNOWN):
                self.types[i] = TokenType.CONTROL
        # llama.cpp's exceptions: in gpt-oss / solar-open vocabularies "<|end|>" ends
        # a message, not the reply; in gemma4 / plamo2 ones "</s>" is ordinary text.
        texts = {self.texts[i]: i for i in eog}
        if "<|end|>" in texts and (
            {"<|return|>", "<|call|>"} <= texts.keys() or {"<|calls|>", "<|flush|>"} <= texts.keys()
        ):
            eog.discard(texts["<|end|>"])
            self.types[texts["<|end|>"]] = TokenType.USER_DEFINED
        if "</s>" in texts and ({"<|tool_response>", "<|plamo:eos|>"} & texts.keys()):
            eog.discard(texts["</s>"])
            self.types[texts["</s>"]] = TokenType.NORMAL
        self.end_of_generation_ids = frozenset(eog)

    def special_ids(self) -> list[int]:
        """Control, user-defined and unknown tokens: the ones cut out of text first."""
        special = (TokenType.CONTROL, TokenType.USER_DEFINED, TokenType.UNKNOWN)
        return [i for i, t in enumerate(self.types) if t is not TokenType.NORMAL and t in special]

    def special_tokens_longest_first(self) -> list[tuple[str, int, bool]]:
        """(text, id, is_control_or_unknown) of each special token, longest text first."""
        found = [
            (self.texts[i], i, self.types[i] != TokenType.USER_DEFINED)
            for i in self.special_ids()
            if self.texts[i]
        ]
        found.sort(key=lambda item: (-len(item[0].encode("utf-8")), item[1]))
        return found


class WordCache:
    """Token ids of words already encoded, so a word that recurs is merged once.

    Cleared when it reaches `limit` entries: prompts repeat a small set of words, and
    clearing keeps memory bounded without the bookkeeping of an LRU."""

    def __init__(self, encode_word: Callable[[str], Sequence[int]], limit: int = 65536) -> None:
        self._encode_word = encode_word
        self._limit = limit
        self._ids: dict[str, Sequence[int]] = {}

    def __contains__(self, word: object) -> bool:
        return word in self._ids

    def encode(self, words: Iterable[str]) -> list[int]:
        ids: list[int] = []
        cache = self._ids
        for word in words:
            cached = cache.get(word)
            if cached is None:
                cached = self._encode_word(word)
                if len(cache) >= self._limit:
                    cache.clear()
                cache[word] = cached
            ids.extend(cached)
        return ids


def merge_pairs(
    symbols: list[str], pair_key: Callable[[str, str], float | int | None]
) -> list[str]:
    """Repeatedly merge the best adjacent pair of `symbols` until none can merge.

    `pair_key(left, right)` ranks a pair (smaller is better) or returns None when the
    pair cannot merge. Among equal keys the leftmost pair wins. This is the work
    queue of llama.cpp's SPM and BPE sessions: a heap of candidate pairs, stale
    entries skipped when popped, new candidates pushed around each merge.
    """
    n = len(symbols)
    if n < 2:
        return symbols
    text = list(symbols)
    prev = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    # (key, left index, right index, combined length when the pair was proposed)
    heap: list[tuple[float | int, int, int, int]] = []

    def propose(left: int, right: int) -> None:
        key = pair_key(text[left], text[right])
        if key is not None:
            heapq.heappush(heap, (key, left, right, len(text[left]) + len(text[right])))

    for i in range(n - 1):
        propose(i, i + 1)

    while heap:
        _, left, right, size = heapq.heappop(heap)
        left_text, right_text = text[left], text[right]
        # A pair is stale once either side was merged into something else.
        if not left_text or not right_text or len(left_text) + len(right_text) != size:
            continue
        text[left] = left_text + right_text
        text[right] = ""
        nxt[left] = nxt[right]
        if nxt[right] >= 0:
            prev[nxt[right]] = left
        if prev[left] >= 0:
            propose(prev[left], left)
        if nxt[left] >= 0:
            propose(left, nxt[left])
    return [t for t in text if t]


class Tokenizer(ABC):
    """Text <-> token ids for one model, matching llama.cpp's ids exactly."""

    def __init__(
        self,
        vocab: Vocabulary,
        *,
        bos_id: int | None,
        eos_id: int | None,
        add_bos: bool,
        add_eos: bool = False,
        add_space_prefix: bool = False,
        clean_spaces: bool = False,
    ) -> None:
        self.vocab = vocab
        self._bos_id = bos_id if bos_id is not None and 0 <= bos_id < len(vocab) else None
        self._eos_id = eos_id if eos_id is not None and 0 <= eos_id < len(vocab) else None
        self.add_bos = add_bos and self._bos_id is not None
        self.add_eos = add_eos and self._eos_id is not None
        self.add_space_prefix = add_space_prefix
        self.clean_spaces = clean_spaces
        self._specials = vocab.special_tokens_longest_first()
        eot = set(vocab.end_of_generation_ids)
        if self._eos_id is not None:
            eot.add(self._eos_id)
        self._eot_ids = frozenset(eot)
        self._special_ids = frozenset(vocab.special_ids())
        pieces = [self._piece(i) for i in range(len(vocab))]
        suppressed = (TokenType.CONTROL, TokenType.UNKNOWN)
        self._pieces_special: list[bytes] = pieces
        self._pieces: list[bytes] = [
            b"" if vocab.types[i] in suppressed else p for i, p in enumerate(pieces)
        ]

    # ---- what a concrete tokenizer provides

    @abstractmethod
    def _encode_fragment(self, text: str, after_special: bool) -> list[int]:
        """Ids of a run of ordinary text; `after_special` is true at the start or
        right after a special token (where SentencePiece adds its space prefix)."""

    @abstractmethod
    def _normal_piece(self, text: str) -> bytes:
        """Bytes a NORMAL token's stored text stands for."""

    # ---- public API

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def bos_id(self) -> int | None:
        """Beginning-of-sequence token, or None when the model has none."""
        return self._bos_id

    @property
    def eos_id(self) -> int | None:
        """End-of-sequence token, or None when the model has none."""
        return self._eos_id

    @property
    def eot_ids(self) -> frozenset[int]:
        """Every token that ends a reply: EOS plus end-of-turn tokens (<|im_end|>, ...)."""
        return self._eot_ids

    @property
    def special_ids(self) -> frozenset[int]:
        """Control, user-defined and unknown tokens."""
        return self._special_ids

    def encode(
        self, text: str, add_special: bool = False, parse_special: bool = False
    ) -> list[int]:
        """Token ids of `text`, as llama.cpp's `llama_tokenize(text, add_special, parse_special)`.

        `add_special` adds BOS (and EOS) where the model asks for them
        (`tokenizer.ggml.add_bos_token` / `add_eos_token`). `parse_special` reads
        control-token texts such as "<|im_start|>" as those single tokens (a chat
        prompt needs it; user input must not have it).
        """
        ids: list[int] = []
        if add_special and self.add_bos and self._bos_id is not None:
            ids.append(self._bos_id)
        after_special = True
        for fragment in self._partition(text, parse_special):
            if isinstance(fragment, int):
                ids.append(fragment)
                after_special = True
            else:
                ids.extend(self._encode_fragment(fragment, after_special))
                after_special = False
        if add_special and self.add_eos and self._eos_id is not None:
            ids.append(self._eos_id)
        return ids

    def encode_prompt(self, text: str) -> list[int]:
        """Ids of a rendered chat prompt: special-token texts are parsed, and BOS is
        prepended when the model wants it unless the template already wrote it."""
        ids = self.encode(text, add_special=False, parse_special=True)
        if self.add_bos and self._bos_id is not None and (not ids or ids[0] != self._bos_id):
            ids.insert(0, self._bos_id)
        return ids

    def token_bytes(self, token_id: int, special: bool = False) -> bytes:
        """Raw bytes of one token (possibly part of a UTF-8 character).

        Control tokens give b"" unless `special` is set, as llama.cpp's token_to_piece.
        """
        pieces = self._pieces_special if special else self._pieces
        if not 0 <= token_id < len(pieces):
            raise ValueError(
                f"token id {token_id} is outside the vocabulary (0..{len(pieces) - 1})"
            )
        return pieces[token_id]

    def decode(self, ids: Sequence[int], special: bool = False) -> str:
        """Text of `ids`: the tokens' bytes joined, invalid UTF-8 as U+FFFD.

        Where SentencePiece put a space in front of the text, it is taken off again,
        so `decode(encode(t)) == t` with or without `add_special`: ids starting with
        BOS decode as llama-cpp-python's `Llama.detokenize`, others as llama.cpp's
        `llama_detokenize`. Control tokens are left out unless `special` is set.
        """
        pieces = [self.token_bytes(int(i), special) for i in ids]
        data = b"".join(pieces)
        if self.add_space_prefix and pieces:
            if int(ids[0]) == self._bos_id:
                data = data[1:] if data.startswith(b" ") else data
            elif pieces[0].startswith(b" "):
                data = data[1:]
        text = data.decode("utf-8", errors="replace")
        return _clean_up_spaces(text) if self.clean_spaces else text

    def token_text(self, token_id: int) -> str:
        """The token's text as stored in the model file (for debugging and tests)."""
        return self.vocab.texts[token_id]

    # ---- shared machinery

    def _piece(self, token_id: int) -> bytes:
        kind = self.vocab.types[token_id]
        text = self.vocab.texts[token_id]
        if kind in (TokenType.CONTROL, TokenType.UNKNOWN, TokenType.USER_DEFINED):
            return text.encode("utf-8")
        if kind == TokenType.NORMAL:
            return self._normal_piece(text)
        if kind == TokenType.BYTE:
            return _byte_token_value(text)
        return b""  # unused/undefined tokens render as nothing, like in llama.cpp

    def _partition(self, text: str, parse_special: bool) -> list[str | int]:
        """Split `text` into raw fragments and special-token ids (llama.cpp's
        tokenizer_st_partition: each special token, longest first, cuts every
        remaining raw fragment at each of its occurrences)."""
        fragments: list[str | int] = [text] if text else []
        for token_text, token_id, is_control in self._specials:
            if is_control and not parse_special:
                continue
            if token_text not in text:
                continue
            out: list[str | int] = []
            for fragment in fragments:
                if isinstance(fragment, int) or token_text not in fragment:
                    out.append(fragment)
                    continue
                parts = fragment.split(token_text)
                for k, part in enumerate(parts):
                    if k:
                        out.append(token_id)
                    if part:
                        out.append(part)
            fragments = out
        return fragments


def _byte_token_value(text: str) -> bytes:
    """The byte of a "<0xAB>" token."""
    try:
        return bytes([int(text[3:5], 16)])
    except ValueError:
        return b""


def _clean_up_spaces(text: str) -> str:
    """llama.cpp's `clean_spaces` detokenizer pass (HF clean_up_tokenization_spaces)."""
    for before, after in ((" ?", "?"), (" !", "!"), (" .", "."), (" ,", ",")):
        text = text.replace(before, after)
    text = text.replace(" ' ", "'")
    for before, after in ((" 's", "'s"), (" 'm", "'m"), (" 're", "'re"), (" 've", "'ve")):
        text = text.replace(before, after)
    return text


class IncrementalDecoder:
    """Turns a stream of token ids into text, holding back incomplete UTF-8.

    A character split across tokens (emoji, CJK in byte-fallback vocabularies) is
    emitted once its last byte arrives; `feed` never returns a partial character.
    """

    def __init__(self, tokenizer: Tokenizer, special: bool = False) -> None:
        self._tokenizer = tokenizer
        self._special = special
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        """Text completed by `token_id` (may be "")."""
        return self._utf8.decode(self._tokenizer.token_bytes(token_id, self._special))

    def flush(self) -> str:
        """Whatever is left at the end of the stream (a broken tail becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)

    def reset(self) -> None:
        self._utf8.reset()
