"""The host list of `sandbox.network`: patterns as the user writes them, and the check the
proxy (tools/sandbox_proxy.py) makes on every request.

A pattern is `name`, `*.suffix` or either with `:port`: `pypi.org`, `*.pythonhosted.org`,
`github.com:443`, `127.0.0.1:8080`, `[::1]:8080`. Names compare case-insensitively, with one
trailing dot dropped. `*.suffix` matches names below the suffix, not the suffix itself (as in
Claude Code). Without a port, any port of that host is allowed.

An IP address matches only a pattern that names that very address: `*.` never matches one, and
every spelling the resolver would read as IPv4 (`127.1`, `0x7f.0.0.1`, `2130706433`) counts as
the address it spells, so a listed name cannot be walked around by writing its address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

# Letters, digits, '-' and '_' (some real service names carry one), dot-separated.
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*")
_MAX_NAME = 253


@dataclass(frozen=True)
class Host:
    """A host as a request names it: a lower-case name, or an IP address in canonical form."""

    name: str
    is_ip: bool


def parse_host(text: str) -> Host | None:
    """The host a request names (`Example.COM`, `127.1`, `::1`), or None when it is not a
    host name or address at all (spaces, slashes, `@`, empty labels, ...)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return Host(str(ipaddress.IPv6Address(text)), True)
        except ValueError:
            return None
    name = text.lower()
    name = name.removesuffix(".")
    if not name or len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        return None
    try:
        # inet_aton reads the shorthand forms getaddrinfo would also accept.
        return Host(socket.inet_ntoa(socket.inet_aton(name)), True)
    except OSError:
        pass
    if name.replace(".", "").isdigit():
        return None  # all digits but not an address (e.g. 1.2.3.4.5): refuse, do not resolve
    return Host(name, False)


@dataclass(frozen=True)
class HostPattern:
    """One entry of `sandbox.network`."""

    host: str  # a name, the suffix after `*.`, or a canonical IP address
    wildcard: bool
    is_ip: bool
    port: int | None

    def matches(self, host: Host, port: int) -> bool:
        """Whether a request to `host`:`port` is allowed by this entry."""
        if self.port is not None and port != self.port:
            return False
        if host.is_ip or self.is_ip:
            return host.is_ip == self.is_ip and host.name == self.host
        if self.wildcard:
            return host.name.endswith("." + self.host)
        return host.name == self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        host = "*." + host if self.wildcard else host
        return host if self.port is None else f"{host}:{self.port}"


def _split_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: an IPv6 address needs its closing ']'")
        host, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"{text!r}: only ':port' may follow ']'")
        port_s = rest[1:]
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    elif ":" in text:
        return text, None  # a bare IPv6 address
    else:
        return text, None
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port_s)


def parse_pattern(text: object) -> HostPattern:
    """An entry of `sandbox.network`, checked; ValueError says what is wrong with it."""
    if not isinstance(text, str):
        # A ValueError: pydantic turns it into a settings error naming the key.
        raise ValueError(  # noqa: TRY004
            f'{text!r} is not a host name (a string such as "pypi.org")'
        )
    raw = text.strip()
    if "://" in raw or "/" in raw:
        raise ValueError(f'{text!r}: give a host name such as "pypi.org" (no scheme, no path)')
    host_s, port = _split_port(raw)
    wildcard = host_s.startswith("*.")
    if wildcard:
        host_s = host_s[2:]
    if "*" in host_s:
        raise ValueError(f"{text!r}: '*' may only begin a pattern, as in \"*.example.com\"")
    host = parse_host(host_s)
    if host is None:
        raise ValueError(f"{text!r} is not a host name, '*.' pattern or IP address")
    if wildcard and host.is_ip:
        raise ValueError(f"{text!r}: '*.' goes before a name, not an IP address")
    return HostPattern(host.name, wildcard, host.is_ip, port)


def is_allowed(patterns: list[HostPattern], host: Host, port: int) -> bool:
    """Whether any entry allows `host`:`port`."""
    return any(p.matches(host, port) for p in patterns)
