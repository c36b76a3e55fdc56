"""The one typed settings object, read once from HONNIN_* variables; nothing else reads the environment."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orchestrator.errors import ConfigurationError
from orchestrator.model import Profile
from orchestrator.xid import XID_CHECKS, XID_PATH, XID_STEPS
from schemas.payloads import AcceptedTerms
from schemas.privacy import MAX_ID_DIGITS, digit_count, has_controls


def _split_paths(value: object) -> object:
    """Environment variables list paths comma-separated; code may pass a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


PathList = Annotated[list[Path], NoDecode, BeforeValidator(_split_paths)]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


_OWNERS = {
    "HONNIN_FACILITY_TOKENS": ("facility", "facilities"),
    "HONNIN_APP_CLIENTS": ("app client", "app clients"),
    "HONNIN_OPERATOR_TOKENS": ("operator", "operators"),
}


def _check_pair(name: str, shape: str, position: int, owner: str, secret: str) -> None:
    """One `id:secret` pair: an id like any chosen id (11 digits at most), a secret of 16+ characters."""
    where, kind = f"{name} pair {position}", _OWNERS[name][0]
    if not owner or len(secret) < 16:
        raise ConfigurationError(f"{where}: pairs are {shape}, tokens of 16+ characters")
    if has_controls(owner) or owner != owner.strip() or len(owner) > 64:
        raise ConfigurationError(f"{where}: a {kind} id is 1-64 printable characters")
    if digit_count(owner) > MAX_ID_DIGITS:
        raise ConfigurationError(f"{where}: a {kind} id holds at most {MAX_ID_DIGITS} digits")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HONNIN_", extra="ignore")

    data_dir: Path = Field(Path("honnin-data"), description="where the embedded store keeps its files")
    store: Literal["sqlite", "mongodb"] = "sqlite"
    sqlite_path: Path | None = Field(None, description="default: DATA_DIR/honnin.db")
    mongodb_url: SecretStr | None = None
    mongodb_database: str = "honnin"
    bus: Literal["inprocess", "rabbitmq"] = "inprocess"
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    rabbitmq_exchange: str = "honnin"
    rabbitmq_queue_prefix: str = Field("", description="isolates several Honnin installations on one broker")
    rabbitmq_prefetch: PositiveInt = 32
    inprocess_concurrency: PositiveInt = Field(
        32, description="deliveries each in-process consumer handles at once (the embedded bus's prefetch)"
    )
    data_key: SecretStr | None = Field(
        None, description="32 bytes, base64: encrypts personal facts at rest (default: DATA_DIR/data.key)"
    )
    activation_timeout_seconds: PositiveInt = 3600
    retention_days: PositiveFloat = 30.0
    verification_retry_limit: int = Field(5, ge=0)
    verification_retry_base_seconds: PositiveFloat = 2.0
    verification_retry_cap_seconds: PositiveFloat = 300.0
    delivery_limit: PositiveInt | None = Field(
        None,
        description="deprecated: also dead-letter a message after this many deliveries (see the window)",
    )
    redelivery_window_seconds: PositiveFloat = Field(
        600.0, description="a failing message is redelivered with backoff this long, then dead-lettered"
    )
    redelivery_base_seconds: PositiveFloat = Field(0.05, description="the first redelivery's wait")
    redelivery_cap_seconds: PositiveFloat = Field(300.0, description="the longest wait between two")
    early_event_wait_seconds: float = Field(
        0.05,
        ge=0,
        le=5,
        description="a delivered step that overtook an earlier one of its registration is tried once"
        " more in the worker after this wait, before the bus redelivers it; 0, or a consumer that takes"
        " one delivery at a time (HONNIN_RABBITMQ_PREFETCH or HONNIN_INPROCESS_CONCURRENCY of 1, where"
        " the wait would hold up its queue): redelivered at once",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="FULL: a commit survives a power loss; NORMAL: faster, may lose the last ones"
    )
    sqlite_busy_timeout_seconds: PositiveFloat = Field(
        10.0, description="how long a write waits for another process's lock before failing (retried)"
    )
    sweep_interval_seconds: PositiveFloat = 1.0
    relay_idle_seconds: PositiveFloat = 0.5
    relay_retry_seconds: PositiveFloat = Field(
        5.0, description="a message the bus refused waits this long; its registration's later ones with it"
    )
    worker_id: str = Field(default_factory=_default_worker_id)
    verifier_enabled: bool = Field(True, description="this worker also serves the verifier queue")
    verifier_processes: int | None = Field(
        0,
        ge=0,
        description="processes for the CPU-bound checks: 0 (default) runs them here; unset: one per core",
    )
    http_enabled: bool = Field(True, description="this worker serves the facility API and the card bridge")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    http_header_timeout_seconds: PositiveFloat = Field(
        10.0, description="a request's headers must be complete within this; a half-sent one is closed"
    )
    http_keepalive_seconds: PositiveFloat = Field(
        75.0, description="an idle keep-alive connection is closed after this (keep it above a proxy's)"
    )
    public_url: str = Field(
        "http://127.0.0.1:8080", description="where phones reach the card bridge (links, QR)"
    )
    facility_tokens: SecretStr | None = Field(
        None, description="comma-separated facility-id:token pairs; each facility calls with its bearer token"
    )
    operator_tokens: SecretStr | None = Field(
        None,
        description="comma-separated operator-name:token pairs for /ops/v1 (the name is the audit's who)",
    )
    operator_name: str | None = Field(
        None, description="who `honnin ops` records in the audit; default: the system user's name"
    )
    replay_rate: PositiveFloat = Field(20.0, description="replays a second when many are replayed at once")
    link_ttl_seconds: PositiveInt = 600
    trust_anchor_files: PathList = Field(
        default_factory=list, description="PEM/DER roots; default: the real JPKI signing roots shipped"
    )
    intermediate_files: PathList = Field(default_factory=list)
    anchors_dir: Path | None = Field(
        None, description="roots installed by `honnin anchors add`; default: DATA_DIR/anchors"
    )
    accept_test_certificates: bool = Field(
        False, description="accept the JPKI test-environment policy (and `honnin dev-ca` cards)"
    )
    verification_path: Literal["auto", "reference"] = Field(
        "auto", description="auto: the fast path without intermediates; reference: pyhanko always"
    )
    revocation: Literal["crl", "ocsp", "platform", "none"] = "crl"
    crl_files: PathList = Field(default_factory=list)
    crl_refresh_seconds: PositiveFloat = Field(
        60.0, description="how often CRL files are checked for replacement (reloaded in a thread)"
    )
    ocsp_url: str | None = None
    platform_url: str | None = None
    platform_token: SecretStr | None = None
    revocation_timeout_seconds: PositiveFloat = 5.0
    retain_certificates: bool = Field(False, description="keep the raw signing certificate after a decision")
    facility_queue: bool = Field(
        False, description="declare honnin.facility and outbox facility events to it (facilities on AMQP)"
    )
    facility_queue_max_length: PositiveInt = Field(
        10_000, description="x-max-length of honnin.facility; a full queue drops its oldest message"
    )
    webhook_allow_http: bool = Field(False, description="plain http to loopback receivers (development)")
    webhook_allow_private: bool = Field(
        False, description="receivers on private, local or reserved addresses"
    )
    webhook_connect_timeout_seconds: PositiveFloat = 5.0
    webhook_read_timeout_seconds: PositiveFloat = 10.0
    webhook_concurrency: PositiveInt = Field(32, description="deliveries in flight per worker")
    webhook_concurrency_per_endpoint: PositiveInt = Field(
        4, description="in flight per endpoint, all workers"
    )
    webhook_retry_base_seconds: PositiveFloat = 10.0
    webhook_retry_cap_seconds: PositiveFloat = 6 * 3600.0
    webhook_retry_window_seconds: PositiveFloat = Field(
        3 * 86400.0, description="after this, the endpoint is failing and its deliveries wait for a replay"
    )
    webhook_poll_seconds: PositiveFloat = Field(
        1.0, description="how often a worker looks for due deliveries"
    )
    webhook_delivery_enabled: bool = Field(True, description="this worker sends webhook deliveries")
    feed_poll_seconds: float = Field(
        0.05, gt=0, le=0.05, description="a waiting feed request looks for other workers' commits this often"
    )
    console_session_seconds: PositiveInt = Field(
        8 * 3600, description="how long a console login lasts (/ops/); a removed token ends it at once"
    )
    metrics_dir: Path | None = Field(
        None,
        description="a folder the workers of one host share: any worker's /metrics serves the sum of all",
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="also serve /metrics on this port (a worker without HTTP too)"
    )
    metrics_host: str = Field("127.0.0.1", description="the address of HONNIN_METRICS_PORT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Outbound mail (adapters/mail): the embedded file outbox, or SMTP
    mail: Literal["file", "smtp"] = Field("file", description="file: one .eml per message in MAIL_DIR")
    mail_dir: Path | None = Field(None, description="default: DATA_DIR/mail")
    mail_from: str = Field("no-reply@honnin.invalid", description="the From address; required with smtp")
    mail_from_name: str = Field("Honnin", description="the From display name (Japanese is fine)")
    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = Field(None, ge=1, le=65535, description="default: 25, 587 (starttls), 465 (tls)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_timeout_seconds: PositiveFloat = 10.0
    smtp_ca_file: Path | None = Field(
        None, description="PEM roots to trust for the SMTP server (a private CA)"
    )

    # The xID profile (seed 003): the app's own API, its terms, its e-mail step
    app_clients: SecretStr | None = Field(
        None, description="comma-separated client-id:secret pairs; the xID app calls with its bearer secret"
    )
    xid_terms: str | None = Field(
        None, description="comma-separated version:sha256 of the terms the app shows; none: no xID start"
    )
    xid_activation_timeout_seconds: PositiveInt = 86_400
    xid_email_link_ttl_seconds: PositiveInt = 86_400
    xid_service_name: str = Field("xID", description="the service's name in the confirmation mail")
    mail_enabled: bool = Field(True, description="this worker also serves the mail queue")
    mail_retry_limit: int = Field(6, ge=0)
    mail_retry_base_seconds: PositiveFloat = 30.0
    mail_retry_cap_seconds: PositiveFloat = 1_800.0
    mail_answer_timeout_seconds: PositiveFloat = 120.0

    # Development and demo mode (`honnin demo --serve` turns it on; never in production)
    demo: bool = Field(
        False, description="serve the reference facility page (/demo/) and the phone-app simulator"
    )
    demo_dir: Path | None = Field(None, description="the demo's dev CA and token; default DATA_DIR/demo")
    strict_startup: bool = Field(
        False, description="refuse to start without facility tokens and a revocation source (compose)"
    )

    @property
    def demo_folder(self) -> Path:
        return self.demo_dir or self.data_dir / "demo"

    @property
    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.data_dir / "honnin.db"

    @property
    def mail_folder(self) -> Path:
        return self.mail_dir or self.data_dir / "mail"

    @property
    def anchors_folder(self) -> Path:
        return self.anchors_dir or self.data_dir / "anchors"

    def facilities(self) -> dict[str, str]:
        """Bearer token → facility id, from `id:token,id:token`."""
        return _pairs(self.facility_tokens, "HONNIN_FACILITY_TOKENS", "facility-id:token")

    def app_client_secrets(self) -> dict[str, str]:
        """Secret → app client id, from `id:secret,id:secret`; none may open the facility API."""
        pairs = _pairs(self.app_clients, "HONNIN_APP_CLIENTS", "client-id:secret")
        facilities = self.facilities()
        for secret, client in pairs.items():
            if secret in facilities or client in facilities.values():
                raise ConfigurationError(
                    "HONNIN_APP_CLIENTS and HONNIN_FACILITY_TOKENS share an id or a secret: keep them apart"
                )
        return pairs

    def operators(self) -> dict[str, str]:
        """Bearer token → operator name, from `name:token,…`; no token may be a facility's or an app's."""
        pairs = _pairs(self.operator_tokens, "HONNIN_OPERATOR_TOKENS", "operator-name:token")
        others = set(self.facilities()) | set(self.app_client_secrets())
        if others & set(pairs):
            raise ConfigurationError(
                "HONNIN_OPERATOR_TOKENS shares a token with HONNIN_FACILITY_TOKENS or HONNIN_APP_CLIENTS:"
                " an operator token must open /ops/v1 only"
            )
        return pairs

    def accepted_terms(self) -> tuple[AcceptedTerms, ...]:
        """The xID terms a start may name, from `version:sha256,…`."""
        if not self.xid_terms:
            return ()
        terms = []
        for item in (part.strip() for part in self.xid_terms.split(",") if part.strip()):
            version, _, digest = item.partition(":")
            try:
                terms.append(AcceptedTerms(version=version, sha256=digest.lower()))
            except ValueError as exc:
                raise ConfigurationError(
                    "HONNIN_XID_TERMS holds version:sha256 pairs (SHA-256 as 64 hex digits)"
                ) from exc
        return tuple(terms)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)

    def profiles(self) -> dict[str, Profile]:
        """Flows as data; the facility flow of seed 000 is the one built so far."""
        facility = Profile(
            name="facility",
            steps=frozenset({"card_info_read", "confirm", "signature", "complete"}),
            activation_timeout=timedelta(seconds=self.activation_timeout_seconds),
            verification_retry_limit=self.verification_retry_limit,
            verification_retry_base=timedelta(seconds=self.verification_retry_base_seconds),
            verification_retry_cap=timedelta(seconds=self.verification_retry_cap_seconds),
            retain_certificate=self.retain_certificates,
        )
        return {facility.name: facility, "xid": self._xid_profile()}

    def _xid_profile(self) -> Profile:
        """Seed 003: app-only, no card read (so no identity match), the e-mail step after ID有効化."""
        return Profile(
            name="xid",
            steps=XID_STEPS,
            path=XID_PATH,
            checks=XID_CHECKS,
            activation_timeout=timedelta(seconds=self.xid_activation_timeout_seconds),
            verification_retry_limit=self.verification_retry_limit,
            verification_retry_base=timedelta(seconds=self.verification_retry_base_seconds),
            verification_retry_cap=timedelta(seconds=self.verification_retry_cap_seconds),
            retain_certificate=self.retain_certificates,
            terms=self.accepted_terms(),
            email_link_ttl=timedelta(seconds=self.xid_email_link_ttl_seconds),
            mail_retry_limit=self.mail_retry_limit,
            mail_retry_base=timedelta(seconds=self.mail_retry_base_seconds),
            mail_retry_cap=timedelta(seconds=self.mail_retry_cap_seconds),
            mail_answer_timeout=timedelta(seconds=self.mail_answer_timeout_seconds),
        )


def _pairs(value: SecretStr | None, name: str, shape: str) -> dict[str, str]:
    """Secret → id from `id:secret,id:secret`; an id may hold several secrets (rotation), a secret
    names one id only. Errors name positions and ids, never a secret."""
    if value is None:
        return {}
    pairs = [item.strip() for item in value.get_secret_value().split(",") if item.strip()]
    found: dict[str, str] = {}
    positions: dict[str, int] = {}
    for position, pair in enumerate(pairs, start=1):
        owner, _, secret = pair.partition(":")
        _check_pair(name, shape, position, owner, secret)
        if secret in found:
            first, other = positions[secret], found[secret]
            if other == owner:
                raise ConfigurationError(f"{name}: pair {position} repeats pair {first} ({owner!r})")
            kinds = _OWNERS[name][1]
            raise ConfigurationError(
                f"{name}: pairs {first} and {position} give {kinds} {other!r} and"
                f" {owner!r} the same token; each needs a token of its own"
            )
        found[secret], positions[secret] = owner, position
    return found
