"""A Python module the project provides itself is never derived as a requirement
(coverage campaign: pywavelets got ``pywt``, scikit-learn ``sklearn``). The log lines
are excerpts of those campaign logs."""

from __future__ import annotations

from collections.abc import Sequence

from refinery.core.models import DerivedFix
from refinery.hints.derive import file_index_deriver
from refinery.hints.missing import own_modules

START = "==> start: pywavelets==1.9.0@3.11 on cross (debian-bookworm-s390x-054e57788b4e1c28)"
BUILT = "built pywavelets-1.9.0-cp311-cp311-linux_s390x.whl: 4 ELF files; modules ('pywt',)"
SMOKE_FAIL = [
    '  File "/refinery/work/smoke-site/pywt/__init__.py", line 13, in <module>',
    "    from ._extensions._pywt import *",
    "ModuleNotFoundError: No module named 'pywt._extensions._pywt'",
]


class NoIndex:
    """A file index that must not be asked (modules are not the distribution's)."""

    def owners(self, filename: str, *, arch_all: bool = False) -> Sequence[object]:
        raise AssertionError(f"asked the file index for {filename}")


def derived(lines: Sequence[str]) -> tuple[DerivedFix, ...]:
    return file_index_deriver(NoIndex(), "s390x-linux-gnu")(lines)  # type: ignore[arg-type]


def test_the_wheels_own_module_is_shown_not_required() -> None:
    (fix,) = derived([START, BUILT, *SMOKE_FAIL])
    assert (fix.kind, fix.name, fix.requirement) == ("module", "pywt", "")
    assert not fix.answered


def test_a_module_named_like_the_project_is_its_own() -> None:
    start = "==> start: scikit-learn==1.5.2@3.11 on cross (x)"
    assert "scikit_learn" in own_modules([start])
    lines = [
        START.replace("pywavelets", "foo-bar"),
        "ModuleNotFoundError: No module named 'foo_bar'",
    ]
    (fix,) = derived(lines)
    assert fix.requirement == ""


def test_a_module_run_from_the_unpacked_sdist_is_its_own() -> None:
    lines = [
        "==> start: scikit-learn==1.5.2@3.11 on cross (x)",
        '  File "/tmp/b/nodes/scikit-learn==1.5.2-py3.11/1/work/src/scikit_learn-1.5.2'
        '/sklearn/_build_utils/__init__.py", line 8, in <module>',
        "ModuleNotFoundError: No module named 'sklearn.__check_build._check_build'",
    ]
    assert own_modules(lines) >= {"sklearn", "scikit_learn"}
    (fix,) = derived(lines)
    assert fix.requirement == ""


def test_another_projects_module_is_still_a_requirement() -> None:
    (fix,) = derived([START, BUILT, "ModuleNotFoundError: No module named 'Cython'"])
    assert fix.requirement == "cython"
    # without the start line nothing is known to be the project's own
    assert own_modules(["ModuleNotFoundError: No module named 'pywt'"]) == frozenset()


def test_a_module_missing_at_run_time_is_no_build_requirement() -> None:
    """scikit-image: scipy had no s390x wheel, so the smoke import missed lazy_loader."""
    lines = [
        "==> start: scikit-image==0.26.0@3.11 on cross (x)",
        "ModuleNotFoundError: No module named 'Cython'",  # in the build: a requirement
        "built scikit_image-0.26.0-cp311-cp311-linux_s390x.whl: 9 ELF files; modules ('skimage',)",
        "==> smoke: import in a clean root",
        "ERROR: Could not find a version that satisfies the requirement scipy>=1.11.4",
        "ModuleNotFoundError: No module named 'lazy_loader'",
    ]
    (cython,) = derived(lines)
    assert cython.requirement == "cython"
