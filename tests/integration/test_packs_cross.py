"""A library pack for real: a tiny C library of our own (tests/fixtures/packlib) built
with zig for glibc 2.28 from a pinned ``file://`` tarball, installed into a cross
build's sysroot, linked by a fixture extension (tests/fixtures/packlibext, through the
sysroot's pkg-config) and grafted by auditwheel: the wheel keeps the manylinux_2_28
promise and imports under emulation. Needs what the cross backend needs (root,
crossbuild-essential-s390x, qemu-user-static + binfmt_misc, the cached root)."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import sha256_file
from refinery.builder.cross import CrossRoot
from refinery.builder.options import AttemptSpec
from refinery.builder.packs import identity, load_recipe
from refinery.builder.platform_check import inspect_platform
from refinery.builder.step import build_node
from refinery.core.models import FileRef, NodeStatus, PlanNode
from refinery.store import LocalBlobStore, layout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TARGET = "manylinux_2_28_s390x"


def source_tarball(dest: Path) -> Path:
    """packlib-1.0.tar.gz, byte for byte the same every run (the pack's identity and so
    its cache entry stay the same)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted((FIXTURES / "packlib").iterdir()):
            info = tarfile.TarInfo(f"packlib-1.0/{path.name}")
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = dest / "packlib-1.0.tar.gz"
    with out.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out


def recipe_folder(tmp: Path) -> Path:
    tarball = source_tarball(tmp)
    folder = tmp / "packs"
    folder.mkdir()
    (folder / "packlib.toml").write_text(
        'name = "packlib"\nversion = "1.0"\nkind = "source"\n'
        'notes = "a test library"\n'
        f'[source]\nurl = "{tarball.as_uri()}"\nsha256 = "{sha256_file(tarball)}"\n'
        '[build]\nsteps = ["make install PREFIX={prefix} DESTDIR={destdir}"]\n'
    )
    return folder


def test_a_pack_is_built_with_zig_grafted_and_keeps_the_target(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    packs = recipe_folder(tmp_path)
    sdist = make_sdist(FIXTURES / "packlibext", tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(
        "refinery-fixture-packlib", "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref
    )
    store = LocalBlobStore(tmp_path / "store")
    options = host_build_options(packs=packs, pack_store=store)
    lines: list[str] = []
    spec = AttemptSpec(
        workdir=tmp_path / "work",
        packs=("packlib",),
        target_platform=TARGET,
        on_line=lines.append,
    )
    outcome = build_node(node, cross_root, options=options, spec=spec)
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, lines[-40:])
    assert outcome.wheel is not None

    (use,) = outcome.packs  # the record lists the pack by its identity
    ident = identity(load_recipe(packs / "packlib.toml"), (2, 28))
    assert (use.name, use.version, use.sha256, use.notes) == (
        "packlib",
        "1.0",
        ident,
        "a test library",
    )
    assert store.exists(layout.pack_key("packlib", ident))

    report = inspect_platform(outcome.wheel, TARGET)
    assert report.tag_fits, (report.platforms, outcome.auditwheel_show)
    with zipfile.ZipFile(outcome.wheel) as zf:
        grafted = [n for n in zf.namelist() if "/libpacklib" in n and ".libs/" in n]
    assert grafted, "auditwheel did not graft the pack's library"
    assert outcome.smoke is not None and outcome.smoke.ok  # imported (answer(1) == 42)


def test_a_vendored_pack_is_copied_into_the_sdist_and_built_from_there(
    cross_root: CrossRoot, tmp_path: Path
) -> None:
    """``fix.vendor``: the pack's prefix is copied into the unpacked sdist, where the
    project's own build takes it (and ships its data), and auditwheel still grafts the
    library: pyproj's ``pyproj/proj_dir`` in miniature."""
    packs = recipe_folder(tmp_path)
    sdist = make_sdist(FIXTURES / "packlibext", tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(
        "refinery-fixture-packlib", "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref
    )
    lines: list[str] = []
    folder = "src/refinery_fixture_packlib/packlib_dir"
    spec = AttemptSpec(
        workdir=tmp_path / "work",
        packs=("packlib",),
        vendor={"packlib": folder},
        target_platform=TARGET,
        on_line=lines.append,
    )
    outcome = build_node(node, cross_root, options=host_build_options(packs=packs), spec=spec)
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, lines[-40:])
    assert outcome.wheel is not None
    log = outcome.log.read_text()
    assert f"pack packlib 1.0 copied into {folder}/ (4 files)" in log
    assert f"packlib vendored in {folder}" in log  # the build took the copy
    with zipfile.ZipFile(outcome.wheel) as zf:
        names = zf.namelist()
    assert "refinery_fixture_packlib/packlib_dir/include/packlib.h" in names
    assert any("/libpacklib" in n and ".libs/" in n for n in names)  # grafted as before
    assert inspect_platform(outcome.wheel, TARGET).tag_fits
    assert outcome.smoke is not None and outcome.smoke.ok
