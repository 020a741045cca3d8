from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from refinery.cli import Settings, make_plan
from refinery.core.cache import CacheRoot
from refinery.core.errors import ResolutionError
from refinery.core.models import BuildRecord, NodeStatus, Plan, WheelRef
from refinery.plan import CycleError
from refinery.store import Store


def plan_for(
    tmp_path: Path,
    index: str,
    text: str,
    *,
    store: str | None = None,
    pythons: tuple[str, ...] = (),
) -> Plan:
    req = tmp_path / "req.txt"
    req.write_text(text)
    settings = Settings(
        store=store or str(tmp_path / "store"),
        backend="auto",
        index_url=index,
        cache_dir=tmp_path / "cache",
        cache_root=CacheRoot(tmp_path / "cache"),
    )
    return make_plan(settings, [req], pythons=pythons, hints_dir=tmp_path / "hints")


def by_name(plan: Plan) -> dict[str, object]:
    return {n.name: n for n in plan.nodes}


def test_decisions(tmp_path: Path, fixture_index: str) -> None:
    plan = plan_for(
        tmp_path,
        fixture_index,
        "withdeps==1.0\nx86only==1.0\nabi3pkg\ntoonew-glibc\nlegacy\nnosdist\nnewpy\n"
        "unknown-project==1.0\npurepkg==9.9\n",
    )
    nodes = {n.key: n for n in plan.nodes}
    status = {k: n.status for k, n in nodes.items()}
    assert status["withdeps==1.0@3.11"] is NodeStatus.REUSED
    assert status["purepkg==1.1@3.11"] is NodeStatus.REUSED  # via withdeps
    assert status["s390xpkg==2.0@3.11"] is NodeStatus.REUSED
    assert nodes["s390xpkg==2.0@3.11"].wheel.endswith("manylinux2014_s390x.whl")  # type: ignore[union-attr]
    assert status["abi3pkg==1.0@3.11"] is NodeStatus.REUSED
    # a manylinux_2_34 wheel does not install on the manylinux_2_28 target: build it
    assert status["toonew-glibc==1.0@3.11"] is NodeStatus.PENDING
    assert status["x86only==1.0@3.11"] is NodeStatus.PENDING
    assert status["legacy==0.5@3.11"] is NodeStatus.PENDING
    assert status["nosdist==1.0@3.11"] is NodeStatus.MISSING
    assert "no sdist" in nodes["nosdist==1.0@3.11"].reason
    newpy = nodes["newpy==1.0@3.11"]
    assert newpy.status is NodeStatus.MISSING
    assert "requires Python >=3.13" in newpy.reason
    unknown = nodes["unknown-project==1.0@3.11"]
    assert unknown.status is NodeStatus.MISSING
    assert "req.txt:8: not on the index" in unknown.reason
    bad_version = nodes["purepkg==9.9@3.11"]
    assert bad_version.status is NodeStatus.MISSING
    assert "no release of purepkg matches '==9.9' (latest: 1.1)" in bad_version.reason
    # markers are evaluated for s390x, not the host: hostonly is x86_64-only
    assert "hostonly" not in {n.name for n in plan.nodes}
    # requested vs transitive
    assert nodes["withdeps==1.0@3.11"].requested
    assert not nodes["purepkg==1.1@3.11"].requested
    assert set(nodes["withdeps==1.0@3.11"].deps) == {"purepkg==1.1@3.11", "s390xpkg==2.0@3.11"}


def test_build_dependencies_become_nodes_and_waves(tmp_path: Path, fixture_index: str) -> None:
    plan = plan_for(tmp_path, fixture_index, "x86only==1.0\nlegacy==0.5\n")
    nodes = {n.key: n for n in plan.nodes}
    x86 = nodes["x86only==1.0@3.11"]
    assert x86.build_requires == ("setuptools>=61", "cybuild>=1")
    assert x86.build_deps == ("cybuild==2.0@3.11", "setuptools==70.0@3.11")
    assert nodes["cybuild==2.0@3.11"].status is NodeStatus.PENDING
    assert not nodes["cybuild==2.0@3.11"].requested
    assert nodes["setuptools==70.0@3.11"].status is NodeStatus.REUSED
    # an sdist without pyproject.toml gets setuptools' legacy default
    assert nodes["legacy==0.5@3.11"].build_requires == ("setuptools>=40.8.0",)
    assert plan.waves == (("cybuild==2.0@3.11", "legacy==0.5@3.11"), ("x86only==1.0@3.11",))
    assert x86.wave == 1 and nodes["cybuild==2.0@3.11"].wave == 0
    assert nodes["setuptools==70.0@3.11"].wave is None
    shards = plan.matrix["include"]
    assert [s["wave"] for s in shards] == [0, 0, 1]
    assert sorted(k for s in shards for k in s["nodes"]) == sorted(k for w in plan.waves for k in w)


def test_build_dependency_cycle_is_named(tmp_path: Path, fixture_index: str) -> None:
    with pytest.raises(CycleError, match=r"cyc-a==1.0@3.11 -> cyc-b==1.0@3.11 -> cyc-a==1.0@3.11"):
        plan_for(tmp_path, fixture_index, "needs-cyc==1.0\n")


def test_several_pythons(tmp_path: Path, fixture_index: str) -> None:
    plan = plan_for(tmp_path, fixture_index, "s390xpkg\nlegacy\n", pythons=("3.11", "3.12"))
    status = {n.key: n.status for n in plan.nodes}
    assert status["s390xpkg==2.0@3.11"] is NodeStatus.REUSED
    # only a cp311 wheel exists: Python 3.12 must build it
    assert status["s390xpkg==2.0@3.12"] is NodeStatus.PENDING
    assert [t.python for t in plan.targets] == ["3.11", "3.12"]


def test_store_decides_cached_and_known_failure(tmp_path: Path, fixture_index: str) -> None:
    store = Store.open(str(tmp_path / "store"))
    first = plan_for(tmp_path, fixture_index, "legacy==0.5\nx86only==1.0\n")
    legacy = {n.name: n for n in first.nodes}["legacy"]
    x86 = {n.name: n for n in first.nodes}["x86only"]
    assert legacy.sdist is not None and x86.sdist is not None
    store.update_record(
        "legacy",
        "0.5",
        "3.11",
        lambda _r: BuildRecord(
            "legacy",
            "0.5",
            "3.11",
            NodeStatus.BUILT,
            wheel=WheelRef("legacy-0.5-py3-none-any.whl", "ab" * 32),
        ),
    )
    store.update_record(
        "x86only",
        "1.0",
        "3.11",
        lambda _r: BuildRecord(
            "x86only",
            "1.0",
            "3.11",
            NodeStatus.FAILED,
            sdist_sha256=x86.sdist.sha256,
            catalog_digest=first.catalog_digest,
            reason="gcc: error",
        ),
    )
    second = plan_for(tmp_path, fixture_index, "legacy==0.5\nx86only==1.0\n")
    nodes = {n.name: n for n in second.nodes}
    assert nodes["legacy"].status is NodeStatus.CACHED
    assert nodes["legacy"].wheel == f"wheels/{'ab' * 32}/legacy-0.5-py3-none-any.whl"
    assert nodes["x86only"].status is NodeStatus.SKIPPED_KNOWN_FAILURE
    assert "gcc: error" in nodes["x86only"].reason
    # a change to the hint catalog makes it eligible again
    (tmp_path / "hints").mkdir()
    (tmp_path / "hints" / "zlib.yaml").write_text("id: zlib\n")
    third = plan_for(tmp_path, fixture_index, "legacy==0.5\nx86only==1.0\n")
    assert {n.name: n for n in third.nodes}["x86only"].status is NodeStatus.PENDING


def test_unsatisfiable_is_one_clear_error(tmp_path: Path, fixture_index: str) -> None:
    with pytest.raises(ResolutionError, match=r"cannot resolve for Python 3\.11"):
        plan_for(tmp_path, fixture_index, "withdeps==1.0\noldpin==1.0\n")


def test_plan_json_contract_and_round_trip(tmp_path: Path, fixture_index: str) -> None:
    req = tmp_path / "req.txt"
    req.write_text("x86only==1.0\nwithdeps==1.0\n")
    out = tmp_path / "plan.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinery",
            "--index-url",
            fixture_index,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--store",
            str(tmp_path / "store"),
            "plan",
            "req.txt",
            "--python",
            "3.11",
            "--json",
            "-o",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["schema"] == 1
    assert doc["inputs"] == ["req.txt"]
    assert doc["targets"] == [{"python": "3.11", "platform": "manylinux_2_28_s390x"}]
    node = next(n for n in doc["nodes"] if n["name"] == "x86only")
    for field in (
        "name",
        "version",
        "python",
        "status",
        "reason",
        "requested",
        "deps",
        "build_deps",
        "wave",
    ):
        assert field in node
    reused = next(n for n in doc["nodes"] if n["name"] == "withdeps")
    assert reused["wheel"].endswith("withdeps-1.0-py3-none-any.whl")
    assert doc["waves"] and doc["matrix"]["include"][0]["nodes"]
    assert Plan.from_json(doc).to_json() == doc


def test_github_output(tmp_path: Path, fixture_index: str) -> None:
    req = tmp_path / "req.txt"
    req.write_text("x86only==1.0\n")
    gh_out, summary = tmp_path / "out", tmp_path / "summary.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinery",
            "--index-url",
            fixture_index,
            "--cache-dir",
            str(tmp_path / "cache"),
            "plan",
            "req.txt",
            "--github-output",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={
            **__import__("os").environ,
            "GITHUB_OUTPUT": str(gh_out),
            "GITHUB_STEP_SUMMARY": str(summary),
        },
    )
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("=", 1) for line in gh_out.read_text().splitlines())
    assert lines["waves"] == "2"
    assert json.loads(lines["matrix_wave_1"])["include"][0]["nodes"] == ["x86only==1.0@3.11"]
    text = summary.read_text()
    to_build = text.split("#### To build (2)")[1].split("####")[0]
    assert "| **x86only** | 1.0 | 3.11 | 1 |" in to_build


def test_warm_plan_needs_no_index(tmp_path: Path) -> None:
    from conftest import FIXTURE_DISTS
    from fixtures.pyindex import IndexServer, write_index

    write_index(tmp_path / "idx", FIXTURE_DISTS)
    with IndexServer(tmp_path / "idx") as server:
        first = plan_for(tmp_path, server.url, "x86only==1.0\nwithdeps==1.0\n")
    # the server is gone: cached pages, build requirements and the resolution answer
    second = plan_for(tmp_path, server.url, "x86only==1.0\nwithdeps==1.0\n")
    assert first.to_json()["nodes"] == second.to_json()["nodes"]


def test_dead_index_is_one_clear_line(tmp_path: Path) -> None:
    req = tmp_path / "req.txt"
    req.write_text("six==1.16.0\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinery",
            "--index-url",
            "http://127.0.0.1:9/simple/",
            "--cache-dir",
            str(tmp_path / "cache"),
            "plan",
            str(req),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "UV_HTTP_RETRIES": "0", "REFINERY_INDEX_RETRIES": "0"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "refinery: error: cannot reach http://127.0.0.1:9/simple/six/ (Connection refused)"
    ]
