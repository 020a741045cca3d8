"""What a person sees of a build: progress read from real build-tool lines, each node's
output as one block (bounded), the board's counts and estimate, the results at the end,
and ``refinery logs`` over a folder store."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from refinery.cli import main
from refinery.cli.live import BlockRenderer, Board, LiveRenderer, NodeBlock, View, make_renderer
from refinery.cli.logs import Wanted, search
from refinery.cli.progress import Progress, ProgressReader
from refinery.cli.render import ResultRow, failure_markup, results_table, wheel_tag
from refinery.core.models import Attempt, BuildRecord, NodeStatus
from refinery.store import Store
from refinery.store.layout import parse_log_key


def read(lines: list[str]) -> Progress:
    reader = ProgressReader()
    for line in lines:
        reader.feed(line)
    return reader.progress


# --- progress, from lines as the tools print them ------------------------------------------
def test_ninja_and_meson_count_steps() -> None:
    # numpy 2.2.6 under meson-python (a stored log of ours)
    got = read(
        [
            "==> build: python -m build --wheel",
            "[1/446] Copying file numpy/__init__.pxd",
            "[7/446] Compiling C object numpy/_core/libnpymath.a.p/meson-generated_ieee754.c.o",
            "[215/446] Compiling C++ object numpy/_core/libhighway.a.p/src_highway_hwy_abort.cc.o",
        ]
    )
    assert got.phase == "build" and got.step == "[215/446]"
    assert got.fraction == pytest.approx(215 / 446)
    assert got.text() == "build · [215/446] · 48%"


def test_cmake_reports_a_percentage() -> None:
    got = read(
        [
            "==> build: python -m build --wheel",
            "[  3%] Building C object CMakeFiles/_core.dir/src/alloc.c.o",
            "[ 45%] Building CXX object CMakeFiles/_core.dir/src/module.cpp.o",
        ]
    )
    assert got.step == "45%" and got.fraction == pytest.approx(0.45)
    assert got.text() == "build · 45%"


def test_cargo_counts_crates_and_uses_a_count_when_given() -> None:
    lines = [
        "==> build: python -m build --wheel",
        "   Compiling proc-macro2 v1.0.92",
        "   Compiling pyo3-build-config v0.22.6",
        "   Compiling rpds-py v0.22.3 (/tmp/pip-req-build/rpds-py-0.22.3)",
    ]
    assert read(lines).step == "cargo: 3 crates (rpds-py)"
    assert read(lines).fraction is None
    counted = read(["   Compiling libc v0.2.169 (12/80)"])
    assert counted.step == "cargo libc (12/80)" and counted.fraction == pytest.approx(0.15)


def test_pypa_build_and_setuptools_steps_and_a_new_phase_resets() -> None:
    reader = ProgressReader()
    reader.feed("==> build: python -m build --wheel")
    assert (
        reader.feed("* Getting build dependencies for wheel...").step
        == "getting build dependencies for wheel"
    )
    assert reader.feed("running build_ext").step == "build_ext"
    assert reader.feed("building 'refinery_fixture_cext._speedups' extension").step == (
        "extension refinery_fixture_cext._speedups"
    )
    assert reader.feed("==> repair: auditwheel show + repair") == Progress(phase="repair")
    # compiler output says nothing of progress
    assert reader.feed("gcc -pthread -fPIC -c src/a.c -o build/a.o").phase == "repair"
    assert reader.feed("==> start: x==1@3.11 on cross (img)") == Progress(phase="start")


# --- blocks -------------------------------------------------------------------------------
def test_a_small_block_is_kept_whole() -> None:
    block = NodeBlock(keep_lines=10, tail=3)
    for i in range(10):
        block.add(f"line {i}\n")
    assert not block.truncated
    assert block.block("n", "/x.log") == [f"line {i}" for i in range(10)]


def test_a_large_block_keeps_only_its_tail_and_says_where_the_log_is() -> None:
    block = NodeBlock(keep_lines=10, keep_bytes=10_000, tail=3)
    for i in range(10_000):
        block.add(f"line {i}")
    assert block.truncated and block.total == 10_000
    assert block.head is None and len(block.tail) == 3  # memory: the tail only
    out = block.block("n==1@3.11", "/store/logs/n/1/3.11/1.log")
    assert (
        out[0] == "[n==1@3.11: 9997 earlier lines not shown; whole log: /store/logs/n/1/3.11/1.log]"
    )
    assert out[1:] == ["line 9997", "line 9998", "line 9999"]


def test_a_block_cut_by_bytes() -> None:
    block = NodeBlock(keep_lines=1000, keep_bytes=100, tail=2)
    for _ in range(11):
        block.add("x" * 9)
    assert block.truncated


@dataclass(frozen=True)
class Ev:
    kind: str
    node: str | None = None
    message: str = ""
    status: NodeStatus | None = None
    outcome: Any = None


def _view(out: io.StringIO, **kw: Any) -> View:
    console = Console(file=out, width=200, highlight=False, force_terminal=False)
    fields: dict[str, Any] = {"console": console, "max_attempts": 3, "jobs": 2}
    fields.update(kw)
    return View(**fields)


def _events(keys: tuple[str, str], lines: int) -> list[Ev]:
    a, b = keys
    out = [Ev("leased", a), Ev("leased", b), Ev("building", a, "attempt 1 on cross")]
    out.append(Ev("building", b, "attempt 1 on cross"))
    for i in range(lines):  # interleaved, as two builder threads report
        out += [Ev("line", a, f"{a} says {i}"), Ev("line", b, f"{b} says {i}")]
    out.append(Ev("done", b, "b.whl", NodeStatus.BUILT))
    out.append(Ev("done", a, "fatal error: lber.h: No such file", NodeStatus.FAILED))
    return out


def test_blocks_do_not_interleave_and_groups_fold_on_github_actions() -> None:
    out = io.StringIO()
    render = make_renderer(_view(out, gha=True))
    assert isinstance(render, BlockRenderer)
    for event in _events(("a==1@3.11", "b==1@3.11"), 3):
        render(event)
    render.finish()
    text = out.getvalue()
    lines = text.splitlines()
    b_group = lines.index(next(x for x in lines if x.startswith("::group::✓ built b==1@3.11")))
    assert lines[b_group + 2 : b_group + 5] == [f"b==1@3.11 says {i}" for i in range(3)]
    assert lines[b_group + 1].startswith("::stop-commands::")
    token = lines[b_group + 1].split("::")[2]
    assert lines[b_group + 5 : b_group + 7] == [f"::{token}::", "::endgroup::"]
    a_group = lines.index(next(x for x in lines if x.startswith("::group::✗ failed a==1@3.11")))
    assert a_group > b_group + 6
    assert lines[a_group + 2 : a_group + 5] == [f"a==1@3.11 says {i}" for i in range(3)]
    assert "::error title=a==1@3.11::fatal error: lber.h: No such file" in lines


def test_a_long_block_outside_actions_ends_with_its_tail_and_the_log() -> None:
    out = io.StringIO()
    render = make_renderer(_view(out, whole_log=lambda key: f"/store/logs/{key}.log"))
    for event in _events(("a==1@3.11", "b==1@3.11"), 3000):
        render(event)
    text = out.getvalue()
    assert "::group::" not in text
    assert "a==1@3.11 says 2999" in text and "a==1@3.11 says 10\n" not in text
    assert "earlier lines not shown; whole log: /store/logs/a==1@3.11.log]" in text
    assert len(text.splitlines()) < 400


def test_verbose_streams_and_a_terminal_gets_the_live_view() -> None:
    out = io.StringIO()
    streaming = make_renderer(_view(out, verbose=True))
    streaming(Ev("line", "a==1@3.11", "gcc -fPIC -c x.c"))
    assert "gcc -fPIC -c x.c" in out.getvalue()
    live = make_renderer(
        _view(io.StringIO(), console=Console(file=io.StringIO(), force_terminal=True))
    )
    assert isinstance(live, LiveRenderer)
    live.finish()


def test_the_live_view_shows_states_and_writes_lines_to_files() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, highlight=False)
    render = make_renderer(_view(screen, console=console))
    assert isinstance(render, LiveRenderer)
    render.expect(["a==1@3.11", "b==1@3.11", "c==1@3.11"], {"c==1@3.11": 120.0})
    for event in _events(("a==1@3.11", "b==1@3.11"), 2)[:-2]:
        render(event)
    render(Ev("line", "a==1@3.11", "[12/40] Compiling C object x.o"))
    shown = Console(file=io.StringIO(), width=160)
    shown.print(render.renderable())
    text = shown.file.getvalue()  # type: ignore[attr-defined]
    assert "2 building · 1 pending · 0 built · 0 failed" in text
    assert "ETA ~1:00 (1/3 nodes known)" in text
    assert re.search(r"building\s+a==1@3\.11\s+attempt 1/3\s+0:\d\d\s+\[12/40\] · 30%", text)
    log = render.logs.path("a==1@3.11")
    assert log.read_text().splitlines()[-1] == "[12/40] Compiling C object x.o"
    render(Ev("done", "a==1@3.11", "a.whl", NodeStatus.BUILT))
    render(Ev("finished", None, "1 node(s) in 3s"))
    render.finish()
    assert not render.logs.folder.exists()  # a finished run's logs are in the store
    assert "✓ built a==1@3.11" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())


def test_the_board_counts_and_estimates() -> None:
    t = [100.0]
    board = Board(max_attempts=3, jobs=2, now=lambda: t[0])
    board.expect(["a", "b", "c", "d"])
    board.learn({"a": 60.0, "b": 30.0, "c": 50.0})
    board.observe(Ev("leased", "a"))
    board.observe(Ev("building", "a", "attempt 2 on rootfs"))
    board.observe(Ev("skip", "d", "leased elsewhere"))
    t[0] = 120.0
    assert board.flying["a"].attempt == 2 and board.flying["a"].backend == "rootfs"
    est = board.estimate()
    assert (est.seconds, est.known, est.of) == ((40 + 30 + 50) / 2, 3, 3)
    board.observe(Ev("done", "a", "", NodeStatus.FAILED))
    assert board.seconds["a"] == 20.0
    assert board.counts() == {
        "pending": 2,
        "building": 0,
        "built": 0,
        "failed": 1,
        "other": 0,
        "skipped": 1,
    }


# --- the end of a run ---------------------------------------------------------------------
def test_results_table_and_failure_lines() -> None:
    rows = [
        ResultRow(
            node="ok==1@3.11",
            status=NodeStatus.BUILT,
            seconds=75,
            wheel="ok-1-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl",
        ),
        ResultRow(
            node="bad==2@3.11",
            status=NodeStatus.FAILED,
            seconds=9,
            cause="fatal error: lber.h: No such file or directory (log line 40; build exited 1)",
            log="/s/logs/bad/2/3.11/2.log",
            reproduce="refinery build plan.json --node bad==2@3.11 --backend cross -v",
        ),
    ]
    console = Console(file=io.StringIO(), width=200)
    console.print(results_table(rows))
    for row in rows:
        console.print(failure_markup(row))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x" in text and "1:15" in text
    assert "cause: fatal error: lber.h" in text
    assert "log: /s/logs/bad/2/3.11/2.log" in text
    assert "reproduce: refinery build plan.json --node bad==2@3.11 --backend cross -v" in text
    assert wheel_tag("x-1-py3-none-any.whl") == "py3-none-any"
    assert wheel_tag("x-1-7-cp311-abi3-linux_s390x.whl") == "cp311-abi3-linux_s390x"
    assert wheel_tag("") == ""


# --- refinery logs --------------------------------------------------------------------------
def _stored(tmp_path: Path) -> Store:
    store = Store.open(str(tmp_path / "store"))
    logs = {
        ("python-ldap", "3.4.4", 1): "==> build\nIn file included from Modules/LDAPObject.c:3:\n"
        "Modules/common.h:15:10: fatal error: lber.h: No such file or directory\n",
        ("python-ldap", "3.4.4", 2): "==> build\nok\n",
        ("other", "1.0", 1): "fine\nlber.h mentioned, but built\n",
    }
    for (name, version, n), text in logs.items():
        key = store.put_log(name, version, "3.11", n, text.encode())
        status = "failed" if "fatal" in text else "built"

        def change(
            cur: BuildRecord | None,
            n: int = n,
            key: str = key,
            status: str = status,
            name: str = name,
            version: str = version,
        ) -> BuildRecord:
            base = cur or BuildRecord(
                name=name, version=version, python="3.11", status=NodeStatus.PENDING
            )
            attempt = Attempt(n=n, started="2026-01-01T00:00:00Z", log=key, status=status)
            return base.evolve(attempts=(*base.attempts, attempt))

        store.update_record(name, version, "3.11", change)
    return store


def test_logs_grep_finds_lines_with_node_attempt_and_number(tmp_path: Path) -> None:
    store = _stored(tmp_path)
    url = str(tmp_path / "store")
    runner = CliRunner()
    got = runner.invoke(main, ["--store", url, "logs", "--grep", r"lber\.h"])
    assert got.exit_code == 0, got.output
    assert got.output.splitlines() == [
        "other==1.0@3.11 attempt 1 line 2: lber.h mentioned, but built",
        "python-ldap==3.4.4@3.11 attempt 1 line 3: "
        "Modules/common.h:15:10: fatal error: lber.h: No such file or directory",
    ]
    failed = runner.invoke(
        main, ["logs", "--grep", "LBER", "-i", "--status", "failed", "--store", url]
    )
    assert failed.exit_code == 0 and failed.output.startswith(
        "python-ldap==3.4.4@3.11 attempt 1 line 3:"
    )
    assert len(failed.output.splitlines()) == 1
    none = runner.invoke(main, ["--store", url, "logs", "--grep", "^nowhere$"])
    assert none.exit_code == 1 and none.output == ""
    anchored = runner.invoke(main, ["--store", url, "logs", "--grep", "^ok$"])
    assert anchored.output == "python-ldap==3.4.4@3.11 attempt 2 line 2: ok\n"
    assert store.log_ids("python-ldap") is not None
    assert {log.attempt for log in store.log_ids("python_ldap")} == {1, 2}


def test_logs_prints_a_node_s_log(tmp_path: Path) -> None:
    _stored(tmp_path)
    url = str(tmp_path / "store")
    runner = CliRunner()
    last = runner.invoke(main, ["--store", url, "logs", "python-ldap"])
    assert last.exit_code == 0 and last.output == "==> build\nok\n"
    first = runner.invoke(
        main, ["--store", url, "logs", "Python_LDAP==3.4.4@3.11", "--attempt", "1"]
    )
    assert "fatal error: lber.h" in first.output
    missing = runner.invoke(main, ["--store", url, "logs", "python-ldap", "--attempt", "7"])
    assert missing.exit_code == 2 and "attempts: 1, 2" in missing.output
    nothing = runner.invoke(main, ["--store", url, "logs", "absent"])
    assert nothing.exit_code == 2 and "no stored log of absent" in nothing.output


def test_log_keys_and_node_names_parse() -> None:
    found = parse_log_key("logs/python-ldap/3.4.4/3.11/2.log")
    assert found is not None and (found.name, found.attempt) == ("python-ldap", 2)
    assert parse_log_key("logs/x/1/3.11/latest.log") is None
    assert parse_log_key("records/x/1/3.11.json") is None
    assert Wanted.parse("Python_LDAP==3.4.4") == Wanted("python-ldap", "3.4.4", None)
    matches = list(search(re.compile("b", re.M), [(found, b"a\nb\n"), (found, None)]))
    assert [(m.line, m.text) for m in matches] == [(2, "b")]
