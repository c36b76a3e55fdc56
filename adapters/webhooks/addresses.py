"""Where a webhook may point: https, public addresses only (SSRF), checked twice.

At registration the URL is checked and its name resolved; at every connection the resolver checks
the addresses it is about to connect to, so a name that later resolves elsewhere (DNS rebinding)
is refused too. Refused unless `allow_private`: private, loopback, link-local, CGNAT (100.64/10),
unique-local, multicast and reserved ranges. Never allowed: unspecified addresses and the cloud
metadata addresses. `allow_http` (development, tests) permits plain http to loopback only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL = 2048
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23")
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class RefusedUrlError(ValueError):
    """A URL or an address a webhook may not use; `message` never repeats the URL."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unwrapped(ip: IP) -> IP:
    """An IPv4 address hidden in IPv6 (mapped, 6to4, NAT64) is judged as itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


@dataclass(frozen=True)
class AddressPolicy:
    allow_http: bool = False
    allow_private: bool = False

    def check_address(self, ip: IP, *, plain_http: bool) -> None:
        """Raise RefusedUrlError for an address this policy does not connect to."""
        ip = _unwrapped(ip)
        if ip in METADATA or ip.is_unspecified:
            raise RefusedUrlError("webhook_address_refused", "the URL points at an address never allowed")
        if plain_http:
            if not (self.allow_http and ip.is_loopback):
                raise RefusedUrlError("webhook_https_required", "plain http is allowed to loopback only")
            return
        if ip.is_loopback and self.allow_http:
            return
        public = ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)
        if not public and not self.allow_private:
            raise RefusedUrlError(
                "webhook_address_refused", "the URL points at a private, local or reserved address"
            )

    def parse(self, url: str) -> SplitResult:
        """The URL's own checks (no name is resolved here)."""
        if len(url) > MAX_URL:
            raise RefusedUrlError("webhook_url_invalid", f"the URL is longer than {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise RefusedUrlError("webhook_url_invalid", "the URL is not a valid URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise RefusedUrlError("webhook_url_invalid", "the URL must be https://host/…")
        if parts.username is not None or parts.password is not None or parts.fragment:
            raise RefusedUrlError("webhook_url_invalid", "the URL may carry no user, password or fragment")
        if parts.scheme == "http" and not self.allow_http:
            raise RefusedUrlError("webhook_https_required", "the URL must use https")
        if port == 0:
            raise RefusedUrlError("webhook_url_invalid", "the URL's port is not valid")
        literal = _literal(parts.hostname)
        if literal is not None:
            self.check_address(literal, plain_http=parts.scheme == "http")
        elif parts.scheme == "http" and parts.hostname.lower() not in LOOPBACK_NAMES:
            raise RefusedUrlError("webhook_https_required", "plain http is allowed to loopback only")
        return parts

    async def check_url(self, url: str, *, resolve_timeout: float = 5.0) -> None:
        """At registration: the URL's form, and every address its name resolves to now."""
        parts = self.parse(url)
        host = parts.hostname or ""
        if _literal(host) is not None:
            return
        resolver = DefaultResolver()
        try:
            async with asyncio.timeout(resolve_timeout):
                found = await resolver.resolve(host, parts.port or 443, socket.AF_UNSPEC)
        except (OSError, TimeoutError):
            raise RefusedUrlError(
                "webhook_url_unresolvable", "the URL's host name does not resolve"
            ) from None
        finally:
            await resolver.close()
        for entry in found:
            self.check_address(ipaddress.ip_address(entry["host"]), plain_http=parts.scheme == "http")


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves as aiohttp does, then refuses the whole answer if any address is not allowed."""

    def __init__(self, policy: AddressPolicy, *, plain_http: bool) -> None:
        self._policy = policy
        self._plain_http = plain_http
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            try:
                self._policy.check_address(ipaddress.ip_address(entry["host"]), plain_http=self._plain_http)
            except RefusedUrlError as exc:
                raise OSError(f"{exc.code}: {exc.message}") from None
        return found

    async def close(self) -> None:
        await self._inner.close()
