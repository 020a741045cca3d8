"""The starter catalog in ``hints/``: every entry matches a realistic log excerpt of its
failure mode and does not match a near miss; the lxml case end to end through the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from refinery.cli import main
from refinery.core.errors import InputError
from refinery.core.models import NodeStatus, PlanNode
from refinery.hints import load_catalog
from refinery.hints.advise import Advisor
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog

HINTS = Path(__file__).resolve().parents[2] / "hints"

LXML_530 = """\
Collecting lxml==5.3.0
  Downloading lxml-5.3.0.tar.gz (3.7 MB)
  Installing build dependencies: started
  Getting requirements to build wheel: started
  Getting requirements to build wheel: finished with status 'error'
  error: subprocess-exited-with-error
  × Getting requirements to build wheel did not run successfully.
  │ exit code: 1
  ╰─> [4 lines of output]
      <string>:67: DeprecationWarning: pkg_resources is deprecated as an API.
      Building lxml version 5.3.0.
      Building without Cython.
      Error: Please make sure the libxml2 and libxslt development packages are installed.
      [end of output]
"""  # noqa: RUF001 (pip's own box-drawing and multiplication sign)

# id -> (an excerpt it must match, a near miss it must not match)
CASES: dict[str, tuple[str, str]] = {
    # cryptography 43.0.3 in the coverage campaign (cross, crates from Debian)
    "cryptography-43-asn1": (
        'error: failed to select a version for the requirement `asn1 = "^0.16.2"`\n'
        "candidate versions found which didn't match: 0.24.1, 0.20.0\n"
        "location searched: directory source `/root/.cache/refinery/roots/sessions/build-b6c"
        "1cb587b68/cross-home/.cargo/debian-crates` (which is replacing registry `crates-io`)",
        'error: failed to select a version for the requirement `pyo3 = "^0.30"`',
    ),
    # jellyfish 1.3.0 in the coverage campaign (cross, crates from Debian)
    "jellyfish-1.3-pyo3": (
        'error: failed to select a version for the requirement `pyo3 = "^0.30.1"`\n'
        "candidate versions found which didn't match: 0.28.2, 0.22.6",
        'error: failed to select a version for the requirement `pyo3 = "^0.31"`',
    ),
    # cbor2 6.3.0 in the coverage campaign (cross, crates from Debian)
    "cbor2-6.3-pyo3": (
        'error: failed to select a version for the requirement `pyo3 = "^0.30.1"`\n'
        "candidate versions found which didn't match: 0.28.2, 0.22.6",
        'error: failed to select a version for the requirement `pyo3-ffi = "^0.30.1"`',
    ),
    # tiktoken 0.14.0 in the coverage campaign (cross, crates from Debian)
    "tiktoken-0.14-crates": (
        'error: failed to select a version for the requirement `fancy-regex = "^0.19.0"`\n'
        "candidate versions found which didn't match: 0.11.0",
        'error: failed to select a version for the requirement `regex = "^1.13.1"`',
    ),
    # bcrypt 5.0.0 beyond the corpus (cross, crates from Debian)
    "bcrypt-5.0-crates": (
        'error: failed to select a version for the requirement `bcrypt = "^0.17"`\n'
        "candidate versions found which didn't match: 0.19.2, 0.15.1",
        'error: failed to select a version for the requirement `bcrypt-pbkdf = "^0.11"`',
    ),
    # libcst 1.9.0 beyond the corpus (cross, crates from Debian)
    "libcst-1.9-crates": (
        "error: failed to select a version for the requirement "
        '`annotate-snippets = "^0.11.5"`\n'
        "candidate versions found which didn't match: 0.12.16, 0.11.4",
        'error: failed to select a version for the requirement `annotate-snippets = "^0.12"`',
    ),
    # llvmlite 0.44.0's ffi/build.py under setuptools 84 (coverage campaign, cross)
    "setuptools-dry-run": (
        '  File "<string>", line 68, in build_library_files\n'
        '  File "/root/.cache/refinery/roots/sessions/build-900cefbaed48/build-requires-static'
        '/setuptools/_distutils/spawn.py", line 45, in spawn\n'
        "    subprocess.check_call(cmd, **kwargs)\n"
        "TypeError: Popen.__init__() got an unexpected keyword argument 'dry_run'",
        "error: option --dry-run not recognized",
    ),
    # shapely 2.2.0's meson (cross, zig), the coverage campaign
    # numba 0.61.0 under zig, attempt 1 of coverage campaign run 5 (cross), log line 968
    "numba-zig-no-openmp": (
        "numba/np/ufunc/omppool.cpp:12:10: fatal error: 'omp.h' file not found\n"
        "   12 | #include <omp.h>",
        "numba/np/ufunc/omppool.cpp:12:10: fatal error: 'tbb/tbb.h' file not found",
    ),
    # llvmlite 0.44.0's ffi/build.py, attempt 3 of coverage campaign run 5 (cross, zig;
    # the build machine's LLVM 14 llvm-config on PATH), log line 275
    "llvmlite-llvm15": (
        "RuntimeError: Building llvmlite requires LLVM 15, got '14.0.6'. Be sure to set "
        "LLVM_CONFIG to the right executable path.",
        "SVML not detected",
    ),
    # llvmlite 0.44.0's Makefile.linux linking with zig, session 8 (log line 138)
    "llvmlite-zig-exports": (
        "error: unsupported linker arg: --exclude-libs\n"
        "make: *** [Makefile.linux:27: libllvmlite.so] Error 1",
        "error: unsupported linker arg: --as-needed",
    ),
    # pyproj 3.7.2's setup.py, attempt 1 of coverage campaign run 5 (cross, zig)
    "pyproj-proj": (
        "* Getting build dependencies for wheel...\n"
        "proj executable not found. Please set the PROJ_DIR variable. For more "
        "information see: https://pyproj4.github.io/pyproj/stable/installation.html",
        "Internally compiled directory being used /refinery/work/src/pyproj-3.7.2/pyproj/proj_dir.",
    ),
    # sentencepiece 0.2.3's bundled CMake build, attempt 1 of coverage campaign run 6
    # (cross, zig; the network allowed, GitHub out of reach), log lines 154-156
    "sentencepiece-installed-deps": (
        "-- Had to git clone more than once: 3 times.\n"
        "CMake Error at abseil-cpp-subbuild/abseil-cpp-populate-prefix/tmp/"
        "abseil-cpp-populate-gitclone.cmake:39 (message):\n"
        "  Failed to clone repository: 'https://github.com/abseil/abseil-cpp.git'",
        "[ 22%] Performing download step (git clone) for 'abseil-cpp-populate'",
    ),
    # google-crc32c 1.9.0's setup.py, attempt 1 of coverage campaign run 6 (cross, zig)
    "google-crc32c-lib": (
        "src/google_crc32c/_crc32c.c:3:10: fatal error: 'crc32c/crc32c.h' file not found\n"
        "    3 | #include <crc32c/crc32c.h>",
        "#### using global install of 'crc32c'",
    ),
    "geos": (
        "Run-time dependency geos found: NO  (tried pkg-config)\n"
        '../meson.build:98:13: ERROR: Dependency "geos" not found (tried pkg-config)',
        "Run-time dependency geos found: YES 3.11.1",
    ),
    # matplotlib 3.9.2's meson in the coverage campaign (cross, no network)
    "matplotlib-system-libs": (
        "WARNING: failed to download with error: could not get https://download.savannah.gnu"
        ".org/releases/freetype/freetype-old/freetype-2.6.1.tar.gz; is the internet "
        "available?. Trying after a delay...\n"
        "ERROR: Subproject freetype-2.6.1 is buildable: NO",
        "Run-time dependency freetype2 found: YES 24.1.18",
    ),
    # matplotlib 3.11.2's meson in the coverage campaign (cross, no network)
    "matplotlib-raqm": (
        "WARNING: failed to download with error: could not get https://github.com/mesonbuild"
        "/wrapdb/releases/download/harfbuzz_14.1.0-1/harfbuzz-14.1.0.tar.xz; is the internet "
        "available?. Trying after a delay...\n"
        "<urlopen error [Errno -3] Temporary failure in name resolution>\n"
        "ERROR: Subproject harfbuzz is buildable: NO",
        "Run-time dependency raqm found: YES 0.10.5",
    ),
    # pyzmq 27.3.0's CMake in the coverage campaign (cross, zig): no libzmq, so it bundles
    "libzmq": (
        "-- Looking for libzmq with pkg-config - no\n"
        "-- Looking for libzmq - libzmq not found, will bundle libzmq and libsodium\n"
        "-- Bundling libzmq and libsodium",
        "-- Looking for libzmq with pkg-config - found libzmq 4.3.4",
    ),
    # mysqlclient 2.3.2's setup.py in the coverage campaign (cross, bookworm sysroot)
    "mysqlclient": (
        '  File "<string>", line 27, in find_package_name\n'
        "Exception: Can not find valid pkg-config name.",
        "Successfully installed mysqlclient-2.3.2",
    ),
    # tables 3.10.1's HDF5 probe (cross, zig), campaign run 2
    "hdf5": (
        "/root/.cache/refinery/roots/sessions/build-cd0a30720b03/cross-tmp/H5close215xbkap.c"
        ":1:10: fatal error: 'H5public.h' file not found",
        "checking for H5public.h... yes",
    ),
    # h5py 3.12.1's setup_configure.py (cross: an s390x libhdf5 on the build machine)
    "h5py-cross-hdf5": (
        "error: Unable to load dependency HDF5, make sure HDF5 is installed properly\n"
        "OSError: libhdf5.so: cannot open shared object file: No such file or directory",
        "Loading library to get build settings and version: /usr/lib/libhdf5.so",
    ),
    # cargo 1.85 (Debian's rustc-web) on a crate with rust-version = "1.88", captured here
    "rust-too-old": (
        "error: rustc 1.85.0 is not supported by the following package:\n"
        "  demo@0.1.0 requires rustc 1.88\n",
        "   Compiling demo v0.1.0 (/tmp/rl/rs)\n    Finished `dev` profile [unoptimized] target(s)",
    ),
    # pip wheel of a setuptools-scm project without git metadata, captured here
    "setuptools-scm-version": (
        "          raise LookupError(error_msg)\n"
        "      LookupError: setuptools-scm was unable to detect version for /tmp/rl/scm.\n"
        "      Make sure you're either building from a fully intact git repository or PyPI "
        "tarballs.",
        "  running egg_info\n  setuptools-scm: version 1.2.3 from PKG-INFO",
    ),
    "numpy-clang-zvector": (
        "../numpy/_core/src/common/simd/vec/operators.h:82:1: error: invalid operands to "
        "binary expression ('npyv_f64' (vector of 2 'double' values) and 'npyv_f64')\n"
        "../numpy/_core/src/common/simd/vec/utils.h:29:36: note: expanded from macro 'vec_and'",
        "../numpy/_core/src/common/simd/vec/utils.h:29:36: note: expanded from macro 'vec_add'",
    ),
    "zlib": (
        "src/crcmod/_crcfunext.c:4:10: fatal error: zlib.h: No such file or directory\n"
        "    4 | #include <zlib.h>\n"
        "compilation terminated.\n"
        "error: command '/usr/bin/s390x-linux-gnu-gcc' failed with exit code 1",
        "checking for zlib.h... yes\n"
        "-- Found ZLIB: /usr/lib/s390x-linux-gnu/libz.so (found version 1.2.13)",
    ),
    "libxml2-libxslt": (
        LXML_530,
        "Building lxml version 5.3.0.\n"
        "Using build configuration of libxml2 2.9.14 and libxslt 1.1.35",
    ),
    "libffi": (
        "  c/_cffi_backend.c:15:10: fatal error: ffi.h: No such file or directory\n"
        "     15 | #include <ffi.h>\n"
        "  compilation terminated.",
        "  Package libffi was found in the pkg-config search path: libffi 3.4.4",
    ),
    "openssl": (
        "  build/temp.linux-s390x-cpython-311/_openssl.c:575:10: fatal error: "
        "openssl/opensslv.h: No such file or directory",
        "  #include <openssl/opensslv.h> found OpenSSL 3.0.15 3 Sep 2024",
    ),
    "pillow-image-libs": (
        "  The headers or library files could not be found for jpeg,\n"
        "  a required dependency when compiling Pillow from source.\n"
        "  Please see the install instructions at:\n"
        "     https://pillow.readthedocs.io/en/latest/installation/basic-installation.html",
        "  --- JPEG support available\n  --- FREETYPE2 support available",
    ),
    # campaign run 1 (cross, zig): pyodbc 5.5.0, gmpy2 2.3.2, python-ldap 3.4.8, gssapi
    # 1.12.0, pycurl 7.49.0 (more cases: tests/unit/test_packs_config.py)
    "unixodbc": (
        "src/pyodbc.h:52:10: fatal error: 'sql.h' file not found\n   52 | #include <sql.h>",
        "checking for sql.h... yes",
    ),
    "gmp-mpfr-mpc": (
        "src/gmpy2.h:78:10: fatal error: 'mpc.h' file not found",
        "checking for gmp.h... yes",
    ),
    "openldap": (
        "Modules/common.h:15:10: fatal error: 'lber.h' file not found",
        "checking for ldap.h... yes",
    ),
    "cyrus-sasl-headers": (
        "Modules/LDAPObject.c:16:10: fatal error: 'sasl/sasl.h' file not found",
        "checking for sasl/sasl.h... yes",
    ),
    "krb5": (
        "/bin/sh: 1: krb5-config: not found",
        "krb5-config --libs gssapi: -lgssapi_krb5 -lkrb5 -lk5crypto -lcom_err",
    ),
    # PyNaCl 1.6.2 with SODIUM_INSTALL=system and no libsodium (cffi's compile, zig)
    "libsodium": (
        "build/temp.linux-s390x-cpython-311/_sodium.c:570:10: fatal error: 'sodium.h' "
        "file not found",
        "checking for sodium.h... yes",
    ),
    "libcurl": (
        "ConfigurationError: Could not run curl-config: [Errno 2] No such file or directory: "
        "'curl-config'",
        "Using curl-config (libcurl 7.88.1)",
    ),
    "xmlsec1": (
        "running build_ext\nerror: xmlsec1 is not installed or not in path.",
        "running build_ext\nbuilding 'xmlsec' extension",
    ),
    # dbus-python 1.5.1's meson (cross, zig), campaign run 2: attempts 1 and 2
    "dbus-glib": (
        "dbus-gmain| Run-time dependency dbus-1 found: NO  (tried pkg-config)\n"
        "dbus-gmain| Run-time dependency glib-2.0 found: NO  (tried pkg-config)",
        "dbus-gmain| Run-time dependency dbus-1 found: YES 1.14.10",
    ),
    # pycairo 1.29.2's meson (cross, zig), campaign run 2
    "cairo": (
        "Run-time dependency cairo found: NO  (tried pkg-config)\n"
        '../cairo/meson.build:31:12: ERROR: Dependency "cairo" not found (tried pkg-config)',
        "Run-time dependency cairo found: YES 1.16.0",
    ),
    # pymssql 2.4.6 (cross, zig), attempt 1 of its first run (more: test_packs_freetds.py)
    "freetds": (
        "src/pymssql/_mssql.c:1410:10: fatal error: 'sqlfront.h' file not found\n"
        ' 1410 | #include "sqlfront.h"',
        "copying src/pymssql/sqlfront.pxd -> build/lib.linux-s390x-cpython-311/pymssql",
    ),
    "libpq": (
        "  Error: pg_config executable not found.\n"
        "  pg_config is required to build psycopg2 from source.  Please add the directory\n"
        "  containing pg_config to the $PATH or specify the full executable path with the\n"
        "  option:",
        "  running build_ext\n  pg_config found at /usr/bin/pg_config",
    ),
    "libyaml": (
        "  ext/_yaml.h:2:10: fatal error: yaml.h: No such file or directory\n"
        "      2 | #include <yaml.h>\n"
        "  Error compiling module, falling back to pure Python modules",
        "  Error compiling module, falling back to pure Python modules",
    ),
    "c-compiler": (
        "  error: command 'gcc' failed: No such file or directory",
        "  error: command '/usr/bin/gcc' failed with exit code 1",
    ),
    "rust-toolchain": (
        "      error: can't find Rust compiler\n"
        "      If you are using an outdated pip version, it is possible a prebuilt wheel is "
        "available for this package but pip is not able to install from it.",
        "      Compiling cryptography-rust v0.1.0 (/tmp/pip-install/src/rust)\n"
        "      Finished release [optimized] target(s) in 4m 12s",
    ),
    "cmake": (
        "  FileNotFoundError: [Errno 2] No such file or directory: 'cmake'",
        "  -- The C compiler identification is GNU 12.2.0\n  -- Configuring done (cmake 3.25.1)",
    ),
    "ninja": (
        "  ../meson.build:1:0: ERROR: Could not find ninja version 1.8.2 or newer.",
        "  [12/80] Compiling C object src/foo.c.o (ninja)",
    ),
    "meson": (
        "  FileNotFoundError: [Errno 2] No such file or directory: 'meson'",
        "  The Meson build system\n  Version: 1.6.0",
    ),
    "fortran": (
        "  ../meson.build:1:0: ERROR: Unknown compiler(s): [['gfortran'], ['flang-new'], "
        "['flang'], ['nvfortran'], ['pgfortran'], ['ifort'], ['ifx'], ['g95']]",
        "  Fortran compiler for the host machine: gfortran (gcc 12.2.0)",
    ),
    "fortran-runtime": (
        "../meson.build:1:0: ERROR: Compiler /c/cross/s390x-py3.11-zig-glibc2.28-3b50f92a43e54d1f"
        "/bin/s390x-linux-gnu-gfortran cannot compile programs.",
        "Fortran linker for the host machine: /c/bin/s390x-linux-gnu-gfortran ld.lld 0.17.1",
    ),
    "openblas": (
        '  ../scipy/meson.build:163:9: ERROR: Dependency "OpenBLAS" not found, '
        "tried pkgconfig and cmake",
        '  Run-time dependency openblas found: YES 0.3.21\n  Dependency "OpenBLAS" found: YES',
    ),
    "numpy-openblas": (
        "  Run-time dependency scipy-openblas found: NO (tried pkgconfig)\n"
        "  Run-time dependency openblas found: NO (tried pkgconfig and cmake)",
        "  Run-time dependency scipy-openblas found: YES 0.3.31.188.0",
    ),
    "pkg-config": (
        "  ../meson.build:20:0: ERROR: Pkg-config binary for machine host not found. "
        "Giving up.\n  Did not find pkg-config by name 'pkg-config'",
        "  Found pkg-config: /usr/bin/pkg-config (1.8.1)",
    ),
    "cython-pin": (
        '  File "/tmp/build-env/lib/python3.11/site-packages/setuptools/_distutils/cmd.py", '
        "line 107, in __getattr__\n      raise AttributeError(attr)\n"
        "  AttributeError: cython_sources",
        "  Cythonizing sources\n  Compiling yaml/_yaml.pyx because it changed.",
    ),
    "network-during-build": (
        "!! failed: the build tried to reach the network: ConnectionRefusedError: [Errno 111] "
        "Connection refused (network isolation; allow it per package with network: "
        '{allow: true, reason: "..."} in its catalog entry\'s fix)',
        "  curl: (6) Could not resolve host: example.invalid",
    ),
    "network-timeout": (
        "  WARNING: Retrying (Retry(total=4)) after connection broken by "
        "'ReadTimeoutError(\"HTTPSConnectionPool(host='pypi.org', port=443): Read timed out. "
        "(read timeout=15)\")'\n"
        "  pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool"
        "(host='files.pythonhosted.org', port=443): Read timed out.",
        "  Downloading setuptools-75.8.0-py3-none-any.whl (1.2 MB)\n  timeout=15 retries=5",
    ),
}


@dataclass(frozen=True)
class Outcome:
    """A failed attempt as the advisor reads it."""

    status: NodeStatus
    log: Path
    matched_lines: tuple[str, ...] = ()
    backend: str = "cross"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(HINTS)


def ids(catalog: Catalog, text: str, package: str | None = None) -> list[str]:
    lines = as_log_lines(text.splitlines())
    return [m.hint.id for m in scan(catalog, lines, package=package)]


def test_every_entry_has_a_case(catalog: Catalog) -> None:
    assert sorted(h.id for h in catalog.hints) == sorted(CASES)
    for hint in catalog.hints:
        assert hint.note, f"{hint.id} has no note"
        assert hint.fix.packages_for("apt") or not hint.fix.packages_for("dnf"), hint.id
        assert bool(hint.fix.packages_for("apt")) == bool(hint.fix.packages_for("dnf")), hint.id


@pytest.mark.parametrize("hint_id", sorted(CASES))
def test_entry_matches_its_failure_and_not_a_near_miss(catalog: Catalog, hint_id: str) -> None:
    """In the log of a package its scope names (any package when it names none)."""
    positive, negative = CASES[hint_id]
    hint = catalog.get(hint_id)
    assert hint is not None
    package = hint.scope.packages[0] if hint.scope.packages else None
    assert ids(catalog, positive, package)[:1] == [hint_id], ids(catalog, positive, package)
    assert hint_id not in ids(catalog, negative, package)


def test_no_entry_matches_a_clean_build_log(catalog: Catalog) -> None:
    clean = """\
==> build: python -m build --wheel --installer uv
* Creating isolated environment: venv+uv...
* Installing packages in isolated environment:
  - setuptools>=61
running bdist_wheel
building 'refinery_fixture_zlib._zcrc' extension
s390x-linux-gnu-gcc -Wsign-compare -DNDEBUG -g -fwrapv -O2 -Wall -fPIC -I/usr/include/python3.11 -c src/refinery_fixture_zlib/_zcrc.c -o build/temp/_zcrc.o
s390x-linux-gnu-gcc -shared build/temp/_zcrc.o -lz -o build/lib/_zcrc.cpython-311-s390x-linux-gnu.so
Successfully built refinery_fixture_zlib-0.1.0-cp311-cp311-linux_s390x.whl
"""  # noqa: E501
    assert ids(catalog, clean) == []


def test_lxml_530_yields_apt_and_dnf_packages(catalog: Catalog) -> None:
    (match,) = scan(catalog, as_log_lines(LXML_530.splitlines()))
    fix = match.hint.fix
    assert fix.packages_for("apt") == ("libxml2-dev", "libxslt1-dev")
    assert fix.packages_for("dnf") == ("libxml2-devel", "libxslt-devel")
    assert fix.packages_for("yum") == ("libxml2-devel", "libxslt-devel")  # falls back to dnf
    assert match.lines[0].number == 13
    assert "Please make sure the libxml2 and libxslt" in match.lines[0].text


# what `refinery build` logged for lxml 5.3.0 in the emulated bookworm root (no headers)
LXML_530_ROOTFS = """\
* Getting build dependencies for wheel...
Building lxml version 5.3.0.
Building without Cython.
Error: Please make sure the libxml2 and libxslt development packages are installed.

TIP pass --env-dir and --sdist-extract-dir to keep the build environment and sources, then see https://build.pypa.io/en/stable/how-to/troubleshooting.html#debug-a-failed-build for help debugging a failed build
ERROR Backend subprocess exited when trying to invoke get_requires_for_build_wheel
!! failed: wheel build failed with exit code 1
"""  # noqa: E501


def test_lxml_530_from_the_rootfs_build_log(catalog: Catalog) -> None:
    assert ids(catalog, LXML_530_ROOTFS) == ["libxml2-libxslt"]


def test_cli_match_prints_fixes_for_every_manager(tmp_path: Path) -> None:
    log = tmp_path / "lxml.log"
    log.write_text(LXML_530)
    runner = CliRunner()
    result = runner.invoke(main, ["hints", "match", str(log), "--hints", str(HINTS)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("libxml2-libxslt")
    assert "fix apt: libxml2-dev libxslt1-dev" in result.output
    assert "fix dnf: libxml2-devel libxslt-devel" in result.output
    assert "matched L13: Error: Please make sure the libxml2" in result.output
    only_dnf = runner.invoke(
        main, ["hints", "match", str(log), "--hints", str(HINTS), "--manager", "dnf", "--json"]
    )
    assert only_dnf.exit_code == 0
    out = json.loads(only_dnf.output)
    assert out["schema"] == 1
    (doc,) = out["matches"]
    assert doc["id"] == "libxml2-libxslt"
    assert doc["fix"] == {
        "dnf": ["libxml2-devel", "libxslt-devel"],
        "env": {},
        "constraints": [],
        "build_requires": [],
    }
    clean = tmp_path / "clean.log"
    clean.write_text("Successfully built demo-1.0-py3-none-any.whl\n")
    none = runner.invoke(main, ["hints", "match", str(clean), "--hints", str(HINTS)])
    assert none.exit_code == 1 and "no hint" in none.output


def test_cli_check_accepts_the_catalog() -> None:
    result = CliRunner().invoke(main, ["hints", "check", str(HINTS)])
    assert result.exit_code == 0, result.output
    assert f"{len(CASES)} hints" in result.output


def test_numpy_without_blas_is_the_openblas_hint(catalog: Catalog) -> None:
    # numpy 2.2.6 numpy/meson.build with -Dallow-noblas=false and no BLAS found
    line = (
        "../numpy/meson.build:185:4: ERROR: Problem encountered: No BLAS library detected! "
        "Install one, or use the `allow-noblas` build option (note, this may be up to 100x "
        "slower for some linear algebra operations)."
    )
    # numpy's own package-scoped hint first (when the package is unknown), the generic next
    assert ids(catalog, line)[:2] == ["numpy-openblas", "openblas"]


def test_env_placeholders_are_filled_per_node(catalog: Catalog, tmp_path: Path) -> None:
    from refinery.core.models import NodeStatus, PlanNode
    from refinery.hints.advise import Advisor

    (scm,) = [h for h in catalog.hints if h.id == "setuptools-scm-version"]
    assert scm.fix.env == {"SETUPTOOLS_SCM_PRETEND_VERSION": "{version}"}
    advisor = Advisor(catalog, "apt", forced=("setuptools-scm-version",))
    node = PlanNode("demo", "4.5.6", "3.11", NodeStatus.PENDING, "", True)
    remedy = advisor.first_fix(node)
    assert remedy is not None and remedy.env["SETUPTOOLS_SCM_PRETEND_VERSION"] == "4.5.6"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "hints:\n  - id: x\n    match: ['x']\n    fix:\n      env: {A: '{commit}'}\n    note: n\n"
    )
    with pytest.raises(InputError, match=r"bad.yaml:5: .*env A may only use \{version\}, \{name\}"):
        load_catalog(tmp_path)


def test_sentencepiece_keeps_the_network_from_its_first_attempt(catalog: Catalog) -> None:
    """Its CMake always clones abseil, protobuf and flatbuffers (no switch builds it from
    the sdist): an isolated first attempt could only fail. (0.2.3 has a patch and packs
    instead: test_packs_sentencepiece.)"""
    from refinery.core.models import NodeStatus, PlanNode
    from refinery.hints.advise import Advisor

    node = PlanNode("sentencepiece", "0.2.1", "3.11", NodeStatus.PENDING, "", True)
    remedy = Advisor(catalog, "apt").first_fix(node)
    assert remedy is not None and "GitHub" in remedy.network
    other = PlanNode("demo", "1.0", "3.11", NodeStatus.PENDING, "", True)
    assert Advisor(catalog, "apt").first_fix(other) is None


@pytest.mark.parametrize(
    "line",
    [
        # psycopg-c 3.3.9 (cross, zig): setup.py runs pg_config
        "pg_config: command not found",
        # psycopg2-binary 2.9.13 (cross, zig), the requires phase
        "Error: pg_config --libdir failed: pg_config: command not found",
    ],
)
def test_psycopg_without_pg_config_is_the_libpq_hint(catalog: Catalog, line: str) -> None:
    matches = scan(catalog, as_log_lines([line]))
    assert [m.hint.id for m in matches] == ["libpq"]


def test_every_psycopg_gets_libpq_from_its_first_attempt(catalog: Catalog) -> None:
    for name in ("psycopg2", "psycopg2-binary", "psycopg-c"):
        (entry,) = catalog.for_package(name)
        assert entry.hints == ("libpq",), name


SYSTEM_LIBS = (
    "setup-args=-Dsystem-freetype=true",
    "setup-args=-Dsystem-qhull=true",
    "setup-args=-Dsystem-libraqm=true",
)


def test_matplotlib_311_gets_libraqm_from_its_first_attempt(catalog: Catalog) -> None:
    """The version-scoped entry: 3.11 has all three system options at attempt 1."""
    node = PlanNode("matplotlib", "3.11.2", "3.11", NodeStatus.PENDING, "", True)
    first = Advisor(catalog, "apt").first_fix(node, "cross")
    assert first is not None
    assert first.hint_ids == ("matplotlib-system-libs", "matplotlib-raqm")
    assert first.config_settings == SYSTEM_LIBS
    assert first.packs == ("freetype", "qhull", "harfbuzz", "fribidi", "raqm")


def test_matplotlib_39_keeps_its_first_fix_and_libraqm_only_on_its_log(
    catalog: Catalog, tmp_path: Path
) -> None:
    """matplotlib 3.9 knows no system-libraqm (meson refuses an unknown option): attempt 1
    without it; only a log that downloads HarfBuzz would get the raqm hint."""
    node = PlanNode("matplotlib", "3.9.2", "3.11", NodeStatus.PENDING, "", True)
    advisor = Advisor(catalog, "apt")
    first = advisor.first_fix(node, "cross")
    assert first is not None and first.hint_ids == ("matplotlib-system-libs",)
    assert not any("libraqm" in s for s in first.config_settings)
    log = tmp_path / "build.log"
    log.write_text(CASES["matplotlib-raqm"][0] + "\n")
    second = advisor(node, Outcome(NodeStatus.FAILED, log), 1)
    assert second is not None and "matplotlib-raqm" in second.hint_ids
    assert second.config_settings == SYSTEM_LIBS


@pytest.mark.parametrize(("version", "patched"), [("43.0.3", True), ("50.0.2", False)])
def test_cryptography_43_alone_gets_the_asn1_patch(
    catalog: Catalog, tmp_path: Path, version: str, patched: bool
) -> None:
    """The hint is scoped to cryptography 43: the same cargo line from another release
    (whose code the patch does not fit) gets no patch."""
    log = tmp_path / "build.log"
    log.write_text(CASES["cryptography-43-asn1"][0] + "\n")
    node = PlanNode("cryptography", version, "3.11", NodeStatus.PENDING, "", True)
    advisor = Advisor(catalog, "apt")
    first = advisor.first_fix(node, "cross")  # OpenSSL, never a patch before the failure
    assert first is not None and first.hint_ids == ("openssl",) and not first.patches
    second = advisor(node, Outcome(NodeStatus.FAILED, log), 1)
    if not patched:
        assert second is None
        return
    assert second is not None and second.hint_ids == ("openssl", "cryptography-43-asn1")
    (patch,) = second.patches
    assert patch.name == "cryptography-43.0-asn1-0.20.patch" and "+asn1 = {" in patch.text
    assert second.recipes[-1:] == (
        f"patch: cryptography-43.0-asn1-0.20.patch (sha256 {patch.sha256[:12]})",
    )
