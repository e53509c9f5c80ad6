"""SentencePiece-style score merging on a hand-made vocabulary."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.tokenizer import IncrementalDecoder, SpmTokenizer, TokenType, Vocabulary

# (text, score): higher scores merge first.
PIECES = [
    ("▁", -1.0),
    ("h", -2.0),
    ("e", -2.0),
    ("l", -2.0),
    ("o", -2.0),
    ("▁h", -3.0),
    ("he", -1.5),
    ("ll", -4.0),
    ("hell", -5.0),
    ("hello", -6.0),
    ("▁hello", -7.0),
    ("▁▁", -8.0),
    ("a", -2.0),
    ("b", -2.0),
    ("ab", -3.0),
    ("bb", -3.0),
]


def make_tokenizer(add_space_prefix: bool = True, extra=()) -> SpmTokenizer:
    texts = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    scores = [0.0] * len(texts)
    for text, score in [*PIECES, *extra]:
        texts.append(text)
        types.append(TokenType.NORMAL)
        scores.append(score)
    return SpmTokenizer(
        Vocabulary(texts, scores, [int(t) for t in types]),
        bos_id=1,
        eos_id=2,
        add_bos=True,
        add_space_prefix=add_space_prefix,
    )


@pytest.fixture(scope="module")
def tok() -> SpmTokenizer:
    return make_tokenizer()


def pieces(tok: SpmTokenizer, ids: list[int]) -> list[str]:
    return [tok.token_text(i) for i in ids]


def test_space_prefix_and_highest_score_first(tok: SpmTokenizer) -> None:
    assert pieces(tok, tok.encode("hello")) == ["▁hello"]
    # "he" (-1.5) beats "▁h" (-3), so "▁" is left alone before "hell"+"o"... -> "hello".
    assert pieces(tok, tok.encode("hello", add_special=True)) == ["<s>", "▁hello"]


def test_equal_scores_merge_leftmost_first(tok: SpmTokenizer) -> None:
    # "ab" and "bb" both score -3: the leftmost pair wins.
    assert pieces(tok, make_tokenizer(add_space_prefix=False).encode("abb")) == ["ab", "b"]


def test_words_are_merged_alone_unless_a_piece_spans_a_word_start() -> None:
    assert pieces(make_tokenizer(), make_tokenizer().encode("ab b")) == ["▁", "ab", "▁", "b"]
    spanning = make_tokenizer(extra=[("b▁", -0.5), ("b▁b", 0.0)])
    assert pieces(spanning, spanning.encode("ab b")) == ["▁", "a", "b▁b"]


def test_characters_without_pieces_fall_back_to_bytes(tok: SpmTokenizer) -> None:
    assert pieces(tok, make_tokenizer(add_space_prefix=False).encode("你")) == [
        "<0xE4>",
        "<0xBD>",
        "<0xA0>",
    ]


def test_space_prefix_follows_each_special_token(tok: SpmTokenizer) -> None:
    ids = tok.encode("hello</s>hello", parse_special=True)
    assert pieces(tok, ids) == ["▁hello", "</s>", "▁hello"]


def test_decode_drops_the_added_leading_space(tok: SpmTokenizer) -> None:
    assert tok.decode(tok.encode("hello  ab")) == "hello  ab"
    assert tok.decode(tok.encode("hello", add_special=True)) == "hello"
    # as llama-cpp-python: with BOS shown, the space after it stays
    assert tok.decode(tok.encode("hello", add_special=True), special=True) == "<s> hello"


def test_streamed_bytes_rebuild_multibyte_characters(tok: SpmTokenizer) -> None:
    decoder = IncrementalDecoder(tok)
    out = [decoder.feed(i) for i in tok.encode("a你")]
    assert out == [" ", "a", "", "", "你"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_round_trips(text: str) -> None:
    tok = make_tokenizer()
    ids = tok.encode(text)
    # SentencePiece adds one leading space, which decode takes off again.
    assert tok.decode(ids) == text.encode("utf-8", "replace").decode("utf-8")
