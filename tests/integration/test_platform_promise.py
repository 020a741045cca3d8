"""The target is a promise, for real: the newglibc fixture (a C module calling
``_dl_find_object``, GLIBC_2.35) built in the emulated Debian bookworm root (glibc 2.36).

For a plan targeting ``manylinux_2_28_s390x`` the repaired wheel is tagged
``manylinux_2_35_s390x``: the attempt fails with the glibc symbol that pulls the tag up
and the record is ``failed`` with no wheel. For a plan targeting
``manylinux_2_36_s390x`` the same sdist is ``built``. The target reaches the build step
the way a real run takes it: from the plan's targets, through the runner.
Needs root, qemu-user-static + binfmt_misc and the cached root filesystem.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import sha256_file
from refinery.builder.options import RunOptions
from refinery.builder.platform_check import inspect_platform
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.runner import BuildEvent, build_plan
from refinery.core.models import BuildRecord, FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "newglibc"
NAME, VERSION = "refinery-fixture-newglibc", "0.1.0"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sdist(FIXTURE, tmp_path_factory.mktemp("newglibc"))


def run_plan(
    sdist: Path, platform: str, store: Store, root: RootfsRoot, workdir: Path
) -> tuple[BuildRecord, list[str]]:
    node = PlanNode(
        NAME,
        VERSION,
        "3.11",
        NodeStatus.PENDING,
        "",
        True,
        wave=0,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )
    plan = Plan(
        f"it-promise-{platform}",
        ("req.txt",),
        (Target("3.11", platform),),
        (node,),
        ((node.key,),),
        {},
    )
    lines: list[str] = []

    def on_event(event: BuildEvent) -> None:
        if event.kind == "line":
            lines.append(event.message)

    options = RunOptions(build=host_build_options(), workdir=workdir, max_attempts=1)
    build_plan(plan, store, root, options, on_event=on_event)
    record = store.get_record(NAME, VERSION, "3.11")
    assert record is not None
    return record, lines


def test_a_wheel_newer_than_its_target_is_never_built(
    rootfs_root: RootfsRoot, sdist: Path, tmp_path: Path
) -> None:
    store = Store.open(str(tmp_path / "store"))

    record, lines = run_plan(sdist, "manylinux_2_28_s390x", store, rootfs_root, tmp_path / "a")
    assert record.status is NodeStatus.FAILED, (record.reason, lines[-30:])
    assert record.wheel is None
    (attempt,) = record.attempts
    assert attempt.status == "failed" and attempt.backend == "rootfs"
    assert attempt.reason.startswith(
        "needs glibc 2.35: GLIBC_2.35 from libc.so.6 `_dl_find_object` in "
        "refinery_fixture_newglibc/_probe.cpython-311-s390x-linux-gnu.so"
    ), attempt.reason
    assert attempt.reason.endswith(
        "target manylinux_2_28_s390x, wheel tagged manylinux_2_35_s390x"
    ), attempt.reason
    assert record.reason == attempt.reason
    assert any("GLIBC_2.35 from libc.so.6 `_dl_find_object`" in m for m in attempt.matched_lines)
    assert "built" not in {e.kind for e in record.events}
    assert any("installs on Ubuntu 22.04+, Debian 12+" in line for line in lines)

    record, lines = run_plan(sdist, "manylinux_2_36_s390x", store, rootfs_root, tmp_path / "b")
    assert record.status is NodeStatus.BUILT, (record.reason, lines[-30:])
    assert record.wheel is not None
    assert record.wheel.filename.endswith("-cp311-cp311-manylinux_2_35_s390x.whl")
    assert [a.status for a in record.attempts] == ["failed", "built"]
    assert any(
        line.startswith("platform: manylinux_2_35_s390x installs on target manylinux_2_36_s390x")
        for line in lines
    )
    assert any(line.startswith("SMOKE OK refinery_fixture_newglibc") for line in lines)
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    report = inspect_platform(wheel, "manylinux_2_36_s390x")
    highest = report.highest()
    assert report.ok and highest is not None
    assert (highest.need.version, highest.need.library) == ("GLIBC_2.35", "libc.so.6")
    assert highest.need.symbols == ("_dl_find_object",)
