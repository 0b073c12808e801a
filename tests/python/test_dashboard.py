"""The command dashboard in a real browser (DESIGN §10).

`tuopin serve` runs on a generated province; headless Chromium (Debian's
package, installed by scripts/test.sh) driven by Playwright clicks from the
province down to a household, checks the CSV of a table against the table,
that no console error happens and that no request leaves the server, and
saves a full-page screenshot of the province page under target/. A report
written by `tuopin report` is opened with the network off.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import socket
import subprocess
import time
import urllib.request
from typing import Iterator
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(cli: pathlib.Path, data_dir: pathlib.Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(cli), "--no-cache", "serve", str(data_dir), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "serve exited")
                time.sleep(0.2)
        else:
            raise AssertionError("the dashboard did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), "scripts/test.sh installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


class Watch:
    """Console errors and the hosts of every request of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.hosts.add(urlparse(r.url).netloc or urlparse(r.url).scheme))


def test_drill_down_from_the_province_to_a_household(server: str, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    page.goto(f"{server}/")
    assert "/region/" in page.url and "year=" in page.url
    province = page.locator("h1").inner_text()
    shot = ROOT / "target" / "dashboard-province.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000

    # The CSV of the ranking has the numbers of the ranking table.
    href = page.locator("#children a.csv").get_attribute("href")
    assert href
    body = page.request.get(server + href.replace("&amp;", "&")).text()
    rows = list(csv.DictReader(io.StringIO(body)))
    table = page.locator("table.ranking tbody tr")
    assert table.count() == len(rows) > 0
    for i, r in enumerate(rows):
        cells = table.nth(i).locator("td").all_inner_texts()
        assert cells[1] == r["name"] and cells[2] == r["code"]
        assert cells[4] == r["registered_households"]

    # Click down the ranking: city, county, township, village.
    names = [province.split()[0]]
    for level in ["city", "county", "township", "village"]:
        link = page.locator("table.ranking tbody tr a").first
        name = link.inner_text()
        link.click()
        page.wait_for_load_state()
        names.append(name)
        crumbs = page.locator("nav.crumbs").inner_text()
        for n in names:
            assert n in crumbs, (level, n, crumbs)
    assert "农户 (" in page.locator("#households h2").inner_text()

    # The year selector works without JavaScript: a plain link.
    page.locator("nav.years a", has_text="2015").click()
    page.wait_for_load_state()
    assert "year=2015" in page.url
    assert "2015 年" in page.locator("h1").inner_text()

    # A household card.
    page.locator("#households tbody a").first.click()
    page.wait_for_load_state()
    assert "/household/" in page.url
    assert "退出指标" in page.content()
    assert page.locator("#indicators tbody tr").count() == 7

    assert watch.errors == []
    assert watch.hosts == {urlparse(server).netloc}
    page.close()


def test_the_report_renders_offline(cli: pathlib.Path, data_dir: pathlib.Path, browser: Browser, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "report.html"
    subprocess.run(
        [str(cli), "--no-cache", "report", str(data_dir), "--year", "2016", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    context = browser.new_context(offline=True)
    page = context.new_page()
    watch = Watch(page)
    page.goto(out.as_uri())
    assert page.locator("svg.line polyline").count() == 1
    assert page.locator("svg.bars rect").count() > 0
    assert page.locator("#headline .card").count() >= 8
    box = page.locator("svg.line").bounding_box()
    assert box and box["width"] > 100
    assert watch.errors == []
    assert watch.hosts <= {"file"}
    context.close()
