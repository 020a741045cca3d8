"""What ``refinery build`` and ``run`` show while they build (the runner's events).

One of three, chosen once by :func:`make_renderer`:

``-v`` (:class:`StreamRenderer`)
    every output line as it comes, prefixed by its node (on GitHub Actions: a folded
    group whenever the node changes) — the whole story, interleaved across ``-j``.
a terminal (:class:`LiveRenderer`)
    a rich live view: one line per node in flight (state, attempt, elapsed time, how far
    its build tool says it is), the counts and an estimate of the time left from the
    store's earlier durations; each node's output goes to a file in a folder the view
    names, and a line per finished node stays on the screen.
anything else (:class:`BlockRenderer`)
    line-based, each node's output as one block when the node is done (on GitHub
    Actions a folded ``::group::``): the whole output when it is small, else its end and
    where the whole log is. Memory stays bounded by :class:`NodeBlock`.

Every renderer keeps a :class:`Board` (who is where, for how long), which the summary
at the end reads.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from refinery.cli.progress import ProgressReader
from refinery.cli.render import STATUS_STYLE, Event, event_markup, gha_escape
from refinery.core.models import NodeStatus

_ATTEMPT = re.compile(r"attempt (\d+) on (\S+)")
FAILED = frozenset({NodeStatus.FAILED, NodeStatus.SYSTEM_RECIPE_FAILED})


def clock(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --- the board: where every node is ---------------------------------------------------
@dataclass
class InFlight:
    """A node being built."""

    key: str
    since: float
    state: str = "leased"
    attempt: int = 0
    backend: str = ""
    reader: ProgressReader = field(default_factory=ProgressReader)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Seconds left for the nodes still to build, from earlier durations (``known`` of
    ``of`` nodes had one)."""

    seconds: float
    known: int
    of: int

    def text(self) -> str:
        if not self.known:
            return ""
        part = "" if self.known == self.of else f" ({self.known}/{self.of} nodes known)"
        return f"ETA ~{clock(self.seconds)}{part}"


class Board:
    """Every node's place (to build, in flight, done), from the runner's events; safe to
    read from the live view's refresh thread while builder threads report."""

    def __init__(self, *, max_attempts: int, jobs: int, now: Callable[[], float]) -> None:
        self.max_attempts = max_attempts
        self.jobs = max(1, jobs)
        self.now = now
        self.lock = threading.RLock()
        self.todo: set[str] = set()
        self.flying: dict[str, InFlight] = {}
        self.done: dict[str, NodeStatus] = {}
        self.seconds: dict[str, float] = {}
        self.skipped = 0
        self.expected: dict[str, float] = {}  # node → seconds an earlier build took
        self.note = ""  # the latest line that belongs to no node (preparing a root)

    def expect(self, keys: Iterable[str]) -> None:
        with self.lock:
            self.todo.update(k for k in keys if k not in self.done and k not in self.flying)

    def learn(self, durations: dict[str, float]) -> None:
        with self.lock:
            self.expected.update(durations)

    def observe(self, event: Event) -> InFlight | None:
        """Take in an event; the node's state when it is (still) in flight."""
        key, kind = event.node, event.kind
        with self.lock:
            if key is None:
                if kind == "line":
                    self.note = event.message.strip()[:200]
                return None
            if kind == "skip":
                if key in self.todo:
                    self.todo.discard(key)
                    self.skipped += 1
                return None
            if kind == "done":
                node = self.flying.pop(key, None)
                self.todo.discard(key)
                self.done[key] = event.status or NodeStatus.FAILED
                if node is not None:
                    self.seconds[key] = self.now() - node.since
                return None
            return self._flying(key, kind, event.message)

    def _flying(self, key: str, kind: str, message: str) -> InFlight:
        node = self.flying.get(key)
        if node is None:
            node = self.flying[key] = InFlight(key, since=self.now())
            self.todo.discard(key)
        if kind == "line":
            node.reader.feed(message)
        elif kind == "building":
            found = _ATTEMPT.match(message)
            if found is not None:
                node.attempt, node.backend = int(found.group(1)), found.group(2)
            node.state = "building"
        elif kind in ("retry", "fallback", "leased"):
            node.state = kind
        return node

    def counts(self) -> dict[str, int]:
        with self.lock:
            built = sum(1 for s in self.done.values() if s is NodeStatus.BUILT)
            failed = sum(1 for s in self.done.values() if s in FAILED)
            return {
                "pending": len(self.todo),
                "building": len(self.flying),
                "built": built,
                "failed": failed,
                "other": len(self.done) - built - failed,
                "skipped": self.skipped,
            }

    def estimate(self) -> Estimate:
        """Time left: what each node took before, less what it has had so far, spread
        over the parallel jobs."""
        with self.lock:
            now = self.now()
            left = [
                *((k, now - n.since) for k, n in self.flying.items()),
                *((k, 0.0) for k in self.todo),
            ]
            known = [(self.expected[k], spent) for k, spent in left if k in self.expected]
            total = sum(max(0.0, expected - spent) for expected, spent in known)
            return Estimate(total / self.jobs, len(known), len(left))


# --- a node's lines, kept until it is done -----------------------------------------------
MAX_LINE = 10_000


class NodeBlock:
    """A node's output until its end: every line while they are few (``keep_lines`` and
    ``keep_bytes``), then only the last ``tail`` — the whole log is a file anyway."""

    def __init__(self, *, keep_lines: int = 2000, keep_bytes: int = 512_000, tail: int = 120):
        self.keep_lines = keep_lines
        self.keep_bytes = keep_bytes
        self.head: list[str] | None = []
        self.tail: deque[str] = deque(maxlen=tail)
        self.total = 0
        self.size = 0

    def add(self, line: str) -> None:
        text = line.rstrip("\n")[:MAX_LINE]
        self.total += 1
        self.tail.append(text)
        if self.head is None:
            return
        self.head.append(text)
        self.size += len(text) + 1
        if len(self.head) > self.keep_lines or self.size > self.keep_bytes:
            self.head = None

    @property
    def truncated(self) -> bool:
        return self.head is None

    def lines(self) -> list[str]:
        return list(self.tail) if self.head is None else list(self.head)

    def block(self, title: str, whole_log: str | None) -> list[str]:
        """The block's text lines (without any group markup): the lines, or a note of
        how many were left out and where the whole log is, then the last ones."""
        if not self.truncated:
            return self.lines()
        where = f"; whole log: {whole_log}" if whole_log else ""
        omitted = self.total - len(self.tail)
        return [f"[{title}: {omitted} earlier lines not shown{where}]", *self.lines()]


# --- renderers -----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class View:
    """How to render: ``verbose`` streams every line; ``gha`` speaks GitHub Actions."""

    console: Console
    max_attempts: int
    jobs: int
    verbose: bool = False
    gha: bool = False
    #: The whole log of a node's last attempt (a path or URL), for a block cut short.
    whole_log: Callable[[str], str | None] = lambda key: None
    now: Callable[[], float] = time.monotonic


class Renderer:
    """The common part: the board, the GitHub Actions annotations of an event."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.console = view.console
        self.board = Board(max_attempts=view.max_attempts, jobs=view.jobs, now=view.now)
        self.out: IO[str] = view.console.file

    def expect(self, keys: Iterable[str], durations: dict[str, float] | None = None) -> None:
        """The nodes this run will build (and what they took before, where known)."""
        self.board.expect(keys)
        if durations:
            self.board.learn(durations)

    def __call__(self, event: Any) -> None:
        self.board.observe(event)
        self.render(event)

    def render(self, event: Any) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        return None

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def annotate(self, event: Any) -> None:
        """On GitHub Actions: an error per failed node, notices for a smoke test that
        needs context and for a move to the emulated root."""
        if not self.view.gha:
            return
        kind, node, status = event.kind, event.node or "", event.status
        if kind == "done" and status is not None and status is not NodeStatus.BUILT:
            # the message is the outcome's reason: the root-cause line first
            self.print(f"::error title={gha_escape(node, prop=True)}::{gha_escape(event.message)}")
        smoke = getattr(getattr(event, "outcome", None), "smoke", None)
        if kind == "done" and smoke is not None and smoke.note:
            title = gha_escape(f"{node}: built, import needs context", prop=True)
            self.print(f"::notice title={title}::{gha_escape(smoke.note)}")
        if kind == "fallback":
            title = gha_escape(f"{node}: emulated build", prop=True)
            self.print(f"::notice title={title}::{gha_escape(event.message)}")


class StreamRenderer(Renderer):
    """``-v``: every line as it comes; on GitHub Actions folded groups whose contents
    cannot issue workflow commands (``::stop-commands::``)."""

    def __init__(self, view: View) -> None:
        super().__init__(view)
        self.token = secrets.token_hex(16)
        self.open_group: str | None = None

    def _close(self) -> None:
        if self.view.gha and self.open_group is not None:
            self.print(f"::{self.token}::")
            self.print("::endgroup::")
        self.open_group = None

    def render(self, event: Any) -> None:
        kind, node = event.kind, event.node
        if kind == "line":
            text = event.message.rstrip("\n")
            if not self.view.gha:
                prefix = f"[dim]{escape(node)}[/] " if node else ""
                self.console.print(f"{prefix}[dim]{escape(text)}[/]")
                return
            if node and self.open_group != node:
                self._close()
                self.print(f"::group::{gha_escape(node)}")
                self.print(f"::stop-commands::{self.token}")
                self.open_group = node
            self.print(text)
            return
        self._close()
        self.annotate(event)
        self.console.print(event_markup(event))

    def finish(self) -> None:
        self._close()


def done_line(event: Any, seconds: float | None) -> str:
    """A finished node in one line: status, node, time, wheel or reason."""
    status = event.status
    style = STATUS_STYLE.get(status, "cyan") if status is not None else "cyan"
    took = f" in {clock(seconds)}" if seconds is not None else ""
    mark = "✓" if status is NodeStatus.BUILT else "✗"
    message = escape(event.message.splitlines()[0] if event.message else "")
    return f"[{style}]{mark} {status}[/] [bold]{escape(event.node or '')}[/]{took}  {message}"


class BlockRenderer(Renderer):
    """Not a terminal: status events as lines, each node's output one block at its end."""

    def __init__(self, view: View) -> None:
        super().__init__(view)
        self.blocks: dict[str, NodeBlock] = {}
        self.lock = threading.Lock()
        self.token = secrets.token_hex(16)

    def render(self, event: Any) -> None:
        kind, node = event.kind, event.node
        if kind == "line":
            if node is None:
                self.print(event.message.rstrip("\n"))
                return
            with self.lock:
                self.blocks.setdefault(node, NodeBlock()).add(event.message)
            return
        if kind == "done" and node is not None:
            self.flush(node, done_line(event, self.board.seconds.get(node)))
        self.annotate(event)
        if kind != "done":
            self.console.print(event_markup(event))

    def flush(self, node: str, headline: str) -> None:
        """The node's block, then (outside the group) its headline."""
        with self.lock:
            block = self.blocks.pop(node, None)
            title = Text.from_markup(headline).plain
            if block is not None and block.total:
                whole = self.view.whole_log(node) if block.truncated else None
                lines = block.block(node, whole)
                if self.view.gha:
                    self.print(f"::group::{gha_escape(title)}")
                    self.print(f"::stop-commands::{self.token}")
                    self.out.write("".join(f"{line}\n" for line in lines))
                    self.print(f"::{self.token}::")
                    self.print("::endgroup::")
                else:
                    self.print(f"----- {node}: {block.total} lines -----")
                    self.out.write("".join(f"{line}\n" for line in lines))
                    self.print(f"----- end of {node} -----")
            self.console.print(headline)

    def finish(self) -> None:
        for node in list(self.blocks):
            self.flush(node, f"[yellow]unfinished[/] [bold]{escape(node)}[/]")


class LogFiles:
    """Each node's output in a file of its own (every attempt), in one folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="refinery-logs."))
        self.files: dict[str, IO[str]] = {}
        self.lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.folder / (re.sub(r"[^\w.+-]+", "_", key) + ".log")

    def write(self, key: str, line: str) -> None:
        with self.lock:
            fh = self.files.get(key)
            if fh is None:
                fh = self.files[key] = self.path(key).open("a", encoding="utf-8")
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()

    def close(self, key: str | None = None) -> None:
        with self.lock:
            for k in [key] if key is not None else list(self.files):
                fh = self.files.pop(k, None) if k is not None else None
                if fh is not None:
                    fh.close()

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)


STATE_STYLE = {"leased": "cyan", "building": "yellow", "retry": "magenta", "fallback": "magenta"}


class LiveRenderer(Renderer):
    """A terminal: the live view, output lines to files, a line per finished node."""

    def __init__(self, view: View) -> None:
        super().__init__(view)
        self.logs = LogFiles()
        self.live: Live | None = None
        self.finished = False
        self.lock = threading.Lock()

    def _start(self) -> None:
        if self.live is None:
            self.live = Live(
                get_renderable=self.renderable,
                console=self.console,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()

    def render(self, event: Any) -> None:
        kind, node = event.kind, event.node
        with self.lock:
            self._start()
            if kind == "line":
                if node is not None:
                    self.logs.write(node, event.message)
                return
            if kind == "done" and node is not None:
                self.logs.close(node)
                self.console.print(done_line(event, self.board.seconds.get(node)))
                return
            if kind == "finished":
                self.finished = True
            if kind in ("wave", "retry", "fallback", "finished") or (
                kind == "skip" and not event.message.startswith("plan says")
            ):
                self.console.print(event_markup(event))

    def renderable(self) -> Group:
        counts = self.board.counts()
        parts = [f"{counts['building']} building", f"{counts['pending']} pending"]
        parts += [f"{counts['built']} built", f"{counts['failed']} failed"]
        parts += [f"{counts[k]} {k}" for k in ("other", "skipped") if counts[k]]
        head = Text(" · ".join(parts), style="bold")
        eta = self.board.estimate().text()
        if eta:
            head.append(f"   {eta}", style="cyan")
        head.append(f"   logs: {self.logs.folder}/", style="dim")
        table = Table.grid(padding=(0, 2))
        for _ in range(5):
            table.add_column(no_wrap=True)
        now = self.board.now()
        with self.board.lock:
            flying = sorted(self.board.flying.values(), key=lambda n: n.since)
            note = self.board.note if not flying else ""
            for n in flying:
                attempt = f"attempt {n.attempt}/{self.board.max_attempts}" if n.attempt else ""
                table.add_row(
                    Text(n.state, style=STATE_STYLE.get(n.state, "")),
                    Text(n.key, style="bold"),
                    attempt,
                    clock(now - n.since),
                    Text(n.reader.progress.text(), overflow="ellipsis"),
                )
        rows: list[Any] = [head, table]
        if note:
            rows.append(Text(note, style="dim", overflow="ellipsis", no_wrap=True))
        return Group(*rows)

    def finish(self) -> None:
        with self.lock:
            if self.live is not None:
                self.live.stop()
                self.live = None
        self.logs.close()
        if not self.logs.folder.is_dir():
            return  # finished before
        if self.finished or not any(self.logs.folder.iterdir()):
            self.logs.remove()  # the stored logs have it all (or there was nothing)
        else:  # interrupted: the only copy of the unfinished attempts' output
            self.console.print(f"[dim]output so far: {self.logs.folder}/[/]")


def make_renderer(view: View) -> Renderer:
    """``-v``: stream; a terminal: the live view; elsewhere: blocks."""
    if view.verbose:
        return StreamRenderer(view)
    if view.console.is_terminal:
        return LiveRenderer(view)
    return BlockRenderer(view)
