"""The cross backend reaches an old glibc target with zig, and keeps the promise.

The cext fixture built for ``manylinux_2_28_s390x`` (older than the sysroot's bookworm
glibc 2.36, so zig compiles it) is ``built``, tagged 2_28 or older, and imports under
emulation. The newglibc fixture (``_dl_find_object``, GLIBC_2.35) cannot be built for
2_28: zig's headers declare the function but its glibc 2.28 stubs lack it, so the link
guard of the wrapper fails the attempt with that symbol; for ``manylinux_2_36_s390x``
gcc builds it against the sysroot. Needs what tests/integration/test_build_cross.py
needs, and PyPI for ``ziglang`` the first time (zig builds its libc stubs once, ~70 s).
"""

from __future__ import annotations

from pathlib import Path

from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.cross import CrossRoot
from refinery.builder.options import RunOptions
from refinery.builder.runner import BuildEvent, build_plan
from refinery.core.models import BuildRecord, FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.core.target import glibc_floor, wheel_platforms
from refinery.store import Store, sha256_file

OPTIONS = host_build_options()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def build(
    fixture: str, name: str, platform: str, root: CrossRoot, tmp_path: Path
) -> tuple[BuildRecord, list[str]]:
    sdist = make_sdist(FIXTURES / fixture, tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(name, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)
    plan = Plan(f"it-zig-{platform}", (), (Target("3.11", platform),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    lines: list[str] = []

    def on_event(event: BuildEvent) -> None:
        if event.kind == "line":
            lines.append(event.message)

    options = RunOptions(build=OPTIONS, workdir=tmp_path / "run", max_attempts=1)
    build_plan(plan, store, root, options, on_event=on_event)
    record = store.get_record(name, "0.1.0", "3.11")
    assert record is not None
    return record, lines


def test_cext_for_manylinux_2_28_is_compiled_by_zig(cross_root: CrossRoot, tmp_path: Path) -> None:
    record, lines = build(
        "cext", "refinery-fixture-cext", "manylinux_2_28_s390x", cross_root, tmp_path
    )
    assert record.status is NodeStatus.BUILT, (record.reason, lines[-30:])
    assert record.wheel is not None
    (attempt,) = record.attempts
    assert attempt.backend == "cross"
    tags = wheel_platforms(record.wheel.filename)
    floors = [glibc_floor(tag) for tag in tags]
    assert floors and all(f is not None and f <= (2, 28) for f in floors), tags
    assert any(line.startswith("SMOKE OK refinery_fixture_cext") for line in lines)


def test_newglibc_fails_with_zig_and_builds_with_gcc(cross_root: CrossRoot, tmp_path: Path) -> None:
    name = "refinery-fixture-newglibc"
    record, lines = build("newglibc", name, "manylinux_2_28_s390x", cross_root, tmp_path / "a")
    assert record.status is NodeStatus.FAILED, (record.reason, lines[-30:])
    assert record.wheel is None
    (attempt,) = record.attempts
    assert attempt.backend == "cross"
    assert "needs glibc 2.35: GLIBC_2.35 from libc.so.6 `_dl_find_object`" in attempt.reason
    assert "zig has no such symbol for 2.28" in attempt.reason, attempt.reason

    record, lines = build("newglibc", name, "manylinux_2_36_s390x", cross_root, tmp_path / "b")
    assert record.status is NodeStatus.BUILT, (record.reason, lines[-30:])
    assert record.wheel is not None
    assert record.wheel.filename.endswith("-cp311-cp311-manylinux_2_35_s390x.whl")
    assert any(line.startswith("SMOKE OK refinery_fixture_newglibc") for line in lines)
