"""What a production worker must have before it starts (`HONNIN_STRICT_STARTUP=true`, compose sets it).

The embedded default starts without facility tokens or revocation data, so that the README's first
command runs on a fresh machine; a deployment that started so would accept nobody and park every
verification. With the setting on, `honnin run` refuses to start and says what is missing.
"""

from __future__ import annotations

from honnin.settings import Settings
from orchestrator.errors import ConfigurationError


def problems(settings: Settings) -> list[str]:
    """Everything missing, each with the setting that supplies it; no secret is repeated."""
    found = []
    if not settings.facilities() and settings.app_clients is None:
        found.append("no facility can call: set HONNIN_FACILITY_TOKENS=facility-id:token,…")
    if settings.revocation == "none":
        found.append("HONNIN_REVOCATION=none lets revoked cards pass: choose crl, ocsp or platform")
    if settings.revocation == "crl" and not settings.crl_files:
        found.append("HONNIN_REVOCATION=crl needs HONNIN_CRL_FILES (mount the CRL files into the container)")
    for position, path in enumerate(settings.crl_files, start=1):
        if settings.revocation == "crl" and not path.is_file():
            found.append(f"HONNIN_CRL_FILES entry {position} ({path}) is not a readable file")
    if settings.revocation == "ocsp" and not settings.ocsp_url:
        found.append("HONNIN_REVOCATION=ocsp needs HONNIN_OCSP_URL")
    if settings.revocation == "platform" and not (settings.platform_url and settings.platform_token):
        found.append("HONNIN_REVOCATION=platform needs HONNIN_PLATFORM_URL and HONNIN_PLATFORM_TOKEN")
    if settings.store == "mongodb" and settings.data_key is None:
        found.append("HONNIN_STORE=mongodb needs HONNIN_DATA_KEY (make one with `honnin keygen`)")
    return found


def require_ready(settings: Settings) -> None:
    """Raise one ConfigurationError listing every problem, or return."""
    missing = problems(settings)
    if missing:
        raise ConfigurationError("refusing to start (HONNIN_STRICT_STARTUP=true): " + "; ".join(missing))
