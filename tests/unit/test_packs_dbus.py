"""The dbus pack (libdbus-1 for dbus-python): the client library only, answering with
Debian's system paths (the bus socket, the machine id), not the pack prefix's; and the
libffi and pcre2 packs GLib (dbus-python's other library) will need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from refinery.builder.packs import load_recipes, stand_ins
from refinery.builder.packs.recipes import PackRecipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dbus() -> PackRecipe:
    return load_recipes(REPO / "packs")["dbus"]


def configure(recipe: PackRecipe) -> str:
    (step,) = [s for s in recipe.steps if s.startswith("./configure ")]
    return step


def test_libdbus_finds_the_system_bus_and_machine_id_where_debian_puts_them(
    dbus: PackRecipe,
) -> None:
    """libdbus compiles in the system bus address and the machine-id paths; below the
    pack prefix (/opt/refinery-packs/var/run/…) no user's system bus would be found."""
    step = configure(dbus)
    assert "--with-system-socket=/run/dbus/system_bus_socket" in step
    assert "--localstatedir=/var" in step  # /var/lib/dbus/machine-id
    assert "--sysconfdir=/etc" in step  # /etc/machine-id
    assert "--prefix={prefix}" in step


def test_libdbus_is_built_without_the_daemon_and_its_desktop_dependencies(
    dbus: PackRecipe,
) -> None:
    step = configure(dbus)
    for feature in ("systemd", "selinux", "apparmor", "libaudit", "x11-autolaunch", "tests"):
        assert f"--disable-{feature}" in step, feature
    builds = [s for s in dbus.steps if s.startswith("make ")]
    assert builds[0] == "make -j{jobs} -C dbus libdbus-1.la"  # not bus/ (expat), tools/
    assert re.search(r"'EXPAT_CFLAGS= ' 'EXPAT_LIBS= '", step)
    assert dbus.requires == ()


def test_the_dbus_pack_stands_in_for_libdbus_dev(dbus: PackRecipe) -> None:
    assert stand_ins({"dbus": dbus}, ["libdbus-1-dev", "libglib2.0-dev"]) == {
        "libdbus-1-dev": "dbus"
    }


def test_glibs_dependencies_are_packs_that_change_no_other_build() -> None:
    recipes = load_recipes(REPO / "packs")
    libffi, pcre2 = recipes["libffi"], recipes["pcre2"]
    # lib/, not lib64/: the pack prefix has one library folder the wrappers search
    assert "--disable-multi-os-directory" in configure(libffi)
    # cffi's builds keep the sysroot's libffi-dev (the libffi hint has no pack)
    assert libffi.replaces == () and pcre2.replaces == ()
    step = configure(pcre2)
    assert "--enable-pcre2-8" in step and "--disable-jit" in step
    assert "--disable-pcre2-16" in step and "--disable-pcre2-32" in step


def test_glib_is_built_by_meson_for_the_target_with_the_packs_it_needs() -> None:
    """GLib builds with meson only: a cross file naming the pack build's zig tools, the
    checks that would run target programs answered in its properties."""
    recipes = load_recipes(REPO / "packs")
    glib = recipes["glib"]
    assert set(glib.requires) == {"libffi", "pcre2", "zlib"}
    cross, setup = glib.steps[0], glib.steps[1]
    for line in ("[binaries]", "c = '$CC'", "cpu_family = 's390x'", "endian = 'big'"):
        assert line in cross, line
    for answer in ("needs_exe_wrapper = true", "growing_stack = false", "have_c99_snprintf"):
        assert answer in cross, answer
    assert setup.startswith("meson setup build --cross-file refinery-cross.ini --prefix={prefix}")
    for option in ("-Dlibmount=disabled", "-Dselinux=disabled", "-Dtests=false", "-DNVALGRIND"):
        assert option in setup, option
    assert stand_ins(recipes, ["libglib2.0-dev"]) == {"libglib2.0-dev": "glib"}
