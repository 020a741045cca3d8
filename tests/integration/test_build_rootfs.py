"""Real s390x builds in the emulated rootfs build root.

Needs root, qemu-user-static + binfmt_misc and mmdebstrap; the cached root filesystem is
created on first use by the same code as ``refinery buildroot create`` (~3-6 minutes,
then seconds). Each build of the fixture takes well under a minute under emulation.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import MARKUPSAFE_2_1_5, make_sdist, pypi_node

from refinery.builder.artifacts import elf_machine, sha256_file
from refinery.builder.errors import SystemRecipeFailed
from refinery.builder.options import AttemptSpec, RunOptions
from refinery.builder.proc import OnLine
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.roots import Mounts
from refinery.builder.runner import build_plan
from refinery.builder.step import BuildOutcome, build_node
from refinery.builder.tools import ensure_tools
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store

OPTIONS = host_build_options()
CACHE = OPTIONS.cache

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cext"


@pytest.fixture(scope="session")
def fixture_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sdist(FIXTURE, tmp_path_factory.mktemp("sdist"))


def fixture_node(sdist: Path, python: str = "3.11") -> PlanNode:
    return PlanNode(
        "refinery-fixture-cext",
        "0.1.0",
        python,
        NodeStatus.PENDING,
        "",
        True,
        wave=0,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )


def build(
    node: PlanNode, root: RootfsRoot, workdir: Path, on_line: OnLine | None = None
) -> BuildOutcome:
    return build_node(
        node, root, options=OPTIONS, spec=AttemptSpec(workdir=workdir, on_line=on_line)
    )


def wheel_elf_machines(wheel: Path) -> list[int]:
    machines = []
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith(".so"):
                machine = elf_machine(zf.read(name)[:20])
                assert machine is not None, name
                machines.append(machine)
    return machines


@pytest.fixture
def mounts(tmp_path: Path) -> Mounts:
    tools = ensure_tools(CACHE.tools)
    work = tmp_path / "work"
    work.mkdir()
    return Mounts(work=work, pip_cache=tmp_path / "pip-cache", tools=tools.root)


def test_fixture_builds_and_imports_under_emulation(
    rootfs_root: RootfsRoot, fixture_sdist: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    lines: list[str] = []
    outcome = build(fixture_node(fixture_sdist), rootfs_root, tmp_path / "b", lines.append)
    elapsed = time.monotonic() - started
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, outcome.matched_lines)
    assert outcome.wheel is not None
    assert outcome.wheel.name.startswith("refinery_fixture_cext-0.1.0-cp311-cp311-manylinux")
    assert outcome.wheel.name.endswith("_s390x.whl")
    assert wheel_elf_machines(outcome.wheel) == [22]
    assert "manylinux_2_17_s390x" in outcome.auditwheel_show
    assert outcome.smoke is not None and outcome.smoke.ok
    assert outcome.smoke.modules == ("refinery_fixture_cext",)
    assert any(line.startswith("SMOKE OK refinery_fixture_cext") for line in lines)
    assert outcome.log.is_file() and "==> smoke" in outcome.log.read_text()
    assert elapsed < 300, f"fixture build took {elapsed:.0f}s under emulation"

    # The compiled code really is big-endian s390x code running under emulation.
    site = tmp_path / "check"
    with zipfile.ZipFile(outcome.wheel) as zf:
        zf.extractall(site / "site")
    probe = Mounts(work=site, pip_cache=tmp_path / "pc", tools=tmp_path / "b")
    with rootfs_root.smoke_session(probe) as session:
        result = session.run(
            [
                "python3.11",
                "-c",
                "import platform, refinery_fixture_cext as m; "
                "print(platform.machine(), m.byteorder(), m.add(2, 40))",
            ],
            env={"PYTHONPATH": session.inside(site / "site")},
        )
    assert result.ok, result.tail
    assert result.tail[-1] == "s390x big 42"


def test_throwaway_roots_do_not_leak(rootfs_root: RootfsRoot, mounts: Mounts) -> None:
    with rootfs_root.build_session(mounts) as first:
        made = first.run(["sh", "-c", "touch /usr/local/lib/leak && echo made > /etc/leak"])
        assert made.ok
        again = first.run(["cat", "/etc/leak"])
        assert again.tail[-1] == "made"  # state persists within a session
    with rootfs_root.build_session(mounts) as second:
        probe = second.run(["sh", "-c", "ls /usr/local/lib/leak /etc/leak"])
        assert probe.exit_code != 0
    assert not (rootfs_root.lower / "etc/leak").exists()


def test_timeout_kills_the_process_tree(rootfs_root: RootfsRoot, mounts: Mounts) -> None:
    with rootfs_root.build_session(mounts) as session:
        started = time.monotonic()
        result = session.run(["sh", "-c", "sleep 600 & sleep 600"], timeout=3)
        assert result.timed_out
        assert time.monotonic() - started < 20
    time.sleep(0.5)
    survivors = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"sleep\x00600" in cmdline:
                survivors.append(entry.name)
    assert survivors == []


def test_failed_recipe_is_system_recipe_failed(rootfs_root: RootfsRoot, mounts: Mounts) -> None:
    with (
        rootfs_root.build_session(mounts) as session,
        pytest.raises(SystemRecipeFailed, match="refinery-no-such-package"),
    ):
        session.install_system(["refinery-no-such-package"], timeout=600)


def test_python_the_root_lacks_is_missing(
    rootfs_root: RootfsRoot, fixture_sdist: Path, tmp_path: Path
) -> None:
    outcome = build(fixture_node(fixture_sdist, "3.12"), rootfs_root, tmp_path)
    assert outcome.status is NodeStatus.MISSING
    assert "no Python 3.12" in outcome.reason and "3.11" in outcome.reason


def test_silent_fallback_is_a_failed_build(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    """An optional extension that fails to compile must not pass as a success."""
    source = tmp_path / "fallback"
    shutil.copytree(FIXTURE, source)
    c_file = source / "src/refinery_fixture_cext/_speedups.c"
    c_file.write_text('#include "refinery_missing_header.h"\n' + c_file.read_text())
    (source / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "from setuptools.command.build_ext import build_ext\n\n"
        "class optional(build_ext):\n"
        "    def run(self):\n"
        "        try:\n"
        "            super().run()\n"
        "        except Exception as exc:\n"
        "            print('WARNING: the C extension could not be compiled,', exc)\n"
        "            print('falling back to pure Python')\n\n"
        "setup(ext_modules=[Extension('refinery_fixture_cext._speedups',"
        " ['src/refinery_fixture_cext/_speedups.c'])], cmdclass={'build_ext': optional})\n"
    )
    sdist = make_sdist(source, tmp_path / "sdist")
    outcome = build(fixture_node(sdist), rootfs_root, tmp_path / "b")
    assert outcome.status is NodeStatus.FAILED
    assert "silent pure-Python fallback" in outcome.reason
    assert any("refinery_missing_header.h" in line for line in outcome.matched_lines)
    assert any("falling back to pure Python" in line for line in outcome.matched_lines)


@pytest.mark.network
def test_markupsafe_from_pypi_into_the_store(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    node = pypi_node("markupsafe", "2.1.5", MARKUPSAFE_2_1_5)
    plan = Plan("it-markupsafe", ("req.txt",), (Target(),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    outcomes: list[BuildOutcome] = []

    def on_event(event: object) -> None:
        outcome = getattr(event, "outcome", None)
        if outcome is not None:
            outcomes.append(outcome)

    options = RunOptions(build=OPTIONS, workdir=tmp_path / "run")
    summary = build_plan(plan, store, rootfs_root, options, on_event=on_event)
    assert summary.ok, summary.results
    record = store.get_record("markupsafe", "2.1.5", "3.11")
    assert record is not None and record.status is NodeStatus.BUILT
    assert record.wheel is not None
    name = record.wheel.filename.lower()
    assert name.startswith("markupsafe-2.1.5-cp311-cp311-manylinux")
    assert name.endswith("_s390x.whl")
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    assert wheel_elf_machines(wheel) == [22]
    (attempt,) = record.attempts
    assert attempt.backend == "rootfs" and attempt.image.startswith("debian-bookworm-s390x-")
    assert attempt.log == "logs/markupsafe/2.1.5/3.11/1.log"
    assert outcomes and outcomes[-1].smoke is not None and outcomes[-1].smoke.ok


def test_copy_mode_without_overlayfs(rootfs_root: RootfsRoot, mounts: Mounts) -> None:
    copy_root = RootfsRoot(spec=rootfs_root.spec, cache=rootfs_root.cache, use_overlay=False)
    copy_root.prepare()
    assert copy_root.use_overlay is False
    with copy_root.build_session(mounts) as session:
        assert not session.overlay
        result = session.run(["sh", "-c", "uname -m && touch /etc/leak-copy"])
        assert result.ok and result.tail[-1] == "s390x"
        assert (session.merged / "etc/leak-copy").exists()
    assert not (rootfs_root.lower / "etc/leak-copy").exists()
