"""Real s390x builds with the cross backend: host cross compilers, import under emulation.

Needs root, Debian's crossbuild-essential-s390x, pkg-config, qemu-user-static + binfmt,
the cached Debian s390x root (made on first use like ``refinery buildroot create``) and
PyPI for crossenv (the toolchain is cached after the first run, ~15 s).
"""

from __future__ import annotations

import contextlib
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import MARKUPSAFE_2_1_5, make_sdist, pypi_node

from refinery.builder.artifacts import elf_machine, sha256_file
from refinery.builder.cross import CrossRoot
from refinery.builder.options import AttemptSpec, RunOptions
from refinery.builder.roots import Mounts
from refinery.builder.runner import build_plan
from refinery.builder.step import BuildOutcome, build_node
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor, RetrySettings
from refinery.store import Store

OPTIONS = host_build_options()
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
UJSON_URL = (
    "https://files.pythonhosted.org/packages/f0/00/"
    "3110fd566786bfa542adb7932d62035e0c0ef662a8ff6544b6643b3d6fd7/ujson-5.10.0.tar.gz"
)
UJSON_SHA256 = "b3cd8f3c5d8c7738257f1018880444f7b7d9b66232c64649f562d7ba86ad4bc1"
REMOVE_ZLIB = "dpkg --remove --force-depends zlib1g-dev >/dev/null && test ! -e /usr/include/zlib.h"


def fixture_node(sdist: Path, name: str = "refinery-fixture-cext") -> PlanNode:
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    return PlanNode(name, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)


def wheel_elf_machines(wheel: Path) -> list[int]:
    """``e_machine`` of every ``.so`` in the wheel (22: s390x)."""
    with zipfile.ZipFile(wheel) as zf:
        return [
            elf_machine(zf.read(name)[:20]) or 0 for name in zf.namelist() if name.endswith(".so")
        ]


def run_plan(
    node: PlanNode, root: Any, tmp_path: Path, **kwargs: Any
) -> tuple[Store, list[BuildOutcome]]:
    """``build_plan`` of one node into a folder store; the outcomes of every attempt."""
    plan = Plan("it-cross", (), (Target(),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    outcomes: list[BuildOutcome] = []

    def on_event(event: object) -> None:
        outcome = getattr(event, "outcome", None)
        if outcome is not None:
            outcomes.append(outcome)

    options = RunOptions(build=OPTIONS, workdir=tmp_path / "run", max_attempts=3)
    summary = build_plan(plan, store, root, options, on_event=on_event, **kwargs)
    assert summary.results, summary
    return store, outcomes


def stored_wheel(store: Store, node: PlanNode, tmp_path: Path) -> Path:
    record = store.get_record(node.name, node.version, node.python)
    assert record is not None and record.status is NodeStatus.BUILT, record
    assert record.wheel is not None
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    return wheel


def test_fixture_cross_builds_and_imports_under_emulation(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    sdist = make_sdist(FIXTURES / "cext", tmp_path / "sdist")
    node = fixture_node(sdist)
    started = time.monotonic()
    store, outcomes = run_plan(node, cross_root, tmp_path)
    elapsed = time.monotonic() - started
    wheel = stored_wheel(store, node, tmp_path)
    assert wheel.name.startswith("refinery_fixture_cext-0.1.0-cp311-cp311-manylinux")
    assert wheel.name.endswith("_s390x.whl")
    assert wheel_elf_machines(wheel) == [22]
    (outcome,) = outcomes
    assert outcome.backend == "cross" and "+cross:s390x-py3.11-" in outcome.image
    assert outcome.smoke is not None and outcome.smoke.ok
    assert outcome.smoke.modules == ("refinery_fixture_cext",)
    log = outcome.log.read_text()
    assert "SMOKE OK refinery_fixture_cext" in log
    assert "s390x-linux-gnu-gcc" in log  # compiled by the cross compiler on the host
    record = store.get_record(node.name, node.version, node.python)
    assert record is not None and record.attempts[0].backend == "cross"
    print(f"cext cross build through build_plan: {elapsed:.1f}s")


def test_host_headers_and_config_scripts_do_not_leak(cross_root: CrossRoot, tmp_path: Path) -> None:
    """The sysroot answers pkg-config and xml2-config; a host path never appears."""
    work = tmp_path / "work"
    work.mkdir()
    mounts = Mounts(work=work, pip_cache=tmp_path / "pc", tools=tmp_path / "tools")
    with cross_root.build_session(mounts) as session:
        python = session.python("3.11")
        result = session.run(
            [
                "sh",
                "-c",
                f"{python} -c 'import sysconfig; print(sysconfig.get_platform())' && "
                "pkg-config --cflags --libs zlib && "
                'test -e "$CROSS_SYSROOT/usr/lib/s390x-linux-gnu/libz.so" && '
                '(xml2-config --cflags || echo "no libxml2 in the sysroot")',
            ]
        )
        sysroot = str(session.toolchain.sysroot)
    assert result.ok, result.tail
    assert result.tail[0] == "linux-s390x"
    assert "-lz" in result.tail[1]
    assert "-I/usr/include" not in " ".join(result.tail)
    assert result.tail[-1] == "no libxml2 in the sysroot" or sysroot in result.tail[-1]


class WithoutZlibDev:
    """The cross root, but every sysroot starts without zlib1g-dev."""

    def __init__(self, inner: CrossRoot) -> None:
        self.inner = inner
        self.removed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def build_session(self, mounts: Mounts, target_platform: str | None = None) -> Iterator[Any]:
        with self.inner.build_session(mounts, target_platform) as session:
            result = session.sysroot.run(["sh", "-c", REMOVE_ZLIB])
            assert result.ok, result.tail
            session.relativise()
            self.removed += 1
            yield session


def test_zlib_hint_installs_into_the_sysroot(cross_root: CrossRoot, tmp_path: Path) -> None:
    sdist = make_sdist(FIXTURES / "zlibext", tmp_path / "sdist")
    node = fixture_node(sdist, "refinery-fixture-zlib")
    catalog = load_catalog(REPO / "hints")
    advisor = Advisor(catalog, "apt", RetrySettings(max_attempts=3, backoff=0.0))
    root = WithoutZlibDev(cross_root)
    store, outcomes = run_plan(node, root, tmp_path, advise=advisor)
    assert [o.status for o in outcomes] == [NodeStatus.FAILED, NodeStatus.BUILT], [
        (o.status, o.reason) for o in outcomes
    ]
    first, second = outcomes
    # zig (the default target is older than the sysroot's glibc) speaks clang
    assert any("fatal error: 'zlib.h' file not found" in line for line in first.matched_lines)
    assert "==> recipes: apt: zlib1g-dev" in second.log.read_text()
    assert root.removed == 2
    wheel = stored_wheel(store, node, tmp_path)
    assert wheel_elf_machines(wheel) == [22]
    assert wheel.name.endswith("_s390x.whl")
    assert second.smoke is not None and second.smoke.ok


@pytest.mark.network
def test_markupsafe_from_pypi_cross_built(cross_root: CrossRoot, tmp_path: Path) -> None:
    node = pypi_node("markupsafe", "2.1.5", MARKUPSAFE_2_1_5)
    started = time.monotonic()
    store, outcomes = run_plan(node, cross_root, tmp_path)
    elapsed = time.monotonic() - started
    wheel = stored_wheel(store, node, tmp_path)
    name = wheel.name.lower()
    assert name.startswith("markupsafe-2.1.5-cp311-cp311-manylinux") and name.endswith("_s390x.whl")
    assert wheel_elf_machines(wheel) == [22]  # _speedups, not a silent pure-Python fallback
    assert outcomes[-1].smoke is not None and outcomes[-1].smoke.ok
    print(f"markupsafe cross build through build_plan: {elapsed:.1f}s")


@pytest.mark.network
def test_ujson_cpp_from_pypi_cross_built_without_isolation(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    """A C/C++ extension from PyPI: the build requirements (setuptools_scm, setuptools)
    are installed for the build machine and pypa/build runs without isolation."""
    node = PlanNode(
        "ujson",
        "5.10.0",
        "3.11",
        NodeStatus.PENDING,
        "no s390x wheel on PyPI",
        True,
        wave=0,
        sdist=FileRef("ujson-5.10.0.tar.gz", UJSON_URL, UJSON_SHA256),
    )
    store, outcomes = run_plan(node, cross_root, tmp_path)
    wheel = stored_wheel(store, node, tmp_path)
    assert wheel.name.startswith("ujson-5.10.0-cp311-cp311-manylinux")
    assert wheel.name.endswith("_s390x.whl")
    assert wheel_elf_machines(wheel) == [22]
    (outcome,) = outcomes
    log = outcome.log.read_text()
    assert "==> requires: build requirements for the build machine" in log
    assert "python -m build --wheel --no-isolation" in log
    assert "s390x-linux-gnu-g++" in log  # the C++ part, by the cross compiler
    assert outcome.smoke is not None and outcome.smoke.ok
    assert outcome.smoke.modules == ("ujson",)


def test_silent_fallback_is_a_failed_cross_build(cross_root: CrossRoot, tmp_path: Path) -> None:
    """A C extension that fails to compile (here: a missing header) and is skipped by an
    optional build_ext must fail the cross build, not ship py3-none-any."""
    source = tmp_path / "fallback"
    shutil.copytree(FIXTURES / "cext", source)
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
        "            print('WARNING: the C extension could not be compiled,', exc)\n\n"
        "setup(ext_modules=[Extension('refinery_fixture_cext._speedups',"
        " ['src/refinery_fixture_cext/_speedups.c'])], cmdclass={'build_ext': optional})\n"
    )
    sdist = make_sdist(source, tmp_path / "sdist")
    outcome = build_node(
        fixture_node(sdist), cross_root, options=OPTIONS, spec=AttemptSpec(workdir=tmp_path / "b")
    )
    assert outcome.status is NodeStatus.FAILED
    assert "silent pure-Python fallback" in outcome.reason
