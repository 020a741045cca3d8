"""Fortran under the cross backend for manylinux_2_28: the cross gfortran compiles, zig
links against the openblas pack's libgfortran (manylinux2014), auditwheel grafts it.

The fortranpkg fixture (meson-python; a C function calling one Fortran subroutine that
formats with libgfortran) built for ``manylinux_2_28_s390x`` with the openblas pack is
``built``, tagged 2_28 or older, carries the pack's libgfortran and imports (the import
calls the Fortran code) in the clean emulated root. Without a pack attempt 1 fails and
the catalog's fortran-runtime hint brings the pack for attempt 2. Needs what
tests/integration/test_build_zig.py needs, the cross gfortran
(``gfortran-s390x-linux-gnu``) and PyPI (meson-python; scipy-openblas32 for the pack the
first time). About 30 s per build.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.need import unavailable
from fixtures.sdists import write_sdist

from refinery.builder.cross import CrossRoot
from refinery.builder.options import AttemptSpec, RunOptions
from refinery.builder.outcome import BuildOutcome
from refinery.builder.platform_check import inspect_platform
from refinery.builder.runner import build_plan
from refinery.builder.step import build_node
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor, RetrySettings
from refinery.store import LocalBlobStore, Store, sha256_file

HINTS = Path(__file__).resolve().parents[2] / "hints"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fortranpkg"
PACKS = Path(__file__).resolve().parents[2] / "packs"
NAME = "refinery-fixture-fortran"
TARGET = "manylinux_2_28_s390x"


def fixture_sdist(dest: Path) -> Path:
    files = {str(p.relative_to(FIXTURE)): p.read_text() for p in FIXTURE.rglob("*") if p.is_file()}
    files["PKG-INFO"] = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: 0.1.0\n"
    return write_sdist(dest, NAME, "0.1.0", files)


def build(
    root: CrossRoot, tmp_path: Path, packs: tuple[str, ...]
) -> tuple[BuildOutcome, list[str]]:
    if shutil.which("s390x-linux-gnu-gfortran") is None:
        unavailable("no cross gfortran (apt-get install gfortran-s390x-linux-gnu)")
    sdist = fixture_sdist(tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(NAME, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)
    options = host_build_options(packs=PACKS, pack_store=LocalBlobStore(tmp_path / "store"))
    lines: list[str] = []
    spec = AttemptSpec(
        workdir=tmp_path / "work", packs=packs, target_platform=TARGET, on_line=lines.append
    )
    return build_node(node, root, options=options, spec=spec), lines


@pytest.mark.network
def test_fortran_is_compiled_by_gfortran_and_linked_by_zig(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    outcome, lines = build(cross_root, tmp_path, ("openblas",))
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, lines[-40:])
    assert outcome.wheel is not None
    assert any("Fortran compiler for the host machine:" in line for line in lines)
    report = inspect_platform(outcome.wheel, TARGET)
    assert report.tag_fits, (report.platforms, outcome.auditwheel_show)
    with zipfile.ZipFile(outcome.wheel) as zf:
        grafted = [n for n in zf.namelist() if ".libs/libgfortran" in n]
    assert grafted, "auditwheel did not graft the pack's libgfortran"
    # the import ran the Fortran subroutine and libgfortran's formatted write
    assert outcome.smoke is not None and outcome.smoke.ok, outcome.smoke


@pytest.mark.network
def test_without_a_libgfortran_the_hint_brings_the_pack(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    """No pack before attempt 1: meson's sanity check of the Fortran compiler fails (the
    wrapper's link finds no libgfortran for glibc 2.28), the catalog's fortran-runtime
    hint names the openblas pack, attempt 2 builds."""
    sdist = fixture_sdist(tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(NAME, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)
    plan = Plan("it-fortran", (), (Target("3.11", TARGET),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    build = host_build_options(packs=PACKS, pack_store=LocalBlobStore(tmp_path / "packs"))
    options = RunOptions(build=build, workdir=tmp_path / "run", max_attempts=2)
    advisor = Advisor(load_catalog(HINTS), "apt", RetrySettings(max_attempts=2))
    build_plan(plan, store, cross_root, options, advise=advisor)
    record = store.get_record(NAME, "0.1.0", "3.11")
    assert record is not None
    first, second = record.attempts
    assert first.status == "failed" and first.packs == ()
    log = store.blobs.get(first.log or "")
    assert log is not None and b"s390x-linux-gnu-gfortran cannot compile programs" in log[0]
    assert second.hint_ids == ("fortran-runtime",)
    assert [p.name for p in second.packs] == ["openblas"]
    assert record.status is NodeStatus.BUILT, (record.reason, second.reason)
