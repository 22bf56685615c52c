"""What the page tests share: the real app under uvicorn on 127.0.0.1 in a thread, the demo site served on
127.0.0.1, and Chromium through Playwright. Page tests run in their own pytest process
(``pytest -m ui -p no:asyncio``): Playwright's sync API and pytest-asyncio must not share a loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from twin.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO_ROOT / "tests" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_app(settings: Settings, *, with_model: bool, ready_timeout_s: float = 180.0) -> Iterator[str]:
    """`create_app(settings)` served by uvicorn on 127.0.0.1; yields its base URL once /api/health answers
    (and, with the model, once the model deployment is ready)."""
    import uvicorn

    from serving.app import create_app

    settings.serve.port = free_port()
    app = create_app(settings, with_model=with_model)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.serve.port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{settings.serve.port}"
    headers = {"Authorization": f"Bearer {settings.serve.api_token}"} if settings.serve.api_token else {}
    deadline = time.monotonic() + ready_timeout_s
    health: dict = {}
    try:
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            try:
                health = httpx.get(base_url + "/api/health", headers=headers, timeout=2).json()
                if not with_model or health["model"] == "ready":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:  # the service retries a failed model start meanwhile
                raise TimeoutError(f"the app at {base_url} was not ready within {ready_timeout_s:.0f} s: {health}")
            time.sleep(0.3)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@contextmanager
def demo_site(out_dir: Path) -> Iterator[object]:
    """The demo author's blog, exports and repository, built for and served at a free 127.0.0.1 port."""
    from demo.build import build
    from demo.serve import serve_directory

    port = free_port()
    built = build(out_dir, f"http://127.0.0.1:{port}")
    server, _ = serve_directory(built.site_dir, port=port)
    try:
        yield built
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
