"""compose.yaml and the Dockerfile, read as Docker would (no Docker engine runs here): profiles, pinned
images, nothing required at interpolation, the workers' settings real, a data folder the user owns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from honnin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_VAR = re.compile(r"\$\{([A-Z0-9_]+)([^}]*)\}")


def test_each_service_belongs_to_a_profile() -> None:
    assert {name: service.get("profiles") for name, service in SERVICES.items()} == {
        "demo": ["demo"],
        "rabbitmq": ["production"],
        "mongodb": ["production"],
        "orchestrator": ["production"],
        "mail": ["mail"],
    }


def test_no_variable_is_required_at_interpolation() -> None:
    """Compose interpolates every service before it applies profiles: a `${VAR:?}` in a production
    service would stop `--profile demo up` too. The workers check their settings themselves."""
    found = _VAR.findall(re.sub(r"(^|\s)#.*$", "", TEXT, flags=re.M))  # comments may say it
    assert found, "the file does use variables"
    assert [name for name, rest in found if rest.startswith(("?", ":?"))] == []
    assert all(rest.startswith(":-") for _, rest in found), found


def _images() -> list[str]:
    return [service["image"] for service in SERVICES.values()] + re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)


@pytest.mark.parametrize("image", _images())
def test_every_image_is_pinned_to_a_version(image: str) -> None:
    name, _, tag = image.rpartition(":")
    assert name, f"{image} has no tag"
    assert tag != "latest"
    assert re.search(r"\d+\.\d+", tag), f"{image}: pin at least major.minor"


def _environment(service: str) -> dict[str, Any]:
    environment: dict[str, Any] = SERVICES[service].get("environment", {})
    return environment


@pytest.mark.parametrize("service", ["demo", "orchestrator"])
def test_every_honnin_variable_names_a_real_setting(service: str) -> None:
    fields = {f"HONNIN_{name.upper()}" for name in Settings.model_fields}
    assert set(_environment(service)) - fields == set()


def test_the_production_workers_fail_fast_and_take_secrets_only_from_the_shell() -> None:
    environment = _environment("orchestrator")
    assert environment["HONNIN_STRICT_STARTUP"] == "true"
    for name in ("HONNIN_DATA_KEY", "HONNIN_FACILITY_TOKENS", "HONNIN_CRL_FILES", "HONNIN_PLATFORM_TOKEN"):
        assert environment[name] is None, f"{name} passes through (unset stays unset, never '')"
    assert "mail" not in SERVICES["orchestrator"].get("depends_on", {})  # Mailpit is its own profile
    assert environment["HONNIN_MAIL"] is None  # the file outbox unless smtp is chosen


def test_the_crl_folder_is_mounted_read_only_where_the_settings_point() -> None:
    mounts = SERVICES["orchestrator"]["volumes"]
    assert "${HONNIN_CRL_DIR:-./crl}:/crl:ro" in mounts
    assert "HONNIN_CRL_FILES=/crl/" in TEXT


def test_the_demo_runs_the_demo_with_its_folder_on_its_volume() -> None:
    demo = SERVICES["demo"]
    command = demo["command"]
    assert command[:3] == ["honnin", "demo", "--serve"]
    folder = command[command.index("--folder") + 1]
    [mount] = demo["volumes"]
    volume, target = mount.split(":")
    assert volume in COMPOSE["volumes"]
    assert folder.startswith(target + "/")
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable through the published port
    assert "HONNIN_STRICT_STARTUP" not in _environment("demo")


def test_every_named_volume_is_declared_and_the_data_folder_belongs_to_the_container_user() -> None:
    used = {
        mount.split(":")[0]
        for service in SERVICES.values()
        for mount in service.get("volumes", [])
        if not mount.startswith(("$", ".", "/"))
    }
    assert used <= set(COMPOSE["volumes"])
    assert "ENV HONNIN_DATA_DIR=/data" in DOCKERFILE
    assert "install -d -o 10001 -g 10001 -m 0700 /data" in DOCKERFILE
    assert re.search(r"^USER 10001", DOCKERFILE, re.M)
    assert "--uid 10001" in DOCKERFILE
    for service in ("demo", "orchestrator"):
        assert any(mount.endswith(":/data") for mount in SERVICES[service]["volumes"])
