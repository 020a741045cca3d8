"""Honest smoke verdicts on real s390x builds in the emulated rootfs build root.

Four fixture sdists of our own, each a shape real packages have: a helper extension
importing the package that depends on it (built, with the "needs context" note), an
extension in a plugin of a namespace package (built), an extension linked against a
library the manylinux policy leaves to the system and the clean root lacks (built: the
smoke session is given the distribution's package), an extension with an undefined
symbol (failed).
Then ruamel.yaml.clib 0.2.15 from PyPI, the case that showed the false failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import sha256_file
from refinery.builder.options import AttemptSpec
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.step import BuildOutcome, build_node
from refinery.builder.systemlibs import ABSENT
from refinery.core.models import FileRef, NodeStatus, PlanNode

OPTIONS = host_build_options()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUAMEL_CLIB_URL = (
    "https://files.pythonhosted.org/packages/ea/97/"
    "60fda20e2fb54b83a61ae14648b0817c8f5d84a3821e40bfbdae1437026a/ruamel_yaml_clib-0.2.15.tar.gz"
)
RUAMEL_CLIB_SHA256 = "46e4cc8c43ef6a94885f72512094e482114a8a706d3c555a34ed4b0d20200600"


def node(name: str, ref: FileRef, version: str = "0.1.0") -> PlanNode:
    return PlanNode(name, version, "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=ref)


def build_fixture(
    rootfs_root: RootfsRoot, fixture: str, tmp: Path, *, system_packages: tuple[str, ...] = ()
) -> tuple[BuildOutcome, str]:
    sdist = make_sdist(FIXTURES / fixture, tmp / "sdist")
    ref = FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist))
    name = sdist.name.removesuffix("-0.1.0.tar.gz").replace("_", "-")
    spec = AttemptSpec(workdir=tmp / "b", system_packages=system_packages)
    outcome = build_node(node(name, ref), rootfs_root, options=OPTIONS, spec=spec)
    return outcome, outcome.log.read_text()


def test_helper_importing_its_parent_is_built_with_a_note(
    rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    outcome, log = build_fixture(rootfs_root, "smoke_helper", tmp_path)
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, log[-3000:])
    smoke = outcome.smoke
    assert smoke is not None and smoke.ok
    assert set(smoke.modules) == {"_refinery_smoke_helper", "refinery_smoke_helper"}
    assert smoke.needs_context == ("_refinery_smoke_helper (needs refinery_smoke_parent)",)
    assert outcome.reason.startswith("import needs context: _refinery_smoke_helper")
    assert "SMOKE ELF OK" in log and "smoke: import needs context" in log


def test_namespace_package_plugin_is_built(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    outcome, log = build_fixture(rootfs_root, "smoke_namespace", tmp_path)
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, log[-3000:])
    assert outcome.smoke is not None and outcome.smoke.modules == ("refinery_smoke_ns",)
    assert outcome.smoke.note == "" and outcome.reason == ""
    assert "SMOKE OK refinery_smoke_ns" in log


def test_a_policy_library_the_clean_root_lacks_is_given(
    rootfs_root: RootfsRoot, tmp_path: Path
) -> None:
    """libICE.so.6 is on the manylinux policy's list: auditwheel leaves it to the system,
    every target distribution ships it, the minimal root lacks it — the smoke session
    installs Debian's libice6 (and only that), then the extension loads."""
    outcome, log = build_fixture(
        rootfs_root, "smoke_missinglib", tmp_path, system_packages=("libice-dev",)
    )
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, log[-3000:])
    smoke = outcome.smoke
    assert smoke is not None and smoke.ok and smoke.given == ("libice6",)
    assert f"{ABSENT}libICE.so.6" in log and f"{ABSENT}libc.so.6" not in log
    assert "SMOKE ELF OK refinery_smoke_missinglib/_ice" in log
    assert outcome.reason.startswith("the clean root was given libice6 for libICE.so.6: ")


def test_undefined_symbol_fails_at_load(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    outcome, log = build_fixture(rootfs_root, "smoke_undefined", tmp_path)
    assert outcome.status is NodeStatus.FAILED, log[-3000:]
    smoke = outcome.smoke
    assert smoke is not None and smoke.failed == ()  # the package itself imports
    assert smoke.elf_failed and "refinery_defined_nowhere" in smoke.elf_failed[0]
    assert "undefined symbol: refinery_defined_nowhere" in outcome.reason


@pytest.mark.network
def test_ruamel_yaml_clib_is_built_with_the_note(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    ref = FileRef("ruamel_yaml_clib-0.2.15.tar.gz", RUAMEL_CLIB_URL, RUAMEL_CLIB_SHA256)
    spec = AttemptSpec(workdir=tmp_path / "b")
    outcome = build_node(
        node("ruamel-yaml-clib", ref, "0.2.15"), rootfs_root, options=OPTIONS, spec=spec
    )
    log = outcome.log.read_text()
    assert outcome.status is NodeStatus.BUILT, (outcome.reason, log[-3000:])
    smoke = outcome.smoke
    assert smoke is not None, log[-3000:]
    context = smoke.needs_context
    assert any(c.startswith("_ruamel_yaml (needs ruamel") for c in context), (
        smoke,
        log[-3000:],
    )
    assert outcome.reason.startswith("import needs context: _ruamel_yaml")
