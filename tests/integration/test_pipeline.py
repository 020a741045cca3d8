"""The whole pipeline as one library call, without click: plan against the fixture
index (real uv), build with a fake root (host twine and smoke install for real), then
the pip index; input statuses recorded on the way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures.buildroot import FakeRoot, ready_cache

from refinery.builder.options import BuildOptions, RunOptions
from refinery.core.errors import InputError
from refinery.core.models import InputRecord, InputStatus, NodeStatus, Target
from refinery.hints.advise import Advisor
from refinery.hints.models import Catalog
from refinery.pipeline import Observers, Parts, PipelineOptions, run_pipeline
from refinery.plan import PlanOptions, UvResolver
from refinery.plan.inputs import input_id
from refinery.store import Store
from refinery.upstream.simple import IndexClient


@pytest.fixture(autouse=True)
def no_uv_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("refinery.builder.phases.ensure_uv", lambda tools, arch: None)


def _parts(tmp_path: Path, index_url: str) -> Parts:
    cache = tmp_path / "cache"
    return Parts(
        store=Store.open(str(tmp_path / "store")),
        index=IndexClient(index_url, cache_dir=cache / "index"),
        resolver=UvResolver(index_url, cache_dir=cache / "resolutions", environ=os.environ),
        root=FakeRoot(),
        advisor=Advisor(Catalog(()), "apt"),
    )


def _options(tmp_path: Path) -> PipelineOptions:
    cache, _tools = ready_cache(tmp_path / "build-cache")
    return PipelineOptions(
        plan=PlanOptions(targets=(Target(),)),
        run=RunOptions(build=BuildOptions(cache=cache), workdir=tmp_path / "run"),
        index_dir=tmp_path / "index",
    )


def _input(store: Store, req: Path) -> InputRecord:
    (found,) = [r for r in store.inputs() if r.input_id == input_id(req)]
    return found


def test_requirements_to_pip_index(tmp_path: Path, fixture_index: str) -> None:
    req = tmp_path / "req.txt"
    req.write_text("purepkg==1.0\ncybuild==1.0\n")
    parts = _parts(tmp_path, fixture_index)
    seen: list[str] = []
    result = run_pipeline(
        [req],
        parts,
        _options(tmp_path),
        Observers(on_plan=lambda plan: seen.append(plan.plan_id)),
    )
    statuses = {n.name: n.status for n in result.plan.nodes}
    assert statuses["purepkg"] is NodeStatus.REUSED
    assert statuses["cybuild"] is NodeStatus.PENDING
    assert seen == [result.plan.plan_id]
    assert result.builds.ok and result.builds.counts()["built"] >= 1
    record = parts.store.get_record("cybuild", "1.0", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    page = result.simple / "cybuild" / "index.html"
    assert record.wheel is not None and record.wheel.filename in page.read_text()
    assert result.site is None
    stored = _input(parts.store, req)
    assert stored.status is InputStatus.QUEUED and stored.plan_id == result.plan.plan_id


def test_a_planning_error_is_recorded_then_raised(tmp_path: Path, fixture_index: str) -> None:
    req = tmp_path / "bad.txt"
    req.write_text("purepkg==1.0\n-e ./here\n")
    parts = _parts(tmp_path, fixture_index)
    with pytest.raises(InputError, match=r"bad\.txt:2"):
        run_pipeline([req], parts, _options(tmp_path))
    stored = _input(parts.store, req)
    assert stored.status is InputStatus.FAILED
    assert "bad.txt:2" in stored.reason
    assert not (tmp_path / "index").exists()
