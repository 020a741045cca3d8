"""Provenance for real: the snappy fixture built in the emulated rootfs root with the fix
a derived hint gives it (``apt-get install libsnappy-dev`` in the session's root, from
the Debian mirror). auditwheel grafts libsnappy; the wheel's SBOM names the package
that provides it in the *s390x root* with its version there (read back from the root's
dpkg database independently), the CycloneDX schema accepts the document, ``auditwheel
show`` and ``twine check`` stay clean and pip installs the wheel for s390x."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import sha256_file
from refinery.builder.options import AttemptSpec
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.roots import Mounts
from refinery.builder.sbom import SBOM_NAME, read_sboms
from refinery.builder.step import build_node
from refinery.core.models import FileRef, NodeStatus, PlanNode

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "snappyext"
NAME = "refinery-fixture-snappy"
SHOW_VERSION = r"${Version}\n"


@pytest.mark.network
def test_the_wheel_says_which_root_package_its_grafted_library_came_from(
    rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    sdist = make_sdist(FIXTURE, tmp_path / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    node = PlanNode(NAME, "0.1.0", "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)
    spec = AttemptSpec(workdir=tmp_path / "work", system_packages=("libsnappy-dev",))
    outcome = build_node(node, rootfs_root, options=host_build_options(), spec=spec)
    assert outcome.ok and outcome.wheel is not None, (outcome.reason, outcome.matched_lines)
    wheel = outcome.wheel

    (member, doc), *others = read_sboms(wheel).items()
    assert others == [] and member.endswith(f".dist-info/sboms/{SBOM_NAME}")
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert errors is None, errors
    grafted = [
        c
        for c in doc["components"]
        if {"name": "refinery:role", "value": "grafted-library"} in c["properties"]
    ]
    snappy = [c for c in grafted if c["name"].startswith("libsnappy")]
    assert len(snappy) == 1, grafted
    (lib,) = snappy
    assert lib["name"] == "libsnappy1v5" and lib["purl"].startswith("pkg:deb/debian/libsnappy1v5@")
    assert "arch=s390x" in lib["purl"] and "distro=debian-12" in lib["purl"]
    fix = {c["name"]: c for c in doc["components"] if c["bom-ref"].startswith("fix-package:")}
    assert fix["libsnappy-dev"]["version"] == lib["version"]  # one source package, one version
    sdist_c = next(c for c in doc["components"] if c["bom-ref"] == "sdist")
    assert sdist_c["hashes"][0]["content"] == ref.sha256
    root = next(c for c in doc["components"] if c["type"] == "operating-system")
    assert (root["name"], root["version"]) == ("debian", "12")
    deps = {c["name"] for c in doc["components"] if c["bom-ref"].startswith("build-dep:")}
    assert "setuptools" in deps, deps
    assert outcome.sbom is not None
    assert [(g.package, g.version, g.kind) for g in outcome.sbom.grafted] == [
        ("libsnappy1v5", lib["version"], "deb")
    ]

    # The version is the root's (s390x bookworm), checked against the root's own dpkg.
    with rootfs_root.build_session(_mounts(tmp_path)) as session:
        session.install_system(["libsnappy1v5"])
        shown = session.run(["dpkg-query", "-W", "-f", SHOW_VERSION, "libsnappy1v5"])
    assert shown.ok and shown.tail[-1].strip() == lib["version"]

    for argv in (
        [sys.executable, "-m", "auditwheel", "show", str(wheel)],
        [sys.executable, "-m", "twine", "check", str(wheel)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    target = tmp_path / "installed"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary", ":all:"]
    for minor in range(17, 37):  # what pip on bookworm s390x (glibc 2.36) accepts
        pip += ["--platform", f"manylinux_2_{minor}_s390x"]
    pip += ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    done = subprocess.run(
        [*pip, "--target", str(target), str(wheel)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert list(target.glob(f"*.dist-info/sboms/{SBOM_NAME}")), "pip keeps the SBOM"


def _mounts(tmp: Path) -> Mounts:
    for sub in ("w", "c", "t"):
        (tmp / "m" / sub).mkdir(parents=True, exist_ok=True)
    return Mounts(work=tmp / "m" / "w", pip_cache=tmp / "m" / "c", tools=tmp / "m" / "t")
