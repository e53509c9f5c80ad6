"""The in-process offline guard: loopback and local sockets work, everything else is refused."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings, replace
from app.errors import HearthError
from app.netguard import (
    NetworkBlockedError,
    NetworkGuard,
    active_guard,
    allowed_hosts_for,
    install_network_guard,
    offline_environment,
)


@pytest.fixture
def guard() -> Iterator[NetworkGuard]:
    installed = install_network_guard(["lan-server.example", "*.mirror.example", "192.0.2.44"])
    try:
        yield installed
    finally:
        installed.uninstall()


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


def test_loopback_http_still_works(guard: NetworkGuard) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
            assert reply.read() == b"hello"
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as reply:
            assert reply.read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()


def test_unix_sockets_are_allowed(guard: NetworkGuard, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        conn, _ = server.accept()
        client.sendall(b"x")
        assert conn.recv(1) == b"x"
        conn.close()
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("address", [("203.0.113.9", 80), ("8.8.8.8", 53)])
def test_connect_outside_is_refused(guard: NetworkGuard, address: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkBlockedError) as caught:
            sock.connect(address)
        with pytest.raises(NetworkBlockedError):
            sock.connect_ex(address)
    message = str(caught.value)
    assert address[0] in message and "\n" not in message
    assert isinstance(caught.value, HearthError) and isinstance(caught.value, OSError)


def test_ipv6_outside_is_refused_and_ipv6_loopback_allowed(guard: NetworkGuard) -> None:
    with pytest.raises(NetworkBlockedError):
        guard.check_address(socket.AF_INET6, ("2001:db8::1", 443, 0, 0))
    guard.check_address(socket.AF_INET6, ("::1", 443, 0, 0))
    guard.check_address(socket.AF_INET6, ("::ffff:127.0.0.1", 443, 0, 0))
    with pytest.raises(NetworkBlockedError):
        guard.check_address(socket.AF_INET6, ("::ffff:203.0.113.1", 443, 0, 0))


def test_udp_sendto_outside_is_refused(guard: NetworkGuard) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(
        NetworkBlockedError
    ):
        sock.sendto(b"query", ("9.9.9.9", 53))


def test_name_lookups_of_other_hosts_are_refused(guard: NetworkGuard) -> None:
    with pytest.raises(NetworkBlockedError):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(NetworkBlockedError):
        socket.gethostbyname("huggingface.co")
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("example.com", 443), timeout=1)
    assert socket.getaddrinfo("localhost", 80)


def test_urllib_download_is_refused_with_the_guard_as_reason(guard: NetworkGuard) -> None:
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen("https://huggingface.co/x", timeout=2)
    assert isinstance(caught.value.reason, NetworkBlockedError)


def test_allowed_hosts_patterns_and_resolved_addresses(guard: NetworkGuard) -> None:
    assert guard.host_allowed("lan-server.example")
    assert guard.host_allowed("cdn.mirror.example")
    assert not guard.host_allowed("mirror.example.evil.org")
    assert guard.host_allowed("192.0.2.44")
    assert not guard.host_allowed("192.0.2.45")
    # A numeric lookup of an allowed address records it for the later connect().
    socket.getaddrinfo("192.0.2.44", 8080, flags=socket.AI_NUMERICHOST)
    assert "192.0.2.44" in guard.resolved
    guard.check_address(socket.AF_INET, ("192.0.2.44", 8080))


def test_uninstall_restores_the_socket_module() -> None:
    original_connect = socket.socket.connect
    original_lookup = socket.getaddrinfo
    guard = install_network_guard([])
    assert socket.socket.connect is not original_connect
    assert active_guard() is guard
    again = install_network_guard(["a.example"])  # re-installing replaces, never stacks
    again.uninstall()
    assert socket.socket.connect is original_connect
    assert socket.getaddrinfo is original_lookup
    assert active_guard() is None


def test_offline_environment_sets_library_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    switches = offline_environment()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert set(switches) <= set(os.environ)


def test_allowed_hosts_for_settings() -> None:
    assert allowed_hosts_for(Settings()) == []
    lan = replace(Settings(), "remote", url="http://192.168.1.20:8080")
    assert allowed_hosts_for(lan) == ["192.168.1.20"]
    installing = allowed_hosts_for(Settings(), installing_models=True)
    assert "huggingface.co" in installing and "*.huggingface.co" in installing
    cluster = replace(lan, "cluster", workers=("192.168.1.21:50052", "attic-pi:50052"))
    assert allowed_hosts_for(cluster) == ["192.168.1.20", "192.168.1.21", "attic-pi"]


def _connect_outside(args: object, settings: object) -> int:
    """A stand-in subcommand that tries to reach the internet."""
    with socket.create_connection(("192.0.2.7", 443), timeout=1):
        return 0


def test_the_cli_guards_every_subcommand(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import logging

    from app import cli
    from app.netguard import OFFLINE_SWITCHES

    monkeypatch.setitem(cli.HANDLERS, "doctor", f"{__name__}:_connect_outside")
    for name in OFFLINE_SWITCHES:  # restored after the test, whatever main() sets
        monkeypatch.setenv(name, os.environ.get(name, ""))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # main() adds its own
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    try:
        code = cli.main(["--config", str(config), "doctor"])
    finally:
        guard = active_guard()
        if guard is not None:
            guard.uninstall()
    assert guard is not None, "hearth's CLI did not install the network guard"
    assert code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("hearth: offline guard: refused a network connection to 192.0.2.7")
    assert len(message.splitlines()) == 1
    assert os.environ["HF_HUB_OFFLINE"] == "1"
