"""Hearth's pure-Python tokenizers and chat templates against llama.cpp itself.

Both sides read the same files: the bundled SmolLM2 GGUF (GPT-2 byte-level BPE,
pre-tokenizer "smollm") and llama.cpp's own vocabulary-only Llama SentencePiece file
(tests/data/tokenizer/ggml-vocab-llama-spm.gguf, from llama.cpp's models/ folder).
Every text of the corpus must give exactly llama.cpp's ids under every combination
of add_special / parse_special, and decode back to llama.cpp's text.
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

import pytest

from engine.base import ChatMessage
from engine.chat_template import NAMED_TEMPLATES, render_chat, template_for
from engine.tokenizer import (
    IncrementalDecoder,
    Tokenizer,
    load_llama2c_tokenizer,
    load_tokenizer_from_gguf,
    read_gguf_metadata,
)

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is the reference")

DATA = Path(__file__).resolve().parent.parent / "data" / "tokenizer"
LLAMA_SPM_VOCAB = DATA / "ggml-vocab-llama-spm.gguf"

CORPUS = [
    # English
    "Hello world",
    " Hello world",
    "Hello, world! How are you today?",
    "I'm sure you'll see they've done it; we'd said it's OK, can't you?",
    "THE QUICK BROWN FOX'S JUMP WASN'T HIGH",
    "The price is $1,234.56 (or 3.14159%) on 2024-03-01 at 12:30pm.",
    "e-mail: someone@example.com, url: https://example.org/a?b=c&d=e#f",
    "Ünïcödé façade naïve résumé coöperate Æsir straße",
    "1 22 333 4444 55555 666666 7777777",
    # Chinese, Japanese, Korean, other scripts
    "你好，世界！这是一个测试。",
    "我喜欢吃苹果和香蕉，你呢？",
    "日本語のテキスト、ひらがなとカタカナ。",
    "한국어 문장입니다. 안녕하세요!",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "ภาษาไทย",
    # emoji
    "🤖",
    "emoji 🤖🎉 mixed in text 😀😃",
    "family 👨‍👩‍👧‍👦 and flags 🇺🇸🇯🇵 and skin tone 👍🏽",
    "✅ ❤️ ☺️ ⭐",
    # whitespace-heavy
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n\n",
    "\t\n",
    "   leading spaces",
    "trailing spaces   ",
    "many     inner      spaces",
    "tabs\tand\t\ttabs",
    "line one\nline two\n\nline four\r\nwindows\r\n",
    "a\u00a0b\u2003c\u3000d",
    "    indented\n        more\n    back",
    "\n \n \n",
    # code
    "```python\ndef square(x):\n    return x ** 2  # comment\n```",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    '<html><body class="x">&amp;</body></html>',
    # special-token texts (single tokens only when parse_special is on)
    "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
    "<s>[INST] Hello [/INST] Hi</s>",
    "text<|endoftext|>more text",
    "<|im_start|><|im_start|>",
    # mixed
    "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "!!!!!! ??? ... --- ___ *** ### @@@",
    # characters newer than llama.cpp's Unicode 15.1 tables (Garay, Sunuwar digits)
    " \U00010d40\U00010d41 x\U00011bf0 1\U00010d40",
    "3 33 333 3333 33333 333333 3333333 33333333",
]


def _ids(llm: llama_cpp.Llama, text: str, add_special: bool, parse_special: bool) -> list[int]:
    return llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)


def _llama_detokenize(llm: llama_cpp.Llama, ids: list[int], special: bool) -> str:
    """llama.cpp's own llama_detokenize (remove_special off), for decode()."""
    size = 4096
    buf = ctypes.create_string_buffer(size)
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, special)
    assert 0 <= n <= size
    return buf.raw[:n].decode("utf-8", errors="replace")


def _mismatches(
    ours: Tokenizer, llm: llama_cpp.Llama, add_special: bool, parse_special: bool
) -> list[str]:
    bad = []
    for text in CORPUS:
        expected = _ids(llm, text, add_special, parse_special)
        got = ours.encode(text, add_special=add_special, parse_special=parse_special)
        if got != expected:
            bad.append(f"{text!r}: ours {got} != llama.cpp {expected}")
    return bad


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf: Path) -> tuple[Tokenizer, llama_cpp.Llama]:
    llm = llama_cpp.Llama(model_path=str(smollm2_gguf), vocab_only=True, verbose=False)
    return load_tokenizer_from_gguf(smollm2_gguf), llm


@pytest.fixture(scope="module")
def llama_spm() -> tuple[Tokenizer, llama_cpp.Llama]:
    assert LLAMA_SPM_VOCAB.is_file(), f"missing test vocabulary {LLAMA_SPM_VOCAB}"
    llm = llama_cpp.Llama(model_path=str(LLAMA_SPM_VOCAB), vocab_only=True, verbose=False)
    return load_tokenizer_from_gguf(LLAMA_SPM_VOCAB), llm


FLAGS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize(("add_special", "parse_special"), FLAGS)
def test_smollm2_bpe_ids_equal_llama_cpp(smollm2, add_special: bool, parse_special: bool) -> None:
    ours, llm = smollm2
    assert _mismatches(ours, llm, add_special, parse_special) == []


@pytest.mark.parametrize(("add_special", "parse_special"), FLAGS)
def test_llama_spm_ids_equal_llama_cpp(llama_spm, add_special: bool, parse_special: bool) -> None:
    ours, llm = llama_spm
    assert _mismatches(ours, llm, add_special, parse_special) == []


def _llama_cpp_test_texts(vocab: Path) -> list[str]:
    """The texts llama.cpp's own tokenizer tests use for `vocab` (its .inp file)."""
    inp = vocab.with_name(vocab.name + ".inp")
    return inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n") if inp.exists() else []


@pytest.mark.parametrize("vocab", sorted(DATA.glob("ggml-vocab-*.gguf")), ids=lambda p: p.stem)
def test_llama_cpp_vocab_files_ids_equal_llama_cpp(vocab: Path) -> None:
    """Every vocabulary file in tests/data/tokenizer, on the corpus plus llama.cpp's
    own test texts for it."""
    ours = load_tokenizer_from_gguf(vocab)
    llm = llama_cpp.Llama(model_path=str(vocab), vocab_only=True, verbose=False)
    texts = CORPUS + _llama_cpp_test_texts(vocab)
    bad = [
        (text, add_special, parse_special)
        for text in texts
        for add_special, parse_special in FLAGS
        if ours.encode(text, add_special=add_special, parse_special=parse_special)
        != _ids(llm, text, add_special, parse_special)
    ]
    assert bad == []


@pytest.mark.parametrize("fixture", ["smollm2", "llama_spm"])
def test_special_ids_equal_llama_cpp(fixture: str, request: pytest.FixtureRequest) -> None:
    ours, llm = request.getfixturevalue(fixture)
    assert ours.vocab_size == llm.n_vocab()
    assert ours.bos_id == llm.token_bos()
    assert ours.eos_id == llm.token_eos()
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    eog = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    assert ours.eot_ids == eog
    control = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_control(vocab, i)}
    assert control <= ours.special_ids


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("fixture", ["smollm2", "llama_spm"])
def test_decode_equals_llama_cpp(fixture: str, special: bool, request) -> None:
    """SentencePiece ids that start with BOS decode as llama-cpp-python's
    Llama.detokenize (which drops the added space after BOS), all others as
    llama.cpp's llama_detokenize."""
    ours, llm = request.getfixturevalue(fixture)
    spm = fixture == "llama_spm"
    for text in CORPUS:
        ids = _ids(llm, text, add_special=False, parse_special=True)
        if spm and ids and ids[0] == llm.token_bos():
            expected = llm.detokenize(ids, special=special).decode("utf-8", errors="replace")
        else:
            expected = _llama_detokenize(llm, ids, special)
        assert ours.decode(ids, special=special) == expected, text
        if spm:
            with_bos = [llm.token_bos(), *ids]
            expected = llm.detokenize(with_bos, special=special).decode("utf-8", errors="replace")
            assert ours.decode(with_bos, special=special) == expected, text


@pytest.mark.parametrize("fixture", ["smollm2", "llama_spm"])
def test_token_bytes_equal_llama_cpp_pieces(fixture: str, request) -> None:
    ours, llm = request.getfixturevalue(fixture)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    buf = ctypes.create_string_buffer(256)
    # Every 7th token plus all specials: the whole vocabulary would be slow for no gain.
    for token in sorted(set(range(0, llm.n_vocab(), 7)) | set(ours.special_ids)):
        for special in (False, True):
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, 256, 0, special)
            assert ours.token_bytes(token, special=special) == buf.raw[:n], token


@pytest.mark.parametrize("fixture", ["smollm2", "llama_spm"])
def test_incremental_decoder_streams_whole_characters(fixture: str, request) -> None:
    ours, llm = request.getfixturevalue(fixture)
    text = "Streaming 🤖 你好 👨‍👩‍👧‍👦 ünï"
    ids = _ids(llm, text, add_special=False, parse_special=False)
    decoder = IncrementalDecoder(ours)
    pieces = [decoder.feed(i) for i in ids]
    pieces.append(decoder.flush())
    assert "\ufffd" not in "".join(pieces)
    expected = text if fixture == "smollm2" else " " + text  # SentencePiece's space prefix
    assert "".join(pieces) == expected


def test_llama2c_tokenizer_bin_equals_llama_cpp(llama_spm, tmp_path: Path) -> None:
    """A llama2.c tokenizer.bin exported from the same SentencePiece vocabulary
    (spaces for "▁", "\\n<s>\\n" for BOS, as llama2.c's tokenizer.py writes it)
    encodes like llama.cpp does from the GGUF."""
    _, llm = llama_spm
    metadata = read_gguf_metadata(LLAMA_SPM_VOCAB)
    texts = metadata["tokenizer.ggml.tokens"]
    scores = metadata["tokenizer.ggml.scores"]
    path = tmp_path / "tokenizer.bin"
    with path.open("wb") as f:
        pieces = []
        for i, (text, score) in enumerate(zip(texts, scores, strict=True)):
            text = {1: "\n<s>\n", 2: "\n</s>\n"}.get(i, text).replace("▁", " ")
            pieces.append((score, text.encode("utf-8")))
        f.write(struct.pack("<i", max(len(p) for _, p in pieces)))
        for score, piece in pieces:
            f.write(struct.pack("<fi", score, len(piece)) + piece)
    ours = load_llama2c_tokenizer(path, vocab_size=len(texts))
    for text in CORPUS:
        if "<" in text:
            continue  # tokenizer.bin has no token types, so no user-defined specials
        assert ours.encode(text, add_special=True) == _ids(llm, text, True, False), text
        assert ours.decode(_ids(llm, text, False, False)) == _llama_detokenize(
            llm, _ids(llm, text, False, False), False
        )


# ---- chat templates


def _c_template(name: str, messages: list[ChatMessage], add_assistant: bool) -> str:
    """llama.cpp's built-in (C++) chat format `name`."""
    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(m.role.encode(), m.content.encode()) for m in messages]
    )
    size = 65536
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_chat_apply_template(
        name.encode(), chat, len(messages), add_assistant, buf, size
    )
    assert 0 <= n <= size
    return buf.raw[:n].decode("utf-8")


CONVERSATIONS = [
    [ChatMessage("user", "Hi there")],
    [
        ChatMessage("system", "You are brief."),
        ChatMessage("user", "Hello!"),
        ChatMessage("assistant", "Hi. What do you need?"),
        ChatMessage("user", "2+2? Also 你好 🤖\nand a second line"),
    ],
    [
        ChatMessage("user", "a"),
        ChatMessage("assistant", "b"),
        ChatMessage("user", "c"),
        ChatMessage("assistant", "d"),
    ],
]


@pytest.mark.parametrize("add_generation_prompt", [True, False])
@pytest.mark.parametrize(
    ("name", "c_name", "eos_token"),
    [
        ("chatml", "chatml", "<|im_end|>"),
        ("zephyr", "zephyr", "<|endoftext|>"),
        ("llama-2", "llama2-sys-bos", "</s>"),
    ],
)
def test_named_templates_equal_llama_cpp_builtins(
    name: str, c_name: str, eos_token: str, add_generation_prompt: bool
) -> None:
    for messages in CONVERSATIONS:
        ours = render_chat(
            messages,
            NAMED_TEMPLATES[name],
            bos_token="<s>",
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
        if name == "llama-2" and not add_generation_prompt:
            # llama.cpp's llama2 format has no generation prompt to leave out.
            assert ours == _c_template(c_name, messages, True)
        else:
            assert ours == _c_template(c_name, messages, add_generation_prompt)


def test_chatml_equals_llama_cpp_python_format_with_system_prompt() -> None:
    from llama_cpp.llama_chat_format import format_chatml

    messages = CONVERSATIONS[1]
    expected = format_chatml(messages=[{"role": m.role, "content": m.content} for m in messages])
    ours = render_chat(messages, NAMED_TEMPLATES["chatml"], bos_token="", eos_token="")
    assert ours == expected.prompt


def test_smollm2_template_equals_llama_cpp_python_jinja_formatter(smollm2_gguf: Path) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    metadata = read_gguf_metadata(smollm2_gguf)
    template = template_for(metadata)
    assert template == metadata["tokenizer.chat_template"]
    formatter = Jinja2ChatFormatter(
        template=template, eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    for messages in CONVERSATIONS:
        expected = formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        ours = render_chat(messages, template, bos_token="<|im_start|>", eos_token="<|im_end|>")
        assert ours == expected.prompt


def test_smollm2_chat_prompt_tokens_equal_llama_cpp(smollm2, smollm2_gguf: Path) -> None:
    """The whole prompt path: template, then encode_prompt, as llama-cpp-python's
    chat handler tokenizes a Jinja-rendered prompt (specials parsed, no extra BOS)."""
    ours, llm = smollm2
    template = template_for(read_gguf_metadata(smollm2_gguf))
    for messages in CONVERSATIONS:
        prompt = render_chat(messages, template, bos_token="<|im_start|>", eos_token="<|im_end|>")
        assert ours.encode_prompt(prompt) == _ids(llm, prompt, False, True)
