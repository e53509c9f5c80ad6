"""HTTP(S) downloads that resume, report progress, verify sha256 and land atomically.

Bytes go to `<dest>.part`; a dropped connection is retried from where it stopped
(HTTP Range); only a complete file with the right checksum is renamed to `dest`, so
a half-written file is never taken for a model.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from app import __version__
from app.errors import ChecksumError, DownloadError

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(label, bytes_done, bytes_total); total is 0 when unknown."""

CHUNK_BYTES = 256 * 1024


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial file is kept so the next attempt resumes."""


def sha256_of(path: Path, cancel: threading.Event | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("cancelled while checking the file")
            digest.update(block)
    return digest.hexdigest()


def _disk_full_message(dest: Path, exc: OSError) -> str:
    free = 0
    try:
        import shutil

        free = shutil.disk_usage(dest.parent).free
    except OSError:
        pass
    return f"the disk is full while writing {dest.name} ({free / 1e6:.0f} MB free): {exc.strerror}"


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": f"hearth/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def download_url(
    url: str,
    dest: Path,
    *,
    expected_sha256: str = "",
    expected_size: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout_seconds: float = 30.0,
    retries: int = 5,
) -> str:
    """Download `url` to `dest` and return its sha256.

    Resumes a `.part` file left by an earlier attempt, retries dropped connections
    (up to `retries` times in a row without progress), and raises `ChecksumError`
    (deleting the bad partial file) when the result does not match.
    """
    if not url.startswith(("https://", "http://")):
        raise DownloadError(f"refusing to download from {url!r}: only http(s) URLs")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0
    total = expected_size
    while True:
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(f"download of {dest.name} cancelled")
        offset = part.stat().st_size if part.exists() else 0
        if expected_size and offset == expected_size:
            break
        try:
            response = _open(url, offset, timeout_seconds)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # nothing left to send: the part is complete
                break
            raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            failures += 1
            reason = getattr(exc, "reason", exc)
            if failures > retries:
                raise DownloadError(f"cannot download {url}: {reason}") from None
            log.warning("download of %s failed (%s); retrying", dest.name, reason)
            time.sleep(min(0.2 * 2**failures, 5.0))
            continue
        with response:
            if offset and response.status != 206:
                log.info("server ignored the resume request; starting %s again", dest.name)
                offset = 0
            length = int(response.headers.get("Content-Length") or 0)
            if length:
                total = offset + length
            try:
                with part.open("ab" if offset else "wb") as out:
                    done = offset
                    while True:
                        if cancel is not None and cancel.is_set():
                            raise DownloadCancelled(f"download of {dest.name} cancelled")
                        block = response.read(CHUNK_BYTES)
                        if not block:
                            break
                        out.write(block)
                        done += len(block)
                        failures = 0
                        if progress:
                            progress(dest.name, done, total)
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG):
                    raise DownloadError(_disk_full_message(dest, exc)) from None
                failures += 1
                if failures > retries:
                    raise DownloadError(f"cannot download {url}: {exc}") from None
                log.warning("connection dropped during %s (%s); resuming", dest.name, exc)
                continue
        size = part.stat().st_size
        if total and size < total:
            failures += 1
            if failures > retries:
                raise DownloadError(f"cannot download {url}: it keeps stopping early")
            log.warning("download of %s stopped at %d of %d bytes; resuming", dest.name,
                        size, total)
            continue
        break
    size = part.stat().st_size
    if expected_size and size != expected_size:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{dest.name} from {url} has {size} bytes, the catalog says {expected_size}"
        )
    digest = sha256_of(part, cancel)
    if expected_sha256 and digest != expected_sha256:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{dest.name} from {url} has sha256 {digest[:12]}…, the catalog says "
            f"{expected_sha256[:12]}…; the file was deleted"
        )
    os.replace(part, dest)
    return digest
