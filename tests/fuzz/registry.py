"""The fuzz harness: a target is a small adapter (name, seeds, call), and one property checks them all.

The property (issue 16 item 3), for every target and every input:

* the call returns (the input is accepted) or raises a subclass of
  :class:`protocols.errors.UsappError`; no other exception;
* an accepted input is legitimate: for a verifying target (a signature, MAC,
  AEAD or proof check, a role's message handler) it is byte-identical to a
  valid seed; for a decoder of a canonical encoding it re-encodes to exactly
  the input; a target whose acceptance cannot be judged from the bytes
  alone says so (``accept=ANY``) and only the first rule applies;
* it is bounded: the Python memory allocated during the call (tracemalloc
  peak) stays under :func:`memory_budget` of the input's length.  The check
  is structural -- no time is measured.

A target's ``call`` must be self-contained: a role's handler copies the
role's state first, so inputs do not interfere.
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from protocols.errors import UsappError

VERIFY = "verify"
"""Accepted only if byte-identical to a seed."""
CANONICAL = "canonical"
"""Accepted only if ``canonical(input, result)`` (the result re-encodes to the input)."""
ANY = "any"
"""Acceptance cannot be judged from the bytes (a lenient parser or a decoder of
non-canonical input by design): only the exception and memory rules apply."""

MEMORY_FLOOR = 48 << 20
"""Python memory any call may use whatever its input (48 MiB: keys, a pairing, a Paillier
operation with a 4096-bit modulus, a vector family's recomputation)."""


def memory_budget(size: int) -> int:
    """Bytes of Python memory a call on ``size`` input bytes may allocate at its peak."""
    return MEMORY_FLOOR + 16 * size


@dataclass(frozen=True)
class Target:
    name: str
    seeds: Callable[[], Sequence[bytes]]
    """The valid messages (from vectors/*.json, or made by the honest roles); computed once."""
    call: Callable[[bytes], object]
    kind: str = "bytes"
    """Mutation kind: "bytes", "cbor" (structure-aware CBOR mutations too) or "json"."""
    accept: str = VERIFY
    canonical: Callable[[bytes, object], bool] | None = None
    examples: int = 40
    """Short (CI) budget: hypothesis examples."""
    finding: str | None = None
    """"F<n>: what" while the target has an open finding (the test is a strict xfail)."""
    regressions: Callable[[], Sequence[bytes]] = field(default=lambda: ())
    """Inputs that broke the property (a finding's minimal inputs); tried before the random ones."""


class PropertyViolation(AssertionError):
    pass


def cached(factory: Callable[[], Sequence[bytes]]) -> Callable[[], Sequence[bytes]]:
    return functools.cache(factory)


def check(target: Target, data: bytes) -> str:
    """Run one input; return "accepted" or "refused", or raise PropertyViolation."""
    tracemalloc.start()   # traced during the call only: the harness's own allocations do not count
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    outcome = "refused"
    result: object = None
    try:
        result = target.call(data)
        outcome = "accepted"
    except UsappError:
        pass
    except Exception as exc:  # the property: nothing but a UsappError escapes
        raise PropertyViolation(
            f"{target.name}: {type(exc).__name__}: {str(exc)[:300]} "
            f"(input of {len(data)} bytes: {data[:64].hex()}{'...' if len(data) > 64 else ''})"
        ) from exc
    finally:
        used = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    if used > memory_budget(len(data)):
        raise PropertyViolation(
            f"{target.name}: {used} bytes allocated for an input of {len(data)} bytes "
            f"(budget {memory_budget(len(data))}); input {data[:64].hex()}")
    if outcome == "accepted" and not legitimate(target, data, result):
        raise PropertyViolation(
            f"{target.name}: accepted a mutated input that is not a valid message: {data[:64].hex()} "
            f"({len(data)} bytes)")
    return outcome


def legitimate(target: Target, data: bytes, result: object) -> bool:
    if target.accept == ANY:
        return True
    if target.accept == CANONICAL:
        assert target.canonical is not None, target.name
        return target.canonical(data, result)
    return bytes(data) in set(target.seeds())
