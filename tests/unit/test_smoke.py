"""The smoke test's pure parts: what a wheel installs (its RECORD) and the verdict on a
smoke run's output."""

from __future__ import annotations

from pathlib import Path

from fixtures.wheels import Project, make_wheel

from refinery.builder.proc import ProcResult
from refinery.builder.smoke import WheelContents, judge, wheel_contents

SO = "cpython-311-s390x-linux-gnu.so"
ELF = b"\x7fELF\x02\x02\x01" + b"\0" * 11 + (22).to_bytes(2, "big") + b"\0" * 40


def wheel(tmp: Path, files: dict[str, bytes], requires: tuple[str, ...] = ()) -> Path:
    filename, data, _ = make_wheel(
        Project("demo", "1.0", requires), "cp311-cp311-linux_s390x", files=files
    )
    path = tmp / filename
    path.write_bytes(data)
    return path


def done(code: int = 0, *, timed_out: bool = False) -> ProcResult:
    return ProcResult(argv=("sh",), exit_code=code, seconds=1.0, timed_out=timed_out, tail=())


def ruamel_clib(tmp: Path) -> WheelContents:
    """ruamel.yaml.clib 0.2.15's layout: a top-level helper extension and a module
    inside the ``ruamel`` namespace (no ``ruamel/__init__.py``)."""
    files = {
        f"_ruamel_yaml.{SO}": ELF,
        "ruamel/yaml/clib/__init__.py": b"",
        "ruamel_yaml_clib.libs/libyaml-0a1b2c3d.so.0.2.5": ELF,
        "ruamel.yaml.clib-0.2.15.dist-info/top_level.txt": b"_ruamel_yaml\nruamel\n",
    }
    return wheel_contents(wheel(tmp, files), ("_ruamel_yaml", "ruamel"))


def test_modules_come_from_record_not_top_level_txt(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": b"",
        f"pkg/_x.{SO}": ELF,  # top_level.txt says "_x": installed only inside pkg
        "pkg/data/table.json": b"{}",
        "demo-1.0.data/purelib/extra_mod.py": b"",
        "demo-1.0.data/scripts/tool": b"#!/bin/sh\n",
        "top_helper.py": b"",
    }
    got = wheel_contents(wheel(tmp_path, files), ("_x", "pkg"))
    assert got.modules == ("pkg", "extra_mod", "top_helper")
    assert got.shared_objects == (f"pkg/_x.{SO}",)
    assert got.packages == {"pkg"}
    assert {"pkg", "pkg._x", "extra_mod", "top_helper"} <= got.provided


def test_namespace_and_libs_folders(tmp_path: Path) -> None:
    got = ruamel_clib(tmp_path)
    assert got.modules == ("_ruamel_yaml", "ruamel")
    assert got.shared_objects == (
        f"_ruamel_yaml.{SO}",
        "ruamel_yaml_clib.libs/libyaml-0a1b2c3d.so.0.2.5",
    )
    assert got.packages == {"ruamel.yaml.clib"}
    assert not got.owns("ruamel.yaml.error")  # the namespace is shared, not the wheel's
    assert got.owns("ruamel.yaml.clib.missing")  # inside its own regular package


def test_requirements_without_extras(tmp_path: Path) -> None:
    requires = ("Ruamel.Yaml>=0.17", 'numpy; python_version >= "3.9"', 'pytest; extra == "test"')
    got = wheel_contents(wheel(tmp_path, {"demo/__init__.py": b""}, requires))
    assert got.requires == {"ruamel-yaml", "numpy"}
    assert got.declares("ruamel.yaml.error") and got.declares("numpy.linalg")
    assert not got.declares("pytest")


def test_missing_parent_package_needs_context(tmp_path: Path) -> None:
    contents = ruamel_clib(tmp_path)
    lines = [
        f"SMOKE ELF OK _ruamel_yaml.{SO}",
        "SMOKE ELF OK ruamel_yaml_clib.libs/libyaml-0a1b2c3d.so.0.2.5",
        "SMOKE MISSING _ruamel_yaml ruamel.yaml.error",
        "SMOKE OK ruamel None",
    ]
    got = judge(done(1), lines, contents)
    assert got.ok and got.failed == () and got.reason == ""
    assert got.needs_context == ("_ruamel_yaml (needs ruamel.yaml.error)",)
    assert got.note.startswith("import needs context: _ruamel_yaml (needs ruamel.yaml.error)")


def test_a_declared_requirement_missing_fails(tmp_path: Path) -> None:
    contents = wheel_contents(wheel(tmp_path, {"demo/__init__.py": b""}, ("six",)))
    got = judge(done(1), ["SMOKE MISSING demo six"], contents)
    assert not got.ok and got.failed == ("demo",)
    assert got.reason == "import failed in a clean root: demo"


def test_a_missing_own_submodule_fails(tmp_path: Path) -> None:
    contents = wheel_contents(wheel(tmp_path, {"demo/__init__.py": b""}))
    got = judge(done(1), ["SMOKE MISSING demo demo._speedups"], contents)
    assert not got.ok and got.failed == ("demo",)


def test_a_shared_object_that_does_not_load_fails_even_if_imports_pass(tmp_path: Path) -> None:
    contents = ruamel_clib(tmp_path)
    lines = [
        f"SMOKE ELF FAIL _ruamel_yaml.{SO}: undefined symbol: f",
        "SMOKE ELF OK ruamel_yaml_clib.libs/libyaml-0a1b2c3d.so.0.2.5",
        "SMOKE MISSING _ruamel_yaml ruamel.yaml.error",
        "SMOKE OK ruamel None",
    ]
    got = judge(done(1), lines, contents)
    assert not got.ok and got.note == ""
    assert got.elf_failed == (f"_ruamel_yaml.{SO}: undefined symbol: f",)
    assert got.reason.startswith("shared object not loadable in a clean root: _ruamel_yaml")


def test_other_import_errors_and_silence_fail(tmp_path: Path) -> None:
    contents = wheel_contents(wheel(tmp_path, {"demo/__init__.py": b""}))
    assert judge(done(1), ["SMOKE FAIL demo"], contents).reason == (
        "import failed in a clean root: demo"
    )
    crashed = judge(done(139), [], contents)  # killed before it said anything
    assert not crashed.ok and crashed.reason == "smoke test exited with 139"
    late = judge(done(timed_out=True), ["SMOKE OK demo /x"], contents)
    assert not late.ok and late.reason == "smoke test timed out"
    assert judge(done(), ["SMOKE OK demo /site/demo/__init__.py"], contents).ok
