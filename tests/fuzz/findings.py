"""Open findings of the fuzz suite (/tmp/share/fuzz-findings.md has the details).

Each entry names a target, the finding and the inputs that show it (tried
first, so the strict xfail is deterministic).  When a fix is merged the
target's test XPASSes, which fails: delete the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .mutations import replaced


HUGE = 1 << 70_000


@dataclass(frozen=True)
class Finding:
    id: str
    what: str
    inputs: Callable[[], Sequence[bytes]]


def _at(seeds: Callable[[], Sequence[bytes]], path: Sequence[object], value: object) -> Callable[[], list[bytes]]:
    """The target's seeds with ``path`` set to ``value``."""
    return lambda: [replaced(seed, path, value) for seed in seeds()]


INT_MESSAGE = "a huge int (CBOR bignum) in {}: ValueError from str(int) in the error message, not a UsappError"
DEEP_JSON = "JSON nested deeper than the recursion limit: RecursionError escapes ({} catches ValueError only)"


def findings(seeds_of: Callable[[str], Callable[[], Sequence[bytes]]]) -> dict[str, Finding]:
    """Target name -> its open finding; ``seeds_of(name)`` gives a target's seeds."""
    out: dict[str, Finding] = {}

    def add(fid: str, what: str, names: Sequence[str], inputs: Callable[[str], Callable[[], Sequence[bytes]]]) -> None:
        for name in names:
            new = Finding(fid, what, inputs(name))
            old = out.get(name)
            if old is not None and old.id != fid:   # a second finding on one target: both must be fixed
                first, second = old.inputs, new.inputs
                new = Finding(f"{old.id}+{fid}", f"{old.what}; {fid}: {what}",
                              lambda a=first, b=second: [*a(), *b()])   # type: ignore[misc]
            out[name] = new

    # F1 to F12 are fixed (see the issue 16 note); add new findings here.
    return out
