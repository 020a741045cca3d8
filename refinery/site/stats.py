"""Figures derived from the records: histograms, time series, hint statistics."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from refinery.core.clock import parse_or_none
from refinery.core.models import NodeStatus
from refinery.site.catalog import CatalogEntry
from refinery.site.model import FAILURE, QUEUE, Node

DURATION_BINS: tuple[tuple[float, str], ...] = (
    (30, "<30s"),
    (60, "30s-1m"),
    (120, "1-2m"),
    (300, "2-5m"),
    (600, "5-10m"),
    (1800, "10-30m"),
    (3600, "30-60m"),
    (float("inf"), ">1h"),
)

_BUCKETS = (
    (timedelta(hours=1), "%H:%M"),
    (timedelta(hours=6), "%m-%d %H:00"),
    (timedelta(days=1), "%m-%d"),
    (timedelta(days=7), "%Y-%m-%d"),
    (timedelta(days=30), "%Y-%m"),
)
MAX_BUCKETS = 36
QUEUE_KINDS = frozenset(str(s) for s in QUEUE) | {"pending"}


def duration_histogram(nodes: Iterable[Node]) -> list[int]:
    counts = [0] * len(DURATION_BINS)
    for n in nodes:
        for a in n.record.attempts:
            if a.duration is None:
                continue
            for i, (limit, _label) in enumerate(DURATION_BINS):
                if a.duration < limit:
                    counts[i] += 1
                    break
    return counts


@dataclass(frozen=True, slots=True)
class Timeline:
    labels: list[str]
    starts: list[datetime]
    step: timedelta

    def index(self, at: datetime) -> int:
        return min(len(self.starts) - 1, max(0, int((at - self.starts[0]) / self.step)))


def timeline(times: Sequence[datetime]) -> Timeline | None:
    """Evenly spaced buckets covering ``times`` (at most :data:`MAX_BUCKETS`)."""
    if not times:
        return None
    first, last = min(times), max(times)
    step, fmt = next(
        ((step, fmt) for step, fmt in _BUCKETS if (last - first) / step < MAX_BUCKETS),
        _BUCKETS[-1],
    )
    epoch = datetime(2000, 1, 1, tzinfo=first.tzinfo)
    start = epoch + step * int((first - epoch) / step)
    count = int((last - start) / step) + 1
    starts = [start + step * i for i in range(count)]
    return Timeline([s.strftime(fmt) for s in starts], starts, step)


def outcomes_over_time(nodes: Iterable[Node]) -> tuple[Timeline, list[int], list[int]] | None:
    """Attempts that ended built / failed, per time bucket."""
    ended: list[tuple[datetime, bool]] = []
    for n in nodes:
        for a in n.record.attempts:
            at = parse_or_none(a.ended)
            if at is None or not a.status:
                continue
            if a.status == NodeStatus.BUILT:
                ended.append((at, True))
            elif a.status in FAILURE or a.status == NodeStatus.MISSING:
                ended.append((at, False))
    line = timeline([t for t, _ in ended])
    if line is None:
        return None
    built = [0] * len(line.starts)
    failed = [0] * len(line.starts)
    for at, ok in ended:
        (built if ok else failed)[line.index(at)] += 1
    return line, built, failed


def queue_over_time(nodes: Iterable[Node]) -> tuple[Timeline, list[int]] | None:
    """How many nodes were pending/leased/building/retry at the end of each time bucket.

    Each record's events are a state machine: a node is in the queue from an event whose
    kind is a queue state until its next event (or until now, when it is still queued).
    """
    intervals: list[tuple[datetime, datetime | None]] = []
    times: list[datetime] = []
    for n in nodes:
        events = [(parse_or_none(e.at), e.kind) for e in n.record.events]
        timed = [(t, k) for t, k in events if t is not None]
        for i, (t, kind) in enumerate(timed):
            times.append(t)
            if kind in QUEUE_KINDS:
                end = timed[i + 1][0] if i + 1 < len(timed) else None
                intervals.append((t, end))
    line = timeline(times)
    if line is None:
        return None
    size = len(line.starts)
    delta = [0] * (size + 1)
    origin, step = line.starts[0], line.step

    def first_sample_at_or_after(at: datetime) -> int:
        # Samples are taken at the end of each bucket: origin + step * (i + 1).
        return max(0, math.ceil((at - origin) / step) - 1)

    for start, end in intervals:
        a = first_sample_at_or_after(start)
        b = size if end is None else min(size, first_sample_at_or_after(end))
        if b > a:
            delta[a] += 1
            delta[b] -= 1
    values, running = [], 0
    for i in range(size):
        running += delta[i]
        values.append(running)
    return line, values


@dataclass(frozen=True, slots=True)
class Activity:
    at: str
    name: str
    version: str
    python: str
    kind: str
    message: str


def recent_activity(nodes: Iterable[Node], limit: int = 20) -> list[Activity]:
    items = (
        Activity(e.at, n.record.name, n.record.version, n.record.python, e.kind, e.message)
        for n in nodes
        for e in n.record.events
    )
    return heapq.nlargest(limit, items, key=lambda a: a.at)


@dataclass(slots=True)
class HintStats:
    hint_id: str
    fired: int = 0  # attempts that ran with this hint's fix applied
    fixed: int = 0  # of those, attempts that built
    packages: set[str] = field(default_factory=set)
    note: str = ""
    fix: str = ""
    in_catalog: bool = False

    @property
    def rate(self) -> str:
        return f"{100 * self.fixed / self.fired:.0f}%" if self.fired else "-"


def hint_stats(nodes: Iterable[Node], catalog: Mapping[str, CatalogEntry]) -> list[HintStats]:
    stats: dict[str, HintStats] = {
        hid: HintStats(hid, note=e.note, fix=e.fix, in_catalog=True) for hid, e in catalog.items()
    }
    for n in nodes:
        for a in n.record.attempts:
            for hid in a.hint_ids:
                s = stats.setdefault(hid, HintStats(hid))
                s.fired += 1
                s.fixed += a.status == NodeStatus.BUILT
                s.packages.add(n.record.name)
    return sorted(stats.values(), key=lambda s: (-s.fired, s.hint_id))
