"""Read the key/value metadata of a GGUF file (not its tensors), fast.

Loading a tokenizer only needs the metadata; the `gguf` package's reader also maps
every tensor and wraps each array element, which takes seconds for a 50k-token
vocabulary. This reader walks the header once with `struct`, checking every length
against the file before using it, and stops where the tensor descriptions begin.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelFormatError

GGUF_MAGIC = b"GGUF"

# GGUF value type -> numpy dtype of the fixed-size scalar types.
_SCALARS: dict[int, np.dtype] = {
    0: np.dtype("<u1"),
    1: np.dtype("<i1"),
    2: np.dtype("<u2"),
    3: np.dtype("<i2"),
    4: np.dtype("<u4"),
    5: np.dtype("<i4"),
    6: np.dtype("<f4"),
    7: np.dtype("<u1"),  # bool
    10: np.dtype("<u8"),
    11: np.dtype("<i8"),
    12: np.dtype("<f8"),
}
_BOOL = 7
_STRING = 8
_ARRAY = 9
_U64 = struct.Struct("<Q")


class _Cursor:
    """A read position in the mapped file that refuses to run past its end."""

    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelFormatError(
                f"{self.path}: truncated or corrupt GGUF header: {what} needs {n} bytes "
                f"at offset {self.pos}, file has {len(self.data)}"
            )

    def unpack(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(fmt)
        self.need(size, what)
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def string(self, what: str) -> str:
        n = self.unpack("<Q", what)
        self.need(n, what)
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def strings(self, count: int, key: str) -> list[str]:
        """`count` strings in a row (the token list: hundreds of thousands, so the
        loop is kept tight)."""
        # Each string takes at least its 8-byte length.
        self.need(count * 8, key)
        data, pos, end = self.data, self.pos, len(self.data)
        unpack = _U64.unpack_from
        out: list[str] = []
        append = out.append
        for _ in range(count):
            if pos + 8 > end:
                self.pos = pos
                self.need(8, key)
            (n,) = unpack(data, pos)
            pos += 8
            if n > end - pos:
                self.pos = pos
                self.need(n, key)
            append(data[pos : pos + n].decode("utf-8", errors="replace"))
            pos += n
        self.pos = pos
        return out

    def value(self, kind: int, key: str) -> Any:
        if kind == _STRING:
            return self.string(key)
        if kind in _SCALARS:
            dtype = _SCALARS[kind]
            self.need(dtype.itemsize, key)
            item = np.frombuffer(self.data, dtype, 1, self.pos)[0].item()
            self.pos += dtype.itemsize
            return bool(item) if kind == _BOOL else item
        if kind == _ARRAY:
            item_kind, count = self.unpack("<IQ", key)
            if item_kind == _STRING:
                return self.strings(count, key)
            if item_kind in _SCALARS:
                dtype = _SCALARS[item_kind]
                self.need(count * dtype.itemsize, key)
                values = np.frombuffer(self.data, dtype, count, self.pos).tolist()
                self.pos += count * dtype.itemsize
                return [bool(v) for v in values] if item_kind == _BOOL else values
            raise ModelFormatError(f"{self.path}: {key}: unsupported GGUF array type {item_kind}")
        raise ModelFormatError(f"{self.path}: {key}: unknown GGUF value type {kind}")


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """All key/value pairs of the GGUF file at `path` (arrays as lists)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            if size < 24:
                raise ModelFormatError(f"{path}: not a GGUF file (only {size} bytes)")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _read(_Cursor(data, path))
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read(cursor: _Cursor) -> dict[str, Any]:
    path = cursor.path
    magic = cursor.data[:4]
    if magic != GGUF_MAGIC:
        raise ModelFormatError(f"{path}: not a GGUF file (magic {magic!r})")
    cursor.pos = 4
    version = cursor.unpack("<I", "version")
    if version not in (2, 3):
        raise ModelFormatError(f"{path}: unsupported GGUF version {version} (need 2 or 3)")
    _n_tensors, n_kv = cursor.unpack("<QQ", "counts")
    # Each pair takes at least a key length, a type and an 8-byte value.
    cursor.need(n_kv * 13, "metadata count")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cursor.string("metadata key")
        kind = cursor.unpack("<I", key)
        metadata[key] = cursor.value(kind, key)
    return metadata
