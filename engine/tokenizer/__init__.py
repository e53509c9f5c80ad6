"""Tokenizers that give exactly llama.cpp's token ids, in pure Python.

* `load_tokenizer_from_gguf(path)` / `load_tokenizer_from_gguf_metadata(metadata)`:
  GGUF "gpt2" byte-level BPE (SmolLM2, Llama 3, Qwen2) and "llama" SentencePiece
  vocabularies (Llama 2, TinyLlama).
* `load_llama2c_tokenizer(path, vocab_size)`: llama2.c's `tokenizer.bin`.
* `IncrementalDecoder`: streams text token by token without splitting a character.
"""

from engine.tokenizer.base import IncrementalDecoder, Tokenizer, TokenType, Vocabulary
from engine.tokenizer.bpe import SUPPORTED_PRE_TYPES, BpeTokenizer
from engine.tokenizer.gguf_metadata import read_gguf_metadata
from engine.tokenizer.loaders import (
    load_llama2c_tokenizer,
    load_tokenizer_from_gguf,
    load_tokenizer_from_gguf_metadata,
)
from engine.tokenizer.spm import SpmTokenizer

__all__ = [
    "SUPPORTED_PRE_TYPES",
    "BpeTokenizer",
    "IncrementalDecoder",
    "SpmTokenizer",
    "TokenType",
    "Tokenizer",
    "Vocabulary",
    "load_llama2c_tokenizer",
    "load_tokenizer_from_gguf",
    "load_tokenizer_from_gguf_metadata",
    "read_gguf_metadata",
]
