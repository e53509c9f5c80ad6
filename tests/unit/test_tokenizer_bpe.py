"""Byte-level BPE on a hand-made vocabulary: merge order, pre-tokenizers, specials, decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ModelFormatError
from engine.tokenizer import BpeTokenizer, IncrementalDecoder, TokenType, Vocabulary
from engine.tokenizer.bpe import _BYTE_CHARS, pre_tokenizer_for

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"]
# Merges in rank order; "Ġ" is GPT-2's stand-in for the space byte.
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o", "a a", "1 2", "ä b"]


def make_tokenizer(pre: str = "gpt-2", add_bos: bool | None = None) -> BpeTokenizer:
    texts = list(SPECIALS) + list(_BYTE_CHARS)
    for merge in MERGES:
        left, right = merge.split(" ")
        texts.append(left + right)
    types = [TokenType.CONTROL] * 3 + [TokenType.USER_DEFINED]
    types += [TokenType.NORMAL] * (len(texts) - len(types))
    return BpeTokenizer(
        Vocabulary(texts, None, [int(t) for t in types]),
        MERGES,
        pre=pre,
        bos_id=1,
        eos_id=2,
        add_bos=add_bos,
    )


@pytest.fixture(scope="module")
def tok() -> BpeTokenizer:
    return make_tokenizer()


def texts_of(tok: BpeTokenizer, ids: list[int]) -> list[str]:
    return [tok.token_text(i) for i in ids]


def test_merges_apply_in_rank_order(tok: BpeTokenizer) -> None:
    assert texts_of(tok, tok.encode("hello")) == ["hello"]
    assert texts_of(tok, tok.encode("hell")) == ["hell"]
    assert texts_of(tok, tok.encode(" wo")) == ["Ġwo"]
    # "ä" is two bytes; the merge "ä b" needs the byte chars, so it never applies.
    assert texts_of(tok, tok.encode("äb")) == ["Ã", "¤", "b"]


def test_equal_rank_pairs_merge_leftmost_first(tok: BpeTokenizer) -> None:
    assert texts_of(tok, tok.encode("aaa")) == ["aa", "a"]
    assert texts_of(tok, tok.encode("aaaa")) == ["aa", "aa"]


def test_gpt2_pre_tokenizer_words(tok: BpeTokenizer) -> None:
    assert tok.split_words("I'm  fine, 123 cats!\n\n") == [
        "I", "'m", " ", " fine", ",", " 123", " cats", "!", "\n\n",
    ]  # fmt: skip


def test_smollm_pre_tokenizer_isolates_digits() -> None:
    tok = make_tokenizer(pre="smollm")
    assert tok.split_words("a 123b") == ["a", " ", "1", "2", "3", "b"]
    assert texts_of(tok, tok.encode("12")) == ["1", "2"]  # the merge "1 2" cannot cross words


def test_llama3_pre_tokenizer_groups_digits_by_three() -> None:
    words = make_tokenizer(pre="llama-bpe").split_words("12345 It's")
    assert words == ["123", "45", " It", "'s"]


def test_characters_newer_than_unicode_15_1_count_as_unassigned() -> None:
    # U+10D40 is a Garay digit (Unicode 16): llama.cpp's tables do not know it, so it
    # is "other" there, not a digit to isolate.
    garay = "\U00010d40"
    assert make_tokenizer(pre="smollm").split_words(f" {garay}{garay}") == [f" {garay}{garay}"]
    assert make_tokenizer(pre="smollm").split_words(" 1") == [" ", "1"]


def test_unknown_pre_tokenizer_is_refused() -> None:
    with pytest.raises(ModelFormatError, match="pre-tokenizer 'nonsense'"):
        pre_tokenizer_for("nonsense")


def test_control_tokens_are_parsed_only_on_request(tok: BpeTokenizer) -> None:
    text = "<|im_start|>hello<|im_end|>"
    assert tok.encode(text, parse_special=True) == [1, tok.encode("hello")[0], 2]
    plain = tok.encode(text)
    assert 1 not in plain and 2 not in plain
    assert tok.decode(plain) == text


def test_user_defined_tokens_are_always_parsed(tok: BpeTokenizer) -> None:
    assert tok.encode("a<tool>a") == [tok.encode("a")[0], 3, tok.encode("a")[0]]


def test_add_special_adds_bos_only_when_the_model_asks() -> None:
    assert make_tokenizer(add_bos=True).encode("hello", add_special=True)[0] == 1
    assert make_tokenizer(add_bos=False).encode("hello", add_special=True)[0] != 1
    assert make_tokenizer(pre="llama-bpe").add_bos  # Llama 3 defaults to BOS


def test_encode_prompt_parses_specials_without_doubling_bos() -> None:
    tok = make_tokenizer(add_bos=True)
    assert tok.encode_prompt("<|im_start|>hello")[:2] == [1, tok.encode("hello")[0]]
    assert tok.encode_prompt("hello")[0] == 1


def test_control_tokens_decode_to_nothing_unless_special(tok: BpeTokenizer) -> None:
    ids = tok.encode("<|im_start|>hello", parse_special=True)
    assert tok.decode(ids) == "hello"
    assert tok.decode(ids, special=True) == "<|im_start|>hello"
    assert tok.token_bytes(1) == b""
    assert tok.eot_ids == frozenset({0, 2})  # <|endoftext|> and <|im_end|> (the EOS)


def test_token_bytes_rejects_ids_outside_the_vocabulary(tok: BpeTokenizer) -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.token_bytes(tok.vocab_size)


def test_incremental_decoder_holds_back_split_characters(tok: BpeTokenizer) -> None:
    ids = tok.encode("a🤖b")
    assert len(ids) == 6  # a, four bytes of the emoji, b
    decoder = IncrementalDecoder(tok)
    assert [decoder.feed(i) for i in ids] == ["a", "", "", "", "🤖", "b"]
    assert decoder.flush() == ""


def test_incremental_decoder_flushes_a_broken_tail(tok: BpeTokenizer) -> None:
    decoder = IncrementalDecoder(tok)
    assert decoder.feed(tok.encode("🤖")[0]) == ""
    assert decoder.flush() == "\ufffd"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_round_trips(text: str) -> None:
    tok = make_tokenizer(pre="smollm")  # no decode clean-up, unlike "gpt-2"
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text.encode("utf-8", "replace").decode("utf-8")


def test_gpt2_decoding_cleans_up_spaces_like_llama_cpp(tok: BpeTokenizer) -> None:
    assert tok.decode(tok.encode("a , b ' c 's")) == "a, b'c's"


def test_repeated_words_are_served_from_the_cache(tok: BpeTokenizer) -> None:
    first = tok.encode("hello hello hello")
    assert " hello" in tok._word_cache
    assert tok.encode("hello hello hello") == first
