"""The llvm15 pack and the hints that build llvmlite 0.44 with it: LLVM 15 built with
zig for the target, its llvm-config a script of a host llvm-config's answers (the
target's would need QEMU), and libllvmlite's exports kept by a version script (zig's
linker refuses --exclude-libs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fixtures.packsteps import first_fix, step_values

from refinery.builder.packs.recipes import PACK_PREFIX, PackRecipe
from refinery.core.models import FileRef, NodeStatus, PlanNode
from refinery.hints.advise import Advisor
from refinery.hints.models import Catalog

#: A host llvm-config of the pack's configuration, as far as the script step asks it:
#: like the real one it answers with the prefix it is installed in (the step copies it
#: into the staged pack's bin/ first).
HOST_LLVM_CONFIG = """#!/bin/sh
P="$(cd "$(dirname "$0")/.." && pwd)"
for a; do case "$a" in
  --version) echo 15.0.6;;
  --prefix) echo "$P";;
  --includedir) echo "$P/include";;
  --libdir) echo "$P/lib";;
  --cxxflags) echo "-I$P/include -std=c++14 -fno-exceptions";;
  --ldflags) echo "-L$P/lib";;
  --libs) echo "-lLLVMSystemZCodeGen -lLLVMCore -lLLVMSupport";;
  --libnames) echo "libLLVMSystemZCodeGen.a libLLVMCore.a libLLVMSupport.a";;
  --libfiles) echo "$P/lib/libLLVMSystemZCodeGen.a";;
  --link-static|all) ;;
  *) echo "x-$a";;
esac; done
"""


def script_step(recipe: PackRecipe) -> str:
    (step,) = [s for s in recipe.steps if "llvm-config.new" in s]
    return step


def llvm_config(tmp_path: Path, recipe: PackRecipe) -> Path:
    """Run the recipe's llvm-config step against the stand-in host llvm-config."""
    tree = tmp_path / "tree"
    host = tree / "build-host" / "bin" / "llvm-config"
    host.parent.mkdir(parents=True)
    host.write_text(HOST_LLVM_CONFIG)
    host.chmod(0o755)
    values = step_values(tmp_path / "stage", host="s390x-linux-gnu")
    argv = ["sh", "-c", script_step(recipe).format(**values)]
    subprocess.run(argv, cwd=tree, check=True, capture_output=True)
    return tmp_path / "stage" / PACK_PREFIX / "bin" / "llvm-config"


def ask(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], capture_output=True, text=True, check=False)


def test_the_pack_builds_llvm_15_for_systemz_only(recipes: dict[str, PackRecipe]) -> None:
    llvm = recipes["llvm15"]
    assert llvm.version.startswith("15.") and llvm.source is not None
    assert llvm.source.url.startswith(
        "https://deb.debian.org/debian/pool/main/l/llvm-toolchain-15/"
    )
    options = llvm.env["LLVM_OPTS"]
    assert "-DLLVM_TARGETS_TO_BUILD=SystemZ" in options and "-DLLVM_ENABLE_PIC=ON" in options
    cross = next(s for s in llvm.steps if s.startswith("cmake -S llvm -B build "))
    assert "-DLLVM_TABLEGEN=$PWD/build-host/bin/llvm-tblgen" in cross  # the host's tblgen
    assert "-DCMAKE_CXX_COMPILER=$CXX" in cross and "s390x-unknown-linux-gnu" in cross


def test_the_pack_llvm_config_answers_for_the_pack_not_the_build_machine(
    recipes: dict[str, PackRecipe], tmp_path: Path
) -> None:
    script = llvm_config(tmp_path, recipes["llvm15"])
    text = script.read_text()
    assert text.startswith("#!/bin/sh") and str(tmp_path) not in text  # no build paths
    assert not (script.parent / "llvm-config.host").exists()  # no x86-64 program left
    assert ask(script, "--version").stdout == "15.0.6\n"
    assert ask(script, "--libdir").stdout == f"/{PACK_PREFIX}/lib\n"
    assert ask(script, "--host-target").stdout == "s390x-unknown-linux-gnu\n"
    # what llvmlite's build.py asks, in its order
    libs = ask(script, "--system-libs", "--libs", "all").stdout.split()
    assert "-lLLVMSystemZCodeGen" in libs
    assert f"-I/{PACK_PREFIX}/include" in ask(script, "--cxxflags").stdout.split()
    wrong = ask(script, "--obj-root")
    assert wrong.returncode == 1 and "unsupported argument --obj-root" in wrong.stderr


def node(version: str) -> PlanNode:
    sdist = FileRef(f"llvmlite-{version}.tar.gz", "file:///x/l.tar.gz", "ab" * 32)
    return PlanNode("llvmlite", version, "3.11", NodeStatus.PENDING, "", True, wave=0, sdist=sdist)


@pytest.mark.parametrize(
    ("backend", "ids"),
    [
        ("cross", ("llvmlite-llvm15", "llvmlite-zig-exports", "setuptools-dry-run")),
        ("rootfs", ("setuptools-dry-run",)),
    ],
)
def test_llvmlite_044_gets_llvm_15_and_its_exports_from_attempt_1(
    catalog: Catalog, backend: str, ids: tuple[str, ...]
) -> None:
    remedy = Advisor(catalog, "apt").first_fix(node("0.44.0"), backend)
    assert remedy is not None and remedy.hint_ids == ids
    if backend == "cross":
        assert remedy.packs == ("llvm15",)
        assert [p.name for p in remedy.patches] == ["llvmlite-0.44-exports-map.patch"]
        assert "--version-script=llvmlite-exports.map" in remedy.env["LD_FLTO_FLAGS"]
    assert catalog.imports("llvmlite", "3.11") == ("llvmlite.binding",)
    assert first_fix(catalog, "llvmlite", "0.45.0") is None  # LLVM 20: another pack


def test_the_exports_patch_adds_a_version_script_of_llvmpy_only(tmp_path: Path) -> None:
    patch = Path(__file__).resolve().parents[2] / "hints/patches/llvmlite-0.44-exports-map.patch"
    (tmp_path / "ffi").mkdir()
    subprocess.run(["patch", "-p1", "--batch", "-i", str(patch)], cwd=tmp_path, check=True)
    script = (tmp_path / "ffi/llvmlite-exports.map").read_text()
    assert "global: LLVMPY_*;" in script and "local: *;" in script
