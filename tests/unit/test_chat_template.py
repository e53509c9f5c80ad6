"""Chat templates: named fallbacks, template choice, and the sandbox around model templates."""

from __future__ import annotations

import pytest

from engine.base import ChatMessage
from engine.chat_template import NAMED_TEMPLATES, render_chat, template_for
from engine.errors import ModelFormatError

CHAT = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "Bye"),
]


def render(name: str, messages=CHAT, **kwargs) -> str:
    kwargs.setdefault("bos_token", "<s>")
    kwargs.setdefault("eos_token", "</s>")
    return render_chat(messages, NAMED_TEMPLATES[name], **kwargs)


def test_chatml() -> None:
    assert render("chatml") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render("chatml", add_generation_prompt=False).endswith("Bye<|im_end|>\n")


def test_zephyr_ends_turns_with_the_eos_token() -> None:
    assert render("zephyr", CHAT[1:2]) == "<|user|>\nHi</s>\n<|assistant|>\n"


def test_llama2_wraps_system_prompt_and_reopens_turns_with_bos() -> None:
    assert render("llama-2") == (
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello!</s><s>[INST] Bye [/INST]"
    )


def test_none_template_means_chatml() -> None:
    assert render_chat(CHAT, None, bos_token="", eos_token="") == render("chatml")


def test_template_choice() -> None:
    own = "{{ messages[0]['content'] }}"
    assert template_for({"tokenizer.chat_template": own}) == own
    assert template_for({"tokenizer.chat_template": own}, "zephyr") == NAMED_TEMPLATES["zephyr"]
    assert template_for({}) == NAMED_TEMPLATES["chatml"]
    assert template_for({"tokenizer.chat_template": "  "}) == NAMED_TEMPLATES["chatml"]
    with pytest.raises(ModelFormatError, match="unknown chat template 'vicuna'"):
        template_for({}, "vicuna")


def test_hf_template_helpers_are_available() -> None:
    template = (
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
        "{{ strftime_now('%Y') }}|{{ messages | tojson }}"
        "{% generation %}{{ bos_token }}{% endgeneration %}"
        "{% for m in messages %}{% if loop.first %}{% continue %}{% endif %}x{% endfor %}"
    )
    out = render_chat([ChatMessage("user", "héllo")], template, bos_token="B", eos_token="E")
    year, rest = out.split("|", 1)
    assert year.isdigit() and len(year) == 4
    assert rest == '[{"role": "user", "content": "héllo"}]B'
    with pytest.raises(ModelFormatError, match="refused the conversation: user first"):
        render_chat(CHAT, template, bos_token="", eos_token="")


def test_templates_run_in_a_sandbox() -> None:
    escape = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(ModelFormatError, match="failed"):
        render_chat(CHAT, escape, bos_token="", eos_token="")
    mutate = "{{ messages.append(1) }}"
    with pytest.raises(ModelFormatError, match="failed"):
        render_chat(CHAT, mutate, bos_token="", eos_token="")


def test_broken_template_is_a_format_error() -> None:
    with pytest.raises(ModelFormatError, match="does not parse"):
        render_chat(CHAT, "{% for m in messages %}", bos_token="", eos_token="")
