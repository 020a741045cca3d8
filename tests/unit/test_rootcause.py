"""The root-cause line of real failed build logs (tests/fixtures/rootcause_logs: logs of
builds run on this project's machines, by pip on the host, by the cross backend and by
the build step), and of the known lines those logs do not cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinery.builder.outcome import AttemptLog, PhaseFailed
from refinery.builder.proc import ProcResult
from refinery.hints.rootcause import log_lines, rank, root_cause
from refinery.site.logs import Line, excerpt

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "rootcause_logs"

#: (log, line number, expected root-cause line)
REAL_LOGS = [
    (
        "host-python-ldap__3.4.4.log",
        114,
        "Modules/common.h:15:10: fatal error: lber.h: No such file or directory",
    ),
    ("host-mysqlclient__2.2.4.log", 43, "Exception: Can not find valid pkg-config name."),
    (
        "host-pyaudio__0.2.14.log",
        45,
        "src/pyaudio/device_api.c:9:10: fatal error: portaudio.h: No such file or directory",
    ),
    ("host-pycairo__1.26.1.log", 46, "Package cairo was not found in the pkg-config search path."),
    (
        "host-pykerberos__1.2.4.log",
        41,
        "src/kerberosbasic.h:17:10: fatal error: gssapi/gssapi.h: No such file or directory",
    ),
    (
        "host-python-snappy__0.6.1.log",
        53,
        "src/snappy/snappymodule.cc:33:10: fatal error: snappy-c.h: No such file or directory",
    ),
    ("host-gssapi__1.8.3.log", 17, "/bin/sh: 1: krb5-config: not found"),
    (
        "host-resolver-requests-urllib3.log",
        18,
        "ERROR: Cannot install requests==2.31.0 and urllib3<1.21 because these package "
        "versions have conflicting dependencies.",
    ),
    (
        "cross-lxml-5.3.0.log",
        39,
        "Error: Please make sure the libxml2 and libxslt development packages are installed.",
    ),
    ("cross-rpds-py-0.22.3.log", 8, "error: no matching package named `pyo3` found"),
    (  # crates.io unreachable, then Debian's crates lack the asn1 the lock file wants
        "cross-cryptography-43.0.3-debian-crates.log",
        109,
        'error: failed to select a version for the requirement `asn1 = "^0.16.2"`',
    ),
    (
        "rootfs-smoke-missinglib.log",
        223,
        "SMOKE ELF FAIL refinery_smoke_missinglib/_ice.cpython-311-s390x-linux-gnu.so: "
        "libICE.so.6: cannot open shared object file: No such file or directory",
    ),
    (
        "rootfs-smoke-undefined.log",
        154,
        "SMOKE ELF FAIL refinery_smoke_undefined/_nowhere.cpython-311-s390x-linux-gnu.so: "
        "undefined symbol: refinery_defined_nowhere",
    ),
]


@pytest.mark.parametrize(("log", "number", "expected"), REAL_LOGS, ids=[r[0] for r in REAL_LOGS])
def test_real_logs(log: str, number: int, expected: str) -> None:
    found = root_cause(log_lines(LOGS / log))
    assert found is not None
    assert (found.number, found.text) == (number, expected)
    assert log_lines(LOGS / log)[number - 1].text.strip().endswith(expected)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                "warning: no previously-included files matching '*.pyc' found anywhere",
                "error: Rust 1.63.0 does not match extension requirement >=1.64.0",
                "error: subprocess-exited-with-error",
            ],
            "error: Rust 1.63.0 does not match extension requirement >=1.64.0",
        ),
        (
            [
                "x.c:1:10: error: unknown type name 'foo'",
                "x.c:9:1: error: expected ';'",
                "error: command '/usr/bin/gcc' failed with exit code 1",
            ],
            "x.c:1:10: error: unknown type name 'foo'",
        ),
        (
            [
                "/usr/bin/ld: a.o: in function `f':",
                "a.c:(.text+0x9): undefined reference to `inflate'",
                "collect2: error: ld returned 1 exit status",
            ],
            "a.c:(.text+0x9): undefined reference to `inflate'",
        ),
        (
            ["/usr/bin/ld: cannot find -lssl: No such file or directory", "error: command failed"],
            "/usr/bin/ld: cannot find -lssl: No such file or directory",
        ),
        (
            [
                "Traceback (most recent call last):",
                '  File "setup.py", line 3, in <module>',
                "ValueError: first",
                "OSError: Could not find KRB5 libraries",
                "subprocess.CalledProcessError: Command 'x' returned non-zero exit status 1.",
            ],
            "OSError: Could not find KRB5 libraries",
        ),
        (
            ["  │ configure: error: libffi not found", "ERROR Backend subprocess exited"],
            "configure: error: libffi not found",
        ),
        (["==> build: python -m build --wheel", "$ gcc -Werror=format x.c", "[notice] x"], None),
        # campaign run 1, statsmodels 0.14.4 (cross, zig): the linker's own error, not
        # setuptools-scm's "ERROR ... pretending there aren't any" before it
        (
            [
                "ERROR setuptools_scm._file_finders.git listing git files failed - pretending"
                " there aren't any",
                "ld.lld: error: /b/numpy/_core/lib/libnpymath.a(npy_math.c.o) is incompatible"
                " with elf64_s390",
                "error: Command '['s390x-linux-gnu-gcc', '-shared']' returned non-zero exit "
                "status 1.",
            ],
            "ld.lld: error: /b/numpy/_core/lib/libnpymath.a(npy_math.c.o) is incompatible"
            " with elf64_s390",
        ),
        # pandas 2.2.3 (meson 1.2.1 asks the compiler for its defines), then pyproj 3.7.2:
        # the tool's message, not the traceback's source line below it
        (
            [
                "../../meson.build:2:0: ERROR: Unable to get clang pre-processor defines:",
                "zig: error: version '.2.28' in target triple 's390x-unknown-linux-gnu.2.28' "
                "is invalid",
                "    raise BuildBackendException(exception, f'Backend subprocess exited when "
                "trying to invoke {hook}') from None",
            ],
            "zig: error: version '.2.28' in target triple 's390x-unknown-linux-gnu.2.28' "
            "is invalid",
        ),
        (
            [
                "proj executable not found. Please set the PROJ_DIR variable.",
                "Traceback (most recent call last):",
                "    raise BuildBackendException(exception, f'Backend subprocess exited when "
                "trying to invoke {hook}') from None",
                "build._exceptions.BuildBackendException: Backend subprocess exited when "
                "trying to invoke get_requires_for_build_wheel",
            ],
            "proj executable not found. Please set the PROJ_DIR variable.",
        ),
    ],
)
def test_known_lines(lines: list[str], expected: str | None) -> None:
    found = root_cause(lines)
    assert (found.text if found else None) == expected


def test_noise_is_never_a_cause() -> None:
    for line in (
        "warning: no previously-included files found matching 'docs/_build'",
        "        SetuptoolsDeprecationWarning: License classifiers are deprecated.",
        "!!",
        "********************************************************************************",
        "[notice] A new release of pip is available: 23.2 -> 25.0",
        "==> failed: build",
        "note: This error originates from a subprocess, and is likely not a problem with pip.",
    ):
        assert rank(line.strip())[0] == 0, line


def test_reason_format() -> None:
    found = root_cause(["ok", "fatal error: lber.h: No such file or directory", "done"])
    assert found is not None
    assert found.reason("build exited 1") == (
        "fatal error: lber.h: No such file or directory (log line 2; build exited 1)"
    )


def test_a_failed_attempt_reason_is_the_root_cause(tmp_path: Path) -> None:
    """The one place a phase failure becomes the outcome (AttemptLog.failed) names the
    root-cause line of the failing phase, its log line number and the exit code."""
    log = tmp_path / "build.log"
    attempt = AttemptLog(log, None, 60)
    attempt.phase("fetch", "x")
    attempt.note("error: this is from another phase")
    attempt.phase("build", "python -m build --wheel")
    text = (LOGS / "host-python-ldap__3.4.4.log").read_text()
    with log.open("a") as fh:
        fh.write(text)
    result = ProcResult(("python",), 1, 2.0, False, ())
    failure = PhaseFailed("wheel build failed with exit code 1", result=result)
    outcome = attempt.failed(failure, "rootfs", "img", "3.11")
    assert outcome.reason == (
        "Modules/common.h:15:10: fatal error: lber.h: No such file or directory "
        "(log line 117; build exited 1)"
    )
    assert log.read_text().splitlines()[116].strip().startswith("Modules/common.h:15:10")
    assert outcome.exit_code == 1
    # A check whose command succeeded keeps its own reason.
    ok = ProcResult(("python",), 0, 2.0, False, ())
    own = attempt.failed(PhaseFailed("silent pure-Python fallback", result=ok), "r", "i", "3.11")
    assert own.reason == "silent pure-Python fallback"
    # A verdict of our own names its cause even though the log has error lines.
    attempt.phase("repair", "auditwheel repair")
    attempt.note("error: glibc symbol version newer than the target manylinux_2_28_s390x: x")
    promise = PhaseFailed("needs glibc 2.35: GLIBC_2.35 from libm.so.6 `exp`", verdict=True)
    kept = attempt.failed(promise, "r", "i", "3.11")
    assert kept.reason == "needs glibc 2.35: GLIBC_2.35 from libm.so.6 `exp`"
    sought = attempt.failed(PhaseFailed("needs glibc 2.35"), "r", "i", "3.11")
    assert sought.reason.startswith("error: glibc symbol version newer")


def test_excerpt_shows_the_cause_first_and_leaves_noise_plain() -> None:
    text = "\n".join(
        [
            "warning: no previously-included files matching '*.o' found anywhere in distribution",
            *[f"compiling {i}" for i in range(40)],
            "x.c:2:10: fatal error: lber.h: No such file or directory",
            "error: command '/usr/bin/gcc' failed with exit code 1",
            *[f"cleanup {i}" for i in range(40)],
        ]
    )
    ex = excerpt(text)
    assert ex.cause is not None and ex.cause.number == 42
    marked = [line.number for line in ex.lines if line and line.marked]
    assert 1 not in marked and 42 in marked
    html = ex.html("p")
    assert html.index('class="rf-cause"') < html.index("<pre")
    assert '(<a href="#p-L42">line 42</a>)' in html


def test_line_numbers_are_the_files(tmp_path: Path) -> None:
    """A progress bar's carriage return ends no line: numbers match ``grep -n``."""
    log = tmp_path / "x.log"
    log.write_bytes(b"downloading\r 50%\r100%\nok\nfatal error: a.h: No such file or directory\n")
    found = root_cause(log_lines(log))
    assert found is not None and found.number == 3
    tail = len(b"fatal error: a.h: No such file or directory\n") + 1
    assert [line.number for line in log_lines(log, max_bytes=tail)] == [3]
    assert excerpt(log.read_bytes().decode()).cause == Line(3, found.text, True, True)
