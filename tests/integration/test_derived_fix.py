"""A fix derived from data, for real: the snappy fixture (``snappy-c.h``, which no hint
names) in the emulated rootfs root, with an empty catalog. Attempt 1 fails on the
missing header; the advisor asks the bookworm ``Contents-s390x`` index (fetched from the
mirror the root was made from, InRelease verified with gpgv) and attempt 2 installs
``libsnappy-dev`` with apt; the wheel grafts libsnappy and round-trips bytes under
emulation. Then the record teaches the catalog: ``hints learn`` makes a package entry
with that fix, applied before the first attempt of the next build."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import sha256_file
from refinery.builder.options import RunOptions
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.runner import build_plan
from refinery.cli.parts import deriver_for
from refinery.core.cache import CacheRoot
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor, RetrySettings
from refinery.hints.learn import add_entries, learned_from_records
from refinery.store import Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "snappyext"
NAME = "refinery-fixture-snappy"


@pytest.mark.network
def test_a_library_no_hint_knows_builds_after_a_derived_fix(
    rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    sdist = make_sdist(FIXTURE, tmp_path / "sdist")
    node = PlanNode(
        NAME,
        "0.1.0",
        "3.11",
        NodeStatus.PENDING,
        "",
        True,
        wave=0,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )
    plan = Plan("derived", (), (Target(),), (node,), ((node.key,),), {})
    empty = tmp_path / "hints"
    empty.mkdir()
    cache = CacheRoot.from_environment(os.environ, Path.home())
    deriver = deriver_for(rootfs_root, cache)
    assert deriver is not None
    advisor = Advisor(load_catalog(empty), "apt", RetrySettings(max_attempts=3), deriver=deriver)
    store = Store.open(str(tmp_path / "store"))
    options = RunOptions(build=host_build_options(), max_attempts=3, workdir=tmp_path / "run")

    summary = build_plan(plan, store, rootfs_root, options, advise=advisor)

    (result,) = summary.results
    record = store.get_record(NAME, "0.1.0", "3.11")
    assert record is not None
    assert result.status is NodeStatus.BUILT, (result.reason, record.to_json())
    first, second = record.attempts
    assert first.status == "failed" and first.derived == ()
    assert second.status == "built"
    assert second.hint_ids == ("derived:libsnappy-dev",)
    assert second.recipes == ("apt: libsnappy-dev",)
    (derived,) = second.derived
    assert (derived.kind, derived.name, derived.package) == (
        "header",
        "snappy-c.h",
        "libsnappy-dev",
    )
    assert ("usr/include/snappy-c.h", "libsnappy-dev") in derived.candidates
    assert "snappy-c.h: No such file or directory" in derived.line
    assert record.wheel is not None
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    with zipfile.ZipFile(wheel) as zf:  # libsnappy grafted from the build root
        assert any(".libs/libsnappy" in name for name in zf.namelist()), zf.namelist()
    log = store.blobs.get(first.log or "")
    assert log is not None and b"fatal error: snappy-c.h: No such file or directory" in log[0]

    (learned,) = learned_from_records([record], load_catalog(empty))
    (empty / "learned.yaml").write_text(add_entries("", [learned]))
    again = Advisor(load_catalog(empty), "apt").first_fix(node)
    assert again is not None and again.system_packages == ("libsnappy-dev",)
