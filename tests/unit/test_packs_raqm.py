"""The raqm pack and the harfbuzz and fribidi packs it links (matplotlib 3.11's
system-libraqm): each built by meson for the target with a cross file naming the pack
build's zig tools, from Debian's upstream tarballs, and only the libraries raqm needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinery.builder.packs import load_recipes
from refinery.builder.packs.recipes import PackRecipe

REPO = Path(__file__).resolve().parents[2]
NAMES = ("harfbuzz", "fribidi", "raqm")


@pytest.fixture(scope="module")
def recipes() -> dict[str, PackRecipe]:
    return dict(load_recipes(REPO / "packs"))


def setup(recipe: PackRecipe) -> str:
    (step,) = [s for s in recipe.steps if s.startswith("meson setup ")]
    return step


@pytest.mark.parametrize("name", NAMES)
def test_meson_builds_for_the_target_with_zig_and_downloads_nothing(
    recipes: dict[str, PackRecipe], name: str
) -> None:
    recipe = recipes[name]
    cross = recipe.steps[0]
    for line in ("c = '$CC'", "cpp = '$CXX'", "cpu_family = 's390x'", "endian = 'big'"):
        assert line in cross, line
    assert "needs_exe_wrapper = true" in cross
    step = setup(recipe)
    assert "--cross-file refinery-cross.ini" in step
    assert "--wrap-mode=nofallback" in step  # no wrap of a missing dependency is fetched
    assert "--prefix={prefix} --libdir=lib" in step
    assert "-Ddefault_library=shared" in step
    assert recipe.steps[-1] == "DESTDIR={destdir} meson install -C build --no-rebuild"
    assert recipe.source is not None
    assert recipe.source.url.startswith("https://deb.debian.org/debian/pool/main/")


def test_raqm_links_the_packs_matplotlib_asks_for(recipes: dict[str, PackRecipe]) -> None:
    """matplotlib 3.11 wants raqm >= 0.10.4 by pkg-config; FriBidi, not SheenBidi (which
    Debian does not package). A pack's build sees only the packs it names, so zlib is
    named wherever freetype2.pc is read (its Requires.private)."""
    raqm = recipes["raqm"]
    assert tuple(int(x) for x in raqm.version.split(".")) >= (0, 10, 4)
    assert set(raqm.requires) == {"freetype", "harfbuzz", "fribidi", "zlib"}
    assert set(recipes["harfbuzz"].requires) == {"freetype", "zlib"}
    assert recipes["fribidi"].requires == ()
    assert "-Dsheenbidi=false" in setup(raqm)


def test_harfbuzz_is_only_the_shaper_with_freetype(recipes: dict[str, PackRecipe]) -> None:
    step = setup(recipes["harfbuzz"])
    assert "-Dfreetype=enabled" in step
    for feature in (
        "glib",
        "gobject",
        "cairo",
        "chafa",
        "icu",
        "graphite",
        "graphite2",
        "tests",
        "introspection",
        "docs",
        "utilities",
    ):
        assert f"-D{feature}=disabled" in step, feature


def test_fribidis_table_generators_are_compiled_for_the_build_machine(
    recipes: dict[str, PackRecipe],
) -> None:
    """FriBidi generates its Unicode tables with programs it builds ``native: true``
    and runs; the pack build's ``cc`` first on PATH is zig's for s390x, so a native file
    names the host's gcc."""
    fribidi = recipes["fribidi"]
    native = next(s for s in fribidi.steps if "refinery-native.ini" in s.split(">")[-1])
    assert "c = '/usr/bin/gcc'" in native
    step = setup(fribidi)
    assert "--native-file refinery-native.ini" in step
    for option in ("docs", "bin", "tests"):
        assert f"-D{option}=false" in step, option
