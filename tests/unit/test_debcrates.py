"""Crates from Debian's archive: the index, the closure, the vendor folder, the config."""

from __future__ import annotations

import tomllib
from pathlib import Path

from refinery.builder.crossrust import crates_io_unreachable
from refinery.upstream.debcrates import (
    CrateArchive,
    cargo_config,
    lock_crates,
    package_name,
    parse_packages,
)

PYO3_DEPENDS = ", ".join(
    (
        "librust-libc-0.2+default-dev (>= 0.2.62-~~)",
        "librust-memoffset-0.8+default-dev",
        "librust-pyo3-ffi-0.22.6-dev",
        "librust-indoc-2+default-dev | librust-indoc-1-dev",
    )
)
PYO3_PROVIDES = ", ".join(
    f"librust-pyo3{p}-dev (= 0.22.6-3)" for p in ("+default", "-0", "-0.22", "-0.22.6")
)
PACKAGES = f"""Package: librust-pyo3-dev
Source: rust-pyo3
Version: 0.22.6-3
Depends: {PYO3_DEPENDS}
Provides: {PYO3_PROVIDES}
Filename: pool/main/r/rust-pyo3/librust-pyo3-dev_0.22.6-3_amd64.deb
SHA256: aaaa

Package: librust-pyo3-ffi-dev
Version: 0.22.6-1
Depends: librust-libc-0.2+default-dev
Provides: librust-pyo3-ffi-0.22-dev (= 0.22.6-1), librust-pyo3-ffi-0.22.6-dev (= 0.22.6-1)
Filename: pool/main/r/rust-pyo3-ffi/librust-pyo3-ffi-dev_0.22.6-1_amd64.deb
SHA256: bbbb

Package: librust-libc-dev
Version: 0.2.169-1
Provides: librust-libc-0.2-dev (= 0.2.169-1), librust-libc-0.2+default-dev (= 0.2.169-1)
Filename: pool/main/r/rust-libc/librust-libc-dev_0.2.169-1_amd64.deb
SHA256: cccc

Package: librust-memoffset-dev
Version: 0.8.0-1
Provides: librust-memoffset-0.8-dev (= 0.8.0-1), librust-memoffset-0.8+default-dev (= 0.8.0-1)
Filename: pool/main/r/rust-memoffset/librust-memoffset-dev_0.8.0-1_amd64.deb
SHA256: dddd

Package: librust-syn-1-dev
Version: 1.0.109-3
Provides: librust-syn-1.0-dev (= 1.0.109-3)
Filename: pool/main/r/rust-syn-1/librust-syn-1-dev_1.0.109-3_amd64.deb
SHA256: eeee

Package: python3-not-a-crate
Version: 1
Filename: pool/main/p/x/x.deb
"""


def test_package_names_follow_debian_and_semver_slots() -> None:
    assert package_name("pyo3_ffi") == "librust-pyo3-ffi-dev"
    assert package_name("pyo3", "0.22.2") == "librust-pyo3-0.22-dev"
    assert package_name("syn", "1.0.109") == "librust-syn-1-dev"
    assert package_name("Inflector", "") == "librust-inflector-dev"


def test_the_packages_index_gives_crates_their_depends_and_provides() -> None:
    packages, names = parse_packages(PACKAGES)
    assert set(packages) == {
        "librust-pyo3-dev",
        "librust-pyo3-ffi-dev",
        "librust-libc-dev",
        "librust-memoffset-dev",
        "librust-syn-1-dev",
    }
    pyo3 = packages["librust-pyo3-dev"]
    assert pyo3.version == "0.22.6-3" and pyo3.sha256 == "aaaa"
    assert pyo3.depends[-1] == ("librust-indoc-2+default-dev", "librust-indoc-1-dev")
    assert names["librust-pyo3-0.22-dev"] == "librust-pyo3-dev"
    assert names["librust-syn-1-dev"] == "librust-syn-1-dev"


def archive_of(*suites: str, tmp_path: Path) -> CrateArchive:
    archive = CrateArchive("http://mirror.invalid/debian", tmp_path, suites=suites)
    archive._indexes = [parse_packages(PACKAGES) for _ in suites]
    return archive


def test_the_closure_follows_depends_and_names_what_debian_lacks(tmp_path: Path) -> None:
    archive = archive_of("trixie", tmp_path=tmp_path)
    chosen, missing = archive.closure({"pyo3": "0.22.2", "wasi": "0.11.0", "syn": "1.0.100"})
    assert sorted(p.package for p in chosen) == [
        "librust-libc-dev",
        "librust-memoffset-dev",  # Debian's pyo3 needs memoffset 0.8, not the lock's 0.9
        "librust-pyo3-dev",
        "librust-pyo3-ffi-dev",
        "librust-syn-1-dev",
    ]
    assert missing == ["wasi"]


def test_a_lock_file_names_its_registry_crates(tmp_path: Path) -> None:
    (tmp_path / "Cargo.lock").write_text(
        'version = 3\n[[package]]\nname = "itoa"\nversion = "1.0.11"\n'
        'source = "registry+https://github.com/rust-lang/crates.io-index"\n'
        '[[package]]\nname = "demo"\nversion = "0.1.0"\n'
    )
    assert lock_crates(tmp_path) == {"itoa": "1.0.11"}


def test_without_a_lock_the_manifest_names_them(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text(
        '[package]\nname = "demo"\nversion = "0.1.0"\n'
        '[dependencies]\npyo3 = { version = "0.22.2", features = ["abi3"] }\nitoa = "1"\n'
        'local = { path = "../local" }\nrenamed = { package = "fancy-regex", version = "0.11" }\n'
        '[target."cfg(unix)".dependencies]\nlibc = "0.2"\n'
    )
    assert lock_crates(tmp_path) == {
        "pyo3": "0.22.2",
        "itoa": "1",
        "fancy-regex": "0.11",
        "libc": "0.2",
    }


def test_the_cargo_config_replaces_crates_io_with_the_vendor_folder(tmp_path: Path) -> None:
    config = tomllib.loads(cargo_config(tmp_path / "crates"))
    assert config["source"]["crates-io"]["replace-with"] == "debian-archive"
    assert config["source"]["debian-archive"]["directory"] == str(tmp_path / "crates")
    assert config["net"]["offline"] is True
    assert config["resolver"]["incompatible-rust-versions"] == "fallback"


def test_an_unreachable_registry_is_told_from_other_fetch_failures() -> None:
    # real lines of bcrypt 4.2.0's and cryptography 43.0.3's failed `cargo fetch` here
    bcrypt = (
        "error: failed to get `base64` as a dependency of package `bcrypt-rust v0.1.0 "
        "(/tmp/x/src/_bcrypt)`",
        "Caused by:",
        "  [6] Could not resolve host: index.crates.io",
    )
    assert crates_io_unreachable(bcrypt)
    assert not crates_io_unreachable(
        ("error: failed to parse manifest at `/tmp/x/Cargo.toml`", "Caused by:", "  bad toml")
    )
