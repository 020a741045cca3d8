"""numpy as a build requirement of a cross build: the build machine's numpy runs the
build, the target wheel's headers, libraries and numpy.pc are what the compiler reads.

The npcext fixture (meson-python, ``dependency('numpy')``, numpy's C API) refuses to
compile unless ``_numpyconfig.h`` carries a mark only the *target* numpy wheel has. That
wheel is made here: PyPI has no s390x numpy wheel for any version, and a test must never
build numpy, so the test takes the build files of PyPI's x86_64 numpy wheel, marks its
``_numpyconfig.h`` and names the result ``…-manylinux_2_17_s390x.whl``, offered on the
find-links as an earlier wave's wheel would be. (What is compared is where the headers
come from; that s390x's own headers compile is shown by the corpus packages in
notes/numpy-cross.md.) The fixture needs no numpy to import, so the smoke import under
emulation runs without one. Needs the cross root (tests/integration/test_build_zig.py)
and PyPI (numpy, meson-python for the build machine): ~1 min.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import write_sdist

from refinery.builder.cross import CrossRoot
from refinery.builder.options import RunOptions
from refinery.builder.runner import BuildEvent, build_plan
from refinery.core.models import BuildRecord, FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.store import Store, sha256_file

NUMPY = "2.1.3"
MARK = "\n#define REFINERY_TARGET_NUMPY 1\n"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "npcext"
NAME = "refinery-fixture-npcext"


def host_numpy_wheel(dest: Path) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    argv += ["--platform", "manylinux2014_x86_64", "--python-version", "3.11"]
    argv += ["--implementation", "cp", "--abi", "cp311", "-d", str(dest), f"numpy=={NUMPY}"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = dest.glob("numpy-*.whl")
    return wheel


def target_numpy_wheel(host: Path, folder: Path) -> Path:
    """The host wheel's dist-info and build files, marked, named for s390x."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"numpy-{NUMPY}-cp311-cp311-manylinux_2_17_s390x.whl"
    with zipfile.ZipFile(host) as src, zipfile.ZipFile(target, "w") as out:
        for info in src.infolist():
            name = info.filename
            if name.startswith(f"numpy-{NUMPY}.dist-info/") or name.startswith(
                ("numpy/_core/include/", "numpy/_core/lib/")
            ):
                data = src.read(info)
                if name.endswith("/_numpyconfig.h"):
                    data += MARK.encode()
                out.writestr(name, data)
    return target


def fixture_sdist(dest: Path) -> Path:
    files = {
        str(p.relative_to(FIXTURE)): p.read_text()
        for p in sorted(FIXTURE.rglob("*"))
        if p.is_file()
    }
    files["PKG-INFO"] = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: 0.1.0\n"
    return write_sdist(dest, NAME, "0.1.0", files)


def build(root: CrossRoot, tmp_path: Path, offered: Path | None) -> tuple[BuildRecord, list[str]]:
    sdist = fixture_sdist(tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(NAME, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)
    target = Target("3.11", "manylinux_2_28_s390x")
    plan = Plan("it-cross-numpy", (), (target,), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    workdir = tmp_path / "run"
    if offered is not None:  # as the runner offers an earlier wave's wheels
        (workdir / "wheels").mkdir(parents=True)
        (workdir / "wheels" / offered.name).write_bytes(offered.read_bytes())
    lines: list[str] = []

    def on_event(event: BuildEvent) -> None:
        if event.kind == "line":
            lines.append(event.message)

    options = RunOptions(build=host_build_options(), workdir=workdir, max_attempts=1)
    build_plan(plan, store, root, options, on_event=on_event)
    record = store.get_record(NAME, "0.1.0", "3.11")
    assert record is not None
    return record, lines


@pytest.mark.network
def test_numpy_headers_come_from_the_target_wheel(cross_root: CrossRoot, tmp_path: Path) -> None:
    offered = target_numpy_wheel(host_numpy_wheel(tmp_path / "host"), tmp_path / "target")
    record, lines = build(cross_root, tmp_path / "a", offered)
    assert record.status is NodeStatus.BUILT, (record.reason, lines[-40:])
    text = "\n".join(lines)
    # the build machine's numpy is the target wheel's version, meson found it by the
    # cross file's numpy-config (its include folder holds the marked header)
    assert f"numpy-{NUMPY}-cp311-cp311-manylinux_2_17_s390x.whl" in text  # fetched
    assert "numpy-config found: YES" in text and "build-requires-static/bin/numpy-config" in text
    assert f"Run-time dependency numpy found: YES {NUMPY}" in text, lines[-60:]
    assert any(line.startswith("SMOKE OK refinery_fixture_npcext") for line in lines)


@pytest.mark.network
def test_without_a_target_numpy_the_requirements_step_fails(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    record, lines = build(cross_root, tmp_path, None)
    assert record.status is NodeStatus.FAILED
    (attempt,) = record.attempts
    # pip's own words for the target platform, in the requirements step (the build
    # never ran against the build machine's numpy headers)
    assert "requirement numpy>=2.0 (from versions: none)" in attempt.reason, attempt.reason
    assert "requires exited" in attempt.reason, attempt.reason
    assert not any("Compiling C object" in line for line in lines)
