"""The smoke test's pure parts: what a wheel installs (its RECORD) and the verdict on a
smoke run's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures.wheels import Project, make_wheel

from refinery.builder.proc import ProcResult
from refinery.builder.smoke import IMPORT_SCRIPT, WheelContents, judge, wheel_contents

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
    # a package entry's imports: a dotted module the wheel provides, after the top ones;
    # one it does not provide (a typo, another wheel's) is not imported
    asked = wheel_contents(wheel(tmp_path, files), ("pkg", "pkg._x", "pkg.gone"))
    assert asked.modules == ("pkg", "extra_mod", "top_helper", "pkg._x")


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


def test_a_module_refusing_a_lone_import_needs_context(tmp_path: Path) -> None:
    contents = wheel_contents(wheel(tmp_path, {"psycopg_c/__init__.py": b""}))
    said = "the psycopg package should be imported before psycopg_c"
    got = judge(done(1), [f"SMOKE REFUSED psycopg_c {said}"], contents)
    assert got.ok and got.failed == ()
    assert got.needs_context == (f"psycopg_c (refuses a lone import: {said})",)
    assert got.note.startswith("import needs context: psycopg_c (refuses a lone import: ")


GUARDS = {
    # psycopg_c's guard: the package's own ImportError, nothing before it
    "guarded": "import sys\nif 'parent_pkg' not in sys.modules:\n"
    "    raise ImportError('the parent_pkg package\\n should be imported first')\n",
    # a broken build dressed up: raised while handling the import system's error
    "dressed": "try:\n    from . import _speedups\nexcept ImportError:\n"
    "    raise ImportError('reinstall: the C extension is missing')\n",
    # the import system's own error (a name that is not there)
    "system": "from os import refinery_no_such_name\n",
}


def test_the_import_script_tells_a_guard_from_a_failure(tmp_path: Path) -> None:
    for name, code in GUARDS.items():
        (tmp_path / "site" / name).mkdir(parents=True)
        (tmp_path / "site" / name / "__init__.py").write_text(code)
    plan = tmp_path / "plan.json"
    site = str(tmp_path / "site")
    plan.write_text(json.dumps({"machine": 22, "site": site, "elf": [], "modules": [*GUARDS]}))
    script = tmp_path / "smoke.py"
    script.write_text(IMPORT_SCRIPT)
    done_ = subprocess.run(
        [sys.executable, "-S", str(script), str(plan)],  # the site: PYTHONPATH only
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": site},
    )
    lines = [line for line in done_.stdout.splitlines() if line.startswith("SMOKE ")]
    assert lines == [
        "SMOKE REFUSED guarded the parent_pkg package should be imported first",
        "SMOKE FAIL dressed",
        "SMOKE FAIL system",
    ], done_.stdout
