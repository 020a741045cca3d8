"""lxml and python-xmlsec pair on one libxml2: python-xmlsec refuses to import unless
``lxml.etree.LIBXML_VERSION`` has its own libxml2's major.minor ("lxml & xmlsec libxml2
library version mismatch"), and the two pass trees to each other. Both get their
libxml2 from the same pack (same recipe, same identity for a target), so the grafted
copies are the same file under the same name and the process loads one libxml2."""

from __future__ import annotations

from refinery.builder.packs import identity
from refinery.builder.packs.recipes import PackRecipe, closure
from refinery.hints.models import Catalog

TARGET = (2, 28)


def packs_before_attempt_1(catalog: Catalog, package: str) -> tuple[str, ...]:
    """The packs a package's entry names through its hints."""
    names: list[str] = []
    for entry in catalog.for_package(package, "3.11"):
        for hint_id in entry.hints:
            hint = catalog.get(hint_id)
            assert hint is not None, hint_id
            names += hint.fix.packs
    return tuple(names)


def identities(recipes: dict[str, PackRecipe], names: tuple[str, ...]) -> dict[str, str]:
    """Each pack's identity as :func:`ensure_packs` computes it (dependencies first)."""
    made: dict[str, str] = {}
    for recipe in closure(recipes, names):
        made[recipe.name] = identity(recipe, TARGET, [made[d] for d in recipe.requires])
    return made


def test_lxml_and_xmlsec_link_the_same_libxml2_and_libxslt_packs(
    catalog: Catalog, recipes: dict[str, PackRecipe]
) -> None:
    lxml = identities(recipes, packs_before_attempt_1(catalog, "lxml"))
    xmlsec = identities(recipes, packs_before_attempt_1(catalog, "xmlsec"))
    assert {"libxml2", "libxslt"} <= set(lxml)
    assert {"libxml2", "libxslt", "xmlsec1", "openssl"} <= set(xmlsec)
    assert lxml["libxml2"] == xmlsec["libxml2"]
    assert lxml["libxslt"] == xmlsec["libxslt"]


def test_xmlsec1_builds_on_the_libxml2_pack_not_a_copy_of_its_own(
    recipes: dict[str, PackRecipe],
) -> None:
    xmlsec1 = recipes["xmlsec1"]
    assert {"libxml2", "libxslt"} <= set(xmlsec1.requires)
    libxml2s = [r.name for r in recipes.values() if r.name.startswith("libxml2")]
    assert libxml2s == ["libxml2"]  # one libxml2 recipe for every package


def test_the_libxml2_pack_is_shared_libraries_only(recipes: dict[str, PackRecipe]) -> None:
    """A static libxml2 inside one extension would be a second copy in the process."""
    (configure,) = [s for s in recipes["libxml2"].steps if s.startswith("./configure ")]
    assert "--disable-static" in configure
    assert "--enable-static" not in configure


def test_the_xmlsec1_hint_says_how_the_pair_imports(catalog: Catalog) -> None:
    hint = catalog.get("xmlsec1")
    assert hint is not None
    assert "lxml" in hint.note and "same libxml2" in hint.note
