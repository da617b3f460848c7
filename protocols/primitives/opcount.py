"""Operation counters: what a protocol step costs, counted from a real run (specs/costs.md section 2).

Off by default.  Code that does a costly operation calls :func:`record` (or, on a hot path,
checks :func:`active` first so that building the key costs nothing when nobody counts).
A caller who wants the counts runs the step inside :func:`counting`::

    with counting() as counts:
        meter.report(...)
    counts["modexp_bit:4096"]

Counters nest: an operation is added to every counter that is open in the current context
(a role step inside a whole-protocol run, say).  The state lives in a :class:`contextvars.ContextVar`,
so threads and asyncio tasks each see only their own counters; nothing is module-level mutable state.

Keys are ``name`` or ``name:size``; the vocabulary is the table of specs/costs.md section 2.1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from protocols.errors import ParameterError

__all__ = ["Counts", "active", "counting", "open_counters", "record", "size_class", "suspended"]

Counts = Counter
"""A count per operation key (a :class:`collections.Counter` of str to int)."""

_OPEN: ContextVar[tuple[Counter[str], ...]] = ContextVar("usapp_opcount_open", default=())

SIZE_STEP_BITS = 64
"""Operand sizes are recorded rounded up to a multiple of this many bits (section 2.2)."""


def size_class(bits: int) -> int:
    """``bits`` rounded up to a multiple of :data:`SIZE_STEP_BITS` (at least one step)."""
    if bits < 1:
        return SIZE_STEP_BITS
    return -(-bits // SIZE_STEP_BITS) * SIZE_STEP_BITS


def active() -> bool:
    """True when at least one counter is open in this context."""
    return bool(_OPEN.get())


open_counters = _OPEN.get
"""The counters open in this context, a tuple (empty when none): on the hottest paths
``if not open_counters():`` is the cheapest test, a single C call (section 2.3)."""


def record(key: str, n: int = 1) -> None:
    """Add ``n`` operations ``key`` to every open counter; nothing when none is open."""
    open_counters = _OPEN.get()
    if not open_counters:
        return
    if n < 0:
        raise ParameterError(f"operation count for {key!r} must not be negative, not {n}")
    for counts in open_counters:
        counts[key] += n


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Open a counter for the operations done inside the ``with`` block and yield it."""
    counts: Counter[str] = Counter()
    token = _OPEN.set(_OPEN.get() + (counts,))
    try:
        yield counts
    finally:
        _OPEN.reset(token)


@contextmanager
def suspended() -> Iterator[None]:
    """Record nothing inside the ``with`` block, even into counters opened outside it (for work
    that is not part of the step being counted, such as building a benchmark's fixed inputs)."""
    token = _OPEN.set(())
    try:
        yield
    finally:
        _OPEN.reset(token)
