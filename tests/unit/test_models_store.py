"""The model store against a local HTTP server on 127.0.0.1: resume, checksums,
atomic landing, verify, remove, zip unpacking and --from-file."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.errors import ChecksumError, DownloadError, ModelNotInstalledError
from app.models.catalog import parse_catalog
from app.models.store import ModelStore

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class FileServer:
    """Serves `files` with HTTP Range support; can drop the first response mid-way."""

    files: dict[str, bytes]
    drop_first_after: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer(files={})

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            range_header = self.headers.get("Range", "")
            state.requests.append((name, range_header))
            data = state.files.get(name)
            if data is None:
                self.send_error(404)
                return
            start = int(range_header[6:].split("-")[0]) if range_header else 0
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.drop_first_after and len(state.requests) == 1:
                self.wfile.write(body[: state.drop_first_after])
                self.wfile.flush()
                self.connection.shutdown(2)  # the connection drops mid-file
                return
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def make_store(tmp_path: Path, server: FileServer, name: str = "tiny.gguf",
               sha: str = PAYLOAD_SHA, size: int = len(PAYLOAD), unpack: bool = False,
               path: str | None = None) -> ModelStore:
    catalog = parse_catalog({
        "model": [{
            "id": "tiny", "kind": "llm", "name": "Tiny", "engines": ["numpy"],
            "languages": ["en"], "license": "MIT", "ram_bytes": 1000,
            "path": path or name,
            "files": [{"name": name, "size": size, "sha256": sha, "unpack": unpack}],
            "sources": [{"type": "url", "urls": {name: server.url(name)}}],
        }],
    })
    return ModelStore(root=tmp_path / "models", catalog=catalog)


def test_download_installs_and_records(tmp_path: Path, server: FileServer) -> None:
    server.files["tiny.gguf"] = PAYLOAD
    store = make_store(tmp_path, server)
    seen: list[tuple[int, int]] = []
    path = store.install("tiny", progress=lambda _label, done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD
    assert store.is_installed("tiny")
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))  # the progress bar reached the end
    assert store.verify("tiny").ok
    # a second install downloads nothing
    store.install("tiny")
    assert len(server.requests) == 1


def test_dropped_connection_is_resumed(tmp_path: Path, server: FileServer) -> None:
    server.files["tiny.gguf"] = PAYLOAD
    server.drop_first_after = 300_000
    store = make_store(tmp_path, server)
    path = store.install("tiny")
    assert path.read_bytes() == PAYLOAD
    ranges = [r for _name, r in server.requests]
    assert ranges[0] == ""
    assert any(r.startswith("bytes=") and int(r[6:-1]) > 0 for r in ranges[1:])


def test_wrong_checksum_is_rejected_and_nothing_lands(tmp_path: Path, server: FileServer) -> None:
    server.files["tiny.gguf"] = PAYLOAD[:-1] + b"X"
    store = make_store(tmp_path, server)
    with pytest.raises(DownloadError, match="sha256"):
        store.install("tiny")
    assert not store.is_installed("tiny")
    leftovers = [p for p in (tmp_path / "models").rglob("*") if p.is_file()
                 and not p.name.endswith(".lock")]
    assert leftovers == []  # the bad partial file was deleted too
    with pytest.raises(ModelNotInstalledError, match="hearth models install tiny"):
        store.path("tiny")


def test_checksum_error_type_from_downloader(tmp_path: Path, server: FileServer) -> None:
    from app.models.download import download_url

    server.files["f"] = PAYLOAD
    with pytest.raises(ChecksumError):
        download_url(server.url("f"), tmp_path / "f", expected_sha256="0" * 64)
    assert not (tmp_path / "f").exists()


def test_server_error_is_one_clear_line(tmp_path: Path, server: FileServer) -> None:
    store = make_store(tmp_path, server)  # the server has no such file: 404
    with pytest.raises(DownloadError) as info:
        store.install("tiny")
    message = str(info.value)
    assert "404" in message and "\n" not in message


def test_verify_detects_a_corrupted_file(tmp_path: Path, server: FileServer) -> None:
    server.files["tiny.gguf"] = PAYLOAD
    store = make_store(tmp_path, server)
    path = store.install("tiny")
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    result = store.verify("tiny")
    assert not result.ok and "corrupted" in result.problems[0]


def test_remove(tmp_path: Path, server: FileServer) -> None:
    server.files["tiny.gguf"] = PAYLOAD
    store = make_store(tmp_path, server)
    store.install("tiny")
    store.remove("tiny")
    assert not store.is_installed("tiny")
    assert not store.entry_dir("tiny").exists()


def test_unknown_checksum_is_pinned_on_first_install(tmp_path: Path, server: FileServer) -> None:
    server.files["tiny.gguf"] = PAYLOAD
    store = make_store(tmp_path, server, sha="", size=0)
    store.install("tiny")
    assert store.manifest()["tiny"]["files"]["tiny.gguf"]["sha256"] == PAYLOAD_SHA


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_model_is_unpacked(tmp_path: Path, server: FileServer) -> None:
    archive = zip_bytes({"vosk-tiny/am/final.mdl": b"acoustic", "vosk-tiny/conf/model.conf": b"c"})
    server.files["vosk-tiny.zip"] = archive
    store = make_store(tmp_path, server, name="vosk-tiny.zip", sha="", size=0, unpack=True,
                       path="vosk-tiny")
    path = store.install("tiny")
    assert (path / "am" / "final.mdl").read_bytes() == b"acoustic"
    assert not (store.entry_dir("tiny") / "vosk-tiny.zip").exists()
    assert store.verify("tiny").ok


def test_zip_with_unsafe_member_is_refused(tmp_path: Path, server: FileServer) -> None:
    server.files["evil.zip"] = zip_bytes({"../../escaped.txt": b"x"})
    store = make_store(tmp_path, server, name="evil.zip", sha="", size=0, unpack=True,
                       path="evil")
    with pytest.raises(DownloadError, match="unsafe"):
        store.install("tiny")
    assert not (tmp_path / "escaped.txt").exists()


def test_from_file_is_tried_first(tmp_path: Path, server: FileServer) -> None:
    local = tmp_path / "my-copy.gguf"
    local.write_bytes(PAYLOAD)
    store = make_store(tmp_path, server)
    store.install("tiny", from_file=local)
    assert server.requests == []
    assert store.manifest()["tiny"]["source"] == "local"


def test_cancel_keeps_the_partial_file_for_resume(tmp_path: Path, server: FileServer) -> None:
    from app.models.download import DownloadCancelled

    server.files["tiny.gguf"] = PAYLOAD
    store = make_store(tmp_path, server)
    cancel = threading.Event()

    def progress(_label: str, done: int, _total: int) -> None:
        if done >= 256 * 1024:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        store.install("tiny", progress=progress, cancel=cancel)
    part = tmp_path / "models" / ".partial" / "tiny" / "tiny.gguf.part"
    assert part.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    store.install("tiny")
    assert server.requests[-1][1].startswith("bytes=")
    assert store.verify("tiny").ok
