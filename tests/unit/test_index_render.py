"""The static index: page contents, atomic and incremental output, repair, overlay,
content negotiation."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from fixtures.wheels import Project, make_wheel

from refinery.core.models import BuildRecord, NodeStatus
from refinery.core.vocab import DistKind
from refinery.index import Index, IndexResult, negotiate
from refinery.store import Store
from refinery.store.layout import project_key
from refinery.upstream.simple import DistFile
from refinery.upstream.simple import Project as UpstreamProject


def add(
    store: Store,
    tmp: Path,
    name: str,
    version: str,
    tag: str = "py3-none-any",
    python: str = "3.11",
    **kw: object,
) -> Path:
    filename, data, _ = make_wheel(Project(name, version, **kw), tag)  # type: ignore[arg-type]
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
    assert "installs on" not in page  # pure wheels install everywhere
    beta = (out / "simple/beta/index.html").read_text()
    installs = "RHEL 8+, SLES 15 SP1+, Ubuntu 20.04+, Debian 11+ (glibc 2.17+)"
    assert f'</a> <small class="installs-on">installs on {installs}</small><br/>' in beta
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
    def yank(record: BuildRecord | None) -> BuildRecord:
        assert record is not None
        return record.with_event("t", "yanked", 'broken "abi"')

    store.update_record("beta", "2.0", "3.11", yank)
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
    blobs.delete(project_key("beta"))  # as if a writer died between record and summary
    blobs.put(project_key("stale"), b'{"schema":1,"name":"stale","files":{}}')
    out = tmp_path / "out"
    result = Index(store, out).build(full=True)
    assert set(result.repaired) == {"beta", "stale"}
    assert (out / "simple/beta/index.html").is_file() and not (out / "simple/stale").exists()


def test_a_missing_wheel_is_never_listed(store: Store, tmp_path: Path) -> None:
    summary = store.get_summary("beta")
    assert summary is not None
    entry = next(iter(summary.files.values()))
    wheel = store.blobs.local_path(store.wheel_path(entry.sha256, entry.filename))
    assert wheel is not None
    wheel.unlink()
    out = tmp_path / "out"
    result = Index(store, out).build(full=True)
    assert "beta" in result.repaired and not (out / "simple/beta").exists()


UPSTREAM: tuple[tuple[str, str, DistKind], ...] = (
    ("purepkg-1.0-py3-none-any.whl", "1.0", "wheel"),
    ("purepkg-1.0.tar.gz", "1.0", "sdist"),
    ("purepkg-1.1.tar.gz", "1.1", "sdist"),
    ("purepkg-9.0-py3-none-any.whl", "9.0", "wheel"),  # shadowed by ours
)


class FakeUpstream:
    """An upstream index with one project: a wheel and an sdist of purepkg 1.0 and 1.1."""

    def projects(self, names: Iterable[str]) -> dict[str, UpstreamProject | None]:
        files = tuple(
            DistFile(
                filename=f,
                url=f"http://upstream.example/files/{f}",
                version=v,
                kind=kind,
                sha256="ee" * 32,
                requires_python=None,
                yanked=False,
                metadata=kind == "wheel",
            )
            for f, v, kind in UPSTREAM
        )
        return {n: UpstreamProject(n, files) if n == "purepkg" else None for n in names}


def test_overlay_lists_upstream_files_after_ours(store: Store, tmp_path: Path) -> None:
    add(store, tmp_path, "purepkg", "9.0")
    out = tmp_path / "out"
    Index(store, out, overlay=FakeUpstream()).build()  # type: ignore[arg-type]
    doc = json.loads((out / "simple/purepkg/index.json").read_text())
    names = [f["filename"] for f in doc["files"]]
    assert names.count("purepkg-9.0-py3-none-any.whl") == 1
    ours = next(f for f in doc["files"] if f["filename"] == "purepkg-9.0-py3-none-any.whl")
    assert ours["url"].startswith("../../wheels/")
    assert "purepkg-1.0-py3-none-any.whl" in names and "purepkg-1.0.tar.gz" in names
    upstream = next(f for f in doc["files"] if f["filename"] == "purepkg-1.0-py3-none-any.whl")
    assert upstream["url"] == "http://upstream.example/files/purepkg-1.0-py3-none-any.whl"
    assert upstream["core-metadata"] is True
    assert doc["versions"] == ["1.0", "1.1", "9.0"]
    # turning overlay off is a different index: a full run
    assert Index(store, out).build().full


def test_result_json_is_stable() -> None:
    result = IndexResult("o", True, 1, 2, ("a",), (), ("b",), 0, 0.123456)
    assert list(result.to_json()) == [
        "schema",
        "out",
        "full",
        "projects",
        "files",
        "rendered",
        "removed",
        "repaired",
        "uploaded",
        "seconds",
    ]
    assert result.to_json()["rendered"] == ["a"] and result.to_json()["seconds"] == 0.1235


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
