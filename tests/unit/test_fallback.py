"""The ``auto`` fallback from the cross root to the emulated root.

The classifier is tested on real tool output: lines copied from the feasibility study's
logs (/tmp/cross/logs, the rpds-py and meson/CMake runs) and from the tools on this
host (s390x-linux-gnu-gcc/ld 12.2/2.40, qemu-user binfmt, meson 1.12, CMake 3.25,
rustc 1.95, CPython's subprocess, bash), each message exactly as printed. The runner is
tested with two fake roots (no emulation, no compiler): a "cross" primary and a
"rootfs" fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures.buildroot import PURE_SDIST, FakeRoot, node_for, ready_cache
from fixtures.sdists import write_sdist

from refinery.builder.fallback import SIGNATURES, Fallback, cross_specific, cross_specific_log
from refinery.builder.options import BuildOptions, RunOptions
from refinery.builder.runner import BuildEvent, Fix, build_plan
from refinery.builder.step import BuildOutcome
from refinery.core.cache import CacheRoot
from refinery.core.models import BuildRecord, Event, NodeStatus, Plan, PlanNode, Target
from refinery.hints import load_catalog
from refinery.hints.loader import CatalogError
from refinery.hints.matcher import LogLine
from refinery.site.generate import fallback_reasons
from refinery.store import Store

LD = "/usr/lib/gcc-cross/s390x-linux-gnu/12/../../../../s390x-linux-gnu/bin/ld"
M1_LINE = "s390x-binfmt-P: Could not open '/lib/ld64.so.1': No such file or directory"

# (signature id, real log excerpt, 1-based number of the line that must be reported)
CROSS_SPECIFIC: list[tuple[str, list[str], int]] = [
    (
        "X1",  # bash running an ELF for a machine without a binfmt handler
        ["  running ./gen", "bash: ./gen: cannot execute binary file: Exec format error"],
        2,
    ),
    (
        "X1",  # CPython's subprocess, same situation
        [
            '  File "/usr/lib/python3.11/subprocess.py", line 1901, in _execute_child',
            "    raise child_exception_type(errno_num, err_msg, err_filename)",
            "OSError: [Errno 8] Exec format error: './weird'",
        ],
        3,
    ),
    (
        "M1",  # a setup script running what it compiled (this repo's runtarget fixture)
        [
            "  s390x-linux-gnu-gcc build/temp.linux-s390x-cpython-311/gen/probe/probe.o -o "
            "build/temp.linux-s390x-cpython-311/gen/runtarget-probe",
            "  running the probe build/temp.linux-s390x-cpython-311/gen/runtarget-probe",
            f"  {M1_LINE}",
            "  error: the probe build/temp.linux-s390x-cpython-311/gen/runtarget-probe failed "
            "with exit code 255",
        ],
        3,
    ),
    (
        "M1",  # meson's sanity check: the qemu line comes first and names the cause
        [
            "C compiler for the host machine: s390x-linux-gnu-gcc (gcc 12.2.0 "
            '"s390x-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0")',
            M1_LINE,
            "meson.build:1:0: ERROR: Executables created by c compiler s390x-linux-gnu-gcc "
            "are not runnable.",
        ],
        2,
    ),
    (
        "M2",  # the same without the qemu line (the console shows only meson's error)
        [
            "Project name: probe",
            "Project version: undefined",
            "",
            "meson.build:1:0: ERROR: Executables created by c compiler s390x-linux-gnu-gcc "
            "are not runnable.",
        ],
        4,
    ),
    (
        "M3",  # meson cc.run() in a cross build with needs_exe_wrapper and no wrapper
        [
            "Host machine cpu family: s390x",
            "Target machine cpu: s390x",
            "",
            "meson.build:3:7: ERROR: Can not run test applications in this cross environment.",
        ],
        4,
    ),
    (
        "C1",  # CMake 3.25 try_run() with a toolchain file and no emulator
        [
            "-- Check for working C compiler: /usr/bin/s390x-linux-gnu-gcc - skipped",
            "CMake Error: try_run() invoked in cross-compiling mode, please set the following "
            "cache variables appropriately:",
            "   RUN_RESULT (advanced)",
            "For details see /tmp/fb/cm/build/TryRunResults.cmake",
        ],
        2,
    ),
    (
        "C1",  # older CMake spelling, as the feasibility study quotes it
        [
            "TRY_RUN() invoked in cross-compiling mode, please set the following cache "
            "variables appropriately:"
        ],
        1,
    ),
    (
        "A1",  # autoconf AC_RUN_IFELSE without a cross default
        [
            "checking whether we are cross compiling... yes",
            "checking for working mmap... configure: error: in `/tmp/build/libfoo':",
            "configure: error: cannot run test program while cross compiling",
            "See `config.log' for more details",
        ],
        3,
    ),
    (
        "L1",  # linking without --sysroot: the root's libc.so linker script
        [
            f"{LD}: cannot find /lib/s390x-linux-gnu/libc.so.6: No such file or directory",
            f"{LD}: cannot find /usr/lib/s390x-linux-gnu/libc_nonshared.a: No such file or "
            "directory",
            f"{LD}: cannot find /lib/ld64.so.1: No such file or directory",
            "collect2: error: ld returned 1 exit status",
        ],
        1,
    ),
    (
        "L2",  # the host's amd64 -dev package leaking into the target link
        [
            f"{LD}: skipping incompatible /usr/lib/x86_64-linux-gnu/libz.so when searching for -lz",
            f"{LD}: skipping incompatible /usr/lib/x86_64-linux-gnu/libz.a when searching for -lz",
            f"{LD}: cannot find -lz: No such file or directory",
            "collect2: error: ld returned 1 exit status",
        ],
        1,
    ),
    (
        "L3",  # an x86-64 object linked into an s390x shared object
        [
            f"{LD}: f_x86.o: Relocations in generic ELF (EM: 62)",
            f"{LD}: f_x86.o: error adding symbols: file in wrong format",
            "collect2: error: ld returned 1 exit status",
        ],
        1,
    ),
    (
        "L3",  # an x86-64 shared library on the link line
        [
            f"{LD}: ./libx.so: error adding symbols: file in wrong format",
            "collect2: error: ld returned 1 exit status",
        ],
        1,
    ),
    (
        "L4",  # the root's Python headers without --sysroot (multiarch pyconfig.h)
        [
            "In file included from /root/.cache/refinery/roots/debian-bookworm-s390x-054e57788b4e"
            "1c28/usr/include/python3.11/Python.h:12,",
            "                 from p.c:1:",
            "/root/.cache/refinery/roots/debian-bookworm-s390x-054e57788b4e1c28/usr/include/"
            "python3.11/pyconfig.h:77:12: fatal error: s390x-linux-gnu/python3.11/pyconfig.h: "
            "No such file or directory",
        ],
        3,
    ),
    (
        "L5",  # zig cc with crossenv's CPATH: glibc 2.36 headers over zig's 2.17 ones
        [
            "/tmp/cross/sysroot/usr/include/stdio.h:205:27: error: use of undeclared "
            "identifier 'L_tmpnam'"
        ],
        1,
    ),
    (
        "R1",  # rustup's toolchain without the s390x standard library
        [
            "error[E0463]: can't find crate for `std`",
            "  |",
            "  = note: the `s390x-unknown-linux-gnu` target may not be installed",
            "  = help: consider downloading the target with "
            "`rustup target add s390x-unknown-linux-gnu`",
        ],
        3,
    ),
    (
        "F1",  # a build script that looked at the build machine and picked x86 flags
        [
            "s390x-linux-gnu-gcc: error: unrecognized command-line option \u2018-mavx2\u2019; "
            "did you mean \u2018-mvx\u2019?",
        ],
        1,
    ),
    (
        "F1",
        ["s390x-linux-gnu-gcc: error: unrecognized command-line option '-msse2'"],
        1,
    ),
    (
        "S2",  # the build step's own architecture check, as the attempt log ends
        [
            "==> check_architecture",
            "!! failed: wheel contains code for another architecture: demo/_s.so",
        ],
        2,
    ),
]

# Real failures emulation does not help with, and real lines of successful cross builds.
NOT_CROSS_SPECIFIC: dict[str, list[str]] = {
    "missing header (gcc 12)": [
        "z.c:1:10: fatal error: zlib.h: No such file or directory",
        "    1 | #include <zlib.h>",
        "      |          ^~~~~~~~",
        "compilation terminated.",
        "error: command '/usr/bin/s390x-linux-gnu-gcc' failed with exit code 1",
    ],
    "missing library headers under cross (lxml without the sysroot -dev packages)": [
        "x.c:1:10: fatal error: libxml/xmlversion.h: No such file or directory",
        "Error: Please make sure the libxml2 and libxslt development packages are installed.",
    ],
    "crates.io unreachable (rpds-py 0.22.3, cross log)": [
        "  error: no matching package named `pyo3` found",
        "  location searched: crates.io index",
        "  required by package `rpds-py v0.22.3 (/tmp/pip-req-build-4v68junp)`",
        "  \U0001f4a5 maturin failed",
        "    Caused by: `cargo metadata` exited with an error:",
        "error: metadata-generation-failed",
    ],
    "crates.io unreachable online": [
        "warning: spurious network error (3 tries remaining): [6] Couldn't resolve host "
        "name (Could not resolve host: index.crates.io)",
    ],
    "package metadata vs the newest scikit-build-core": [
        "  scikit_build_core._vendor.pyproject_metadata.errors.ConfigurationError: Extra keys "
        "present in \"project\": 'Changelog'",
    ],
    "a normal link line naming the loader (meson-log.txt)": [
        f"{LD} -plugin /usr/lib/gcc-cross/s390x-linux-gnu/12/liblto_plugin.so --sysroot=/ "
        "--build-id --eh-frame-hdr -m elf64_s390 --hash-style=gnu --as-needed -dynamic-linker "
        "/lib/ld64.so.1 -pie",
    ],
    "a successful meson cross build (contourpy / numpy logs)": [
        "  Build type: cross build",
        "  C compiler for the host machine: /tmp/cross/toolbin/s390x-linux-gnu-gcc (gcc 12.2.0 "
        '"s390x-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0")',
        "  Found pkg-config: YES (/tmp/cross/toolbin/s390x-linux-gnu-pkg-config) 1.8.1",
        "      Cross files : /tmp/cross/scripts/s390x-cross.ini",
        'Checking if "probe" runs: NO (255)',
    ],
    "the build step's own command lines": [
        "$ qemu-s390x -L /sysroot ./probe  # Exec format error",
        "==> build: Exec format error is not looked at here",
    ],
    "a silent fallback, by itself": [
        "WARNING: The C extension could not be compiled, speedups are not enabled.",
        "!! failed: silent pure-Python fallback: the sdist has native sources "
        "(src/markupsafe/_speedups.c) but MarkupSafe-2.1.5-py3-none-any.whl contains no "
        "s390x ELF",
    ],
}


@pytest.mark.parametrize(
    ("sig_id", "lines", "line_no"),
    CROSS_SPECIFIC,
    ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(CROSS_SPECIFIC)],
)
def test_cross_specific_failures_are_recognised(
    sig_id: str, lines: list[str], line_no: int
) -> None:
    found = cross_specific(lines)
    assert found is not None
    assert (found.signature, found.line_no) == (sig_id, line_no)
    assert found.line == lines[line_no - 1].strip()
    assert f"log line {line_no}: " in found.reason


def test_every_signature_is_tested_on_real_output() -> None:
    assert {s.id for s in SIGNATURES} == {sig for sig, _, _ in CROSS_SPECIFIC}
    assert len({s.id for s in SIGNATURES}) == len(SIGNATURES)


@pytest.mark.parametrize("what", sorted(NOT_CROSS_SPECIFIC))
def test_other_failures_are_not_cross_specific(what: str) -> None:
    assert cross_specific(NOT_CROSS_SPECIFIC[what]) is None


def test_log_lines_keep_their_numbers_and_a_long_line_is_cut_in_the_reason(
    tmp_path: Path,
) -> None:
    long = M1_LINE + " " + "x" * 400
    found = cross_specific([LogLine(41, "ok"), LogLine(42, long)])
    assert found is not None and found.line_no == 42 and found.line == long
    assert len(found.reason) < 400 and found.reason.endswith("…)")
    log = tmp_path / "build.log"
    log.write_text("==> build\n" + "\n".join(CROSS_SPECIFIC[2][1]) + "\n")
    from_file = cross_specific_log(log)
    assert from_file is not None and from_file.signature == "M1" and from_file.line_no == 4
    assert cross_specific_log(tmp_path / "missing.log") is None


# --- the runner ---------------------------------------------------------------------
class CrossRoot(FakeRoot):
    backend = "cross"
    image = "cross@sha256:1"


class EmulatedRoot(FakeRoot):
    backend = "rootfs"
    image = "rootfs@sha256:2"


@pytest.fixture(autouse=True)
def no_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("refinery.builder.phases.ensure_uv", lambda tools, arch: None)


@pytest.fixture
def cache(tmp_path: Path) -> CacheRoot:
    return ready_cache(tmp_path / "cache")[0]


def _failing(root: FakeRoot, *lines: str) -> FakeRoot:
    root.build_exit = 1
    root.build_lines = list(lines)
    return root


def _run(
    tmp_path: Path,
    cache: CacheRoot,
    primary: FakeRoot,
    fallback: Fallback | None,
    *,
    max_attempts: int = 3,
    advise: Callable[[PlanNode, BuildOutcome, int], Fix | None] | None = None,
) -> tuple[BuildRecord, list[BuildEvent], int]:
    sdist = write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST)
    node = node_for(sdist)
    plan = Plan("p1", (), (Target(),), (node,), ((node.key,),), {})
    store = Store.open(str(tmp_path / "store"))
    events: list[BuildEvent] = []
    options = RunOptions(
        build=BuildOptions(cache=cache), workdir=tmp_path / "run", max_attempts=max_attempts
    )
    summary = build_plan(
        plan, store, primary, options, on_event=events.append, advise=advise, fallback=fallback
    )
    record = store.get_record("demo", "1.0", "3.11")
    assert record is not None
    return record, events, summary.results[0].attempts


def _kinds(record: BuildRecord) -> list[str]:
    return [e.kind for e in record.events]


def test_a_cross_specific_failure_moves_the_node_to_the_fallback_root(
    tmp_path: Path, cache: CacheRoot
) -> None:
    primary = _failing(CrossRoot(), "running the probe gen/probe", M1_LINE, "error: exit 255")
    emulated = EmulatedRoot()
    record, events, attempts = _run(tmp_path, cache, primary, Fallback(emulated))
    assert record.status is NodeStatus.BUILT and attempts == 2
    one, two = record.attempts
    assert (one.n, one.backend, one.image, one.status) == (1, "cross", "cross@sha256:1", "failed")
    assert (two.n, two.backend, two.image, two.status) == (2, "rootfs", "rootfs@sha256:2", "built")
    assert one.matched_lines[0] == M1_LINE
    assert _kinds(record) == ["leased", "building", "failed", "fallback", "building", "built"]
    moved = next(e for e in record.events if e.kind == "fallback")
    assert moved.message.startswith("attempt 2 on rootfs: a target binary was executed")
    number = int(moved.message.split("(log line ")[-1].split(":")[0])
    assert moved.message.endswith(f"(log line {number}: {M1_LINE})")
    log = Store.open(str(tmp_path / "store")).get_log(one.log or "")
    assert log is not None and log.decode().splitlines()[number - 1] == M1_LINE
    assert fallback_reasons(record.events) == {2: moved.message.split(": ", 1)[1]}
    shown = [e for e in events if e.kind == "fallback"]
    assert len(shown) == 1 and M1_LINE in shown[0].message
    assert [e.message for e in events if e.kind == "building"] == [
        "attempt 1 on cross",
        "attempt 2 on rootfs",
    ]
    assert [c[0] for c in primary.calls] == ["build"]
    assert [c[0] for c in emulated.calls][:1] == ["build"] and emulated.prepared


def test_an_ordinary_failure_stays_on_the_primary_root(tmp_path: Path, cache: CacheRoot) -> None:
    primary = _failing(CrossRoot(), "z.c:1:10: fatal error: zlib.h: No such file or directory")
    emulated = EmulatedRoot()
    record, _events, attempts = _run(tmp_path, cache, primary, Fallback(emulated))
    assert record.status is NodeStatus.FAILED and attempts == 1
    assert [a.backend for a in record.attempts] == ["cross"]
    assert "fallback" not in _kinds(record)
    assert emulated.calls == []


def test_without_a_fallback_a_cross_specific_failure_just_fails(
    tmp_path: Path, cache: CacheRoot
) -> None:
    record, _events, attempts = _run(tmp_path, cache, _failing(CrossRoot(), M1_LINE), None)
    assert record.status is NodeStatus.FAILED and attempts == 1


def test_the_move_is_granted_after_the_last_attempt_and_happens_once(
    tmp_path: Path, cache: CacheRoot
) -> None:
    primary = _failing(CrossRoot(), M1_LINE)
    emulated = _failing(EmulatedRoot(), M1_LINE)  # fails the same way there: no third try
    record, _events, attempts = _run(tmp_path, cache, primary, Fallback(emulated), max_attempts=1)
    assert attempts == 2 and record.status is NodeStatus.FAILED
    assert [(a.backend, a.status) for a in record.attempts] == [
        ("cross", "failed"),
        ("rootfs", "failed"),
    ]
    assert _kinds(record).count("fallback") == 1 and record.lease_expires is None


def test_hint_retries_go_on_on_the_fallback_root(tmp_path: Path, cache: CacheRoot) -> None:
    primary = _failing(CrossRoot(), M1_LINE)
    emulated = _failing(EmulatedRoot(), "fatal error: yaml.h: No such file or directory")
    seen: list[tuple[int, str]] = []

    def advise(node: PlanNode, outcome: BuildOutcome, n: int) -> Fix | None:
        seen.append((n, outcome.backend))
        if outcome.backend == "rootfs":
            emulated.build_exit, emulated.build_lines = 0, ["ok"]
            return Fix(hint_ids=("libyaml",), system_packages=("libyaml-dev",))
        return None

    record, events, attempts = _run(tmp_path, cache, primary, Fallback(emulated), advise=advise)
    assert record.status is NodeStatus.BUILT and attempts == 3
    assert seen == [(1, "cross"), (2, "rootfs")]
    assert [(a.backend, a.hint_ids) for a in record.attempts] == [
        ("cross", ()),
        ("rootfs", ()),
        ("rootfs", ("libyaml",)),
    ]
    assert emulated.installed == [("libyaml-dev",)] and primary.installed == []
    after_lease = ["failed", "fallback", "building", "failed", "retry", "building", "built"]
    assert _kinds(record)[2:] == after_lease
    assert [e.kind for e in events if e.kind in ("fallback", "retry")] == ["fallback", "retry"]


def test_the_emulate_setting_starts_on_the_fallback_root(tmp_path: Path, cache: CacheRoot) -> None:
    primary = CrossRoot()
    emulated = EmulatedRoot()
    asked: list[str] = []

    def upfront(node: PlanNode) -> str | None:
        asked.append(node.name)
        return "setup.py runs the programs it compiles"

    record, events, attempts = _run(tmp_path, cache, primary, Fallback(emulated, upfront))
    assert asked == ["demo"] and attempts == 1 and record.status is NodeStatus.BUILT
    assert [a.backend for a in record.attempts] == ["rootfs"]
    assert primary.calls == []
    assert _kinds(record) == ["leased", "fallback", "building", "built"]
    reason = fallback_reasons(record.events)[1]
    assert reason == "the package's setting says emulate: setup.py runs the programs it compiles"
    assert any(e.kind == "fallback" and "emulate" in e.message for e in events)


# --- the catalog's per-package setting ----------------------------------------------
def test_emulate_is_a_package_setting(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "hints:\n"
        "  - id: zlib\n    match: ['zlib\\.h']\n    fix: {apt: [zlib1g-dev]}\n"
        "packages:\n"
        "  - package: Run_Target\n    emulate: 'setup.py runs its probe'\n"
        "  - package: both\n    hints: [zlib]\n    emulate: 'meson probes'\n    python: '>=3.12'\n"
        "  - package: learned\n    hints: [zlib]\n"
    )
    catalog = load_catalog(tmp_path)
    assert catalog.emulate("run-target", "3.11") == "setup.py runs its probe"
    assert catalog.emulate("both", "3.12") == "meson probes"
    assert catalog.emulate("both", "3.11") is None  # the entry's python does not apply
    assert catalog.emulate("learned", "3.11") is None
    assert catalog.for_package("run-target")[0].hints == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("emulate: true", "x.yaml:3: package entry 'p'.emulate must be a string, not bool True"),
        ("emulate: ''", "x.yaml:3: package entry 'p'.emulate needs a reason"),
        ("emulate: [a]", "x.yaml:3: package entry 'p'.emulate must be a string, not a list"),
        ("emulte: 'x'", "x.yaml:3: unknown key 'emulte' in package entry; did you mean 'emulate'?"),
        (
            "note: 'neither'",
            "x.yaml:2: package entry 'p' needs 'hints', 'fix', 'emulate', 'tests' or 'imports'",
        ),
    ],
)
def test_emulate_wrong_values_are_reported(tmp_path: Path, entry: str, message: str) -> None:
    (tmp_path / "x.yaml").write_text(f"packages:\n  - package: p\n    {entry}\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    shown = [str(p).replace(f"{tmp_path}/", "") for p in info.value.problems]
    assert any(s.startswith(message) for s in shown), shown


def test_fallback_reasons_read_only_fallback_events() -> None:
    events = (
        Event("t1", "building", "attempt 1"),
        Event("t2", "fallback", "attempt 2 on rootfs: a target binary ran (log line 3: x: y)"),
        Event("t3", "fallback", "something else"),
    )
    assert fallback_reasons(events) == {2: "a target binary ran (log line 3: x: y)"}


# --- the CLI's wiring ---------------------------------------------------------------
def test_the_cli_adds_the_emulated_fallback_only_behind_an_auto_cross_root(
    tmp_path: Path,
) -> None:
    from refinery.cli.app import Settings
    from refinery.cli.build import BuildFlags
    from refinery.cli.parts import make_advisor

    hints = tmp_path / "hints"
    hints.mkdir()
    (hints / "p.yaml").write_text("packages:\n  - package: demo\n    emulate: 'runs a probe'\n")
    flags = BuildFlags(
        jobs=1,
        timeout=60.0,
        max_attempts=3,
        hints_dir=hints,
        retry_backoff=0.0,
        release=None,
        image=None,
        installer="auto",
    )
    advisor = make_advisor(hints, "cross")

    def settings(backend: str) -> Settings:
        return Settings.read(
            store=None,
            backend=backend,
            index_url="https://pypi.org/simple",
            cache_dir=tmp_path / "cache",
            environ={},
            home=tmp_path,
        )

    found = flags.fallback(settings("auto"), CrossRoot(), advisor)
    assert found is not None and found.root.backend == "rootfs"
    demo = node_for(write_sdist(tmp_path / "in", "demo", "1.0", PURE_SDIST))
    other = node_for(write_sdist(tmp_path / "in", "other", "1.0", PURE_SDIST), "other")
    assert found.start_reason(demo) == "the package's setting says emulate: runs a probe"
    assert found.start_reason(other) is None
    assert flags.fallback(settings("auto"), EmulatedRoot(), advisor) is None
    assert flags.fallback(settings("cross"), CrossRoot(), advisor) is None


def test_the_package_page_shows_each_attempts_backend_and_the_fallback_reason(
    tmp_path: Path,
) -> None:
    from refinery.core.models import Attempt
    from refinery.site import Generator, SiteOptions, load

    why = "a target binary was executed on the build machine (log line 9: <qemu> failed)"
    record = BuildRecord(
        name="demo",
        version="1.0",
        python="3.11",
        status=NodeStatus.BUILT,
        attempts=(
            Attempt(1, "2026-11-30T10:00:00Z", backend="cross", status="failed"),
            Attempt(2, "2026-11-30T10:01:00Z", backend="rootfs", status="built"),
        ),
        events=(
            Event("2026-11-30T10:00:30Z", "failed", "wheel build failed"),
            Event("2026-11-30T10:00:30Z", "fallback", f"attempt 2 on rootfs: {why}"),
        ),
    )
    store = Store.open(str(tmp_path / "store"))
    store.update_record("demo", "1.0", "3.11", lambda _old: record)
    status = tmp_path / "status"
    Generator(store, status, SiteOptions(hints_dir=tmp_path / "no-hints")).run(load(store))
    page = (status / "packages" / "demo.md").read_text()
    assert "<tr><td>1</td><td><code>cross</code></td>" in page
    assert (
        '<tr><td>2</td><td><code>rootfs</code><br><small class="rf-fallback">fallback: '
        "a target binary was executed on the build machine (log line 9: &lt;qemu&gt; failed)"
        "</small></td>"
    ) in page
