"""`hearth worker`: lend this machine's memory to a Hearth elsewhere on the network.

`ggml-rpc-server` has no authentication and has had memory-safety bugs, so it never
faces the network itself. `WorkerService` runs it on a private loopback port, with
SIGPIPE ignored (a client leaving early would kill it otherwise) and restarts it when
it dies; `AllowListProxy` listens on the address given and forwards only connections
whose peer address is one of the allowed Hearth hosts. Everyone else gets one
"HEARTH-REFUSED" line and a closed connection. The proxy also answers Hearth's status
request itself, with this machine's usable memory (its cgroup limit counted), which the
RPC server cannot tell (it reports the machine's whole RAM as free).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app import __version__
from app.errors import HearthError
from app.models.tiers import detect_memory
from engine.rpc import (
    DEFAULT_PORT,
    HEARTH_REFUSED,
    HEARTH_STATUS_REQUEST,
    HEARTH_UNAVAILABLE,
)

log = logging.getLogger(__name__)

WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "*", "::", "[::]"})
_BUFFER_BYTES = 1 << 18


class WorkerError(HearthError):
    """The worker cannot start (bad address, no ggml-rpc-server, port in use)."""


@dataclass(frozen=True)
class WorkerOptions:
    host: str = "127.0.0.1"
    """Address the worker listens on (IPv4); a wildcard needs `any_address`."""
    port: int = DEFAULT_PORT
    threads: int = 0
    """Compute threads of ggml-rpc-server; 0: its default (half the cores)."""
    allow: tuple[str, ...] = ("127.0.0.1",)
    """Hosts (names or IPv4 addresses) whose connections are forwarded."""
    any_address: bool = False
    """Allow a wildcard listen address (every interface)."""


def find_rpc_server() -> Path:
    """The ggml-rpc-server built by `make rpc-server` (in the venv's bin folder)."""
    override = os.environ.get("HEARTH_RPC_SERVER")
    candidates = [Path(override)] if override else [Path(sys.prefix) / "bin" / "ggml-rpc-server"]
    found = shutil.which("ggml-rpc-server")
    if found and not override:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise WorkerError("ggml-rpc-server is not built; run: make rpc-server")


def resolve_allowed(hosts: tuple[str, ...]) -> frozenset[str]:
    """IPv4 addresses of the allowed hosts (names are looked up once, at start)."""
    addresses: set[str] = set()
    for host in hosts:
        try:
            addresses.add(str(ipaddress.IPv4Address(host)))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            raise WorkerError(f"--allow {host}: cannot resolve it ({exc})") from None
        addresses.update(str(info[4][0]) for info in infos)
    if not addresses:
        raise WorkerError("--allow names no host: give the address of the Hearth machine")
    return frozenset(addresses)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RpcServerSupervisor:
    """Runs ggml-rpc-server on 127.0.0.1:`port` and restarts it when it exits."""

    def __init__(self, binary: Path, port: int, threads: int = 0) -> None:
        self.binary, self.port, self.threads = binary, port, threads
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rpc-server-watch",
                                        daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, ready_timeout_seconds: float = 10.0) -> None:
        self._spawn()
        self._wait_listening(ready_timeout_seconds)
        self._thread.start()

    def _spawn(self) -> None:
        command = [str(self.binary), "-H", "127.0.0.1", "-p", str(self.port)]
        if self.threads:
            command += ["-t", str(self.threads)]
        # restore_signals=False keeps Python's SIG_IGN for SIGPIPE in the child, so a
        # client that disconnects mid-reply does not kill the server.
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, restore_signals=False)
        threading.Thread(target=self._log_output, args=(self._process,),
                         name="rpc-server-log", daemon=True).start()
        log.info("ggml-rpc-server running as process %d on 127.0.0.1:%d",
                 self._process.pid, self.port)

    @staticmethod
    def _log_output(process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.debug("rpc-server: %s", line.decode("utf-8", "replace").rstrip())

    def _wait_listening(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise WorkerError(f"ggml-rpc-server exited at start (code "
                                  f"{self._process.returncode})")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.1)
        raise WorkerError(f"ggml-rpc-server did not listen within {timeout_seconds:g} s")

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            assert self._process is not None
            code = self._process.wait()
            if self._stopping.is_set():
                return
            log.warning("ggml-rpc-server exited (%s); restarting in %g s", code, backoff)
            if self._stopping.wait(backoff):
                return
            started = time.monotonic()
            self._spawn()
            self.restarts += 1
            with contextlib.suppress(WorkerError):
                self._wait_listening(10.0)
            # A server that keeps dying right away is retried less and less often.
            backoff = 1.0 if time.monotonic() - started > 30 else min(backoff * 2, 30.0)

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class AllowListProxy:
    """Listens on (host, port); forwards allowed peers to 127.0.0.1:`backend_port`."""

    def __init__(self, host: str, port: int, backend_port: int, allowed: frozenset[str],
                 supervisor: RpcServerSupervisor | None = None) -> None:
        self.allowed = allowed
        self.backend_port = backend_port
        self.supervisor = supervisor
        self.clients = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError as exc:
            self._listener.close()
            raise WorkerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._listener.listen(16)
        self.address = self._listener.getsockname()
        self._thread = threading.Thread(target=self._accept_loop, name="worker-proxy",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn, peer[0]), name="worker-conn",
                             daemon=True).start()

    def status(self) -> dict[str, object]:
        memory = detect_memory()
        return {
            "hearth": __version__, "total_bytes": memory.total_bytes,
            "usable_bytes": memory.usable_bytes, "clients": self.clients,
            "restarts": self.supervisor.restarts if self.supervisor else 0,
            "threads": self.supervisor.threads if self.supervisor else 0,
        }

    def _serve(self, conn: socket.socket, peer: str) -> None:
        with conn:
            if peer not in self.allowed:
                self.refused += 1
                log.warning("refused a connection from %s (not in --allow)", peer)
                with contextlib.suppress(OSError):
                    conn.sendall(HEARTH_REFUSED + b": not in this worker's --allow list\n")
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(30.0)
            try:
                first = conn.recv(_BUFFER_BYTES)
            except OSError:
                return
            if not first:
                return
            if first.startswith(HEARTH_STATUS_REQUEST[:1]):
                while not first.endswith(b"\n") and len(first) < 64:
                    with contextlib.suppress(OSError):
                        more = conn.recv(64)
                        if not more:
                            break
                        first += more
                if first == HEARTH_STATUS_REQUEST:
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps(self.status()).encode() + b"\n")
                return
            conn.settimeout(None)
            self._forward(conn, first, peer)

    def _forward(self, conn: socket.socket, first: bytes, peer: str) -> None:
        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=5.0)
        except OSError as exc:
            log.warning("client %s: the RPC server is not reachable (%s)", peer, exc)
            with contextlib.suppress(OSError):
                conn.sendall(HEARTH_UNAVAILABLE + b": ggml-rpc-server is restarting\n")
            return
        with backend:
            backend.settimeout(None)
            backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.clients += 1
            log.info("client %s connected", peer)
            try:
                backend.sendall(first)
                pump = threading.Thread(target=_pump, args=(backend, conn),
                                        name="worker-pump", daemon=True)
                pump.start()
                _pump(conn, backend)
                pump.join()
            except OSError:
                pass
            finally:
                with self._lock:
                    self.clients -= 1
                log.info("client %s disconnected", peer)


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy until either side closes; then close both directions so the other pump ends."""
    try:
        while data := source.recv(_BUFFER_BYTES):
            target.sendall(data)
    except OSError:
        pass
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class WorkerService:
    """The RPC server and its allow-list proxy, started and stopped together."""

    def __init__(self, options: WorkerOptions, binary: Path | None = None) -> None:
        if options.host.strip() in WILDCARD_ADDRESSES and not options.any_address:
            raise WorkerError(f"--host {options.host or '(empty)'} listens on every network "
                              "interface; give this machine's LAN address, or add "
                              "--any-address if that is really meant")
        host = "0.0.0.0" if options.host.strip() in WILDCARD_ADDRESSES else options.host
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise WorkerError(f"--host {options.host}: give an IPv4 address") from None
        self.options = options
        self.allowed = resolve_allowed(options.allow)
        self.supervisor = RpcServerSupervisor(binary or find_rpc_server(),
                                              _free_loopback_port(), options.threads)
        self.supervisor.start()
        try:
            self.proxy = AllowListProxy(host, options.port, self.supervisor.port,
                                        self.allowed, self.supervisor)
        except WorkerError:
            self.supervisor.stop()
            raise
        self.proxy.start()
        log.info("worker listening on %s:%d for %s", host, options.port,
                 ", ".join(sorted(self.allowed)))

    def stop(self) -> None:
        self.proxy.close()
        self.supervisor.stop()
