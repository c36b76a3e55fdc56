"""Demo and development mode: the reference facility page (/demo/) and the phone-app simulator
(/demo/app/{token}), mounted only when `HONNIN_DEMO=true` (`honnin demo --serve` sets it).

`mount` adds both to the worker's HTTP application and returns what the card bridge's landing
page links to; a worker without the setting serves neither (404).
"""

from __future__ import annotations

from aiohttp import web

from adapters.card_bridge.landing import Simulator as SimulatorUrl
from honnin.demo_site.facility import FacilityPage, add_facility_routes
from honnin.demo_site.prepare import facility_token
from honnin.demo_site.simulator import Simulator, add_simulator_routes
from honnin.settings import Settings
from orchestrator.errors import ConfigurationError


def mount(http: web.Application, settings: Settings) -> SimulatorUrl:
    """The facility page and the simulator on `http`; the demo folder must be prepared."""
    folder = settings.demo_folder
    if not (folder / "facility-token").is_file() or not (folder / "ca" / "root.pem").is_file():
        raise ConfigurationError(
            f"HONNIN_DEMO=true needs the demo folder {folder} prepared: run `honnin demo --serve`"
        )
    add_facility_routes(http, FacilityPage(facility_token(folder)))
    simulator = Simulator(folder)
    add_simulator_routes(http, simulator)
    return simulator.url
