"""The library packs of the long tail (unixODBC, GMP/MPFR/MPC, OpenLDAP, MIT krb5,
libcurl, xmlsec1): their recipes, the hints and package entries that name them, the ``*-config``
scripts a pack installs (answering with the sysroot's paths), the zig wrapper searching
the packs' folders, and libtool's shared libraries (``ld``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from refinery.builder.packs import Pack, identity, load_recipes
from refinery.builder.packs import make as pack_make
from refinery.builder.packs.make import build_env, install_scripts, relocated, tool_scripts
from refinery.builder.packs.recipes import PACK_PREFIX, closure
from refinery.builder.zig import Zig, wrapper
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog

REPO = Path(__file__).resolve().parents[2]
SYSROOT = Path("/cache/cross/s390x-zig/sysroot")

#: The long-tail packs and what each must require (dependencies first in the closure).
NEW_PACKS = {
    "unixodbc": (),
    "gmp": (),
    "mpfr": ("gmp",),
    "mpc": ("gmp", "mpfr"),
    "openldap": ("openssl",),
    "krb5": (),
    "curl": ("openssl", "zlib"),
    "xmlsec1": ("libxml2", "libxslt", "openssl"),
}


def test_the_long_tail_recipes_load_from_debian_with_their_dependencies() -> None:
    recipes = load_recipes(REPO / "packs")
    for name, requires in NEW_PACKS.items():
        recipe = recipes[name]
        assert recipe.requires == requires, name
        assert recipe.source is not None, name
        assert recipe.source.url.startswith("https://deb.debian.org/debian/pool/main/"), name
        assert ".orig.tar." in recipe.source.url, name
        assert recipe.notes and recipe.description, name  # the record says how it was built
        assert any("{prefix}" in step for step in recipe.steps), name
    assert [r.name for r in closure(recipes, ["mpc"])] == ["gmp", "mpfr", "mpc"]
    assert [r.name for r in closure(recipes, ["curl"])] == ["openssl", "zlib", "curl"]
    assert "without SASL" in recipes["openldap"].notes


# real lines of campaign run 1 (cross backend, zig for manylinux_2_28_s390x)
FAILURES = {
    "pyodbc": (
        "In file included from src/cnxninfo.cpp:7:\n"
        "src/pyodbc.h:52:10: fatal error: 'sql.h' file not found\n"
        "   52 | #include <sql.h>",
        "unixodbc",
    ),
    "gmpy2": (
        "In file included from src/gmpy2.c:87:\n"
        "src/gmpy2.h:76:10: fatal error: 'gmp.h' file not found\n"
        "   76 | #include <gmp.h>",
        "gmp-mpfr-mpc",
    ),
    "python-ldap": (
        "In file included from Modules/LDAPObject.c:3:\n"
        "Modules/common.h:15:10: fatal error: 'lber.h' file not found\n"
        "   15 | #include <lber.h>",
        "openldap",
    ),
    "gssapi": (
        "/bin/sh: 1: krb5-config: not found\n"
        "subprocess.CalledProcessError: Command 'krb5-config --libs gssapi' returned "
        "non-zero exit status 127.",
        "krb5",
    ),
    "pykerberos": (
        "In file included from src/kerberos.c:20:\n"
        "src/kerberosbasic.h:17:10: fatal error: 'gssapi/gssapi.h' file not found\n"
        "   17 | #include <gssapi/gssapi.h>",
        "krb5",
    ),
    "pycurl": (
        "FileNotFoundError: [Errno 2] No such file or directory: 'curl-config'\n"
        "ConfigurationError: Could not run curl-config: [Errno 2] No such file or "
        "directory: 'curl-config'",
        "libcurl",
    ),
    "xmlsec": (
        "running build_ext\nerror: xmlsec1 is not installed or not in path.",
        "xmlsec1",
    ),
}


@pytest.mark.parametrize("package", sorted(FAILURES))
def test_each_campaign_failure_gets_the_hint_naming_the_pack(
    catalog: Catalog, package: str
) -> None:
    excerpt, hint_id = FAILURES[package]
    matched = [m.hint.id for m in scan(catalog, as_log_lines(excerpt.splitlines()))]
    assert matched[:1] == [hint_id], matched
    hint = next(h for h in catalog.hints if h.id == hint_id)
    assert hint.fix.packs and set(hint.fix.packs) <= set(load_recipes(REPO / "packs"))
    assert hint.fix.packages_for("apt") and hint.fix.packages_for("dnf")
    # the fix is there before the first attempt (no one-header-per-attempt retries)
    (entry,) = catalog.for_package(package, "3.11")
    assert hint_id in entry.hints


def test_python_ldap_gets_sasl_headers_from_the_distro_and_libldap_from_the_pack(
    catalog: Catalog,
) -> None:
    line = "Modules/LDAPObject.c:16:10: fatal error: 'sasl/sasl.h' file not found"
    assert [m.hint.id for m in scan(catalog, as_log_lines([line]))] == ["cyrus-sasl-headers"]
    sasl = next(h for h in catalog.hints if h.id == "cyrus-sasl-headers")
    assert not sasl.fix.packs and sasl.fix.packages_for("apt") == ("libsasl2-dev",)
    (entry,) = catalog.for_package("python-ldap", "3.11")
    assert set(entry.hints) == {"openldap", "cyrus-sasl-headers"}


@pytest.mark.parametrize(
    "clean",
    [
        "checking for sql.h... yes",
        "-- Found CURL: /usr/lib/s390x-linux-gnu/libcurl.so (found version 7.88.1)",
        "krb5-config --libs gssapi: -lgssapi_krb5 -lkrb5 -lk5crypto -lcom_err",
        "checking for gmp.h... yes",
    ],
)
def test_no_pack_hint_matches_a_clean_line(catalog: Catalog, clean: str) -> None:
    assert [m.hint.id for m in scan(catalog, as_log_lines([clean]))] == []


# --- *-config scripts of a pack ------------------------------------------------------
KRB5_CONFIG = """\
#!/bin/sh
prefix=/opt/refinery-packs
exec_prefix=${prefix}
includedir=/opt/refinery-packs/include
libdir=${exec_prefix}/lib
DEFCCNAME='FILE:/tmp/krb5cc_%{uid}'
if test "$1" = "--prefix"; then echo $prefix; fi
echo "-I$includedir -L/opt/refinery-packs/lib -Wl,-rpath,/opt/refinery-packs/lib"
echo /usr/opt/refinery-packs /opt/refinery-packsx
"""


def make_pack(tmp_path: Path) -> Pack:
    recipes = load_recipes(REPO / "packs")
    pack = Pack(recipes["krb5"], "e" * 64, tmp_path / "cache/krb5-eeee")
    bin_dir = pack.root / PACK_PREFIX / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "krb5-config").write_text(KRB5_CONFIG)
    (bin_dir / "kinit").write_bytes(b"\x7fELF\x02\x02/opt/refinery-packs/lib\0")
    (bin_dir / "compile_et").write_text("#!/bin/sh\necho no prefix here\n")
    (bin_dir / "krb5-config.link").symlink_to("krb5-config")
    return pack


def test_a_packs_config_script_answers_with_the_sysroots_paths(tmp_path: Path) -> None:
    pack = make_pack(tmp_path)
    top = tmp_path / "upper"  # where the pack was unpacked (the sysroot's upper layer)
    (top / PACK_PREFIX / "bin").mkdir(parents=True)
    (top / PACK_PREFIX / "bin/krb5-config").write_text(KRB5_CONFIG)  # as extracted
    assert install_scripts(pack, top, SYSROOT) == ("krb5-config",)
    text = (top / PACK_PREFIX / "bin/krb5-config").read_text()
    assert f"prefix={SYSROOT}/opt/refinery-packs\n" in text
    assert f"includedir={SYSROOT}/opt/refinery-packs/include" in text
    assert f"-L{SYSROOT}/opt/refinery-packs/lib -Wl,-rpath,{SYSROOT}/opt/refinery-packs/lib" in (
        text
    )
    assert "echo /usr/opt/refinery-packs /opt/refinery-packsx" in text  # other paths stay
    assert (top / PACK_PREFIX / "bin/krb5-config").stat().st_mode & 0o111
    assert not (top / PACK_PREFIX / "bin/kinit").exists()  # programs are left alone
    # installing again (a later attempt) starts from the pack, never prefixes twice
    assert install_scripts(pack, top, SYSROOT) == ("krb5-config",)
    assert (top / PACK_PREFIX / "bin/krb5-config").read_text() == text
    done = subprocess.run(
        ["sh", str(top / PACK_PREFIX / "bin/krb5-config"), "--prefix"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[0] == f"{SYSROOT}/opt/refinery-packs"


def test_relocation_is_a_no_op_without_the_prefix() -> None:
    text = "#!/bin/sh\necho /usr/lib /opt/other\n"
    assert relocated(text, SYSROOT) == text


# --- building packs: libtool finds a linker -------------------------------------------
def test_pack_builds_have_zigs_linker_and_identities_name_the_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from refinery.builder.packs import PackTarget

    zig = Zig(tmp_path / "zig")
    scripts = tool_scripts(PackTarget(zig, "s390x", (2, 28)))
    assert scripts["ld"] == f'#!/bin/sh\nexec {zig.binary} ld.lld "$@"\n'
    recipe = load_recipes(REPO / "packs")["gmp"]
    env = build_env(recipe, tmp_path / "work", {})
    assert env["LD"] == str(tmp_path / "work/bin/ld")
    assert env["LDFLAGS"] == "-Wl,--undefined-version"  # GNU ld's leniency, for LLD
    before = identity(recipe, (2, 28))
    monkeypatch.setattr(pack_make, "TOOLS", pack_make.TOOLS + 1)
    assert identity(recipe, (2, 28)) != before  # new tools, new packs


# --- the zig wrapper searches the packs' folders ---------------------------------------
FAKE_ZIG = '#!/bin/sh\nfor a in "$@"; do echo "arg:$a"; done\n'


def run_wrapper(tmp_path: Path, sysroot: Path, *args: str) -> list[str]:
    zig = Zig(tmp_path / "zig")
    zig.binary.parent.mkdir(parents=True, exist_ok=True)
    zig.binary.write_text(FAKE_ZIG)
    zig.binary.chmod(0o755)
    script = tmp_path / "cc"
    script.write_text(wrapper(zig, "cc", "s390x-linux-gnu.2.28", (), None, sysroot, PACK_PREFIX))
    done = subprocess.run(["sh", str(script), *args], capture_output=True, text=True, check=True)
    return [line.removeprefix("arg:") for line in done.stdout.splitlines()]


def test_the_zig_wrapper_maps_the_pack_prefix_and_links_the_packs_last(tmp_path: Path) -> None:
    sysroot = tmp_path / "sysroot"
    (sysroot / PACK_PREFIX / "lib").mkdir(parents=True)
    lib = f"-L{sysroot}/{PACK_PREFIX}/lib"
    # what a compiled *-config program (odbc_config) prints: the build-time prefix
    args = run_wrapper(
        tmp_path, sysroot, "-shared", "-I/opt/refinery-packs/include", "-L/opt/refinery-packs/lib"
    )
    assert f"-I{sysroot}/{PACK_PREFIX}/include" in args
    assert args[-2:] == [lib, lib]  # the mapped -L, then the packs' folder searched last
    assert "-I/opt/refinery-packs/include" not in args
    compiled = run_wrapper(tmp_path, sysroot, "-c", "m.c", "-I/opt/refinery-packsx")
    assert lib not in compiled  # compiling only: no unused -L warning
    assert "-I/opt/refinery-packsx" in compiled  # not the prefix
    (sysroot / PACK_PREFIX / "lib").rmdir()  # no packs installed: nothing added
    assert lib not in run_wrapper(tmp_path, sysroot, "-shared", "m.o")


# --- a pack stands in for the Debian package a derived fix picks -----------------------
def test_recipes_say_which_debian_packages_they_stand_in_for(tmp_path: Path) -> None:
    from refinery.builder.packs import PackError, load_recipe, stand_ins

    recipes = load_recipes(REPO / "packs")
    assert "unixodbc-dev" in recipes["unixodbc"].replaces
    assert stand_ins(recipes, ["libgmp-dev", "zlib1g-dev", "libcurl4-gnutls-dev"]) == {
        "libgmp-dev": "gmp",
        "libcurl4-gnutls-dev": "curl",
    }
    # bookworm's libpq and libcrypto need glibc 2.34: a derived fix gets the packs
    assert stand_ins(recipes, ["libpq-dev", "libssl-dev", "libffi-dev"]) == {
        "libpq-dev": "libpq",
        "libssl-dev": "openssl",
    }
    bad = tmp_path / "libbar.toml"
    bad.write_text(BAR.replace('kind = "source"', 'kind = "source"\nreplace = ["x"]'))
    with pytest.raises(PackError, match=r"libbar.toml:4: unknown key 'replace'.*'replaces'"):
        load_recipe(bad)


BAR = """\
name = "libbar"
version = "0.1"
kind = "source"
replaces = ["libbar-dev"]
[source]
url = "file:///tmp/bar.tar.gz"
sha256 = "{sha}"
[build]
steps = ["make install DESTDIR={{destdir}} PREFIX={{prefix}}"]
""".format(sha="a" * 64)


def test_a_zig_build_installs_the_pack_instead_of_the_derived_package(tmp_path: Path) -> None:
    import contextlib
    from collections.abc import Iterator, Sequence

    from fixtures.buildroot import PURE_SDIST, FakeRoot, FakeSession, ready_cache, run_step

    from refinery.builder.packs import PackTarget
    from refinery.builder.roots import Mounts

    packs_dir = tmp_path / "packs"
    packs_dir.mkdir()
    (packs_dir / "libbar.toml").write_text(BAR)
    recipe = load_recipes(packs_dir)["libbar"]
    cache = ready_cache(tmp_path / "cache")[0]
    made = cache.packs / f"libbar-{identity(recipe, (2, 28))[:16]}"
    made.mkdir(parents=True)
    (made / ".complete").write_text("made before\n")  # in the cache: nothing is built
    installed: list[str] = []

    class PackSession(FakeSession):
        pack_target = PackTarget(Zig(tmp_path / "no-zig"), "s390x", (2, 28))

        def install_packs(self, packs: Sequence[Pack]) -> None:
            installed.extend(p.name for p in packs)

    class PackRoot(FakeRoot):
        @contextlib.contextmanager
        def _session(self, mounts: Mounts, purpose: str) -> Iterator[FakeSession]:
            yield PackSession(self, mounts, purpose)

    root = PackRoot()
    outcome = run_step(
        tmp_path,
        root,
        cache,
        PURE_SDIST,
        options={"packs": packs_dir},
        system_packages=("libbar-dev", "zlib1g-dev"),  # a derived fix's, and a hint's
    )
    assert installed == ["libbar"]
    assert root.installed == [("zlib1g-dev",)]  # the pack stands in for libbar-dev
    assert [p.name for p in outcome.packs] == ["libbar"]
    assert "pack libbar stands in for libbar-dev" in outcome.log.read_text()
