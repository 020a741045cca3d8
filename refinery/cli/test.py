"""``refinery test``: a package's own tests on the target, again, or on two wheels at once.

``refinery test NODE [--wheel W]`` reruns NODE's tests (its catalog setting's ``tests``,
or ``--command``/``--requires``) against its stored wheel (or the wheel file W) in a
clean session of the target: emulated on x86_64, native on s390x. NODE is ``name``,
``name==version`` or ``name==version@python``. Exit 1 when a test not known to fail
failed.

``refinery test --differential WHEEL_A WHEEL_B`` runs the same tests on two wheels of
one package (two build routes) and prints every test whose outcome differs; ``--json``
writes the whole comparison. Exit 1 when some outcome differs.

``--env KEY=VALUE`` adds to the test command's environment (``QEMU_CPU=z14`` runs the
tests under another emulated CPU model).
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from refinery.cli.app import Settings, _guard, main
from refinery.cli.hints import hints_dir_option
from refinery.cli.logs import Wanted
from refinery.core.errors import InputError

if TYPE_CHECKING:
    from refinery.builder.pkgtests import Differential, TestResult, TestRun
    from refinery.builder.roots import BuildRoot, Mounts
    from refinery.core.models import TestReport
    from refinery.hints.models import Catalog, PackageTests


def catalog_or_none(hints_dir: Path) -> Catalog | None:
    """The catalog, for its per-package test settings and smoke imports (None without
    a catalog folder)."""
    if not hints_dir.is_dir():
        return None
    from refinery.hints import load_catalog

    return load_catalog(hints_dir)


def settings_for(
    hints_dir: Path, wheel: Path, python: str, command: str | None, requires: Sequence[str]
) -> PackageTests:
    """``--command``/``--requires`` when given, else the catalog's setting for the
    wheel's package and version."""
    from refinery.builder.pkgtests import wheel_project
    from refinery.hints.models import PackageTests

    if command:
        return PackageTests(command, tuple(requires))
    package, version = wheel_project(wheel), wheel.name.split("-")[1]
    catalog = catalog_or_none(hints_dir)
    tests = catalog.tests(package, python, version) if catalog is not None else None
    if tests is None:
        raise InputError(f"{package} has no tests setting in {hints_dir}; give --command")
    if requires:
        return replace(tests, requires=(*tests.requires, *requires))
    return tests


def parse_env(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--env {item!r}: want KEY=VALUE")
        out[key] = value
    return out


def test_root(settings: Settings) -> BuildRoot:
    """The root whose clean session runs tests: the emulated one on a foreign host."""
    from refinery.builder.options import RootOptions
    from refinery.builder.pkgtests import backend_for_tests
    from refinery.builder.roots import select_root

    backend = backend_for_tests(settings.backend, platform.machine())
    root = select_root(RootOptions(cache=settings.cache_root, backend=backend))
    root.prepare(on_line=lambda line: print(line, file=sys.stderr, flush=True))
    return root


def mounts_at(settings: Settings, work: Path) -> Mounts:
    from refinery.builder.roots import Mounts

    cache = settings.cache_root
    for folder in (work, cache.pip, cache.tools):
        folder.mkdir(parents=True, exist_ok=True)
    return Mounts(work=work, pip_cache=cache.pip, tools=cache.tools)


def stored_wheel(settings: Settings, wanted: Wanted, into: Path) -> tuple[Path, str]:
    """The built wheel of NODE from the store (into ``into``) and the node's Python."""
    store = settings.open_store()
    ids = [
        r
        for r in store.record_ids(wanted.name)
        if (wanted.version is None or r.version == wanted.version)
        and (wanted.python is None or r.python == wanted.python)
    ]
    if len(ids) != 1:
        which = ", ".join(f"{r.name}=={r.version}@{r.python}" for r in ids) or "none"
        raise InputError(f"name one node of {wanted.name} (stored: {which})")
    record = store.get_record(ids[0].name, ids[0].version, ids[0].python)
    data = store.get_wheel(record.wheel) if record and record.wheel else None
    if record is None or record.wheel is None or data is None:
        raise InputError(f"{wanted.name}: no stored wheel (give --wheel)")
    path = into / record.wheel.filename
    path.write_bytes(data)
    return path, record.python


def render(label: str, report: TestReport) -> None:
    from refinery.builder.pkgtests import summary

    print(f"{label}: {summary(report)} in {report.seconds:.0f} s ({report.command})")
    for test_id in report.failures:
        print(f"  FAILED {test_id}")
    for known in report.known:
        print(f"  known  {known}")


def one_run(
    settings: Settings, root: BuildRoot, run: TestRun, work: Path, verbose: bool
) -> TestResult:
    from refinery.builder.pkgtests import run_tests

    def show(line: str) -> None:
        if verbose:
            print(line, end="" if line.endswith("\n") else "\n", flush=True)

    log = work / "tests.log"
    print(f"testing {run.wheel.name} (log: {log})", file=sys.stderr, flush=True)
    return run_tests(root, mounts_at(settings, work), run, on_line=show, log=log)


def differential_json(result: Differential, out: Path) -> None:
    out.write_text(json.dumps(result.to_json(), indent=2) + "\n")


@main.command("test")
@click.argument("node", required=False, metavar="[NODE]")
@click.option("--wheel", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--differential",
    nargs=2,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="WHEEL_A WHEEL_B",
    help="Run the same tests on two wheels of one package; print what differs.",
)
@hints_dir_option
@click.option("--command", default=None, help="Test command instead of the setting's (pytest …).")
@click.option("--requires", multiple=True, help="Extra test requirement (repeatable).")
@click.option("--python", default=None, help="Target Python (default: the wheel's).")
@click.option("--env", "env_items", multiple=True, metavar="KEY=VALUE", help="Test env.")
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option(
    "--sdist",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="The unpacked sdist, for a setting whose tests come from it (from_sdist).",
)
@click.option(
    "--find-links",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of wheels for the target the test requirements may come from "
    "(e.g. the farm's own numpy; repeatable).",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Stream the test output.")
@click.pass_obj
@_guard
def test(settings: Settings, /, **given: Any) -> None:
    """Rerun NODE's own tests against its stored wheel (or --wheel) on the target, or
    compare two wheels' outcomes with --differential WHEEL_A WHEEL_B."""
    flags = TestFlags(**given)
    env = parse_env(flags.env_items)
    base = flags.workdir or Path(tempfile.mkdtemp(prefix="refinery-test."))
    base.mkdir(parents=True, exist_ok=True)
    given_tests = (flags.command, flags.requires)
    if flags.differential is not None:
        compared = _differential(
            settings, flags.differential, base, flags.hints_dir, given_tests, env, flags.find_links
        )
        out = flags.json_out or base / "differential.json"
        differential_json(compared, out)
        print(f"written: {out}")
        sys.exit(1 if compared.differences else 0)
    sys.exit(_rerun(settings, flags, base, env))


@dataclass(frozen=True)
class TestFlags:
    """``refinery test``'s options, as click hands them over."""

    __test__ = False  # not a pytest test class

    node: str | None
    wheel: Path | None
    differential: tuple[Path, Path] | None
    hints_dir: Path
    command: str | None
    requires: tuple[str, ...]
    python: str | None
    env_items: tuple[str, ...]
    workdir: Path | None
    sdist: Path | None
    find_links: tuple[Path, ...]
    json_out: Path | None
    verbose: bool


def _rerun(settings: Settings, flags: TestFlags, base: Path, env: dict[str, str]) -> int:
    """One node's (or wheel's) tests, rendered; the exit code."""
    from refinery.builder.distindex import root_index
    from refinery.builder.pkgtests import TestRun, wheel_project, wheel_python

    node, wheel, python = flags.node, flags.wheel, flags.python
    if node is None and wheel is None:
        raise InputError("name a NODE (or --wheel W), or give --differential WHEEL_A WHEEL_B")
    if wheel is None:
        assert node is not None
        wheel, python = stored_wheel(settings, Wanted.parse(node), base)
    package = Wanted.parse(node).name if node else wheel_project(wheel)
    target = python or wheel_python(wheel)
    tests = settings_for(flags.hints_dir, wheel, target, flags.command, flags.requires)
    root = test_root(settings)
    index = root_index(root, settings.cache_root)
    run = TestRun(
        wheel=wheel,
        python=target,
        arch="s390x",
        tests=tests,
        env=env,
        root_index=index,
        sdist=flags.sdist,
        find_links=flags.find_links,
    )
    result = one_run(settings, root, run, base / "run", flags.verbose)
    render(package, result.report)
    if flags.json_out is not None:
        data = {"version": 1, **result.report.to_json()}
        flags.json_out.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if result.report.ok else 1


def _differential(
    settings: Settings,
    wheels: tuple[Path, Path],
    base: Path,
    hints_dir: Path,
    given: tuple[str | None, tuple[str, ...]],
    env: dict[str, str],
    find_links: tuple[Path, ...] = (),
) -> Differential:
    """Both wheels' runs and every test whose outcome differs (rendered)."""
    from refinery.builder.distindex import root_index
    from refinery.builder.pkgtests import TestRun, compare, wheel_project, wheel_python

    package = wheel_project(wheels[0])
    if wheel_project(wheels[1]) != package:
        raise InputError(f"--differential wants two wheels of one package, not {wheels}")
    target = wheel_python(wheels[0])
    tests = settings_for(hints_dir, wheels[0], target, *given)
    root = test_root(settings)
    results = [
        one_run(
            settings,
            root,
            TestRun(
                wheel=w,
                python=target,
                arch="s390x",
                tests=tests,
                env=env,
                root_index=root_index(root, settings.cache_root),
                find_links=find_links,
            ),
            base / label,
            verbose=False,
        )
        for label, w in (("a", wheels[0]), ("b", wheels[1]))
    ]
    result = compare(wheels[0], wheels[1], results[0], results[1])
    render(f"A {wheels[0].name}", result.a.report)
    render(f"B {wheels[1].name}", result.b.report)
    print(f"{len(result.differences)} test(s) whose outcome differs:")
    for diff in result.differences:
        print(f"  {diff.test_id}: A {diff.a}, B {diff.b}")
    return result
