"""Library pack recipes (strict TOML), pack identity, and a fix's packs and config
settings on their way from the catalog to the attempt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refinery.builder.packs import PackError, identity, load_recipe, load_recipes
from refinery.builder.packs.make import pc_file
from refinery.builder.packs.recipes import closure
from refinery.core.models import Attempt, NodeStatus, PackUse
from refinery.hints import load_catalog
from refinery.hints.loader import CatalogError
from refinery.hints.models import Hint, HintFix, Remedy, fix_lines
from refinery.store import layout

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 64

GOOD = f"""\
name = "libfoo"
version = "1.2"
kind = "source"
requires = ["libbar"]
notes = "built without SSL"

[source]
url = "https://deb.debian.org/debian/pool/main/f/foo/foo_1.2.orig.tar.gz"
sha256 = "{SHA}"

[build]
steps = ["./configure --host={{host}} --prefix={{prefix}}", "make install DESTDIR={{destdir}}"]
env = {{CFLAGS = "-O2"}}
"""

BAR = f"""\
name = "libbar"
version = "0.1"
kind = "source"
[source]
url = "file:///tmp/bar.tar.gz"
sha256 = "{SHA}"
[build]
steps = ["make install DESTDIR={{destdir}} PREFIX={{prefix}}"]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PackError) as info:
        load_recipe(path)
    return list(info.value.problems)


def test_a_good_recipe_loads(tmp_path: Path) -> None:
    write(tmp_path, "libbar", BAR)
    recipe = load_recipes(tmp_path)["libbar"]
    write(tmp_path, "libfoo", GOOD)
    recipes = load_recipes(tmp_path)
    foo = recipes["libfoo"]
    assert (foo.kind, foo.version, foo.requires, foo.notes) == (
        "source",
        "1.2",
        ("libbar",),
        "built without SSL",
    )
    assert foo.source is not None and foo.source.sha256 == SHA
    assert foo.env == {"CFLAGS": "-O2"} and len(foo.steps) == 2
    assert [r.name for r in closure(recipes, ["libfoo"])] == ["libbar", "libfoo"]
    assert recipe.digest == SHA


def test_unknown_key_names_file_line_and_the_closest_key(tmp_path: Path) -> None:
    path = write(tmp_path, "libfoo", GOOD.replace("[build]\nsteps", "[build]\nstep"))
    found = problems(path)
    assert any(":12: unknown key 'step' in [build]; did you mean 'steps'?" in p for p in found), (
        found
    )
    path = write(tmp_path, "libfoo", GOOD.replace("notes =", "note ="))
    assert any(
        ":5: unknown key 'note' in the recipe; did you mean 'notes'?" in p for p in problems(path)
    )


def test_bad_types_and_values_are_reported(tmp_path: Path) -> None:
    text = GOOD.replace('version = "1.2"', "version = 1.2").replace(f'"{SHA}"', '"nothex"')
    found = problems(write(tmp_path, "libfoo", text.replace("{host}", "{hots}")))
    assert any(":2: version must be a string, not float 1.2" in p for p in found), found
    assert any(":9: sha256 'nothex' is not 64 hex digits" in p for p in found), found
    assert any("unknown placeholder {hots} in a step; did you mean {host}?" in p for p in found)
    found = problems(write(tmp_path, "libfoo", GOOD.replace('kind = "source"', 'kind = "deb"')))
    assert any(":3: kind 'deb' is not one of source, wheel" in p for p in found), found
    found = problems(write(tmp_path, "other", GOOD))
    assert any("must be the file's stem" in p for p in found), found
    found = problems(write(tmp_path, "libfoo", "name = [\n"))
    assert any("invalid TOML" in p for p in found), found


def test_requires_must_name_a_recipe(tmp_path: Path) -> None:
    write(tmp_path, "libfoo", GOOD.replace('["libbar"]', '["libbaz"]'))
    write(tmp_path, "libbar", BAR)
    with pytest.raises(PackError) as info:
        load_recipes(tmp_path)
    assert "libfoo.toml:4: unknown pack 'libbaz' in requires; did you mean 'libbar'?" in str(
        info.value.problems
    )


def test_the_repository_recipes_load() -> None:
    recipes = load_recipes(REPO / "packs")
    assert {"libpq", "openssl", "openblas"} <= set(recipes)
    assert recipes["libpq"].requires == ("openssl",)
    assert "OpenSSL" in recipes["libpq"].notes  # the record says how it was built
    wheel = recipes["openblas"].wheel
    assert wheel is not None and set(wheel.pkgconfig) == {"openblas", "scipy-openblas"}
    pc = pc_file(wheel, "openblas", "0.3.31")
    assert "prefix=/opt/refinery-packs" in pc and "-lscipy_openblas" in pc


def test_identity_changes_with_every_input(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, "libbar", BAR))
    base = identity(recipe, (2, 28))
    assert base == identity(recipe, (2, 28)) and len(base) == 64
    assert base != identity(recipe, (2, 17))
    assert base != identity(recipe, (2, 28), ["d" * 64])
    edited = load_recipe(write(tmp_path, "libbar", BAR.replace("0.1", "0.2")))
    assert base != identity(edited, (2, 28))
    assert layout.pack_key("libbar", base) == f"packs/{base}/libbar.tar.gz"


CATALOG = """\
hints:
  - id: libpq
    match: ['pg_config executable not found']
    fix:
      apt: [libpq-dev]
      packs: [libpq]
  - id: blas
    match: ['No BLAS']
    fix:
      config_settings: ["setup-args=-Dallow-noblas=false"]
"""


def test_packs_and_config_settings_go_from_the_catalog_to_the_remedy(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text(CATALOG)
    catalog = load_catalog(tmp_path)
    libpq, blas = catalog.get("libpq"), catalog.get("blas")
    assert libpq is not None and blas is not None
    assert libpq.fix.packs == ("libpq",)
    assert fix_lines(libpq.fix, ("apt",)) == ("apt: libpq-dev", "packs: libpq")
    assert fix_lines(blas.fix) == ("config-settings: setup-args=-Dallow-noblas=false",)
    assert blas.fix.applicable("dnf")  # a setting alone is a fix
    remedy = Remedy.from_hints((libpq, blas), "apt")
    assert remedy.packs == ("libpq",) and remedy.pack_packages == ("libpq-dev",)
    assert remedy.system_packages == ("libpq-dev",)
    assert remedy.config_settings == ("setup-args=-Dallow-noblas=false",)
    assert "packs: libpq" in remedy.recipes
    assert not remedy.adds_to(libpq, "apt")
    other = Hint("x", (), HintFix(packs=("openblas",)))
    assert remedy.adds_to(other, "apt")


def test_bad_packs_and_settings_are_catalog_errors(tmp_path: Path) -> None:
    bad = CATALOG.replace("packs: [libpq]", "packs: [LibPQ!]").replace(
        "setup-args=-Dallow-noblas=false", "nonsense"
    )
    (tmp_path / "h.yaml").write_text(bad)
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    text = [str(p) for p in info.value.problems]
    assert any("h.yaml:6: hint 'libpq': 'LibPQ!' is not a pack name" in p for p in text), text
    assert any("config setting 'nonsense' is not key=value" in p for p in text), text


def test_the_record_lists_packs_and_reads_old_records() -> None:
    use = PackUse("libpq", "15.18", "b" * 64, "with OpenSSL")
    attempt = Attempt(n=1, started="t", packs=(use,))
    data = json.loads(json.dumps(attempt.to_json()))
    assert data["packs"] == [
        {"name": "libpq", "version": "15.18", "sha256": "b" * 64, "notes": "with OpenSSL"}
    ]
    assert Attempt.from_json(data) == attempt
    plain = Attempt(n=2, started="t").to_json()
    assert "packs" not in plain and Attempt.from_json(plain).packs == ()


def test_the_repository_catalog_names_existing_packs() -> None:
    catalog = load_catalog(REPO / "hints")
    recipes = load_recipes(REPO / "packs")
    named = {p for h in catalog.hints for p in h.fix.packs}
    assert named and named <= set(recipes)
    entry = catalog.for_package("numpy", "3.11")
    assert entry and "numpy-openblas" in entry[0].hints


def test_a_fix_reaches_the_build_command_and_other_roots_use_distro_packages(
    tmp_path: Path,
) -> None:
    from fixtures.buildroot import PURE_SDIST, FakeRoot, ready_cache, run_step

    cache = ready_cache(tmp_path / "cache")[0]
    root = FakeRoot()
    outcome = run_step(
        tmp_path,
        root,
        cache,
        PURE_SDIST,
        packs=("libpq",),
        pack_packages=("libpq-dev",),
        system_packages=("libpq-dev", "zlib1g-dev"),
        config_settings=("setup-args=-Dallow-noblas=false",),
    )
    assert outcome.status is NodeStatus.BUILT, outcome.reason
    build = next(argv for purpose, argv, _ in root.calls if purpose == "build")
    assert "-Csetup-args=-Dallow-noblas=false" in build
    # a root without packs installs the fix's distro packages, pack-backed ones too
    assert root.installed == [("libpq-dev", "zlib1g-dev")]
    assert outcome.packs == ()
    assert "not used here" in outcome.log.read_text()


def test_a_pack_in_the_store_is_fetched_not_built(tmp_path: Path) -> None:
    from refinery.builder.packs import PackMaker, PackTarget, ensure_packs
    from refinery.builder.zig import Zig
    from refinery.store import LocalBlobStore

    recipe = load_recipe(write(tmp_path / "packs", "libbar", BAR))  # its source is absent
    ident = identity(recipe, (2, 28))
    stage = tmp_path / "stage" / "opt/refinery-packs/lib"
    stage.mkdir(parents=True)
    (stage / "libbar.so.1").write_bytes(b"\x7fELF")
    tarball = tmp_path / "bar.tar.gz"
    import tarfile

    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "stage/opt", arcname="opt")
    store = LocalBlobStore(tmp_path / "store")
    store.put_if_absent(layout.pack_key("libbar", ident), tarball.read_bytes())
    target = PackTarget(Zig(tmp_path / "no-zig"), "s390x", (2, 28))
    maker = PackMaker(cache=tmp_path / "cache", target=target, store=store)
    (pack,) = ensure_packs({"libbar": recipe}, ["libbar"], maker)
    assert pack.identity == ident and (pack.lib / "libbar.so.1").read_bytes() == b"\x7fELF"
    assert (pack.folder / ".complete").is_file()
    assert ensure_packs({"libbar": recipe}, ["libbar"], maker) == (pack,)  # the cache now
