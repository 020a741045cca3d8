"""The pixman and cairo packs (pycairo): their recipes, the hint and package entry that
name them, and what the cairo recipe leaves out (X11, fontconfig, GLib)."""

from __future__ import annotations

import re

import pytest

from refinery.builder.packs import stand_ins
from refinery.builder.packs.recipes import PackRecipe, closure
from refinery.hints.matcher import as_log_lines, scan
from refinery.hints.models import Catalog


def configure_options(recipe: PackRecipe) -> dict[str, str]:
    """``--enable-X=V``/``--disable-X`` of the recipe's configure step, as ``X: V``."""
    (configure,) = [s for s in recipe.steps if s.startswith("./configure ")]
    options = {m[0]: m[1] or "yes" for m in re.findall(r"--enable-([\w-]+)(?:=(\w+))?", configure)}
    options.update({name: "no" for name in re.findall(r"--disable-([\w-]+)", configure)})
    return options


def test_cairo_builds_bookworms_tarball_on_the_image_library_packs(
    recipes: dict[str, PackRecipe],
) -> None:
    cairo, pixman = recipes["cairo"], recipes["pixman"]
    order = [r.name for r in closure(recipes, ["cairo"])]
    assert order[-1] == "cairo"
    assert set(order) == {"pixman", "zlib", "libpng", "freetype", "cairo"}
    assert order.index("zlib") < order.index("libpng")  # dependencies first
    for recipe in (cairo, pixman):
        assert recipe.source is not None
        assert recipe.source.url.startswith("https://deb.debian.org/debian/pool/main/")
        assert f"_{recipe.version}.orig.tar." in recipe.source.url
        assert recipe.notes and recipe.description
    # pycairo 1.29 needs cairo >= 1.15.10; 1.16 is bookworm's and still has autotools
    assert tuple(int(p) for p in cairo.version.split(".")) >= (1, 15, 10)


def test_cairo_has_the_surfaces_pycairo_exposes_and_no_desktop_stack(
    recipes: dict[str, PackRecipe],
) -> None:
    options = configure_options(recipes["cairo"])
    for wanted in ("png", "ft", "pdf", "ps", "svg", "script", "shared"):
        assert options.get(wanted) == "yes", wanted
    for unwanted in ("xlib", "xcb", "xlib-xrender", "fc", "gobject", "gl", "trace", "static"):
        assert options.get(unwanted) == "no", unwanted


def test_pixman_builds_its_library_only(recipes: dict[str, PackRecipe]) -> None:
    """The demos want GTK and the tests are not run: only pixman/ and the .pc file."""
    pixman = recipes["pixman"]
    assert pixman.requires == ()
    assert any(s.startswith("make -j{jobs} -C pixman") for s in pixman.steps)
    assert not any(re.fullmatch(r"make -j\{jobs\}", s) for s in pixman.steps)
    assert configure_options(pixman)["openmp"] == "no"  # zig has no OpenMP runtime


def test_the_cairo_pack_stands_in_for_debians_cairo(recipes: dict[str, PackRecipe]) -> None:
    assert stand_ins(recipes, ["libcairo2-dev", "pkg-config"]) == {"libcairo2-dev": "cairo"}


#: pycairo 1.29.2's meson in campaign run 2 (cross, zig for manylinux_2_28_s390x)
PYCAIRO_FAILURE = (
    "Run-time dependency cairo found: NO  (tried pkg-config)\n"
    '../cairo/meson.build:31:12: ERROR: Dependency "cairo" not found (tried pkg-config)'
)


def test_pycairo_gets_the_cairo_pack_before_its_first_attempt(
    catalog: Catalog, recipes: dict[str, PackRecipe]
) -> None:
    (entry,) = catalog.for_package("pycairo", "3.11")
    assert entry.hints == ("cairo",)
    hint = catalog.get("cairo")
    assert hint is not None and hint.fix.packs == ("cairo",)
    assert set(hint.fix.packs) <= set(recipes)
    assert hint.fix.packages_for("apt") and hint.fix.packages_for("dnf")
    lines = as_log_lines(PYCAIRO_FAILURE.splitlines())
    assert [m.hint.id for m in scan(catalog, lines, package="pycairo", backend="cross")] == [
        "cairo"
    ]


@pytest.mark.parametrize(
    "clean",
    [
        "Run-time dependency cairo found: YES 1.16.0",
        "Run-time dependency cairo-ft found: NO (tried pkg-config)",
        "checking for cairo.h... yes",
    ],
)
def test_the_cairo_hint_ignores_clean_lines(catalog: Catalog, clean: str) -> None:
    assert "cairo" not in {m.hint.id for m in scan(catalog, as_log_lines([clean]))}
