"""The ``auto`` fallback for real: cross first, emulation when the cross build cannot work.

The runtarget fixture's ``setup.py`` compiles a probe with the configured C compiler and
runs it. On the cross root that is an s390x program on the x86_64 build machine: the
attempt fails with a cross-specific error, and the runner builds the node again in the
emulated rootfs root, where the probe runs on (emulated) s390x and the wheel builds,
repairs and imports. Needs what the cross and rootfs backends need (root,
crossbuild-essential-s390x, qemu-user-static + binfmt, the cached Debian s390x root,
PyPI for crossenv on first use).
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from click.testing import CliRunner
from fixtures.buildroot import host_build_options
from fixtures.need import unavailable
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import elf_machine, sha256_file
from refinery.builder.fallback import Fallback, cross_specific_log
from refinery.builder.options import RunOptions
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.roots import BuildRoot, choose_backend, host_facts
from refinery.builder.runner import BuildEvent, build_plan
from refinery.cli import main
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store

OPTIONS = host_build_options()
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "runtarget"
NAME = "refinery-fixture-runtarget"


def _node(sdist: Path) -> PlanNode:
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    return PlanNode(NAME, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)


def test_a_setup_script_running_target_binaries_falls_back_to_emulation(
    cross_root: BuildRoot, rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    node = _node(make_sdist(FIXTURE, tmp_path / "sdist"))
    plan = Plan("it-fallback", (), (Target(),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    events: list[BuildEvent] = []
    started = time.monotonic()
    summary = build_plan(
        plan,
        store,
        cross_root,
        RunOptions(build=OPTIONS, workdir=tmp_path / "run", max_attempts=3),
        on_event=events.append,
        fallback=Fallback(rootfs_root),
    )
    elapsed = time.monotonic() - started
    (result,) = summary.results
    record = store.get_record(node.name, node.version, node.python)
    assert record is not None
    assert record.status is NodeStatus.BUILT, (record.reason, record.events)
    one, two = record.attempts
    assert (one.n, one.backend, one.status) == (1, "cross", "failed")
    assert (two.n, two.backend, two.status) == (2, "rootfs", "built")

    # attempt 1 failed for the cross-specific reason the classifier finds in its log
    log = store.get_log(one.log or "")
    assert log is not None and b"running the probe" in log
    saved = tmp_path / "attempt-1.log"
    saved.write_bytes(log)
    finding = cross_specific_log(saved)
    assert finding is not None and finding.signature in ("M1", "X1"), finding
    moved = [e for e in record.events if e.kind == "fallback"]
    assert [e.message for e in moved] == [f"attempt 2 on rootfs: {finding.reason}"]
    assert [e.message for e in events if e.kind == "fallback"] == [f"to rootfs: {finding.reason}"]

    # attempt 2: built under emulation, repaired, s390x code, imported in a clean root
    outcome = result.outcome
    assert outcome is not None and outcome.backend == "rootfs" and result.attempts == 2
    assert outcome.smoke is not None and outcome.smoke.ok
    assert outcome.smoke.modules == ("refinery_fixture_runtarget",)
    assert record.wheel is not None and record.wheel.filename.endswith("_s390x.whl")
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    with zipfile.ZipFile(wheel) as zf:
        machines = [elf_machine(zf.read(n)[:20]) for n in zf.namelist() if n.endswith(".so")]
    assert machines == [22]
    built_log = store.get_log(two.log or "")
    assert built_log is not None and b'RT_PROBED_BYTEORDER "big"' in built_log
    print(f"runtarget: {finding.signature} on cross, built under emulation; {elapsed:.0f}s")


def test_the_cli_with_backend_auto_falls_back_and_honours_emulate(
    cross_root: BuildRoot, tmp_path: Path
) -> None:
    """``refinery --backend auto build`` on an x86_64 host with the cross toolchain: the
    cross root with the emulated fallback; a catalog entry ``emulate`` starts there."""
    if choose_backend("auto", host_facts()) != "cross":
        unavailable("--backend auto does not choose cross on this host")
    node = _node(make_sdist(FIXTURE, tmp_path / "sdist"))
    plan = Plan("it-fallback-cli", (), (Target(),), (node,), ((node.key,),), {})
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan.to_json()))
    plain, emulate = tmp_path / "hints-plain", tmp_path / "hints-emulate"
    plain.mkdir()
    emulate.mkdir()
    (emulate / "packages.yaml").write_text(
        f"packages:\n  - package: {NAME}\n    emulate: 'setup.py runs its probe'\n"
    )
    backends: dict[str, list[str]] = {}
    for hints in (plain, emulate):
        store_dir = tmp_path / f"store-{hints.name}"
        args = ["--store", str(store_dir), "--backend", "auto", "build", str(plan_file)]
        result = CliRunner().invoke(main, [*args, "--hints", str(hints)])
        assert result.exit_code == 0, result.output
        assert "fallback" in result.output
        record = Store.open(str(store_dir)).get_record(node.name, node.version, node.python)
        assert record is not None and record.status is NodeStatus.BUILT
        backends[hints.name] = [a.backend for a in record.attempts]
        if hints is emulate:
            (moved,) = [e for e in record.events if e.kind == "fallback"]
            assert moved.message == (
                "attempt 1 on rootfs: the package's setting says emulate: setup.py runs its probe"
            )
    assert backends == {"hints-plain": ["cross", "rootfs"], "hints-emulate": ["rootfs"]}
