"""Wires the verifier from settings: trust anchors, the revocation source, the pipeline."""

from __future__ import annotations

import structlog

from adapters.ca_revocation.anchors import jpki_trust_anchors, load_anchor_files
from adapters.ca_revocation.pipeline import ChainStep, IdentityStep, Pipeline, SignatureStep
from adapters.ca_revocation.revocation import OcspSource, RevocationSource
from adapters.ca_revocation.revocation_crl import CrlFileSource
from adapters.ca_revocation.revocation_platform import PlatformApiSource
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from orchestrator.ports import Clock

log = structlog.get_logger("honnin.bootstrap")


def revocation_source(settings: Settings, clock: Clock) -> RevocationSource | None:
    """One interface, three kinds of source; `none` only when an operator says so."""
    timeout = settings.revocation_timeout_seconds
    if settings.revocation == "none":
        log.warning("revocation.disabled", hint="HONNIN_REVOCATION=none: revoked cards would pass")
        return None
    if settings.revocation == "ocsp":
        if not settings.ocsp_url:
            raise ConfigurationError("HONNIN_REVOCATION=ocsp needs HONNIN_OCSP_URL")
        return OcspSource(settings.ocsp_url, timeout=timeout, clock=clock)
    if settings.revocation == "platform":
        if not settings.platform_url or settings.platform_token is None:
            raise ConfigurationError("HONNIN_REVOCATION=platform needs HONNIN_PLATFORM_URL and _TOKEN")
        return PlatformApiSource(
            settings.platform_url, settings.platform_token.get_secret_value(), timeout=timeout, clock=clock
        )
    if not settings.crl_files:
        log.warning("revocation.no_crl_files", hint="every verification waits for HONNIN_CRL_FILES")
    return CrlFileSource(settings.crl_files, clock=clock)


def pipelines(settings: Settings, revocation: RevocationSource | None) -> dict[str, Pipeline]:
    """One pipeline per profile, with that profile's checks (xID: no identity match, no card read)."""
    chain = _chain(settings, revocation)
    built = {}
    for name, profile in settings.profiles().items():
        steps: list[SignatureStep | ChainStep | IdentityStep] = [SignatureStep(), chain]
        if "identity" in profile.checks:
            steps.append(IdentityStep())
        built[name] = Pipeline(steps)
    return built


def pipeline(settings: Settings, revocation: RevocationSource | None) -> Pipeline:
    return Pipeline([SignatureStep(), _chain(settings, revocation), IdentityStep()])


def _chain(settings: Settings, revocation: RevocationSource | None) -> ChainStep:
    anchors = (
        load_anchor_files(settings.trust_anchor_files)
        if settings.trust_anchor_files
        else jpki_trust_anchors("signing")
    )
    intermediates = load_anchor_files(settings.intermediate_files) if settings.intermediate_files else []
    return ChainStep(anchors, revocation=revocation, intermediates=intermediates)
