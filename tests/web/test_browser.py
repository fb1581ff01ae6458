"""The topology page in a real browser: Playwright drives Debian's chromium
(installed by scripts/bootstrap.sh; Playwright's own browser download is
never used). Sign in through the login form, then watch the page follow the
API without a reload."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.require import require
from tests.fixtures.server import KaonServer
from tests.web.support import Caller, password

CHROMIUM = ("chromium", "chromium-browser")
LIVE_WITHIN_MS = 2000


def _chromium() -> str | None:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: run scripts/bootstrap.sh")
    path = _chromium()
    require(path, "Debian's chromium is not installed: run scripts/bootstrap.sh")
    # As root, chromium refuses to start without --no-sandbox; /dev/shm is small in containers.
    args = ["--disable-dev-shm-usage"] + (["--no-sandbox"] if os.geteuid() == 0 else [])
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=args)
        yield b
        b.close()


def signed_in(browser: Any, server: KaonServer, user: str, project: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(f"{server.url}/ui/")
    assert page.url.endswith("/ui/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password(server, user))
    page.fill("input[name=project]", project)
    page.click("#login button[type=submit]")
    page.wait_for_url(f"{server.url}/ui/")
    page.wait_for_selector("#live.on", timeout=5000)  # the first event arrived
    return page


def test_the_page_shows_a_new_network_within_two_seconds(browser: Any, web_server: KaonServer,
                                                         admin: Caller) -> None:
    page = signed_in(browser, web_server, "admin", "admin")
    assert "(admin)" in page.text_content("#who")
    created = admin.network("browser-live")
    started = time.monotonic()
    page.wait_for_selector(f'#networks tr[data-id="{created["id"]}"]', timeout=LIVE_WITHIN_MS)
    elapsed = time.monotonic() - started
    assert created["name"] in page.text_content(f'#networks tr[data-id="{created["id"]}"]')
    assert page.locator(f'#graph g.network[data-id="{created["id"]}"]').count() == 1
    print(f"network shown {elapsed * 1000:.0f} ms after its POST")
    # Names are shown as text, never parsed as HTML.
    hostile = admin.create("networks", "network", name='<img id="xss" src="x" onerror="window.owned=1">')
    page.wait_for_selector(f'#networks tr[data-id="{hostile["id"]}"]', timeout=LIVE_WITHIN_MS)
    assert page.locator("#xss").count() == 0 and page.evaluate("window.owned === undefined")
    assert hostile["name"] in page.text_content(f'#networks tr[data-id="{hostile["id"]}"]')
    page.close()


def test_the_page_shows_a_binding_failure_and_the_port_details(browser: Any, web_server: KaonServer,
                                                               admin: Caller) -> None:
    page = signed_in(browser, web_server, "admin", "admin")
    net = admin.network("browser-bind")
    port = admin.ghost_port(net["id"])
    host = port["binding:host_id"]
    row = f'#ports tr[data-id="{port["id"]}"]'
    page.wait_for_selector(f"{row} .binding-failure", timeout=LIVE_WITHIN_MS)
    assert host in page.text_content(f"{row} .binding-failure")
    assert page.locator(f'#graph g.vm.binding-failed[data-id="{port["device_id"]}"]').count() == 1
    assert host in page.text_content(f'#hosts tr[data-id="{host}"]')
    # kaon doctor's finding for it, in the port's own row (cause and fix on one line).
    page.wait_for_selector(f"{row} .finding", timeout=5000)
    assert "openstack port set --host" in page.text_content(f"{row} .finding")

    page.click(row)
    page.wait_for_selector(f'#details[data-id="{port["id"]}"]')
    assert host in page.text_content("#details-table tr.binding-failure")
    page.fill("#trace input[name=to]", "10.0.0.1")
    page.click("#trace button[type=submit]")
    page.wait_for_function("document.getElementById('trace-result').textContent.length > 0")
    # kaon trace's answer for a port no host took: the drop, with the binding's reason.
    result = page.text_content("#trace-result")
    assert result.startswith(" 1. source") and f"DROPPED: port {port['name']} ({port['id']}) failed to bind " \
        f"on host {host}" in result
    page.close()


def test_a_member_does_not_see_another_projects_network(browser: Any, web_server: KaonServer,
                                                        admin: Caller, demo: Caller) -> None:
    theirs = admin.network("browser-admin-only")
    mine = demo.network("browser-demo")
    page = signed_in(browser, web_server, "demo", "demo")
    page.wait_for_selector(f'#networks tr[data-id="{mine["id"]}"]', timeout=LIVE_WITHIN_MS)
    # Both existed before the page loaded, so the first view would hold both.
    assert page.locator(f'#networks tr[data-id="{theirs["id"]}"]').count() == 0
    assert page.locator(f'#graph [data-id="{theirs["id"]}"]').count() == 0
    assert page.locator("#hosts tr[data-id]").count() == 0
    assert "(admin)" not in page.text_content("#who")
    page.close()
