"""The offline guarantee: nothing Hearth runs may talk to the internet.

Two layers, both installed by the CLI before any subcommand runs:

1. `offline_environment()` sets the "stay offline / no telemetry" switches of every
   library that might otherwise phone home (Hugging Face hub, transformers, datasets,
   telemetry opt-outs). Child processes inherit them.
2. `install_network_guard(allowed_hosts)` wraps the `socket` module so that, in this
   process, a connection may only go to loopback, a local (AF_UNIX, netlink...) socket,
   or one of the allowed hosts. Anything else raises `NetworkBlockedError` before a
   single packet leaves. Name lookups of other hosts are refused as well, so not even
   a DNS query gives away what Hearth is doing.

Normal operation allows only the configured LAN server (`remote.url`) and cluster
workers (`cluster.workers`); `hearth models install` additionally allows the catalog's
download hosts (see `allowed_hosts_for`).
"""

from __future__ import annotations

import errno
import fnmatch
import ipaddress
import logging
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.errors import HearthError

log = logging.getLogger(__name__)

OFFLINE_SWITCHES: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime (Piper) looks up a telemetry host otherwise
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
}
"""Environment switches that keep libraries (and their child processes) offline."""

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                            "ip6-loopback"})


class NetworkBlockedError(HearthError, OSError):
    """A connection to a host outside this machine was refused by the offline guard.

    It is also an `OSError` (EACCES) so code that handles an unreachable server (the
    remote engine, the downloader) treats it as one instead of crashing.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def offline_environment() -> dict[str, str]:
    """Set every library's offline / no-telemetry switch in `os.environ`; return them."""
    os.environ.update(OFFLINE_SWITCHES)
    return dict(OFFLINE_SWITCHES)


def _host_of(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _proxy_hosts() -> list[str]:
    # Downloads through a proxy connect to the proxy, not to the catalog's host.
    return [h for h in (_host_of(u) for u in urllib.request.getproxies().values()) if h]


def allowed_hosts_for(settings: Any, *, installing_models: bool = False) -> list[str]:
    """The hosts a run may reach: the configured LAN server and cluster workers, and
    while installing models also the catalog's download hosts (with their subdomains,
    where CDNs redirect to) and any configured HTTP proxy."""
    hosts: list[str] = []
    remote = _host_of(getattr(getattr(settings, "remote", None), "url", "") or "")
    if remote:
        hosts.append(remote)
    workers = getattr(getattr(settings, "cluster", None), "workers", ())
    hosts += [worker.rpartition(":")[0] for worker in workers]  # 'host:port', validated
    if installing_models:
        from app.models.catalog import load_catalog

        for entry in load_catalog().entries:
            for source in entry.sources:
                for url in source.urls.values():
                    host = _host_of(url)
                    if host:
                        hosts += [host, f"*.{host}"]
        hosts += _proxy_hosts()
    return sorted(set(hosts))


def _is_local_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # Connecting to the unspecified address reaches this machine on Linux.
    return ip.is_loopback or ip.is_unspecified


@dataclass
class NetworkGuard:
    """The installed guard: which hosts it allows and the addresses they resolved to."""

    allowed_hosts: tuple[str, ...]
    resolved: set[str] = field(default_factory=set)
    """IP addresses of allowed hosts, learned from name lookups (connect sees only IPs)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _originals: dict[str, Any] = field(default_factory=dict, repr=False)

    def host_allowed(self, host: str | bytes | None) -> bool:
        """Loopback, an allowed host (patterns like '*.example.org' too) or one of
        their resolved addresses."""
        if host is None:
            return True  # a passive lookup (for bind), never a connection
        name = (host.decode() if isinstance(host, bytes) else host).strip("[]").lower()
        if name in ("", *LOOPBACK_NAMES) or _is_local_ip(name):
            return True
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allowed_hosts):
            return True
        with self._lock:
            return name.split("%", 1)[0] in self.resolved

    def check_address(self, family: int, address: Any) -> None:
        """Raise `NetworkBlockedError` unless a connection to `address` stays allowed."""
        if family not in (socket.AF_INET, socket.AF_INET6):
            return  # AF_UNIX, netlink and friends never leave the machine
        host = address[0] if isinstance(address, tuple) and address else address
        if not self.host_allowed(host):
            raise NetworkBlockedError(_blocked_message(host))

    def uninstall(self) -> None:
        """Put the original socket functions back (tests use this)."""
        global _active
        for name, original in self._originals.items():
            owner_name, attr = name.split(".", 1)
            setattr(socket.socket if owner_name == "socket" else socket, attr, original)
        self._originals.clear()
        if _active is self:
            _active = None


def _blocked_message(host: Any) -> str:
    return (f"offline guard: refused a network connection to {host} (Hearth only talks "
            f"to this machine and to servers named in its config)")


_active: NetworkGuard | None = None


def active_guard() -> NetworkGuard | None:
    """The guard installed in this process, if any."""
    return _active


def install_network_guard(allowed_hosts: Iterable[str]) -> NetworkGuard:
    """Refuse, in this process, every connection that is not local or to `allowed_hosts`.

    Wraps `socket.socket.connect`/`connect_ex`/`sendto`, `socket.create_connection`,
    `socket.getaddrinfo` and `socket.gethostbyname(_ex)`. Installing again replaces
    the allow-list of the guard already installed.
    """
    global _active
    hosts = tuple(sorted({h.strip().lower() for h in allowed_hosts if h and h.strip()}))
    if _active is not None:
        _active.uninstall()
    guard = NetworkGuard(hosts)
    originals = guard._originals

    def wrap_method(attr: str, make: Callable[[Any], Any]) -> None:
        original = getattr(socket.socket, attr)
        originals[f"socket.{attr}"] = original
        setattr(socket.socket, attr, make(original))

    def wrap_function(attr: str, make: Callable[[Any], Any]) -> None:
        original = getattr(socket, attr)
        originals[f"module.{attr}"] = original
        setattr(socket, attr, make(original))

    def guarded_connect(original: Any) -> Any:
        def connect(sock: socket.socket, address: Any) -> Any:
            guard.check_address(sock.family, address)
            return original(sock, address)

        return connect

    def guarded_sendto(original: Any) -> Any:
        def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
            if args:
                guard.check_address(sock.family, args[-1])
            return original(sock, data, *args)

        return sendto

    def guarded_lookup(original: Any) -> Any:
        def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not guard.host_allowed(host):
                raise NetworkBlockedError(_blocked_message(host))
            result = original(host, *args, **kwargs)
            if host is not None and not _is_local_ip(str(host)):
                with guard._lock:
                    guard.resolved.update(_addresses_in(result))
            return result

        return lookup

    def guarded_create_connection(original: Any) -> Any:
        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            if not guard.host_allowed(address[0]):
                raise NetworkBlockedError(_blocked_message(address[0]))
            return original(address, *args, **kwargs)

        return create_connection

    wrap_method("connect", guarded_connect)
    wrap_method("connect_ex", guarded_connect)
    wrap_method("sendto", guarded_sendto)
    wrap_function("create_connection", guarded_create_connection)
    wrap_function("getaddrinfo", guarded_lookup)
    wrap_function("gethostbyname", guarded_lookup)
    wrap_function("gethostbyname_ex", guarded_lookup)
    _active = guard
    log.debug("network guard installed; allowed hosts: %s", ", ".join(hosts) or "(none)")
    return guard


def _addresses_in(result: Any) -> set[str]:
    """IP strings in a getaddrinfo / gethostbyname(_ex) result."""
    if isinstance(result, str):
        return {result}
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[2], list):
        return set(result[2])
    found: set[str] = set()
    for item in result or ():
        sockaddr = item[4] if isinstance(item, tuple) and len(item) == 5 else None
        if sockaddr:
            found.add(str(sockaddr[0]).split("%", 1)[0])
    return found
