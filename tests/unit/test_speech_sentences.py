"""SentenceSplitter on streamed pieces, and normalize_for_speech."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from speech.sentences import SentenceSplitter, normalize_for_speech


def split(text: str, step: int = 1, **options: object) -> list[str]:
    """Feed `text` in pieces of `step` characters, like an LLM streaming tokens."""
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    out: list[str] = []
    for i in range(0, len(text), step):
        out += splitter.feed(text[i:i + step])
    return out + splitter.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there") == []
    assert splitter.feed(".") == []  # "." might still be "...", or a decimal point
    assert splitter.feed(" How") == ["Hello there."]
    assert splitter.feed(" are you?") == []
    assert splitter.flush() == ["How are you?"]


def test_abbreviations_do_not_end_sentences() -> None:
    text = ("Dr. Smith met Mrs. Jones at 5 p.m. Then they left. "
            "Use a fruit, e.g. an apple, or i.e. something sweet. Ask Prof. Lee.")
    assert split(text, early_words=0) == [
        "Dr. Smith met Mrs. Jones at 5 p.m.",
        "Then they left.",
        "Use a fruit, e.g. an apple, or i.e. something sweet.",
        "Ask Prof. Lee.",
    ]


def test_country_abbreviation_and_initials() -> None:
    assert split("He moved to the U.S. in May. J. R. R. Tolkien wrote it.", early_words=0) == [
        "He moved to the U.S. in May.", "J. R. R. Tolkien wrote it."]


def test_a_long_first_sentence_goes_early_before_a_phrase() -> None:
    """The first words are synthesized while the model still writes the rest; only the
    first sentence is cut, never after a word that needs more ("the", "of")."""
    assert split("The play Romeo and Juliet was written by William Shakespeare. It is "
                 "a tragedy with a sad end.") == [
        "The play Romeo and Juliet was written", "by William Shakespeare.",
        "It is a tragedy with a sad end."]
    assert split("The capital of France is Paris.") == ["The capital of France is Paris."]
    assert split("It is one of the best of the lot.") == ["It is one of the best of the lot."]
    assert split("Today is a sunny day with some clouds.", early_words=0) == [
        "Today is a sunny day with some clouds."]


def test_etc_ends_a_sentence_only_before_a_capital() -> None:
    assert split("Bring cups, plates, etc. and forks. Apples, pears, etc. Then go.") == [
        "Bring cups, plates, etc. and forks.", "Apples, pears, etc.", "Then go."]


def test_numbers_and_decimals_stay_whole() -> None:
    assert split("Pi is 3.14159 roughly. It costs $1,000.50 today. Version 2.0.1 is out.") \
        == ["Pi is 3.14159 roughly.", "It costs $1,000.50 today.", "Version 2.0.1 is out."]


def test_numbered_and_bulleted_lists_speak_item_by_item() -> None:
    text = "You need:\n1. Eggs\n2. Milk and sugar\n3. Flour\n\n- one bowl\n* a whisk\nEnjoy!"
    assert split(text) == ["You need:", "1. Eggs", "2. Milk and sugar", "3. Flour",
                           "one bowl", "a whisk", "Enjoy!"]


def test_code_blocks_are_not_read_aloud() -> None:
    text = ("Run this:\n```python\nprint('a. b. c.')\nx = 1\n```\nThen check the output. "
            "Inline `ls -l` is fine.")
    assert split(text) == ["Run this:", "Then check the output.", "Inline ls -l is fine."]


def test_unclosed_code_block_is_dropped_at_the_end() -> None:
    assert split("Here it is. ```bash\necho hi. there") == ["Here it is."]


def test_chinese_punctuation_splits_without_spaces() -> None:
    assert split("今天天气很好。你想去哪里？我们走吧！好的；再见") == [
        "今天天气很好。", "你想去哪里？", "我们走吧！", "好的；", "再见"]


def test_first_clause_of_a_long_first_sentence_goes_early() -> None:
    text = ("The capital of France is Paris, which is famous for its museums and food. "
            "It is big, old and beautiful.")
    assert split(text) == [
        "The capital of France is Paris,",
        "which is famous for its museums and food.",
        "It is big, old and beautiful.",  # only the first sentence is cut early
    ]
    assert split(text, early_clause_chars=0)[0].endswith("museums and food.")


def test_short_first_clause_waits_for_the_sentence() -> None:
    assert split("Sure, I can help.") == ["Sure, I can help."]


def test_chinese_first_clause_goes_early() -> None:
    text = "北京是中国的首都，也是一座历史悠久的城市，有很多名胜古迹。"
    assert split(text, early_clause_chars=8) == [
        "北京是中国的首都，", "也是一座历史悠久的城市，有很多名胜古迹。"]


def test_run_without_punctuation_is_cut_at_a_space() -> None:
    text = "word " * 100
    out = split(text, max_chars=120, early_clause_chars=0)
    assert len(out) > 3 and all(len(s) <= 120 for s in out)
    assert " ".join(out).split() == text.split()


def test_quotes_stay_with_their_sentence() -> None:
    assert split('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_reset_forgets_a_cancelled_reply() -> None:
    splitter = SentenceSplitter()
    splitter.feed("Half a sent")
    splitter.reset()
    assert splitter.feed("New one. ") == ["New one."]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_how_the_stream_is_cut_does_not_matter(cuts: list[int]) -> None:
    text = ("Dr. Who said hi. Prices rose 2.5% in the U.S. last year, e.g. food. "
            "Steps:\n1. Open it\n2. Close it\n```\ncode. here\n```\n好的。再见！ Bye... now? Yes!")
    pieces, pos = [], 0
    for cut in cuts * 20:
        if pos >= len(text):
            break
        pieces.append(text[pos:pos + cut])
        pos += cut
    pieces.append(text[pos:])
    splitter = SentenceSplitter()
    out = [s for piece in pieces for s in splitter.feed(piece)] + splitter.flush()
    assert out == split(text, step=len(text))


def test_normalize_strips_markdown_links_and_emoji() -> None:
    assert normalize_for_speech("**Bold** and *italic* and __under__ 🎉🙂") == \
        "Bold and italic and under"
    assert normalize_for_speech("See [the docs](https://x.org/a) or https://example.com/x.") \
        == "See the docs or a link."
    assert normalize_for_speech("## Heading\n> quoted text") == "Heading quoted text"
    assert normalize_for_speech("keep snake_case_names and 2*3*4") == \
        "keep snake_case_names and 2*3*4"
    assert normalize_for_speech("| a | b |\n|---|---|\n| 1 | 2 |") == "a, b. 1, 2."
    assert normalize_for_speech("🎉 ✨") == ""
    assert normalize_for_speech("Use <b>this</b> www.site.org now") == "Use this a link now"


def test_normalize_keeps_chinese_text() -> None:
    assert normalize_for_speech("**你好**，世界！😀") == "你好，世界！"
