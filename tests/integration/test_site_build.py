"""The status site built for real: `refinery site` on a store with built, failed (retries,
hints) and ingested records, `mkdocs build --strict`, links checked, then the pages opened
in headless Chromium (served over http on 127.0.0.1) with a screenshot."""

from __future__ import annotations

import functools
import html.parser
import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner
from fixtures.need import unavailable
from fixtures.sitestore import ZLIB_ERROR, site_project, ts, write_demo_store

from refinery.cli import main
from refinery.core.models import Attempt, NodeStatus
from refinery.site import SiteOptions, build_site
from refinery.store import Store

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path, Path, Path]:
    """(store, docs dir, mkdocs.yml, site dir) after `refinery site`."""
    root = tmp_path_factory.mktemp("site")
    store = write_demo_store(root / "store")
    docs, config = site_project(root / "project")
    site = root / "site"
    result = CliRunner().invoke(
        main,
        [
            "--store",
            store.url,
            "site",
            "--docs-dir",
            str(docs),
            "--config",
            str(config),
            "-o",
            str(site),
            "--pip-index",
            "http://127.0.0.1:9/simple/",
            "--logs",
            "copy",  # a small site: its full logs in it (by default they stay in the store)
        ],
    )
    assert result.exit_code == 0, result.output
    assert "full build" in result.output
    return store, docs, config, site


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        for key in ("href", "src"):
            if a.get(key):
                self.hrefs.append(a[key] or "")


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text())
    return p


def test_strict_build_has_every_page(built: tuple[Store, Path, Path, Path]) -> None:
    _store, _docs, _config, site = built
    for page in (
        "index.html",
        "statuses.html",
        "troubleshooting.html",
        "status/index.html",
        "status/builds.html",
        "status/inputs.html",
        "status/plans.html",
        "status/hints.html",
        "status/plans/f00dfeed12345678.html",
    ):
        assert (site / page).is_file(), page
    for name in ("demo-cext", "zlib-user", "broken", "uploaded", "slowpoke", "waiting"):
        assert (site / "status" / "packages" / f"{name}.html").is_file()
    assert (site / "status/logs/broken/0.1/3.12/2.log").read_text().count(ZLIB_ERROR) == 1


def test_generated_links_resolve(built: tuple[Store, Path, Path, Path]) -> None:
    """Package pages skip MkDocs' link validation (pre-rendered), so check them here."""
    _store, _docs, _config, site = built
    pages = [*site.glob("status/**/*.html"), site / "index.html"]
    for page in pages:
        parsed = _parse(page)
        for href in parsed.hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("mailto:", "//")):
                continue
            if not parts.path:  # same page: the anchor must exist
                if parts.fragment and "=" not in parts.fragment:
                    assert parts.fragment in parsed.ids, f"{page}: #{parts.fragment}"
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            assert target.exists(), f"{page.relative_to(site)}: broken link {href}"
            if parts.fragment and target.suffix == ".html" and "=" not in parts.fragment:
                assert parts.fragment in _parse(target).ids, f"{page}: {href}"


def test_search_index_has_guide_and_packages(built: tuple[Store, Path, Path, Path]) -> None:
    _store, _docs, _config, site = built
    index = json.loads((site / "search" / "search_index.json").read_text())
    locations = {d["location"] for d in index["docs"]}
    assert "status/packages/zlib-user.html" in locations
    assert any(loc.startswith("troubleshooting.html") for loc in locations)
    assert not any(loc.startswith("status/builds.html") for loc in locations)  # excluded


def test_incremental_build_after_one_record_changes(tmp_path: Path) -> None:
    store = write_demo_store(tmp_path / "store")
    docs, config = site_project(tmp_path / "project")
    site = tmp_path / "site"
    options = SiteOptions(pip_index="http://127.0.0.1:9/simple/", copy_logs=True)

    def run() -> Any:
        return build_site(store, docs_dir=docs, site_dir=site, config_file=config, options=options)

    assert run().mode == "full"
    untouched = (site / "status/packages/demo-cext.html").stat().st_mtime_ns
    log = store.put_log("broken", "0.1", "3.11", 3, f"x\n{ZLIB_ERROR}\n".encode())

    def third(record: Any) -> Any:
        attempt = Attempt(
            3,
            ts(400),
            ts(401),
            9.0,
            "rootfs",
            hint_ids=("zlib",),
            exit=1,
            log=log,
            status="failed",
            matched_lines=(ZLIB_ERROR,),
        )
        return record.evolve(status=NodeStatus.FAILED, attempts=(*record.attempts, attempt))

    store.update_record("broken", "0.1", "3.11", third)
    second = run()
    assert second.mode == "incremental"
    assert second.generated.regenerated == ["broken"]
    assert second.logs_published == 1  # the new log; the others are there already
    page = (site / "status/packages/broken.html").read_text()
    assert 'id="v0-1-py3-11-a3-L2" class="hl"' in page
    assert (site / "status/packages/demo-cext.html").stat().st_mtime_ns == untouched
    # the search index still holds every page, rendered this time or not
    index = json.loads((site / "search" / "search_index.json").read_text())
    locations = {d["location"] for d in index["docs"]}
    assert {"status/packages/demo-cext.html", "status/packages/broken.html"} <= locations
    assert any(loc.startswith("statuses.html") for loc in locations)
    # a changed configuration means a full build again
    config.write_text(config.read_text().replace("site_name: Wheel refinery", "site_name: W"))
    assert run().mode == "full"


def test_strict_mode_reports_warnings(tmp_path: Path) -> None:
    store = write_demo_store(tmp_path / "store")
    docs, config = site_project(tmp_path / "project")
    (docs / "statuses.md").write_text("# Statuses\n\n[broken](nowhere.md)\n")
    result = CliRunner().invoke(
        main,
        [
            "--store",
            store.url,
            "site",
            "--docs-dir",
            str(docs),
            "--config",
            str(config),
            "-o",
            str(tmp_path / "site"),
        ],
    )
    assert result.exit_code == 2
    assert "strict" in result.output and "nowhere.md" in result.output


# --- in a browser ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(built: tuple[Store, Path, Path, Path]) -> Iterator[str]:
    site = built[3]

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        from selenium import webdriver
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        unavailable("chromium and chromium-driver are not installed (scripts/setup)")
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,2000")
    options.binary_location = binary
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("REFINERY_ARTIFACTS", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_package_page_in_chromium(served: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{served}/status/packages/zlib-user.html")
    assert browser.title.startswith("zlib-user")
    tables = browser.find_elements(By.CSS_SELECTOR, "article table")
    attempts = [t for t in tables if "fix applied" in t.text]
    assert len(attempts) == 1
    rows = attempts[0].find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.text.split()[0] for r in rows] == ["1", "2"]
    assert "zlib" in rows[1].text and "built" in rows[1].text
    assert "failed" in rows[0].text
    highlighted = browser.find_elements(By.CSS_SELECTOR, "pre.refinery-log .hl")
    assert highlighted and all(h.is_displayed() for h in highlighted)
    assert any("zlib.h: No such file or directory" in h.text for h in highlighted)
    # highlighted lines are visibly different (a red tint), and anchored
    plain = browser.find_element(By.CSS_SELECTOR, "pre.refinery-log > span:not(.hl):not(.gap)")
    assert highlighted[0].value_of_css_property("background-color") != (
        plain.value_of_css_property("background-color")
    )
    anchor = highlighted[0].get_attribute("id")
    browser.get(f"{served}/status/packages/zlib-user.html#{anchor}")
    shot = _artifacts(tmp_path) / "site-package-zlib-user.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    # the full log downloads
    link = browser.find_element(By.LINK_TEXT, "1.log").get_attribute("href")
    browser.get(link)
    assert ZLIB_ERROR in browser.find_element(By.TAG_NAME, "body").text


def test_builds_filter_and_overview_in_chromium(served: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{served}/status/builds.html")
    rows = browser.find_elements(By.CSS_SELECTOR, "#rf-table tbody tr")
    assert len(rows) == 7
    browser.find_element(By.ID, "rf-q").send_keys("brok")
    visible = [r for r in rows if r.is_displayed()]
    assert len(visible) == 2 and all("broken" in r.text for r in visible)
    assert browser.find_element(By.ID, "rf-count").text == "2 of 7 rows"
    browser.get(f"{served}/status/builds.html#status=built")
    browser.refresh()
    visible = [
        r for r in browser.find_elements(By.CSS_SELECTOR, "#rf-table tbody tr") if r.is_displayed()
    ]
    assert len(visible) == 3
    browser.get(f"{served}/status/index.html")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".rf-plots svg")) == 3
    browser.save_screenshot(str(_artifacts(tmp_path) / "site-overview.png"))
    # dark mode toggle (material palette)
    toggle = browser.find_elements(By.CSS_SELECTOR, "form[data-md-component=palette] label")
    assert toggle
    toggle[0].click()
    scheme = browser.find_element(By.TAG_NAME, "body").get_attribute("data-md-color-scheme")
    assert scheme == "slate"
    browser.save_screenshot(str(_artifacts(tmp_path) / "site-overview-dark.png"))
