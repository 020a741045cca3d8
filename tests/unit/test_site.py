"""Status site: log excerpts, statistics, plots, page generation and incrementality
(no MkDocs build here; see tests/integration/test_site_build.py)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.sitestore import ZLIB_ERROR, build_log, ts, write_demo_store

from refinery.cli import main
from refinery.core.models import Attempt
from refinery.site import Generator, SiteOptions, load, plots, stats
from refinery.site.catalog import CatalogEntry, load_catalog
from refinery.site.generate import log_keys, publish_logs
from refinery.site.logs import excerpt, is_error
from refinery.store import Store
from refinery.store.layout import record_key

INDEX = "https://wheels.example/simple/"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return write_demo_store(tmp_path / "store")


def generate(store: Store, status: Path) -> tuple[Generator, object]:
    options = SiteOptions(pip_index=INDEX, hints_dir=status / "no-hints", copy_logs=True)
    gen = Generator(store, status, options)
    return gen, gen.run(load(store))


# --- logs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (ZLIB_ERROR, True),
        ("error: command 'gcc' failed with exit code 1", True),
        ("Traceback (most recent call last):", True),
        ("ModuleNotFoundError: No module named 'numpy'", True),
        ("ERROR: Failed building wheel for lxml", True),
        ("/usr/bin/ld: foo.o: undefined reference to `inflate'", True),
        ("gcc -Werror=format-security -c x.c", False),
        ("checking for strerror... yes", False),
        ("copying src/errors.py -> build/lib", False),
        ("Successfully built markupsafe", False),
    ],
)
def test_error_lines(line: str, expected: bool) -> None:
    assert is_error(line) is expected


def test_excerpt_marks_context_gaps_and_tail() -> None:
    text = build_log("x", "1", fail=ZLIB_ERROR, lines=200).decode()
    lines = text.splitlines()
    ex = excerpt(text, (ZLIB_ERROR,))
    marked = [ln.number for ln in ex.lines if ln and ln.marked]
    assert lines[marked[0] - 1] == ZLIB_ERROR
    assert ex.total == len(lines)
    assert ex.lines[0] is None  # a gap before the first context line
    shown = [ln.number for ln in ex.lines if ln]
    assert shown[-1] == len(lines)  # the tail is there
    assert marked[0] - 3 in shown and marked[0] + 3 in shown
    assert len(shown) < len(lines) / 3


def test_excerpt_html_is_escaped_and_anchored() -> None:
    ex = excerpt("ok\n<script>alert(1)</script> error: boom\n")
    out = ex.html("v1-py3-11-a1")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert (
        '<span id="v1-py3-11-a1-L2" class="hl"><a class="ln" href="#v1-py3-11-a1-L2">2</a>' in out
    )


def test_excerpt_matched_lines_without_error_words() -> None:
    ex = excerpt("a\nb\nsomething odd happened\nc\n", ("something odd happened",))
    assert [ln.number for ln in ex.lines if ln and ln.marked] == [3]


def test_excerpt_is_bounded() -> None:
    text = "\n".join(f"error: {i}" for i in range(5000))
    ex = excerpt(text)
    assert len([ln for ln in ex.lines if ln]) <= 160
    assert ex.marked == 5000


# --- statistics and plots -------------------------------------------------------------------
def test_hint_stats_count_fired_and_fixed(store: Store) -> None:
    data = load(store)
    catalog = {"unused-hint": CatalogEntry("a note", "apt: x")}
    rows = {s.hint_id: s for s in stats.hint_stats(data.nodes(), catalog)}
    zlib = rows["zlib"]
    assert (zlib.fired, zlib.fixed, zlib.rate) == (3, 1, "33%")
    assert zlib.packages == {"zlib-user", "broken"}
    assert rows["unused-hint"].fired == 0 and rows["unused-hint"].in_catalog
    assert rows["unused-hint"].fix == "apt: x"


def test_outcomes_and_queue_over_time(store: Store) -> None:
    nodes = list(load(store).nodes())
    outcomes = stats.outcomes_over_time(nodes)
    assert outcomes is not None
    _line, built, failed = outcomes
    assert sum(built) == 2 and sum(failed) == 5
    queue = stats.queue_over_time(nodes)
    assert queue is not None
    # At the end, the stuck lease and the pending node are still queued.
    assert queue[1][-1] == 2
    assert max(queue[1]) <= len(nodes)


def test_duration_histogram(store: Store) -> None:
    hist = stats.duration_histogram(load(store).nodes())
    assert sum(hist) == 7  # every finished attempt
    assert hist[0] == 1 and hist[1] == 6  # 24 s; 30-52 s


@pytest.mark.parametrize("values", [[], [0, 0], [1, 2, 3], [1000, 20000, 3]])
def test_plots_are_valid_svg(values: list[int]) -> None:
    labels = [str(i) for i in range(len(values))]
    svgs = [
        plots.bar_chart("t <&>", labels, [plots.Series("a", values, "#000")]),
        plots.line_chart("t", labels, plots.Series("q", values, "#000")),
        plots.empty("nothing"),
    ]
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")


# --- pages -------------------------------------------------------------------------------------
def test_package_page_shows_attempts_hints_logs_and_commands(store: Store, tmp_path: Path) -> None:
    status = tmp_path / "status"
    generate(store, status)
    page = (status / "packages" / "zlib-user.md").read_text()
    assert "refinery: html" in page.split("---")[1]
    assert page.count("<tr><td>1</td>") == 1 and page.count("<tr><td>2</td>") == 1
    assert '<a href="../hints.html#zlib"><code>zlib</code></a>' in page
    assert "<code>apt: zlib1g-dev</code>" in page
    assert 'class="rf-ev rf-ev-retry">retry</span> applying zlib' in page
    assert f"pip install --index-url {INDEX} zlib-user==2.0" in page
    installs = "RHEL 8+, SLES 15 SP1+, Ubuntu 20.04+, Debian 11+ (glibc 2.17+)"
    assert f"<li><strong>Installs on:</strong> {installs}</li>" in page
    assert "refinery --backend rootfs build plan.json --node zlib-user==2.0@3.11" in page
    # the failed attempt's excerpt: the zlib line highlighted and anchored; the log copied
    assert re.search(r'<span id="v2-0-py3-11-a1-L\d+" class="hl">.*zlib\.h: No such file', page)
    assert 'href="../logs/zlib-user/2.0/3.11/1.log" download' in page
    # the successful attempt has its log but no excerpt
    assert "v2-0-py3-11-a2-L" not in page


def test_ingested_and_stuck_nodes(store: Store, tmp_path: Path) -> None:
    status = tmp_path / "status"
    generate(store, status)
    uploaded = (status / "packages" / "uploaded.md").read_text()
    assert "ingested wheel" in uploaded and "No build log" in uploaded
    assert "Reproduce locally" not in uploaded and "pip install" in uploaded
    slow = (status / "packages" / "slowpoke.md").read_text()
    assert "<strong>expired</strong>" in slow
    overview = (status / "index.md").read_text()
    assert "slowpoke==1.0@3.11" in overview  # listed as an expired lease


def test_aggregate_pages(store: Store, tmp_path: Path) -> None:
    status = tmp_path / "status"
    generate(store, status)
    overview = (status / "index.md").read_text()
    assert '<span class="rf-n">3</span><span class="rf-l">built</span>' in overview
    assert '<span class="rf-n">2</span><span class="rf-l">failed</span>' in overview
    assert "success rate **60%**" in overview
    assert overview.count("<svg") == 3
    builds = (status / "builds.md").read_text()
    assert builds.count('<tr data-s="') == 7
    assert '<tr data-s="failed" data-p="3.12" data-n="broken">' in builds
    hints = (status / "hints.md").read_text()
    assert re.search(r"\[`zlib`\]\(#zlib\) \| 3 \| 1 \| 33% \|", hints)
    assert "### zlib { #zlib }" in hints
    inputs = (status / "inputs.md").read_text()
    assert "[f00dfeed12345678](plans/f00dfeed12345678.md)" in inputs
    plan = (status / "plans" / "f00dfeed12345678.md").read_text()
    assert '<a href="../packages/zlib-user.html">zlib-user</a>' in plan
    assert "<td>six <small>(requested)</small></td>" in plan  # no page: not a link


def test_incremental_regeneration(store: Store, tmp_path: Path) -> None:
    status = tmp_path / "status"
    _gen, first = generate(store, status)
    assert len(first.written) >= 12  # type: ignore[attr-defined]
    _gen, again = generate(store, status)
    assert again.written == [] and again.regenerated == []  # type: ignore[attr-defined]

    def fail_again(record):  # type: ignore[no-untyped-def]
        attempt = Attempt(3, ts(300), ts(301), 12.0, "rootfs", status="failed")
        return record.evolve(attempts=(*record.attempts, attempt)).with_event(ts(301), "failed")

    store.update_record("broken", "0.1", "3.12", fail_again)
    _gen, third = generate(store, status)
    written = set(third.written)  # type: ignore[attr-defined]
    assert "packages/broken.md" in written
    assert not any(p.startswith("packages/") and p != "packages/broken.md" for p in written)
    assert {"index.md", "builds.md"} <= written

    # a package whose records are gone loses its page and its logs
    for rid in list(store.record_ids("zlib-user")):
        path = store.blobs.local_path(record_key(*rid))
        assert path is not None
        path.unlink()
    _gen, fourth = generate(store, status)
    assert fourth.removed == ["packages/zlib-user.md"]  # type: ignore[attr-defined]
    assert not (status / "packages" / "zlib-user.md").exists()


def test_publish_logs_links_once(store: Store, tmp_path: Path) -> None:
    keys = list(log_keys(load(store).packages.values()))
    assert len(keys) == 7
    site = tmp_path / "site" / "status"
    assert publish_logs(store, keys, site) == 7
    log = site / "logs/zlib-user/2.0/3.11/1.log"
    assert log.read_bytes().startswith(b"==> start")
    assert log.stat().st_nlink == 2  # a hard link into the local store, not a copy
    assert publish_logs(store, keys, site) == 0


def test_changed_options_regenerate_everything(store: Store, tmp_path: Path) -> None:
    status = tmp_path / "status"
    generate(store, status)
    other = SiteOptions(pip_index="https://other.example/simple/", copy_logs=True)
    gen = Generator(store, status, other)
    result = gen.run(load(store))
    # every page is re-rendered; those that show the pip index (3 have wheels) change
    assert sum(p.startswith("packages/") for p in result.written) == 3
    manifest = json.loads((status / ".manifest.json").read_text())
    assert set(manifest["pages"]) == {f"packages/{n}.md" for n in load(store).packages}


def test_empty_store(tmp_path: Path) -> None:
    status = tmp_path / "status"
    generate(Store.open(str(tmp_path / "empty")), status)
    assert "no build records" in (status / "index.md").read_text()
    assert "No hint has fired yet" in (status / "hints.md").read_text()


def test_catalog_from_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zlib.yaml").write_text(
        "# comment\n- id: zlib\n  note: install zlib headers\n"
        "  fix: {apt: [zlib1g-dev], dnf: [zlib-devel], env: {A: '1'}}\n- id: other\n"
    )
    (tmp_path / "more.yaml").write_text("hints:\n  - id: third\n    note: x\n")
    (tmp_path / "broken.yaml").write_text("- id: [unclosed\n")
    monkeypatch.setattr("refinery.site.catalog._from_module", lambda _d: None)
    assert load_catalog(tmp_path) == {
        "zlib": CatalogEntry(
            "install zlib headers", "apt: zlib1g-dev · dnf: zlib-devel · env: A=1"
        ),
        "other": CatalogEntry(),
        "third": CatalogEntry("x"),
    }
    assert load_catalog(tmp_path / "absent") == {}


# --- command line ---------------------------------------------------------------------------------
def test_cli_markdown_only(store: Store, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n")
    result = CliRunner().invoke(
        main,
        [
            "--store",
            store.url,
            "site",
            "--docs-dir",
            str(docs),
            "--markdown-only",
            "--pip-index",
            "https://w.example/simple",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 packages" in result.output
    assert (
        "https://w.example/simple/ demo-cext==1.0"
        in (docs / "status" / "packages" / "demo-cext.md").read_text()
    )


def test_cli_without_mkdocs_config_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    result = CliRunner().invoke(
        main, ["--store", store.url, "site", "--docs-dir", str(tmp_path / "docs")]
    )
    assert result.exit_code == 2
    assert "no mkdocs configuration" in result.output


def test_catalog_from_the_hints_module() -> None:
    """The repository's catalog, through refinery.hints.load_catalog."""
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "hints")
    if not catalog:
        pytest.skip("no hints/*.yaml in this checkout")
    assert all(isinstance(e, CatalogEntry) for e in catalog.values())
    assert any(e.fix.startswith("apt: ") for e in catalog.values())


def test_full_logs_stay_in_the_store_by_default(store: Store, tmp_path: Path) -> None:
    """Without copy_logs the site links no log of its own: the store's public URL when
    one is given, else each attempt names its ``refinery logs`` command; the highlighted
    excerpt is on the page either way (issue 14: 10,000 packages' logs outgrow Pages)."""
    status = tmp_path / "status"
    Generator(store, status, SiteOptions(hints_dir=tmp_path / "no-hints")).run(load(store))
    page = (status / "packages" / "zlib-user.md").read_text()
    assert "../logs/" not in page
    assert "full log: <code>refinery logs zlib-user==2.0@3.11 --attempt 1</code>" in page
    assert re.search(r'class="hl">.*zlib\.h: No such file', page)  # the excerpt stays
    public = SiteOptions(hints_dir=tmp_path / "no-hints", logs_url="https://b.example/store/")
    Generator(store, tmp_path / "public", public).run(load(store))
    page = (tmp_path / "public" / "packages" / "zlib-user.md").read_text()
    assert 'href="https://b.example/store/logs/zlib-user/2.0/3.11/1.log" download' in page
    assert "refinery logs zlib-user" not in page
