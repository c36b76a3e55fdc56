"""Wires the verifier from settings: trust anchors, the revocation source, the pipeline."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime

import structlog

from adapters.ca_revocation.anchors import (
    JLIS_SIGNING_GENERATIONS,
    Generation,
    GenerationState,
    generation_states,
    installed_anchors,
    jpki_trust_anchors,
    load_anchor_files,
)
from adapters.ca_revocation.issuers import TrustAnchors
from adapters.ca_revocation.jpki import signing_policies
from adapters.ca_revocation.pipeline import (
    CardCheckStep,
    ChainStep,
    CpuRunner,
    IdentityStep,
    Pipeline,
    RevocationStep,
    SignatureStep,
    Step,
    inline,
)
from adapters.ca_revocation.processes import ProcessRunner
from adapters.ca_revocation.revocation import OcspSource, RevocationSource
from adapters.ca_revocation.revocation_crl import CrlFileSource
from adapters.ca_revocation.revocation_platform import PlatformApiSource
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError
from orchestrator.ports import Clock

log = structlog.get_logger("honnin.bootstrap")


def trust_anchors(
    settings: Settings, generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS
) -> list[bytes]:
    """Configured files replace the JPKI roots; otherwise the shipped ones and those installed."""
    if settings.trust_anchor_files:
        return load_anchor_files(settings.trust_anchor_files)
    return jpki_trust_anchors("signing") + installed_anchors(settings.anchors_folder, generations)


def intermediates(settings: Settings) -> list[bytes]:
    return load_anchor_files(settings.intermediate_files) if settings.intermediate_files else []


def uses_fast_path(settings: Settings) -> bool:
    """The one-tier JPKI hierarchy: no intermediates configured, and no operator asking for pyhanko."""
    return not settings.intermediate_files and settings.verification_path == "auto"


def cpu_runner(settings: Settings) -> ProcessRunner | None:
    """The fast path's CPU-bound check in a pool of one process per core (HONNIN_VERIFIER_PROCESSES;
    0: in this process), so verifying never holds the event loop; None where nothing verifies here."""
    if not settings.verifier_enabled or not uses_fast_path(settings):
        return None
    wanted = settings.verifier_processes
    processes = (os.cpu_count() or 1) if wanted is None else wanted
    return ProcessRunner(processes) if processes else None


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
    return CrlFileSource(
        settings.crl_files,
        clock=clock,
        issuers=_issuers(trust_anchors(settings) + intermediates(settings)),
        refresh_seconds=settings.crl_refresh_seconds,
        keep_der=not uses_fast_path(settings),  # only pyhanko reads the DER again
    )


def pipelines(
    settings: Settings,
    revocation: RevocationSource | None,
    clock: Clock | None = None,
    *,
    generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS,
    run: CpuRunner = inline,
) -> dict[str, Pipeline]:
    """One pipeline per profile, with that profile's checks (xID: no identity match, no card read)."""
    checks = _checks(settings, revocation, clock, generations=generations, run=run)
    return {
        name: Pipeline([*checks, IdentityStep()] if "identity" in profile.checks else list(checks))
        for name, profile in settings.profiles().items()
    }


def pipeline(
    settings: Settings,
    revocation: RevocationSource | None,
    clock: Clock | None = None,
    *,
    generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS,
    run: CpuRunner = inline,
) -> Pipeline:
    """The facility profile's pipeline: signature, chain and revocation, then the identity match."""
    return pipelines(settings, revocation, clock, generations=generations, run=run)["facility"]


def _checks(
    settings: Settings,
    revocation: RevocationSource | None,
    clock: Clock | None,
    *,
    generations: Sequence[Generation],
    run: CpuRunner,
) -> list[Step]:
    """The fast path for JPKI's one-tier hierarchy, pyhanko (the reference) for anything else."""
    anchors = trust_anchors(settings, generations)
    policies = signing_policies(accept_test_certificates=settings.accept_test_certificates)
    if settings.accept_test_certificates:
        log.warning("verification.test_certificates_accepted", hint="HONNIN_ACCEPT_TEST_CERTIFICATES=true")
    if not settings.trust_anchor_files:
        today = (clock.now() if clock else datetime.now(UTC)).date()
        warn_missing_generations(settings, today, generations)
    if not uses_fast_path(settings):
        chain = ChainStep(
            anchors, revocation=revocation, intermediates=intermediates(settings), policies=policies
        )
        return [SignatureStep(), chain]
    issuers = _issuers(anchors)
    steps: list[Step] = [CardCheckStep(issuers, policies=policies, run=run)]
    if revocation is not None:
        steps.append(RevocationStep(revocation, issuers))
    return steps


def _issuers(ders: list[bytes]) -> TrustAnchors:
    """Parsed once, here; a certificate cryptography cannot use stops start-up with the reason."""
    try:
        return TrustAnchors(ders)
    except ValueError as exc:
        raise ConfigurationError(f"a trust anchor or intermediate cannot be used: {exc}") from exc


def warn_missing_generations(
    settings: Settings, today: date, generations: Sequence[Generation] = JLIS_SIGNING_GENERATIONS
) -> list[GenerationState]:
    """Start-up says which cards would be refused while a root generation valid today is missing."""
    states = generation_states(
        jpki_trust_anchors("signing"), installed_anchors(settings.anchors_folder, generations), generations
    )
    for state in states:
        if state.where is None and state.generation.valid_on(today):
            log.warning(
                "trust_anchors.generation_missing",
                generation=state.generation.name,
                refused=f"{state.generation.cards} would be refused with Code 30",
                hint=f"download {state.generation.name}.cer from J-LIS, then: honnin anchors add FILE",
            )
    return states
