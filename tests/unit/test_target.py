"""The target rule (which manylinux tags install on a target platform), the one the
planner's ``reused`` decision and the build check share, and the distribution table."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinery.core.errors import InputError
from refinery.core.glibc import (
    DISTRIBUTIONS,
    installs_on,
    installs_on_text,
    symbol_glibc,
    wheel_installs_on,
)
from refinery.core.models import BuildRecord, FileRef, NodeStatus, PlanNode, Target, WheelRef
from refinery.core.target import (
    glibc_floor,
    platform_fits,
    platform_for,
    platform_tags,
    wheel_glibc_floor,
    wheel_rank,
)
from refinery.plan.decide import Decider, best_wheel
from refinery.store import Store
from refinery.upstream.simple import DistFile

T228 = "manylinux_2_28_s390x"


@pytest.mark.parametrize(
    ("tag", "floor"),
    [
        ("manylinux_2_28_s390x", (2, 28)),
        ("manylinux_2_35_s390x", (2, 35)),
        ("manylinux2014_s390x", (2, 17)),
        ("manylinux2010_x86_64", (2, 12)),
        ("manylinux1_x86_64", (2, 5)),
        ("linux_s390x", None),
        ("musllinux_1_2_s390x", None),
        ("any", None),
    ],
)
def test_glibc_floor(tag: str, floor: tuple[int, int] | None) -> None:
    assert glibc_floor(tag) == floor


def test_every_manylinux_tag_up_to_the_target_fits() -> None:
    fitting = [f"manylinux_2_{m}_s390x" for m in range(17, 29)] + ["manylinux2014_s390x"]
    assert sorted(platform_tags(Target("3.11", T228))) == sorted(fitting)
    for tag in fitting:
        assert platform_fits(tag, T228), tag
    for tag in (
        "manylinux_2_29_s390x",
        "manylinux_2_35_s390x",
        "manylinux_3_0_s390x",
        "manylinux_2_17_x86_64",
        "manylinux2014_aarch64",
        "linux_s390x",
    ):
        assert not platform_fits(tag, T228), tag
    assert platform_fits("manylinux_2_35_s390x", "manylinux_2_35_s390x")
    assert platform_fits("manylinux2014_s390x", "manylinux_2_17_s390x")


def test_a_bad_target_platform_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unsupported target platform"):
        platform_fits("manylinux_2_17_s390x", "linux_s390x")


def test_wheel_rank_and_the_build_check_agree() -> None:
    """One rule: a wheel the planner would reuse for a target is one whose platform tag
    fits that target, and the other way round."""
    target = Target("3.11", T228)
    for minor in range(17, 40):
        tag = f"manylinux_2_{minor}_s390x"
        filename = f"demo-1.0-cp311-cp311-{tag}.whl"
        assert (wheel_rank(filename, target) is not None) == platform_fits(tag, T228), tag


def dist(filename: str) -> DistFile:
    return DistFile(filename, f"https://x/{filename}", "1.0", "wheel", None, None, False, False)


def test_reused_only_for_a_wheel_that_installs_on_the_target() -> None:
    newer = dist("demo-1.0-cp311-cp311-manylinux_2_34_s390x.whl")
    older = dist("demo-1.0-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl")
    assert best_wheel([newer], Target("3.11", T228)) is None
    assert best_wheel([newer, older], Target("3.11", T228)) is older
    assert best_wheel([newer, older], Target("3.11", "manylinux_2_34_s390x")) is newer


@pytest.mark.parametrize(
    ("tag", "status"),
    [
        ("cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x", NodeStatus.CACHED),
        ("cp311-cp311-manylinux_2_35_s390x", NodeStatus.MISSING),
        ("py3-none-any", NodeStatus.CACHED),
    ],
)
def test_cached_only_for_our_wheel_that_installs_on_the_target(
    tag: str, status: NodeStatus, tmp_path: Path
) -> None:
    store = Store.open(str(tmp_path / "store"))
    ref = WheelRef(f"demo-1.0-{tag}.whl", "0" * 64)
    store.update_record(
        "demo",
        "1.0",
        "3.11",
        lambda _c: BuildRecord("demo", "1.0", "3.11", NodeStatus.BUILT, wheel=ref),
    )
    decider = Decider("https://x/simple", store, "")
    base = PlanNode("demo", "1.0", "3.11", NodeStatus.MISSING, "", True)
    sdist = FileRef("demo-1.0.tar.gz", "https://x/demo-1.0.tar.gz", "1" * 64)
    node = decider.conclude(base, Target("3.11", T228), None, sdist)
    assert node.status is status, node.reason
    if status is NodeStatus.MISSING:
        assert node.reason.startswith(f"our store's {ref.filename} does not install on {T228}")


def test_wheel_glibc_floor_takes_the_oldest_s390x_tag() -> None:
    assert wheel_glibc_floor("d-1-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl") == (
        2,
        17,
    )
    assert wheel_glibc_floor("d-1-cp311-cp311-manylinux_2_35_s390x.whl") == (2, 35)
    assert wheel_glibc_floor("d-1-cp311-cp311-manylinux_2_17_x86_64.whl") is None
    assert wheel_glibc_floor("d-1-py3-none-any.whl") is None
    assert wheel_glibc_floor("d-1.tar.gz") is None


def test_platform_for_a_node_is_the_oldest_target_of_its_python() -> None:
    targets = (
        Target("3.11", "manylinux_2_34_s390x"),
        Target("3.11", T228),
        Target("3.12", "manylinux_2_36_s390x"),
    )
    assert platform_for(targets, "3.11") == T228
    assert platform_for(targets, "3.12") == "manylinux_2_36_s390x"
    assert platform_for(targets, "3.13") == T228  # the default target


# --- the distribution table ----------------------------------------------------------
def test_distribution_table() -> None:
    glibc = {d.name: d.glibc for d in DISTRIBUTIONS}
    assert glibc == {
        "RHEL 8": (2, 28),
        "RHEL 9": (2, 34),
        "SLES 15 SP1": (2, 26),
        "SLES 15 SP3": (2, 31),
        "Ubuntu 20.04": (2, 31),
        "Ubuntu 22.04": (2, 35),
        "Ubuntu 24.04": (2, 39),
        "Debian 11": (2, 31),
        "Debian 12": (2, 36),
    }
    for family in {d.family for d in DISTRIBUTIONS}:
        line = [d.glibc for d in DISTRIBUTIONS if d.family == family]
        assert line == sorted(line), f"{family}: oldest release first"


def test_installs_on() -> None:
    assert [d.name for d in installs_on((2, 34))] == [
        "RHEL 9",
        "Ubuntu 22.04",
        "Ubuntu 24.04",
        "Debian 12",
    ]
    assert (
        installs_on_text((2, 17))
        == "RHEL 8+, SLES 15 SP1+, Ubuntu 20.04+, Debian 11+ (glibc 2.17+)"
    )
    assert (
        installs_on_text((2, 28))
        == "RHEL 8+, SLES 15 SP3+, Ubuntu 20.04+, Debian 11+ (glibc 2.28+)"
    )
    assert installs_on_text((2, 35)) == (
        "Ubuntu 22.04+, Debian 12+ (glibc 2.35+; not on RHEL 9 or older, SLES 15 SP3 or older)"
    )
    assert installs_on_text((2, 40)).startswith("none of the listed releases (glibc 2.40+;")


def test_wheel_installs_on() -> None:
    numpy = "numpy-2.1.3-cp311-cp311-manylinux_2_35_s390x.whl"
    assert wheel_installs_on(numpy).startswith("Ubuntu 22.04+, Debian 12+")
    assert wheel_installs_on("d-1-py3-none-any.whl") == ""
    assert wheel_installs_on("d-1-cp311-cp311-manylinux_2_17_x86_64.whl") == ""


@pytest.mark.parametrize(
    ("version", "glibc"),
    [
        ("GLIBC_2.35", (2, 35)),
        ("GLIBC_2.2.5", (2, 2)),
        ("GLIBC_PRIVATE", None),
        ("GLIBCXX_3.4.30", None),
        ("GCC_3.0", None),
    ],
)
def test_symbol_glibc(version: str, glibc: tuple[int, int] | None) -> None:
    assert symbol_glibc(version) == glibc
