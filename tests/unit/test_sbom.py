"""The SBOM of a built wheel, pure: a fake layered dpkg database in ``tmp_path`` (the
cached root below, an overlay upper layer with the fix's package above), a fake repaired
wheel with three grafted libraries (one from the root's package, one from a library
pack, one nothing provides), the CycloneDX document checked by the CycloneDX schema, and
the rewritten wheel checked by the ingest validator (RECORD hashes and sizes)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from fixtures.wheels import write_wheel

from refinery.builder.sbom import SBOM_NAME, FixFacts, PackageDb, RootFacts, SbomFacts, cyclonedx
from refinery.builder.sbom.collect import (
    RootView,
    build_deps,
    grafted_from_answers,
    grafted_from_root,
    grafted_members,
    original_soname,
    parse_inside,
)
from refinery.builder.sbom.document import components_table
from refinery.builder.sbom.dpkg import parse_status, path_variants
from refinery.builder.sbom.wheelfile import AUDITWHEEL_SBOM, add_sbom, read_sboms
from refinery.core.models import Attempt, FileRef, PackUse, SbomSummary, SourcePatch
from refinery.store.ingest import check_wheel

MA = "usr/lib/s390x-linux-gnu"
STANZA = "Package: {0}\nStatus: install ok installed\nArchitecture: {2}\nVersion: {1}\n"
PACK = PackUse("openssl", "3.0.15", "ab" * 32, "no engines")
PATCH_TEXT = "--- a/snap.c\n+++ b/snap.c\n@@ -1 +1 @@\n-int x;\n+long x;\n"


def _status(*pkgs: tuple[str, str, str]) -> str:
    return "\n".join(STANZA.format(*p) for p in pkgs)


def fake_root(tmp: Path) -> RootView:
    """lower: the cached root (libc6, gcc-12, a removed package); upper: the session's
    overlay layer after ``apt-get install libsnappy-dev`` (its own full status file)."""
    lower, upper, pack = tmp / "lower", tmp / "upper", tmp / "pack" / "lib"
    base = [("libc6", "2.36-9+deb12u9", "s390x"), ("gcc-12", "12.2.0-14", "s390x")]
    removed = "Package: libgone1\nStatus: deinstall ok config-files\nVersion: 1\n"
    for layer, pkgs in ((lower, base), (upper, [*base, ("libsnappy1v5", "1.1.9-3", "s390x")])):
        info = layer / "var/lib/dpkg/info"
        info.mkdir(parents=True)
        (layer / "var/lib/dpkg/status").write_text(_status(*pkgs) + "\n" + removed)
    (lower / "var/lib/dpkg/info/libc6:s390x.list").write_text(f"/{MA}/libc.so.6\n")
    (upper / "var/lib/dpkg/info/libsnappy1v5:s390x.list").write_text(
        f"/.\n/usr\n/{MA}/libsnappy.so.1.1.9\n/{MA}/libsnappy.so.1\n"
    )
    (upper / MA).mkdir(parents=True)
    (upper / MA / "libsnappy.so.1.1.9").write_bytes(b"\x7fELF snappy")
    (upper / MA / "libsnappy.so.1").symlink_to("libsnappy.so.1.1.9")
    pack.mkdir(parents=True)
    (pack / "libssl.so.3").write_bytes(b"\x7fELF ssl")
    (lower / MA).mkdir(parents=True)
    (lower / MA / "libfoo.so.2").write_bytes(b"\x7fELF foo, no package owns it")
    dirs = (pack, upper / MA, lower / MA)
    return RootView((upper, lower), dirs, ((pack, PACK),))


def repaired_wheel(tmp: Path) -> Path:
    files = {
        "snap/__init__.py": b"",
        "snap/_snappy.cpython-311-s390x-linux-gnu.so": b"\x7fELF ext",
        "snap.libs/libsnappy-0a1b2c3d.so.1": b"\x7fELF snappy",
        "snap.libs/libssl-deadbeef.so.3": b"\x7fELF ssl",
        "snap.libs/libfoo-12345678.so.2": b"\x7fELF foo",
        f"snap-1.0.dist-info/sboms/{AUDITWHEEL_SBOM}": b'{"components": []}',
    }
    return write_wheel(tmp / "wheelhouse", "snap", "1.0", files, "cp311-cp311-manylinux_2_28_s390x")


def facts(tmp: Path) -> SbomFacts:
    view = fake_root(tmp)
    db = PackageDb.read(view.layers)
    assert db is not None
    grafted = grafted_from_root(view, db, grafted_members(repaired_wheel(tmp)))
    root = RootFacts(
        "rootfs", "debian-bookworm-s390x@sha256:0e", "s390x", "debian", "12", "Debian 12", "2.36-9"
    )
    fix = FixFacts(
        system_packages=(("libsnappy-dev", "1.1.9-3", "s390x"),),
        env=(("CFLAGS", "-O2"),),
        constraints=("cython<3",),
        patches=(SourcePatch("snap-fix.patch", PATCH_TEXT),),
    )
    sdist = FileRef("snap-1.0.tar.gz", "https://files.example/snap-1.0.tar.gz", "cd" * 32)
    return SbomFacts(
        "snap",
        "1.0",
        "snap-1.0-cp311-cp311-manylinux_2_28_s390x.whl",
        sdist,
        root,
        grafted,
        (("setuptools", "75.1.0"),),
        fix,
        ("x (auditwheel asked the host)",),
        "2026-11-30T14:00:00Z",
    )


def test_the_status_file_keeps_installed_packages_only() -> None:
    db = parse_status(
        _status(("a", "1", "s390x")) + "\nPackage: b\nStatus: deinstall ok config-files\n"
    )
    assert list(db) == ["a"] and db["a"].version == "1"
    assert path_variants("/lib/s390x-linux-gnu/libz.so.1") == (
        "/lib/s390x-linux-gnu/libz.so.1",
        "/usr/lib/s390x-linux-gnu/libz.so.1",
    )


def test_grafted_libraries_are_named_by_the_root_not_the_host(tmp_path: Path) -> None:
    assert original_soname("snap.libs/libsnappy-0a1b2c3d.so.1") == "libsnappy.so.1"
    found = {g.lib.soname: g for g in facts(tmp_path).grafted}
    snappy, ssl, foo = found["libsnappy.so.1"], found["libssl.so.3"], found["libfoo.so.2"]
    assert (snappy.lib.kind, snappy.lib.package, snappy.lib.version) == (
        "deb",
        "libsnappy1v5",
        "1.1.9-3",
    )
    assert snappy.root_path == f"/{MA}/libsnappy.so.1" and snappy.arch == "s390x"
    assert (ssl.lib.kind, ssl.lib.package, ssl.identity) == ("pack", "openssl", PACK.sha256)
    assert (foo.lib.kind, foo.lib.package, foo.root_path) == ("", "", f"/{MA}/libfoo.so.2")


def test_the_document_is_valid_cyclonedx_and_says_everything(tmp_path: Path) -> None:
    doc = cyclonedx(facts(tmp_path))
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert errors is None, errors
    purls = {c.get("purl", "") for c in doc["components"]}
    assert "pkg:deb/debian/libsnappy1v5@1.1.9-3?arch=s390x&distro=debian-12" in purls
    assert "pkg:pypi/setuptools@75.1.0" in purls
    assert "pkg:pypi/snap@1.0?file_name=snap-1.0.tar.gz" in purls
    sdist = next(c for c in doc["components"] if c["bom-ref"] == "sdist")
    assert sdist["hashes"] == [{"alg": "SHA-256", "content": "cd" * 32}]
    assert sdist["externalReferences"][0]["url"].endswith("snap-1.0.tar.gz")
    root = next(c for c in doc["components"] if c["type"] == "operating-system")
    assert {"name": "refinery:image", "value": "debian-bookworm-s390x@sha256:0e"} in root[
        "properties"
    ]
    props = doc["metadata"]["properties"]
    assert {"name": "refinery:fix:env", "value": "CFLAGS=-O2"} in props
    assert {"name": "refinery:fix:constraint", "value": "cython<3"} in props
    sha = hashlib.sha256(PATCH_TEXT.encode()).hexdigest()
    assert {"name": "refinery:fix:patch", "value": f"snap-fix.patch sha256:{sha}"} in props
    (patch,) = sdist["pedigree"]["patches"]  # built from the sdist as patched
    assert patch["diff"]["text"]["content"] == PATCH_TEXT
    (wheel_deps, *_) = doc["dependencies"]
    assert len(wheel_deps["dependsOn"]) == 3
    roles = [row[0] for row in components_table(doc)]
    assert roles.count("grafted-library") == 3 and "fix-system-package" in roles


def test_the_sbom_goes_into_the_wheel_with_its_record_row(tmp_path: Path) -> None:
    wheel = repaired_wheel(tmp_path)
    doc = cyclonedx(facts(tmp_path / "f"))
    member = add_sbom(wheel, SBOM_NAME, doc, drop=(AUDITWHEEL_SBOM,))
    assert member == f"snap-1.0.dist-info/sboms/{SBOM_NAME}"
    check_wheel(wheel, twine=False)  # every RECORD hash and size right, every file listed
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        record = zf.read("snap-1.0.dist-info/RECORD").decode()
    assert not any(n.endswith(AUDITWHEEL_SBOM) for n in names)
    assert AUDITWHEEL_SBOM not in record and f"sboms/{SBOM_NAME},sha256=" in record
    assert names[-1] == "snap-1.0.dist-info/RECORD"
    assert read_sboms(wheel) == {member: doc}


def test_build_dependencies_come_from_the_log() -> None:
    lines = [
        "* Installed build dependency versions:",
        "  - setuptools==84.2.1",
        "  - wheel==0.45.1",
        "* Building wheel...",
        "- not==a-pin-after-the-block",
        "Successfully installed Cython-3.3.1 packaging-26.4",
    ]
    assert build_deps(lines) == (
        ("Cython", "3.3.1"),
        ("packaging", "26.4"),
        ("setuptools", "84.2.1"),
        ("wheel", "0.45.1"),
    )


def test_answers_from_inside_a_container_name_rpm_packages() -> None:
    libs, os_facts = parse_inside(
        [
            "lib\tlibffi.so.6\t/usr/lib64/libffi.so.6\trpm\tlibffi\t3.1-23.el8\ts390x",
            "lib\tlibx.so.1\t\t\t\t",
            "os\talmalinux\t8.10\tAlmaLinux 8.10",
            "glibc\t2.28",
        ]
    )
    assert os_facts == {
        "id": "almalinux",
        "version": "8.10",
        "name": "AlmaLinux 8.10",
        "glibc": "2.28",
    }
    members = {"p.libs/libffi-0011aabb.so.6": b"a", "p.libs/libx-22334455.so.1": b"b"}
    ffi, x = grafted_from_answers(libs, members)
    assert (ffi.lib.kind, ffi.lib.package, ffi.lib.version) == ("rpm", "libffi", "3.1-23.el8")
    assert (x.lib.kind, x.lib.package) == ("", "")


def test_the_record_keeps_the_summary() -> None:
    summary = SbomSummary("x.dist-info/sboms/refinery.cdx.json", 7)
    attempt = Attempt(1, "t", sbom=summary)
    assert Attempt.from_json(attempt.to_json()).sbom == summary
    assert "sbom" not in Attempt(1, "t").to_json()
