"""The WebhookSender port over aiohttp: signed POSTs with connect and read timeouts, no redirects.

Two sessions: https connects through a resolver that refuses non-public addresses, plain http (only
with `allow_http`) through one that accepts loopback only. An address literal never reaches a
resolver in aiohttp, so it is checked here before each attempt. No proxy from the environment.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

import aiohttp

from adapters.webhooks.addresses import AddressPolicy, GuardedResolver, RefusedUrlError
from adapters.webhooks.signing import headers
from orchestrator.ports import WebhookRequest, WebhookResponse

USER_AGENT = "Honnin-Webhooks/1"


class HttpWebhookSender:
    """Built inside a running loop (aiohttp sessions need one); `close` releases both."""

    def __init__(self, policy: AddressPolicy, *, connect_timeout: float, read_timeout: float) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._sessions: dict[bool, aiohttp.ClientSession] = {}

    def _session(self, plain_http: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(plain_http)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._policy, plain_http=plain_http), ttl_dns_cache=10, limit=0
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
            self._sessions[plain_http] = session
        return session

    async def send(self, request: WebhookRequest) -> WebhookResponse:
        plain = request.url.startswith("http:")
        try:
            self._check_literal(request.url, plain)
        except RefusedUrlError as exc:
            return WebhookResponse(None, f"{exc.code}: {exc.message}")
        signed = headers(request.message_id, request.timestamp, request.body, request.secrets)
        try:
            async with self._session(plain).post(
                request.url, data=request.body, headers=signed, allow_redirects=False
            ) as response:
                return WebhookResponse(response.status)
        except TimeoutError:
            return WebhookResponse(None, "timeout: no answer within the connect and read timeouts")
        except aiohttp.ClientConnectorError as exc:
            return WebhookResponse(None, f"connection failed: {type(exc.os_error).__name__}: {exc.os_error}")
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            return WebhookResponse(None, f"request failed: {type(exc).__name__}")

    def _check_literal(self, url: str, plain: bool) -> None:
        host = (urlsplit(url).hostname or "").strip("[]")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        self._policy.check_address(literal, plain_http=plain)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
