"""The static index: page contents, atomic and incremental output, repair, overlay,
content negotiation."""

from __future__ import annotations

import json
import os
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from fixtures.pyindex import Dist, make_wheel

from refinery.core.models import BuildRecord, NodeStatus
from refinery.index.render import Index, negotiate
from refinery.index.render import handler as serve_handler
from refinery.store.ledger import Store

pytestmark = pytest.mark.unit


def add(
    store: Store,
    tmp: Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    python: str = "3.11",
    **kw: object,
) -> Path:
    filename, data, _ = make_wheel(Dist(name, version, **kw), tag)  # type: ignore[arg-type]
    path = tmp / filename
    path.write_bytes(data)
    ref = store.put_wheel(path)
    store.update_record(
        name,
        version,
        python,
        lambda _c: BuildRecord(name.lower(), version, python, NodeStatus.BUILT, wheel=ref),
    )
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(str(tmp_path / "store"))
    add(s, tmp_path, "Alpha_Pkg", "1.0", requires_python=">=3.8,<4")
    add(s, tmp_path, "alpha-pkg", "1.10")
    add(s, tmp_path, "alpha-pkg", "1.9")
    add(s, tmp_path, "beta", "2.0", "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x")
    return s


def test_pages_follow_the_peps(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = Index(store, out).build()
    assert result.full and result.projects == 2 and result.files == 4
    root = (out / "simple/index.html").read_text()
    assert '<meta name="pypi:repository-version" content="1.1">' in root
    assert '<a href="alpha-pkg/">alpha-pkg</a>' in root
    page = (out / "simple/alpha-pkg/index.html").read_text()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in page
    assert 'data-core-metadata="sha256=' in page and 'data-dist-info-metadata="sha256=' in page
    doc = json.loads((out / "simple/alpha-pkg/index.json").read_text())
    assert doc["meta"]["api-version"] == "1.1"
    assert doc["versions"] == ["1.0", "1.9", "1.10"]  # PEP 440 order, not string order
    for f in doc["files"]:
        target = Path(os.path.normpath(out / "simple/alpha-pkg" / f["url"]))  # as a URL
        assert target.is_file(), f["url"]
        meta = Path(f"{target}.metadata")
        import hashlib

        assert hashlib.sha256(meta.read_bytes()).hexdigest() == f["core-metadata"]["sha256"]
        assert hashlib.sha256(target.read_bytes()).hexdigest() == f["hashes"]["sha256"]
        assert f["yanked"] is False and f["size"] == target.stat().st_size
    root_json = json.loads((out / "simple/index.json").read_text())
    assert [p["name"] for p in root_json["projects"]] == ["alpha-pkg", "beta"]


def test_yanked_is_rendered(store: Store, tmp_path: Path) -> None:
    store.update_record(
        "beta", "2.0", "3.11", lambda c: c.with_event("t", "yanked", 'broken "abi"')
    )  # type: ignore[union-attr]
    out = tmp_path / "out"
    Index(store, out).build()
    assert 'data-yanked="broken &#34;abi&#34;"' in (out / "simple/beta/index.html").read_text()
    doc = json.loads((out / "simple/beta/index.json").read_text())
    assert doc["files"][0]["yanked"] == 'broken "abi"'


def test_incremental_renders_only_what_changed(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Index(store, out).build()
    before = os.readlink(out / "simple/beta")
    again = Index(store, out).build()
    assert not again.full and again.rendered == ()
    add(store, tmp_path, "alpha-pkg", "2.0")
    result = Index(store, out).build()
    assert result.rendered == ("alpha-pkg",) and result.files == 5
    assert os.readlink(out / "simple/beta") == before
    assert "alpha_pkg-2.0" in (out / "simple/alpha-pkg/index.html").read_text()
    # a new project updates the project list too
    add(store, tmp_path, "gamma", "0.1")
    result = Index(store, out).build()
    assert result.rendered == ("gamma",)
    assert "gamma/" in (out / "simple/index.html").read_text()
    # old page folders are gone; only one per project remains
    assert sorted(p.name for p in (out / ".pages").iterdir()) == ["alpha-pkg", "beta", "gamma"]
    assert len(list((out / ".pages/alpha-pkg").iterdir())) == 1


def test_full_run_switches_a_new_tree(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Index(store, out).build()
    first = os.readlink(out / "simple")
    Index(store, out).build(full=True)
    second = os.readlink(out / "simple")
    assert first != second and not (out / first).exists()
    assert (out / "simple/beta/index.html").is_file()


def test_full_run_repairs_a_drifted_summary(store: Store, tmp_path: Path) -> None:
    blobs = store.blobs
    blobs.delete("projects/beta.json")  # as if a writer died between record and summary
    blobs.put("projects/stale.json", b'{"schema":1,"name":"stale","files":{}}')
    out = tmp_path / "out"
    result = Index(store, out).build(full=True)
    assert set(result.repaired) == {"beta", "stale"}
    assert (out / "simple/beta/index.html").is_file() and not (out / "simple/stale").exists()


def test_a_missing_wheel_is_never_listed(store: Store, tmp_path: Path) -> None:
    summary = store.get_summary("beta")
    assert summary is not None
    entry = next(iter(summary.files.values()))
    (Path(store.blobs.root) / f"wheels/{entry.sha256}/{entry.filename}").unlink()  # type: ignore[attr-defined]
    out = tmp_path / "out"
    result = Index(store, out).build(full=True)
    assert "beta" in result.repaired and not (out / "simple/beta").exists()


def test_overlay_lists_upstream_files_after_ours(
    store: Store, tmp_path: Path, fixture_index: str, cache_dir: Path
) -> None:
    from refinery.upstream.simple import IndexClient

    add(store, tmp_path, "purepkg", "9.0")
    out = tmp_path / "out"
    Index(store, out, overlay=IndexClient(fixture_index, cache_dir=cache_dir)).build()
    doc = json.loads((out / "simple/purepkg/index.json").read_text())
    names = [f["filename"] for f in doc["files"]]
    assert "purepkg-9.0-py3-none-any.whl" in names
    assert "purepkg-1.0-py3-none-any.whl" in names and "purepkg-1.0.tar.gz" in names
    upstream = next(f for f in doc["files"] if f["filename"] == "purepkg-1.0-py3-none-any.whl")
    assert upstream["url"].startswith("http://127.0.0.1:")
    assert doc["versions"] == ["1.0", "1.1", "9.0"]
    # turning overlay off is a different index: a full run
    assert Index(store, out).build().full


@pytest.mark.parametrize(
    ("accept", "want"),
    [
        ("", "text/html"),
        ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+json"),
        (
            "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
            "text/html;q=0.01",
            "application/vnd.pypi.simple.v1+json",
        ),
        ("text/html", "text/html"),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("*/*", "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.v1+json;q=0.1, text/html", "text/html"),
        ("application/xml", None),
    ],
)
def test_negotiation(accept: str, want: str | None) -> None:
    assert negotiate(accept) == want


def test_serve_negotiates(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Index(store, out).build()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), serve_handler(out))
    Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/simple/beta/"
    try:
        req = urllib.request.Request(
            base, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(req) as resp:
            assert resp.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
            assert json.loads(resp.read())["name"] == "beta"
        with urllib.request.urlopen(base) as resp:
            assert resp.headers["Content-Type"].startswith("text/html")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cli_publish_then_index(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from fixtures.wheels import built_wheel

    from refinery.cli import main

    staging = Store.open(str(tmp_path / "staging"))
    built_wheel(staging, tmp_path / "w", "clipkg", "1.0")
    store = str(tmp_path / "store")
    runner = CliRunner()
    result = runner.invoke(main, ["--store", store, "publish", "--from", str(tmp_path / "staging")])
    assert result.exit_code == 0, result.output
    assert "published 1 records, 1 new wheels" in result.output
    out = tmp_path / "idx"
    result = runner.invoke(main, ["--store", store, "index", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == 1 and doc["projects"] == 1 and doc["full"] is True
    result = runner.invoke(main, ["--store", store, "index", "-o", str(out)])
    assert "index (incremental): 1 projects, 1 files, 0 pages rendered" in result.output
    result = runner.invoke(main, ["--store", "s3://", "index", "-o", str(out)])
    assert result.exit_code == 2 and "names no bucket" in result.output
