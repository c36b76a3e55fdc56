"""`honnin demo --serve`: a worker on the embedded default in demo mode, with the page and the simulator.

The development CA (four cards), the demo facility's token and the store live in one folder: a
temporary one removed at exit, or `--folder` (compose's demo profile keeps it in its volume).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from adapters.http.common import serve
from honnin.bootstrap import App, bootstrap
from honnin.demo_site.prepare import CARDS, FACILITY, demo_settings, prepare
from honnin.http import build_http
from honnin.settings import Settings


@dataclass(frozen=True)
class Running:
    app: App
    url: str  # the facility page: <public URL>/demo/
    folder: Path


@asynccontextmanager
async def running(
    folder: Path, base: Settings, host: str | None = None, port: int | None = None
) -> AsyncIterator[Running]:
    """The demo worker until the block ends; port 0 takes a free port (tests)."""
    await asyncio.to_thread(prepare, folder)
    settings = demo_settings(base, folder)
    host = host if host is not None else settings.http_host
    port = port if port is not None else settings.http_port
    app = await bootstrap(settings)
    try:
        await app.runtime.start()
        async with serve(
            build_http(app),
            host,
            port,
            header_timeout=settings.http_header_timeout_seconds,
            keepalive_timeout=settings.http_keepalive_seconds,
        ) as server:
            public = settings.public_url
            if "public_url" not in base.model_fields_set:  # links point where this server listens
                public = server.url.replace("//0.0.0.0:", "//127.0.0.1:")
                app.links.rebase(public)
            yield Running(app, public.rstrip("/") + "/demo/", folder)
    finally:
        await app.close()


async def serve_until_stopped(
    base: Settings, folder: Path | None, host: str | None, port: int | None, say: Callable[[str], None]
) -> None:
    """Run the demo until Ctrl-C (or SIGTERM); a temporary folder goes with it."""
    temporary = folder is None
    where = await asyncio.to_thread(_folder, folder)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running(where, base, host, port) as demo:
            say(f"Honnin demo: {demo.url}  (Ctrl-C stops)")
            say(f"  the facility page (seed 000's screens): {demo.url}")
            say("  its QR codes and 【アプリを起動する】 open the phone-app simulator (demo mode)")
            say(f"  development CA {where / 'ca'}, cards: {', '.join(card.name for card in CARDS)}")
            say(f"  /v1 bearer token of facility {FACILITY!r}: {where / 'facility-token'}")
            await stop.wait()
    finally:
        if temporary:
            shutil.rmtree(where, ignore_errors=True)


def _folder(folder: Path | None) -> Path:
    return Path(tempfile.mkdtemp(prefix="honnin-demo-")) if folder is None else folder.resolve()
