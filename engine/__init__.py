"""Inference backends for Hearth behind one `ChatEngine` interface.

This package is a headless library: it never imports `app`, `speech` or Qt, and
every backend can be driven from a Python shell::

    from engine.registry import create_engine
    from engine.base import EngineConfig, ChatMessage
    eng = create_engine("llama-cpp", EngineConfig(model_path="model.gguf"))
    for piece in eng.chat([ChatMessage("user", "Hi")]):
        print(piece, end="")
"""
