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


def _split_paths(value: object) -> object:
    """Environment variables list paths comma-separated; code may pass a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


PathList = Annotated[list[Path], NoDecode, BeforeValidator(_split_paths)]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


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
    data_key: SecretStr | None = Field(
        None, description="32 bytes, base64: encrypts personal facts at rest (default: DATA_DIR/data.key)"
    )
    activation_timeout_seconds: PositiveInt = 3600
    retention_days: PositiveFloat = 30.0
    verification_retry_limit: int = Field(5, ge=0)
    verification_retry_base_seconds: PositiveFloat = 2.0
    verification_retry_cap_seconds: PositiveFloat = 300.0
    delivery_limit: PositiveInt = 5
    sweep_interval_seconds: PositiveFloat = 1.0
    relay_idle_seconds: PositiveFloat = 0.5
    worker_id: str = Field(default_factory=_default_worker_id)
    verifier_enabled: bool = Field(True, description="this worker also serves the verifier queue")
    http_enabled: bool = Field(True, description="this worker serves the facility API and the card bridge")
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)
    public_url: str = Field(
        "http://127.0.0.1:8080", description="where phones reach the card bridge (links, QR)"
    )
    facility_tokens: SecretStr | None = Field(
        None, description="comma-separated facility-id:token pairs; each facility calls with its bearer token"
    )
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @property
    def sqlite_file(self) -> Path:
        return self.sqlite_path or self.data_dir / "honnin.db"

    @property
    def anchors_folder(self) -> Path:
        return self.anchors_dir or self.data_dir / "anchors"

    def facilities(self) -> dict[str, str]:
        """Bearer token → facility id, from `id:token,id:token`."""
        if self.facility_tokens is None:
            return {}
        pairs = [item.strip() for item in self.facility_tokens.get_secret_value().split(",") if item.strip()]
        facilities = {}
        for pair in pairs:
            facility, _, token = pair.partition(":")
            if not facility or len(token) < 16:
                raise ConfigurationError(
                    "HONNIN_FACILITY_TOKENS holds facility-id:token pairs, tokens of 16+ characters"
                )
            facilities[token] = facility
        return facilities

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
        return {facility.name: facility}
