"""The host model and its check: this machine's cost per operation, and how well it predicts a step (specs/costs.md
section 5).

The model of a step's time is ``base + sum(count[k] * cost[k])`` over its counted keys ``k``:

- ``cost[k]`` of an operation key: the median time of one call of its kernel
  (:func:`protocols.primitives.opkernels.kernel`) over ``repeats`` timed repeats, divided by the units one
  call performs (:func:`protocols.primitives.opkernels.units`);
- ``cost["state_commit"]`` and ``cost["state_byte"]``: solved from two timed commits of a real state
  file (:class:`~protocols.system.roles.store.Store`, WAL, ``synchronous=FULL``) in the directory the
  traces use, one small, one of many pages;
- ``base``: what handling one input costs besides its counted operations (the line, the journal, the
  DRBG state, Python): the median time of an input handled by a party whose handler does nothing, less
  the modelled cost of that input's own counts.

:func:`check` compares the prediction of each traced step with the median over runs of its measured mean
time: ``model_error = (predicted - measured) / measured``.
"""

from __future__ import annotations

import importlib
import os
import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.errors import ParameterError
from protocols.primitives import cbor, opcount
from protocols.system import benchmark
from protocols.system.costs import Measured, StepTrace
from protocols.system.roles import wire
from protocols.system.roles.base import Context, RoleSpec
from protocols.system.roles.process import Party, provision_party
from protocols.system.roles.store import Identity, Store

STATE_KEYS = ("state_commit", "state_byte")
"""The keys this module measures itself (the durable state commit, section 3.1)."""
BASE = "base"
"""The per-input term of the model (not an operation key)."""
LARGE_STATE_VALUE = 64 * 1024
"""Bytes written by the large commit of the state kernels (many pages; the small one writes 16)."""
TARGET_ERROR = 0.25
"""The issue's bound on |model_error| for every step."""

Kernel = Callable[[str], Callable[[], object]]
Units = Callable[[str], int]


@dataclass(frozen=True)
class HostProfile:
    """Seconds per unit of each key measured on this machine, the per-input base, the keys with no kernel."""

    seconds: Mapping[str, float]
    base: float
    unmeasured: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, counts: Mapping[str, float]) -> float | None:
        """The model's seconds for one input with ``counts``; None if a counted key has no cost."""
        if any(k not in self.seconds for k, n in counts.items() if n):
            return None
        return self.base + sum(n * self.seconds[k] for k, n in counts.items() if n)

    def to_json(self) -> dict[str, Any]:
        return {"seconds_per_unit": dict(sorted(self.seconds.items())), "base_seconds": self.base,
                "unmeasured": list(self.unmeasured), "detail": dict(self.detail)}


def opkernels() -> tuple[Kernel, Units]:
    """``kernel`` and ``units`` of :mod:`protocols.primitives.opkernels` (the counters' benchmark kernels)."""
    try:
        module = importlib.import_module("protocols.primitives.opkernels")
    except ModuleNotFoundError as exc:
        raise ParameterError(f"no operation kernels in this installation ({exc})") from None
    return module.kernel, module.units


# --------------------------------------------------------------------------
# The state commit (section 5.1)


class _StateKernel:
    """Commits to a real state file: each call writes ``size`` bytes under a changing name."""

    def __init__(self, directory: str, size: int) -> None:
        self.store = Store.create(os.path.join(directory, f"kernel-{size}.sqlite"),
                                  Identity("costs", "kernel", "kernel", 1), ())
        self.size, self.calls = size, 0

    def __call__(self) -> None:
        self.calls += 1
        value = self.calls.to_bytes(8, "big") * (self.size // 8 or 1)
        with self.store.transaction():
            self.store.put(f"k{self.calls % 4}", value)

    def bytes_per_commit(self) -> float:
        with opcount.counting() as counts:
            for _ in range(8):
                self()
        return counts["state_byte"] / 8


def measure_state(directory: str, repeats: int, min_time: float) -> tuple[dict[str, float], dict[str, Any]]:
    """Seconds of ``state_commit`` and of ``state_byte``, solved from a small and a large commit."""
    small, large = _StateKernel(directory, 16), _StateKernel(directory, LARGE_STATE_VALUE)
    try:
        times, pages = [], []
        for kernel in (small, large):
            times.append(benchmark.measure(kernel, repeats=repeats, min_time=min_time).median)
            pages.append(kernel.bytes_per_commit())
    finally:
        small.store.close()
        large.store.close()
    per_byte = max(0.0, (times[1] - times[0]) / (pages[1] - pages[0])) if pages[1] > pages[0] else 0.0
    per_commit = max(0.0, times[0] - per_byte * pages[0])
    return ({"state_commit": per_commit, "state_byte": per_byte},
            {"commit_seconds": times, "commit_state_bytes": pages})


# --------------------------------------------------------------------------
# The per-input base (section 5.1)


def _nothing(ctx: Context, envelope: wire.Envelope) -> list[wire.Envelope]:
    return []


def _provision(ctx: Context, record: dict[str, object]) -> None:
    return None


EMPTY_ROLE = RoleSpec("costs", "empty", 1, (), _provision, _nothing)
"""A role that accepts every input and does nothing: the framework's cost of one input."""


def measure_base(directory: str, repeats: int, min_time: float) -> tuple[float, dict[str, float]]:
    """Median seconds of one input to :data:`EMPTY_ROLE` (seeded, so its DRBG state is saved as in a run),
    and that input's mean counts."""
    path = os.path.join(directory, "empty.sqlite")
    provision_party(EMPTY_ROLE, path, "empty", {})
    party = Party.open(EMPTY_ROLE, path, "empty", "costs")
    sent = [0]

    def one() -> None:
        sent[0] += 1
        party.handle(wire.Envelope(wire.HARNESS, "empty", "env.tick", cbor.encode({1: sent[0]})))

    try:
        seconds = benchmark.measure(one, repeats=repeats, min_time=min_time).median
        with opcount.counting() as counts:
            for _ in range(8):
                one()
    finally:
        party.close()
    return seconds, {k: v / 8 for k, v in counts.items()}


# --------------------------------------------------------------------------
# The profile


def measure_host(keys: Iterable[str], *, repeats: int = 5, min_time: float = benchmark.MIN_REPEAT_SECONDS,
                 kernels: tuple[Kernel, Units] | None = None, directory: str | None = None,
                 progress: Callable[[str], None] = lambda line: None) -> HostProfile:
    """Section 5.1: the cost of each of ``keys`` on this machine, and the base.

    ``kernels`` defaults to :func:`opkernels`; a key whose kernel raises ``ParameterError`` is unmeasured
    (a step that counts it gets no prediction).  ``directory``: where the state kernels write (default:
    a new directory under the system's temporary directory, where the traces write too).
    """
    kernel, units = kernels if kernels is not None else opkernels()
    wanted = sorted(set(keys) - set(STATE_KEYS))
    seconds: dict[str, float] = {}
    unmeasured: list[str] = []
    for index, key in enumerate(wanted, start=1):
        try:
            fn, n = kernel(key), units(key)
        except ParameterError:
            unmeasured.append(key)
            continue
        if type(n) is not int or n < 1:
            raise ParameterError(f"kernel of {key} performs {n!r} units; a positive integer is needed")
        progress(f"host kernel {index}/{len(wanted)}: {key}")
        seconds[key] = benchmark.measure(fn, repeats=repeats, min_time=min_time).median / n
    with tempfile.TemporaryDirectory(prefix="usapp-costs-host-", dir=directory) as where:
        progress("host kernels: state commit and the per-input base")
        state, detail = measure_state(where, repeats, min_time)
        seconds.update(state)
        empty, empty_counts = measure_base(where, repeats, min_time)
    modelled = sum(n * seconds.get(k, 0.0) for k, n in empty_counts.items())
    detail = {**detail, "empty_input_seconds": empty, "empty_input_counts": empty_counts}
    return HostProfile(seconds, max(0.0, empty - modelled), tuple(unmeasured), detail)


# --------------------------------------------------------------------------
# The check (section 5.2)


@dataclass(frozen=True)
class Checked:
    """One step: its trace, the model's and the measured seconds per invocation, the relative error."""

    trace: StepTrace
    predicted: float | None
    measured: float
    runs: int

    @property
    def model_error(self) -> float | None:
        if self.predicted is None or self.measured <= 0:
            return None
        return (self.predicted - self.measured) / self.measured

    @property
    def within_target(self) -> bool | None:
        error = self.model_error
        return None if error is None else abs(error) <= TARGET_ERROR


def check(measured: Mapping[str, Measured], profile: HostProfile) -> list[Checked]:
    """Every traced step's prediction against the median over runs of its measured mean time."""
    rows = []
    for m in measured.values():
        for trace in m.traces:
            runs = m.run_seconds.get(trace.key, (trace.seconds,))
            rows.append(Checked(trace, profile.predict(trace.counts), statistics.median(runs), len(runs)))
    return rows


def counted_keys(measured: Mapping[str, Measured]) -> list[str]:
    """Every key some traced step counted."""
    return sorted({k for m in measured.values() for t in m.traces for k, n in t.counts.items() if n})


def summary(rows: Sequence[Checked]) -> dict[str, Any]:
    """How many steps the model predicts within the target, how many miss, how many it cannot predict."""
    errors = [r.model_error for r in rows]
    known = [abs(e) for e in errors if e is not None]
    return {"steps": len(rows), "within_25pct": sum(e <= TARGET_ERROR for e in known),
            "missed": sum(e > TARGET_ERROR for e in known), "unpredicted": sum(e is None for e in errors),
            "median_abs_error": statistics.median(known) if known else None,
            "max_abs_error": max(known) if known else None}


