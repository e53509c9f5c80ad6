"""Render a conversation into a model's prompt text with its chat template.

GGUF files carry the Hugging Face Jinja template in `tokenizer.chat_template`. It is
model-supplied code, so it runs in Jinja2's immutable sandbox with only what HF
templates expect (`raise_exception`, `strftime_now`, a `tojson` that keeps Unicode),
the same environment llama-cpp-python's Jinja2ChatFormatter builds. Models without
a template, or users who pick one, get a named fallback from `NAMED_TEMPLATES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.base import ChatMessage
from engine.errors import ModelFormatError

# Fallback templates, written to give exactly what llama.cpp's built-in formats
# (llama_chat_apply_template) give for the same name: "chatml", "zephyr" (with
# eos_token "<|endoftext|>"; Zephyr-style models such as TinyLlama-Chat pass "</s>")
# and "llama-2" (llama.cpp's "llama2-sys-bos": system prompt in <<SYS>>, BOS before
# every later turn). None writes the leading BOS: tokenizing with add_special adds it.
NAMED_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "zephyr": (
        "{% for message in messages %}"
        "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    ),
    "llama-2": (
        "{{ '[INST] ' }}"
        "{% set turn = namespace(open=true) %}"
        "{% for message in messages %}"
        "{% if not turn.open %}{{ bos_token + '[INST] ' }}{% set turn.open = true %}{% endif %}"
        "{% if message['role'] == 'system' %}"
        "{{ '<<SYS>>\n' + message['content'] + '\n<</SYS>>\n\n' }}"
        "{% elif message['role'] == 'user' %}"
        "{{ message['content'] + ' [/INST]' }}"
        "{% else %}"
        "{{ message['content'] + eos_token }}{% set turn.open = false %}"
        "{% endif %}"
        "{% endfor %}"
    ),
}
DEFAULT_TEMPLATE = "chatml"


class _IgnoreGenerationTag(jinja2.ext.Extension):
    """Accepts HF's `{% generation %}...{% endgeneration %}` (training-mask markers)."""

    tags = {"generation"}  # noqa: RUF012 - jinja2's Extension API declares it so

    def parse(self, parser: jinja2.parser.Parser) -> list[jinja2.nodes.Node]:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise ModelFormatError(f"the chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_IgnoreGenerationTag, jinja2.ext.loopcontrols],
    )
    environment.filters["tojson"] = _tojson
    try:
        return environment.from_string(template)
    except jinja2.TemplateError as exc:
        raise ModelFormatError(f"the chat template does not parse: {exc}") from exc


def render_chat(
    messages: Sequence[ChatMessage],
    template: str | None,
    *,
    bos_token: str,
    eos_token: str,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text for `messages` under `template` (Jinja source; None = chatml).

    Raises ModelFormatError when the template does not parse, fails, or rejects the
    conversation (e.g. roles that do not alternate).
    """
    compiled = _compile(template if template is not None else NAMED_TEMPLATES[DEFAULT_TEMPLATE])
    try:
        return compiled.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
            raise_exception=_raise_exception,
            strftime_now=_strftime_now,
        )
    except ModelFormatError:
        raise
    except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise ModelFormatError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc


def template_for(metadata: Mapping[str, Any], override: str = "") -> str:
    """The Jinja template to use: the named `override` if given, else the model's own
    `tokenizer.chat_template`, else chatml."""
    if override:
        try:
            return NAMED_TEMPLATES[override]
        except KeyError:
            raise ModelFormatError(
                f"unknown chat template {override!r}; choose one of: {', '.join(NAMED_TEMPLATES)}"
            ) from None
    own = metadata.get("tokenizer.chat_template")
    if isinstance(own, str) and own.strip():
        return own
    return NAMED_TEMPLATES[DEFAULT_TEMPLATE]
