"""The webhook rules without I/O: which addresses a receiver may have, how signatures look, what a
receiver's answer means, and how long the retry schedule runs."""

from __future__ import annotations

import base64
import ipaddress
import socket
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from adapters.webhooks.addresses import AddressPolicy, GuardedResolver, RefusedUrlError
from adapters.webhooks.signing import headers, new_secret
from orchestrator.delivery import RetrySchedule, decide
from orchestrator.ports import PendingDelivery, WebhookEndpoint, WebhookResponse

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STRICT = AddressPolicy()
REFUSED = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "::1",
    "169.254.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "0.0.0.0",
    "::",
    "240.0.0.1",
    "255.255.255.255",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_local_reserved_and_metadata_addresses_are_refused(address: str) -> None:
    with pytest.raises(RefusedUrlError):
        STRICT.check_address(ipaddress.ip_address(address), plain_http=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    STRICT.check_address(ipaddress.ip_address(address), plain_http=False)


def test_allow_private_opens_private_ranges_but_never_metadata_or_unspecified() -> None:
    lenient = AddressPolicy(allow_private=True)
    for address in ("10.0.0.1", "fc00::1", "100.64.0.1", "127.0.0.1"):
        lenient.check_address(ipaddress.ip_address(address), plain_http=False)
    for address in ("169.254.169.254", "fd00:ec2::254", "0.0.0.0", "::"):
        with pytest.raises(RefusedUrlError):
            lenient.check_address(ipaddress.ip_address(address), plain_http=False)


def test_plain_http_goes_to_loopback_only_and_only_when_allowed() -> None:
    dev = AddressPolicy(allow_http=True)
    dev.check_address(ipaddress.ip_address("127.0.0.1"), plain_http=True)
    dev.check_address(ipaddress.ip_address("::1"), plain_http=True)
    for address in ("10.0.0.1", "8.8.8.8"):
        with pytest.raises(RefusedUrlError):
            dev.check_address(ipaddress.ip_address(address), plain_http=True)
    with pytest.raises(RefusedUrlError):
        STRICT.check_address(ipaddress.ip_address("127.0.0.1"), plain_http=True)
    with pytest.raises(RefusedUrlError) as refused:
        STRICT.parse("http://example.com/hook")
    assert refused.value.code == "webhook_https_required"
    dev.parse("http://localhost:8080/hook")
    with pytest.raises(RefusedUrlError):
        dev.parse("http://example.com/hook")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@example.com/",
        "https://example.com/#fragment",
        "ftp://example.com/",
        "https:///nohost",
        "https://example.com:0/",
        "https://example.com:99999/",
        "https://[::1/",
        "https://example.com/" + "a" * 2048,
        "https://[::ffff:169.254.169.254]/",
    ],
)
def test_urls_that_are_not_plain_https_urls_are_refused(url: str) -> None:
    with pytest.raises(RefusedUrlError) as refused:
        AddressPolicy(allow_private=True).parse(url)
    assert url not in refused.value.message


class Answers:
    """A resolver answering what DNS says now (a name that rebinds between check and connect)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        return [
            {"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_the_resolver_refuses_a_name_that_now_points_somewhere_private() -> None:
    resolver = GuardedResolver(STRICT, plain_http=False)
    resolver._inner = Answers("93.184.216.34")  # type: ignore[assignment]
    assert [r["host"] for r in await resolver.resolve("hooks.example", 443)] == ["93.184.216.34"]
    resolver._inner = Answers("93.184.216.34", "169.254.169.254")  # type: ignore[assignment]
    with pytest.raises(OSError, match="webhook_address_refused"):
        await resolver.resolve("hooks.example", 443)
    await resolver.close()


async def test_a_name_resolving_to_loopback_is_refused_at_registration() -> None:
    with pytest.raises(RefusedUrlError) as refused:
        await STRICT.check_url("https://localhost/hook")
    assert refused.value.code == "webhook_address_refused"


def test_a_secret_and_its_signatures_follow_standard_webhooks() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    assert new_secret() != secret
    body = '{"type": "registration.activated", "名": "公的"}'.encode()
    sent = headers("msg-1", datetime.now(UTC), body, [secret, new_secret()])
    assert sent["webhook-id"] == "msg-1"
    assert all(s.startswith("v1,") for s in sent["webhook-signature"].split(" "))
    assert Webhook(secret).verify(body, sent)["type"] == "registration.activated"


def pending(attempts: int = 0) -> PendingDelivery:
    hook = WebhookEndpoint("f", "https://example.com", new_secret(), NOW, NOW)
    return PendingDelivery("e", "f", "registration.activated", b"{}", attempts, NOW, hook)


def test_a_receiver_s_answer_decides_the_delivery() -> None:
    schedule = RetrySchedule()
    assert decide(pending(), WebhookResponse(204), schedule, NOW, 0.5).state == "delivered"
    gone = decide(pending(), WebhookResponse(410), schedule, NOW, 0.5)
    assert (gone.state, gone.endpoint_state) == ("failed", "disabled")
    for response in (
        WebhookResponse(500),
        WebhookResponse(301),
        WebhookResponse(404),
        WebhookResponse(None, "timeout"),
    ):
        retry = decide(pending(), response, schedule, NOW, 0.5)
        assert (retry.state, retry.endpoint_state) == ("pending", None)
        assert retry.next_attempt_at is not None
        assert retry.next_attempt_at > NOW
    late = decide(pending(30), WebhookResponse(500), schedule, NOW + timedelta(days=3), 0.5)
    assert (late.state, late.endpoint_state) == ("failed", "failing")


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_the_retry_schedule_backs_off_with_jitter_for_about_three_days(jitter: float) -> None:
    schedule = RetrySchedule()
    at, attempts, gaps = NOW, 1, []
    while (later := schedule.next_attempt(attempts, NOW, at, jitter)) is not None:
        gaps.append(later - at)
        at, attempts = later, attempts + 1
    assert gaps == sorted(gaps), "never shorter than the gap before"
    assert gaps[-1] <= timedelta(hours=6)
    assert timedelta(days=2, hours=12) <= at - NOW <= timedelta(days=3)
    assert 12 <= attempts <= 40, attempts
