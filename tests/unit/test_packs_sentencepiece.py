"""sentencepiece 0.2.3 from packs instead of GitHub: the abseil, protobuf and flatbuffers
recipes (Debian's upstream tarballs; protoc and flatc of the same release as the
headers), and the hint whose reviewed patch lets sentencepiece's bundled build take
them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fixtures.packsteps import first_fix

from refinery.builder.packs.recipes import PackRecipe, closure
from refinery.hints.models import Catalog

PATCHES = Path(__file__).resolve().parents[2] / "hints" / "patches"
DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/"
PACKS = ("abseil", "protobuf", "flatbuffers")


@pytest.mark.parametrize("name", PACKS)
def test_the_recipes_build_debians_upstream_tarballs(
    recipes: dict[str, PackRecipe], name: str
) -> None:
    recipe = recipes[name]
    assert recipe.source is not None
    assert recipe.source.url.startswith(DEBIAN_POOL)
    assert f"_{recipe.version}" in recipe.source.url
    assert recipe.notes and recipe.description
    assert [r.name for r in closure(recipes, [name])] == [name]  # nothing else first


def test_abseil_is_new_enough_for_sentencepiece_and_static(recipes: dict[str, PackRecipe]) -> None:
    abseil = recipes["abseil"]
    # status_macros.h (sentencepiece includes it) first shipped in the 2026 releases
    assert int(abseil.version.split(".")[0]) >= 20260000
    assert any("status_macros.h" in s for s in abseil.steps)
    (configure,) = [s for s in abseil.steps if s.startswith("cmake -S")]
    for option in ("-DBUILD_SHARED_LIBS=OFF", "-DCMAKE_POSITION_INDEPENDENT_CODE=ON"):
        assert option in configure.split(), option


@pytest.mark.parametrize(("name", "tool"), [("protobuf", "protoc"), ("flatbuffers", "flatc")])
def test_the_code_generator_is_the_headers_release_and_runs_on_the_build_machine(
    recipes: dict[str, PackRecipe], name: str, tool: str
) -> None:
    """Generated code refuses another release's runtime: the pack's generator is built
    from the same tarball, with the build machine's compiler, and checked by version."""
    recipe = recipes[name]
    steps = "\n".join(recipe.steps)
    assert "-DCMAKE_CXX_COMPILER=/usr/bin/g++ " in steps  # build-host: not zig's target
    (check,) = [s for s in recipe.steps if f"build-host/{tool} --version" in s]
    assert check.endswith(f"{recipe.version}'"), check
    assert f"cp build-host/{tool} {{destdir}}{{prefix}}/bin/{tool}" in steps


def test_sentencepiece_023_takes_the_packs_through_the_patch(catalog: Catalog) -> None:
    remedy = first_fix(catalog, "sentencepiece", "0.2.3")
    assert remedy is not None and remedy.hint_ids == ("sentencepiece-installed-deps",)
    assert remedy.packs == PACKS
    (patch,) = remedy.patches
    assert patch.name == "sentencepiece-0.2.3-installed-deps.patch"
    assert not remedy.network  # nothing is fetched: no network from attempt 1
    # every switch the hint sets is one the patch's added lines read (a renamed one
    # would be ignored)
    added = "\n".join(line for line in patch.text.splitlines() if line.startswith("+"))
    for name in remedy.env:
        assert name in added, name
    assert set(remedy.env) == {
        "SPM_ABSL_PROVIDER",
        "SPM_PROTOBUF_PROVIDER",
        "SPM_FLATBUFFERS_PROVIDER",
        "SPM_DISABLE_OPENMP",
    }
    # other releases keep the network (their CMake fetches from GitHub)
    other = first_fix(catalog, "sentencepiece", "0.2.1")
    assert other is not None and other.network and not other.packs


def test_the_patch_touches_only_the_build_and_one_expression() -> None:
    patch = (PATCHES / "sentencepiece-0.2.3-installed-deps.patch").read_text()
    files = re.findall(r"^\+\+\+ b/(\S+)", patch, re.MULTILINE)
    assert files == [
        "build_bundled.sh",
        "sentencepiece/CMakeLists.txt",
        "sentencepiece/lite/sentencepiece_lite.cc",
        "setup.py",
    ]
    # unset, upstream's defaults: FetchContent ("module") and OpenMP
    assert "${SPM_ABSL_PROVIDER:-module}" in patch
    assert "NO_OPENMP = os.environ.get('SPM_DISABLE_OPENMP') == '1'" in patch
