"""``veil report``'s page in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): every chart draws what the known week holds, nothing is fetched, no console error,
and the page is readable at a phone's width."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.agent_process import run_veil
from tests.conftest import require_tool
from tests.report_story import BLOCKED_BARS, FOLDERS, SEGMENTS, write_story


@pytest.fixture(scope="module")
def browser():
    chromium = require_tool("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


class Page:
    """A page that records every request it makes, and fails each one that is not the page itself."""

    def __init__(self, browser, url: str, width: int = 1100):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.requests: list[str] = []
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))
        self.page.route("**/*", self._route)
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.url = url

    def _route(self, route):
        self.requests.append(route.request.url)
        if route.request.url == self.page.url or route.request.is_navigation_request():
            route.continue_()
        else:
            route.abort()

    def marks(self, chart: str) -> list[dict]:
        """Each mark's drawn size in the browser (its SVG bounding box)."""
        return self.page.eval_on_selector_all(f'#chart-{chart} g[id^="mark-{chart}-"]',
                                              "els => els.map(e => { const b = e.getBBox(); return {w: b.width, h: b.height}; })")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    """The known week, made into a page by the command a parent runs (local time UTC)."""
    tmp = tmp_path_factory.mktemp("report")
    write_story(tmp / "data")
    config = tmp / "config.toml"
    config.write_text(f'[agent]\ndata_dir = "{tmp / "data"}"\n')
    done = run_veil("report", "--config", str(config), "--since", "all", "-o", str(tmp / "report.html"), env={"TZ": "UTC"})
    assert done.returncode == 0, done.stderr
    return tmp / "report.html"


def test_every_chart_draws_the_known_week(browser, page_file):
    page = Page(browser, page_file.as_uri())
    # --since all: from the first row, so the "no record" stretch before it is not in the period
    assert len(page.marks("coverage")) == len(SEGMENTS) - 1
    assert len(page.marks("blocked")) == BLOCKED_BARS
    assert len(page.marks("folders")) == FOLDERS
    for chart in ("coverage", "blocked", "folders"):
        assert all(m["w"] > 0 and m["h"] > 0 for m in page.marks(chart)), chart
    assert page.requests == [page.url], page.requests  # the page itself, nothing else
    assert page.console == []
    text = page.page.inner_text("body")
    assert "The audit log is intact (18 rows" in text and "missing from the vault folder" in text
    assert "stopped: quit from the tray" in text and "frozen" in text and "no sign of life" in text
    shot = np.asarray(Image.open(io.BytesIO(page.page.screenshot(full_page=True))).convert("RGB"))
    assert shot.shape[0] > 1500 and shot.std() > 20  # a drawn page, not a blank one
    colours = {tuple(c) for c in shot[::4, ::4].reshape(-1, 3)}
    assert {(46, 125, 50), (198, 40, 40), (21, 101, 192)} <= colours  # protecting, off, folder bars: the charts' own colours


def test_the_page_fits_a_phone_and_prints(browser, page_file):
    page = Page(browser, page_file.as_uri(), width=390)
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    widths = page.page.eval_on_selector_all("figure svg", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(widths) == 3 and all(0 < w <= 390 for w in widths)
    pdf = page.page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert page.console == [] and page.requests == [page.url]


def test_the_recorder_does_see_a_page_that_fetches(browser, tmp_path):
    """The control: a page that asks for an outside image (no CSP) shows up in the recorder, so an
    empty list above means the report asked for nothing."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!DOCTYPE html><html><body><img src="http://192.0.2.1/pixel.png"></body></html>')
    page = Page(browser, leaky.as_uri())
    time.sleep(0.2)
    assert "http://192.0.2.1/pixel.png" in page.requests
