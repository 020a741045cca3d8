"""The crc32c pack (google-crc32c): Google's crc32c library from the copy Debian's
libtgowt tarball carries, configured for big-endian s390x, and the hint and package
entry that give google-crc32c its C extension instead of a quiet pure-Python wheel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fixtures.packsteps import first_fix, step_values

from refinery.builder.packs.recipes import PackRecipe
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog

TREE = "src/third_party/crc32c/src"
#: crc32c_config.h as CMake writes it for s390x (test_big_endian true, no SSE4.2/ARMv8).
S390X_CONFIG = """\
#define BYTE_ORDER_BIG_ENDIAN 1
#define HAVE_BUILTIN_PREFETCH 1
#define HAVE_MM_PREFETCH 0
#define HAVE_SSE42 0
#define HAVE_ARM64_CRC32C 0
"""


def test_the_recipe_builds_googles_library_from_debians_libtgowt_tarball(
    recipes: dict[str, PackRecipe],
) -> None:
    recipe = recipes["crc32c"]
    assert recipe.source is not None
    assert recipe.source.url.startswith("https://deb.debian.org/debian/pool/main/libt/libtgowt/")
    assert "libtgowt" in recipe.notes and "google/crc32c" in recipe.description
    (configure,) = [s for s in recipe.steps if "cmake -S" in s]
    for option in (
        "-DCMAKE_SYSTEM_PROCESSOR=s390x",
        "-DBUILD_SHARED_LIBS=ON",  # PyPI's wheels bundle libcrc32c.so.1
        "-DCRC32C_BUILD_TESTS=OFF",  # googletest, glog and benchmark are not in the tarball
        "-DCRC32C_BUILD_BENCHMARKS=OFF",
    ):
        assert option in configure.split(), option
    assert any(f"project(Crc32c VERSION {recipe.version} " in s for s in recipe.steps)


def guard(recipes: dict[str, PackRecipe]) -> str:
    (step,) = [s for s in recipes["crc32c"].steps if "BYTE_ORDER_BIG_ENDIAN" in s]
    return step


@pytest.mark.parametrize(
    ("config", "passes"),
    [
        (S390X_CONFIG, True),
        # what a configuration for the build machine (x86_64) would say: wrong CRCs on s390x
        (S390X_CONFIG.replace("ENDIAN 1", "ENDIAN 0").replace("SSE42 0", "SSE42 1"), False),
        (S390X_CONFIG.replace("ENDIAN 1", "ENDIAN 0"), False),
        (S390X_CONFIG.replace("ARM64_CRC32C 0", "ARM64_CRC32C 1"), False),
    ],
)
def test_the_configuration_guard_stops_a_little_endian_or_foreign_cpu_build(
    recipes: dict[str, PackRecipe], tmp_path: Path, config: str, passes: bool
) -> None:
    include = tmp_path / TREE / "build/include/crc32c"
    include.mkdir(parents=True)
    (include / "crc32c_config.h").write_text(config)
    step = guard(recipes).format(**step_values(tmp_path / "stage"))
    done = subprocess.run(["sh", "-c", step], cwd=tmp_path, check=False)
    assert (done.returncode == 0) is passes


def test_google_crc32c_gets_the_pack_and_no_quiet_fallback_on_the_cross_backend(
    catalog: Catalog,
) -> None:
    remedy = first_fix(catalog, "google-crc32c", "1.9.0")
    assert remedy is not None and remedy.hint_ids == ("google-crc32c-lib",)
    assert remedy.packs == ("crc32c",)
    assert dict(remedy.env) == {"CRC32C_PURE_PYTHON": "0"}  # a failed compile fails
    assert first_fix(catalog, "google-crc32c", "1.9.0", "rootfs") is None  # no pack there
    (entry,) = catalog.for_package("google-crc32c", "3.11", "1.9.0")
    # the package imports without its C extension (a warning only): the smoke test
    # imports the extension itself
    assert entry.imports == ("google_crc32c._crc32c",)
    assert entry.tests is not None and entry.tests.from_sdist == ("tests",)


@pytest.mark.parametrize(
    ("line", "matches"),
    [
        ("src/google_crc32c/_crc32c.c:3:10: fatal error: 'crc32c/crc32c.h' file not found", True),
        ("_crc32c.c:3:10: fatal error: crc32c/crc32c.h: No such file or directory", True),
        (
            "Compiling the C Extension for the crc32c library failed. Falling back to pure"
            " Python build.",
            True,
        ),
        ("#### using global install of 'crc32c'", False),
        ("fatal error: 'crc32c.h' file not found", False),  # another project's crc32c.h
    ],
)
def test_the_hint_matches_a_missing_crc32c_library_only(
    catalog: Catalog, line: str, matches: bool
) -> None:
    found = [m.hint.id for m in scan(catalog, as_log_lines([line]), package="google-crc32c")]
    assert ("google-crc32c-lib" in found) is matches
