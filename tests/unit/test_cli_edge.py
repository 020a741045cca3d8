"""The CLI edge as users type it: global options before or after the subcommand, tables
that stay readable in a CI log, progress lines that say what they mean once."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fixtures.wheels import good_wheel

from refinery.cli import main
from refinery.cli.app import GLOBAL_OPTIONS, Settings
from refinery.cli.render import PLAIN_WIDTH, event_markup, make_console, plan_table
from refinery.core.cache import CacheRoot
from refinery.core.models import NodeStatus, Plan, PlanNode

HINTS = Path(__file__).resolve().parents[2] / "hints"
CLEAN_ENV = {
    "REFINERY_STORE": None,
    "REFINERY_BACKEND": None,
    "REFINERY_INDEX_URL": None,
    "REFINERY_CACHE": None,
}


def invoke(args: list[str], **env: str | None) -> click.testing.Result:
    return CliRunner().invoke(main, args, env={**CLEAN_ENV, **env})


def store_of(result: click.testing.Result) -> str:
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["store"])


# --- global options in both positions --------------------------------------------------
@pytest.fixture
def probe() -> Iterator[None]:
    """``refinery probe [show]``: a nested group whose leaf prints the settings it got."""

    @main.group("probe", invoke_without_command=False)
    def group() -> None:
        """Test probe."""

    @group.command("show")
    @click.pass_obj
    def show(settings: Settings) -> None:
        click.echo(
            json.dumps(
                {
                    "store": settings.store,
                    "backend": settings.backend,
                    "index_url": settings.index_url,
                    "cache_dir": None if settings.cache_dir is None else str(settings.cache_dir),
                    "cache_root": str(settings.cache_root.root),
                }
            )
        )

    try:
        yield
    finally:
        main.commands.pop("probe")


def shown(args: list[str], **env: str | None) -> dict[str, str | None]:
    result = invoke(args, **env)
    assert result.exit_code == 0, result.output
    doc: dict[str, str | None] = json.loads(result.output)
    return doc


@pytest.mark.parametrize(
    "args",
    [
        ["--store", "S", "status", "--json"],
        ["status", "--store", "S", "--json"],
        ["status", "--json", "--store", "S"],
        ["status", "--json", "--store=S"],
        ["--store=S", "status", "--json"],
    ],
)
def test_status_takes_store_before_or_after(args: list[str], tmp_path: Path) -> None:
    args = [
        str(tmp_path / "s") if a == "S" else a.replace("=S", f"={tmp_path / 's'}") for a in args
    ]
    assert store_of(invoke(args)) == (tmp_path / "s").as_uri()


def test_value_after_the_command_beats_the_envvar_and_the_value_before(tmp_path: Path) -> None:
    env_store, before, after = (str(tmp_path / n) for n in ("env", "before", "after"))
    by_env = invoke(["status", "--json"], REFINERY_STORE=env_store)
    assert store_of(by_env) == Path(env_store).as_uri()
    after_env = invoke(["status", "--json", "--store", after], REFINERY_STORE=env_store)
    assert store_of(after_env) == Path(after).as_uri()
    both = invoke(["--store", before, "status", "--store", after, "--json"])
    assert store_of(both) == Path(after).as_uri()


@pytest.mark.parametrize("position", ["before", "after"])
def test_ingest_writes_to_the_store_given_either_side(tmp_path: Path, position: str) -> None:
    store_dir = tmp_path / "store"
    wheel = str(good_wheel(tmp_path / "w", "okpkg", "1.0"))
    flags = ["--store", str(store_dir)]
    args = [*flags, "ingest", wheel] if position == "before" else ["ingest", wheel, *flags]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "ingested as okpkg==1.0@3.11" in result.output
    assert store_of(invoke(["--store", str(store_dir), "status", "--json"])) == store_dir.as_uri()
    assert any(p.suffix == ".whl" for p in store_dir.rglob("*"))


@pytest.mark.parametrize(
    "args",
    [
        ["--store", "X", "hints", "check", str(HINTS)],
        ["hints", "--store", "X", "check", str(HINTS)],
        ["hints", "check", str(HINTS), "--store", "X"],
        ["hints", "check", "--backend=native", str(HINTS), "--index-url", "http://i/simple/"],
    ],
)
def test_hints_check_takes_global_options_anywhere(args: list[str]) -> None:
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "hints" in result.output and "digest" in result.output


def test_every_level_of_a_nested_group_takes_them(probe: None, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    defaults = shown(["probe", "show"], XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert defaults == {
        "store": None,
        "backend": "auto",
        "index_url": "https://pypi.org/simple/",
        "cache_dir": None,
        "cache_root": str(tmp_path / "xdg" / "refinery"),
    }
    wanted = {
        "store": "s3://b/p",
        "backend": "native",
        "index_url": "http://mirror/simple/",
        "cache_dir": str(cache),
        "cache_root": str(cache),
    }
    flags = ["--store", "s3://b/p", "--backend", "native", "--index-url", "http://mirror/simple/"]
    flags += [f"--cache-dir={cache}"]
    assert shown([*flags, "probe", "show"]) == wanted
    assert shown(["probe", *flags, "show"]) == wanted
    assert shown(["probe", "show", *flags]) == wanted
    mixed = ["--backend", "container", "probe", "--backend", "rootfs", "show", "--backend"]
    assert shown([*mixed, "native"])["backend"] == "native"
    assert shown(mixed[:-1])["backend"] == "rootfs"


def test_after_the_command_the_envvars_still_apply(probe: None, tmp_path: Path) -> None:
    env = {
        "REFINERY_BACKEND": "container",
        "REFINERY_INDEX_URL": "http://env/simple/",
        "REFINERY_CACHE": str(tmp_path / "env-cache"),
    }
    got = shown(["probe", "show", "--store", "S"], **env)
    assert got["store"] == "S"
    assert got["backend"] == "container"
    assert got["index_url"] == "http://env/simple/"
    assert got["cache_root"] == str(tmp_path / "env-cache")
    overridden = shown(["probe", "show", "--cache-dir", str(tmp_path / "mine")], **env)
    assert overridden["cache_root"] == str(tmp_path / "mine")


def test_a_bad_value_after_the_command_is_a_usage_error() -> None:
    result = invoke(["status", "--backend", "qemu-magic"])
    assert result.exit_code == 2
    assert "Invalid value for '--backend'" in result.output


def test_a_command_option_of_the_same_name_wins(tmp_path: Path) -> None:
    """``hints match --backend`` is the scope of the match, a free string."""
    match = main.commands["hints"].commands["match"]  # type: ignore[attr-defined]
    assert [p.name for p in match.params].count("backend") == 1
    log = tmp_path / "build.log"
    log.write_text("nothing to see\n")
    hints_dir = str(HINTS)
    result = invoke(["hints", "match", str(log), "--hints", hints_dir, "--backend", "any-scope"])
    assert "Invalid value" not in result.output
    assert result.exit_code == 1, result.output  # ran, matched nothing
    assert "no hint" in result.output


@pytest.mark.parametrize(
    "path", [["status"], ["ingest"], ["hints", "check"], ["buildroot", "create"], ["plan"]]
)
def test_subcommand_help_shows_the_global_options(path: list[str]) -> None:
    result = invoke([*path, "--help"])
    assert result.exit_code == 0, result.output
    for option in GLOBAL_OPTIONS:
        assert option.flag in result.output
        assert option.envvar in result.output
    assert "global" in result.output


def test_settings_are_frozen_and_carry_one_cache_root(tmp_path: Path) -> None:
    settings = Settings.read(
        store=None,
        backend="auto",
        index_url="https://pypi.org/simple/",
        cache_dir=None,
        environ={"XDG_CACHE_HOME": str(tmp_path / "x")},
        home=tmp_path / "home",
    )
    assert settings.cache_root == CacheRoot(tmp_path / "x" / "refinery")
    with pytest.raises(AttributeError):
        settings.store = "elsewhere"  # type: ignore[misc]
    given = settings.given("cache_dir", tmp_path / "c")
    assert given.cache_root == CacheRoot(tmp_path / "c") and given.cache_dir == tmp_path / "c"
    home_only = Settings.read(
        store="s",
        backend="rootfs",
        index_url="u",
        cache_dir=None,
        environ={},
        home=tmp_path / "home",
    )
    assert home_only.cache_root.root == tmp_path / "home" / ".cache" / "refinery"
    with pytest.raises(ValueError, match="qemu"):
        settings.given("backend", "qemu")


# --- tables outside a terminal ----------------------------------------------------------
def _long_plan() -> Plan:
    reason = "build failed: " + " ".join(f"missing-header-{i}.h" for i in range(30))
    nodes = [
        PlanNode(
            name="a-package-with-a-rather-long-distribution-name",
            version="2024.10.1.post3",
            python="3.12",
            status=NodeStatus.FAILED,
            reason=reason,
            requested=True,
            wave=0,
        ),
        PlanNode(
            name="numpy",
            version="2.1.0",
            python="3.11",
            status=NodeStatus.PENDING,
            reason="no s390x wheel on the index; " + "x" * 150,
            requested=False,
            wave=1,
        ),
    ]
    return Plan(
        plan_id="p" * 16,
        inputs=(),
        targets=(),
        nodes=tuple(nodes),
        waves=(),
        matrix={},
    )


def _rendered(environ: dict[str, str]) -> str:
    buf = io.StringIO()
    console = make_console(file=buf, environ=environ)
    assert not console.is_terminal
    console.print(plan_table(_long_plan()))
    return buf.getvalue()


def test_a_table_in_a_ci_log_never_folds_a_cell() -> None:
    out = _rendered({})
    lines = out.splitlines()
    for node in _long_plan().nodes:
        for cell in (node.name, node.version, node.reason):
            assert sum(cell in line for line in lines) == 1, (cell, out)
    assert max(map(len, lines)) > 80
    assert max(map(len, lines)) < PLAIN_WIDTH  # no padding to the console width


def test_a_table_uses_the_width_the_ci_gives() -> None:
    out = _rendered({"COLUMNS": "120"})
    assert max(map(len, out.splitlines())) <= 120
    assert make_console(file=io.StringIO(), environ={"COLUMNS": "junk"}).width == PLAIN_WIDTH


# --- progress lines ---------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    kind: str
    node: str | None = None
    message: str = ""
    status: NodeStatus | None = None


def _plain(markup: str) -> str:
    from rich.text import Text

    return Text.from_markup(markup).plain


def test_a_wave_line_says_wave_once() -> None:
    line = _plain(event_markup(Event("wave", None, "wave 0: 3 node(s)")))
    assert line == "wave 0: 3 node(s)"
    assert "wave wave" not in line


def test_other_progress_lines_keep_kind_node_and_message() -> None:
    building = Event("building", "numpy==2.1.0@3.11", "attempt 1 on rootfs")
    assert _plain(event_markup(building)) == "building numpy==2.1.0@3.11 attempt 1 on rootfs"
    done = Event("done", "x==1@3.11", "failed: [red] no compiler", NodeStatus.FAILED)
    markup = event_markup(done)
    assert "bold red" in markup
    assert _plain(markup) == "done x==1@3.11 failed: [red] no compiler"
    assert _plain(event_markup(Event("finished", None, "2 node(s) in 3s"))) == (
        "finished 2 node(s) in 3s"
    )
