"""The mariadb-connector-c pack (mysqlclient) and the hdf5 pack (h5py, tables): their
recipes, the hints and package entries that name them, and the recipes' rewrites of
their pkg-config files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fixtures.packsteps import cmake_options

from refinery.builder.packs import stand_ins
from refinery.builder.packs.recipes import PACK_PREFIX, PackRecipe, closure
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog


def test_both_recipes_build_debians_upstream_tarballs_with_their_dependencies(
    recipes: dict[str, PackRecipe],
) -> None:
    maria, hdf5 = recipes["mariadb-connector-c"], recipes["hdf5"]
    assert [r.name for r in closure(recipes, ["mariadb-connector-c"])] == [
        "openssl",
        "zlib",
        "mariadb-connector-c",
    ]
    assert [r.name for r in closure(recipes, ["hdf5"])] == ["zlib", "hdf5"]
    for recipe in (maria, hdf5):
        assert recipe.source is not None
        assert recipe.source.url.startswith("https://deb.debian.org/debian/pool/main/")
        assert ".orig.tar." in recipe.source.url
        assert recipe.notes and recipe.description
    # Connector/C is the libmariadb/ folder of bookworm's server tarball
    assert maria.source is not None and "/mariadb_10.11." in maria.source.url
    assert any(s.startswith("cmake -S libmariadb ") for s in maria.steps)
    # HDF5 1.14.5 (trixie): 1.10/1.12 run target programs while they build
    assert hdf5.version == "1.14.5"
    assert hdf5.source is not None and "hdf5_1.14.5" in hdf5.source.url


#: Authentication plugins mysqlclient's users need (MySQL 8's default, MariaDB's
#: ed25519, the old default, PAM's dialog and cleartext) and the ones needing libraries
#: the pack does not have.
STATIC_PLUGINS = (
    "CACHING_SHA2_PASSWORD",
    "SHA256_PASSWORD",
    "CLIENT_ED25519",
    "DIALOG",
    "MYSQL_CLEAR_PASSWORD",
    "MYSQL_OLD_PASSWORD",
)
OFF_PLUGINS = ("AUTH_GSSAPI_CLIENT", "ZSTD", "REMOTE_IO")


def test_connector_c_builds_its_plugins_into_the_library(
    recipes: dict[str, PackRecipe],
) -> None:
    """A grafted libmariadb cannot find a plugin folder where the wheel is installed."""
    options = cmake_options(recipes["mariadb-connector-c"])
    for plugin in STATIC_PLUGINS:
        assert options[f"CLIENT_PLUGIN_{plugin}"] == "STATIC", plugin
    for plugin in OFF_PLUGINS:
        assert options[f"CLIENT_PLUGIN_{plugin}"] == "OFF", plugin
    assert options["WITH_SSL"] == "OPENSSL" and options["OPENSSL_ROOT_DIR"] == "{deps}"
    assert options["ZLIB_LIBRARY"].startswith("{deps}/")  # never the build machine's
    assert options["INSTALL_LIBDIR"] == "lib"  # where auditwheel looks for packs' libraries
    assert options["WITH_CURL"] == "OFF" and options["WITH_UNIT_TESTS"] == "OFF"
    # a dynamic plugin left over fails the pack's build
    assert any(
        "plugin" in s and s.startswith("test -z") for s in recipes["mariadb-connector-c"].steps
    )


def test_hdf5_builds_the_c_and_high_level_libraries_only(
    recipes: dict[str, PackRecipe],
) -> None:
    options = cmake_options(recipes["hdf5"])
    on = ("BUILD_SHARED_LIBS", "HDF5_BUILD_HL_LIB", "HDF5_ENABLE_Z_LIB_SUPPORT")
    off = (
        "BUILD_STATIC_LIBS",
        "BUILD_TESTING",
        "HDF5_BUILD_TOOLS",
        "HDF5_BUILD_EXAMPLES",
        "HDF5_BUILD_FORTRAN",
        "HDF5_BUILD_CPP_LIB",
        "HDF5_BUILD_JAVA",
        "HDF5_ENABLE_PARALLEL",
        "HDF5_ENABLE_SZIP_SUPPORT",
    )
    assert {k: options[k] for k in on} == dict.fromkeys(on, "ON")
    assert {k: options[k] for k in off} == dict.fromkeys(off, "OFF")
    assert options["ZLIB_ROOT"] == "{deps}" and options["HDF5_ALLOW_EXTERNAL_SUPPORT"] == "NO"
    # the deflate filter is there, or the pack fails (h5py's gzip datasets need it)
    assert any("H5_HAVE_FILTER_DEFLATE" in s for s in recipes["hdf5"].steps)


def run_steps(recipe: PackRecipe, starts: tuple[str, ...], tmp_path: Path) -> Path:
    """Run the recipe's steps starting with one of ``starts`` (its rewrites after the
    install) on a staged prefix in ``tmp_path``."""
    values = {
        "prefix": f"/{PACK_PREFIX}",
        "destdir": str(tmp_path / "stage"),
        "deps": str(tmp_path / "work/deps" / PACK_PREFIX),
        "host": "s390x-linux-gnu",
        "jobs": "1",
    }
    for step in recipe.steps:
        if step.startswith(starts):
            subprocess.run(["sh", "-c", step.format(**values)], cwd=tmp_path, check=True)
    return tmp_path / "stage" / PACK_PREFIX


LIBMARIADB_PC = """\
prefix=/opt/refinery-packs
includedir=${{prefix}}/include/mariadb/
libdir=${{prefix}}/lib/

Name: libmariadb
Version: 3.3.19
Libs: -L${{libdir}} -lmariadb
Libs.private: -l{deps}/lib/libz.a -ldl -lssl -lcrypto
"""


def test_connector_cs_pkg_config_files_name_the_prefix_under_both_names(
    recipes: dict[str, PackRecipe], tmp_path: Path
) -> None:
    deps = tmp_path / "work/deps" / PACK_PREFIX
    pc = tmp_path / "stage" / PACK_PREFIX / "lib/pkgconfig/libmariadb.pc"
    pc.parent.mkdir(parents=True)
    pc.write_text(LIBMARIADB_PC.format(deps=deps))
    prefix = run_steps(recipes["mariadb-connector-c"], ("sed ", "cp "), tmp_path)
    text = (prefix / "lib/pkgconfig/libmariadb.pc").read_text()
    assert "Libs.private: -lz -ldl -lssl -lcrypto\n" in text
    assert str(tmp_path) not in text
    # mysqlclient asks pkg-config for mysqlclient, mariadb (Debian's name), libmariadb
    assert (prefix / "lib/pkgconfig/mariadb.pc").read_text() == text


def test_hdf5s_text_files_lose_the_build_folder_its_library_keeps_its_bytes(
    recipes: dict[str, PackRecipe], tmp_path: Path
) -> None:
    deps = tmp_path / "work/deps" / PACK_PREFIX
    prefix = tmp_path / "stage" / PACK_PREFIX
    (prefix / "lib/pkgconfig").mkdir(parents=True)
    (prefix / "lib/pkgconfig/hdf5.pc").write_text("Libs.private:   -lzlib-static\n")
    (prefix / "cmake").mkdir()
    (prefix / "cmake/hdf5-targets.cmake").write_text(f'set(_z "{deps}/lib/libz.a")\n')
    library = b"\x7fELF\x02\x02\0" + f"zlib: {deps}/lib/libz.a\0".encode()
    (prefix / "lib/libhdf5.so.310").write_bytes(library)
    run_steps(recipes["hdf5"], ("grep -rlIF", "sed "), tmp_path)
    assert (prefix / "lib/pkgconfig/hdf5.pc").read_text() == "Libs.private:   -lz\n"
    assert (prefix / "cmake/hdf5-targets.cmake").read_text() == (
        f'set(_z "/{PACK_PREFIX}/lib/libz.a")\n'
    )
    assert (prefix / "lib/libhdf5.so.310").read_bytes() == library  # binaries untouched


def test_the_packs_stand_in_for_debians_development_packages(
    recipes: dict[str, PackRecipe],
) -> None:
    assert stand_ins(recipes, ["libmariadb-dev", "libhdf5-dev", "pkg-config"]) == {
        "libmariadb-dev": "mariadb-connector-c",
        "libhdf5-dev": "hdf5",
    }


# real lines of campaign runs 1 and 2 (cross backend, zig for manylinux_2_28_s390x)
FAILURES = {
    "mysqlclient": (
        "Trying pkg-config --exists libmariadb\n"
        "Exception: Can not find valid pkg-config name.\n"
        "Specify MYSQLCLIENT_CFLAGS and MYSQLCLIENT_LDFLAGS env vars manually",
        ["mysqlclient"],
    ),
    "h5py": (
        "Loading library to get build settings and version: libhdf5.so\n"
        "error: Unable to load dependency HDF5, make sure HDF5 is installed properly\n"
        "OSError: libhdf5.so: cannot open shared object file: No such file or directory",
        ["h5py-cross-hdf5", "hdf5"],
    ),
    "tables": (
        "/root/.cache/refinery/roots/sessions/build-cd0a30720b03/cross-tmp/H5close215xbkap.c"
        ":1:10: fatal error: 'H5public.h' file not found",
        ["hdf5"],
    ),
}


@pytest.mark.parametrize("package", sorted(FAILURES))
def test_each_campaign_failure_gets_the_hint_naming_the_pack(
    catalog: Catalog, recipes: dict[str, PackRecipe], package: str
) -> None:
    excerpt, hint_ids = FAILURES[package]
    lines = as_log_lines(excerpt.splitlines())
    matched = [m.hint.id for m in scan(catalog, lines, package=package, backend="cross")]
    assert matched == hint_ids
    pack_hint = catalog.get(hint_ids[-1])
    assert pack_hint is not None and pack_hint.fix.packs
    assert set(pack_hint.fix.packs) <= set(recipes)
    assert pack_hint.fix.packages_for("apt") and pack_hint.fix.packages_for("dnf")


def test_mysqlclient_and_h5py_get_their_packs_before_the_first_attempt(catalog: Catalog) -> None:
    (maria,) = catalog.for_package("mysqlclient", "3.11")
    assert maria.hints == ("mysqlclient",)
    (h5py,) = catalog.for_package("h5py", "3.11")
    assert set(h5py.hints) == {"hdf5", "h5py-cross-hdf5"}
    assert catalog.for_package("tables", "3.11") == ()  # not chased (python-blosc2)


def test_h5py_is_told_the_packs_hdf5_version_on_cross_builds_only(
    catalog: Catalog, recipes: dict[str, PackRecipe]
) -> None:
    """h5py loads libhdf5 with ctypes unless HDF5_VERSION, H5PY_ROS3 and H5PY_DIRECT_VFD
    are all given: a cross build cannot load an s390x library."""
    hint = catalog.get("h5py-cross-hdf5")
    assert hint is not None
    assert dict(hint.fix.env) == {
        "HDF5_VERSION": recipes["hdf5"].version,  # bumping the pack bumps this
        "H5PY_ROS3": "0",
        "H5PY_DIRECT_VFD": "0",
    }
    line = as_log_lines(["error: Unable to load dependency HDF5, make sure HDF5 is installed"])
    assert "h5py-cross-hdf5" not in [
        m.hint.id for m in scan(catalog, line, package="h5py", backend="rootfs")
    ]
    assert "h5py-cross-hdf5" not in [
        m.hint.id for m in scan(catalog, line, package="tables", backend="cross")
    ]


@pytest.mark.parametrize(
    "clean",
    [
        "Trying pkg-config --exists mysqlclient",
        "Loading library to get build settings and version: /usr/lib/libhdf5.so",
        '-- Found HDF5: /opt/refinery-packs/lib/libhdf5.so (found version "1.14.5")',
        "checking for H5public.h... yes",
    ],
)
def test_no_new_hint_matches_a_clean_line(catalog: Catalog, clean: str) -> None:
    matched = {m.hint.id for m in scan(catalog, as_log_lines([clean]))}
    assert not matched & {"mysqlclient", "hdf5", "h5py-cross-hdf5"}


def test_h5pys_own_tests_run_on_the_target_with_the_known_failures_listed(
    catalog: Catalog,
) -> None:
    tests = catalog.tests("h5py", "3.11")
    assert tests is not None
    assert tests.command == "pytest --pyargs h5py -q"
    assert "pytest-mpi" in tests.requires  # else the MPI tests' fixtures are missing
    known = dict(tests.known_failures)
    assert list(known) == [
        "TestFileOpen::test_append_permissions",
        "test_dtype::test_create_bitfield",
    ]
    assert "root" in known["TestFileOpen::test_append_permissions"]
    assert "big-endian" in known["test_dtype::test_create_bitfield"]  # upstream, not ours
