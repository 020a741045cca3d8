"""``refinery logs``: a stored build log, or a search over all of them.

``refinery logs NODE [--attempt N]`` prints one attempt's log (the last by default);
NODE is ``name``, ``name==version`` or ``name==version@python``.
``refinery logs --grep REGEX [--status failed] [NODE]`` searches every stored log (of
NODE's project, when given) and prints ``node attempt N line L: text`` per match — the
store's logs one at a time, a few fetched ahead, so memory stays within a few logs.
Exit 0 when something was printed, 1 when the search found nothing (as ``grep``).
"""

from __future__ import annotations

import io
import re
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from refinery.cli.app import Settings, _guard, main
from refinery.core.errors import InputError
from refinery.core.models import NodeStatus, normalize_name

if TYPE_CHECKING:
    from refinery.store import Store
    from refinery.store.layout import LogId

#: Logs fetched ahead of the one being searched (an S3 store answers in parallel).
AHEAD = 8


@dataclass(frozen=True, slots=True)
class Wanted:
    """``name[==version[@python]]`` as typed."""

    name: str
    version: str | None = None
    python: str | None = None

    @classmethod
    def parse(cls, text: str) -> Wanted:
        name, _, rest = text.strip().partition("==")
        version, _, python = rest.partition("@")
        if not name or (rest and not version):
            raise InputError(f"{text!r}: want NAME, NAME==VERSION or NAME==VERSION@PYTHON")
        return cls(normalize_name(name), version or None, python or None)

    def matches(self, log: LogId) -> bool:
        return (self.version is None or log.version == self.version) and (
            self.python is None or log.python == self.python
        )


def node_of(log: LogId) -> str:
    return f"{log.name}=={log.version}@{log.python}"


def pick_log(store: Store, wanted: Wanted, attempt: int | None) -> LogId:
    """The log of one node's attempt (its last when ``attempt`` is None)."""
    found = [log for log in store.log_ids(wanted.name) if wanted.matches(log)]
    nodes = sorted({node_of(log) for log in found})
    if not nodes:
        raise InputError(f"no stored log of {wanted.name} in {store.url}")
    if len(nodes) > 1:
        raise InputError(f"several nodes have logs, name one: {', '.join(nodes)}")
    if attempt is None:
        return max(found, key=lambda log: log.attempt)
    for log in found:
        if log.attempt == attempt:
            return log
    have = ", ".join(str(n) for n in sorted(log.attempt for log in found))
    raise InputError(f"{nodes[0]} has no log of attempt {attempt} (attempts: {have})")


@dataclass(frozen=True, slots=True)
class Match:
    log: LogId
    line: int
    text: str

    def __str__(self) -> str:
        return f"{node_of(self.log)} attempt {self.log.attempt} line {self.line}: {self.text}"


def search(pattern: re.Pattern[str], logs: Iterable[tuple[LogId, bytes | None]]) -> Iterator[Match]:
    """The lines of ``logs`` that ``pattern`` (compiled with ``re.MULTILINE``) matches,
    in order, one log at a time."""
    for log, data in logs:
        if data is None:
            continue
        text = data.decode("utf-8", "replace")
        if pattern.search(text) is None:  # one pass over the log; most have no match
            continue
        for number, line in enumerate(io.StringIO(text), 1):
            if pattern.search(line):
                yield Match(log, number, line.rstrip("\r\n"))


def fetched(store: Store, logs: Iterable[LogId]) -> Iterator[tuple[LogId, bytes | None]]:
    """Each log with its bytes, in the given order, :data:`AHEAD` fetched in parallel."""
    with ThreadPoolExecutor(max_workers=AHEAD) as pool:
        window: deque[tuple[LogId, Future[bytes | None]]] = deque()
        for log in logs:
            window.append((log, pool.submit(store.get_log, log.key)))
            if len(window) > AHEAD:
                first, future = window.popleft()
                yield first, future.result()
        while window:
            first, future = window.popleft()
            yield first, future.result()


def with_status(store: Store, logs: Iterable[LogId], status: str) -> Iterator[LogId]:
    """The logs whose attempt ended in ``status`` (per the node's record)."""
    records: dict[tuple[str, str, str], dict[int, str]] = {}
    for log in logs:
        node = (log.name, log.version, log.python)
        if node not in records:
            record = store.get_record(*node)
            records[node] = {a.n: a.status for a in record.attempts} if record else {}
        if records[node].get(log.attempt) == status:
            yield log


def _order(log: LogId) -> tuple[str, str, str, int]:
    return (log.name, log.version, log.python, log.attempt)


STATUSES = tuple(str(s) for s in NodeStatus)


@main.command()
@click.argument("node", required=False, metavar="[NODE]")
@click.option("--attempt", type=int, default=None, help="Which attempt (default: the last).")
@click.option("--grep", "pattern", metavar="REGEX", help="Search every stored log (of NODE).")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default=None,
    help="With --grep: only logs of attempts that ended so (e.g. failed).",
)
@click.option("-i", "--ignore-case", is_flag=True, help="With --grep: ignore case.")
@click.pass_obj
@_guard
def logs(
    settings: Settings,
    /,
    node: str | None,
    attempt: int | None,
    pattern: str | None,
    status: str | None,
    ignore_case: bool,
) -> None:
    """Print a stored build log (NODE: name[==version[@python]]), or search them all
    with --grep: every match as `node attempt N line L: text`."""
    store = settings.open_store()
    wanted = Wanted.parse(node) if node else None
    if pattern is None:
        if wanted is None:
            raise InputError("name a NODE, or search with --grep REGEX")
        found = pick_log(store, wanted, attempt)
        data = store.get_log(found.key) or b""
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        regex = re.compile(pattern, re.MULTILINE | (re.IGNORECASE if ignore_case else 0))
    except re.error as exc:
        raise InputError(f"--grep {pattern!r}: {exc}") from None
    chosen = sorted(
        (
            log
            for log in store.log_ids(wanted.name if wanted else None)
            if (wanted is None or wanted.matches(log))
            and (attempt is None or log.attempt == attempt)
        ),
        key=_order,
    )
    selected = with_status(store, chosen, status) if status else chosen
    hits = 0
    for match in search(regex, fetched(store, selected)):
        print(match, flush=False)
        hits += 1
    sys.stdout.flush()
    sys.exit(0 if hits else 1)
