"""Timestamps, one format everywhere: ISO 8601 UTC to the second with a ``Z``
(``2026-11-30T10:41:54Z``), and the one rule for lease expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def stamp(at: datetime) -> str:
    """``at`` as a refinery timestamp (naive datetimes are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now() -> str:
    """The current time as a refinery timestamp."""
    return stamp(datetime.now(UTC))


def later(seconds: float, start: datetime | None = None) -> str:
    """The timestamp ``seconds`` after ``start`` (default: now)."""
    return stamp((start or datetime.now(UTC)) + timedelta(seconds=seconds))


def parse(value: str) -> datetime:
    """A timestamp as an aware datetime; ``ValueError`` when malformed."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_or_none(value: str | None) -> datetime | None:
    """:func:`parse`, with ``None`` for an empty or malformed value."""
    if not value:
        return None
    try:
        return parse(value)
    except ValueError:
        return None


def lease_over(expires: str | None, at: datetime | None = None) -> bool:
    """Whether a lease that ends at ``expires`` is over at ``at`` (default: now).

    The one rule for every reader (runner, reconcile, status site): the runner always
    writes an expiry, so a missing or unreadable one protects nothing: it is over.
    """
    if not expires:
        return True
    try:
        return parse(expires) <= (at or datetime.now(UTC))
    except ValueError:
        return True
