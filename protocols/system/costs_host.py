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
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy

from protocols.errors import ParameterError, StateError
from protocols.primitives import cbor, opcount
from protocols.system import benchmark, costs
from protocols.system.costs import (LIBRARY_CALL, PYTHON_CALL, PYTHON_FIRST_OPCODE, PYTHON_OPCODE, Measured, StepTrace,
                                    python_calls)
from protocols.system.roles import wire
from protocols.system.roles.process import Party, provision_party
from protocols.system.roles.store import Identity, Store

STATE_KEYS = ("state_commit", "state_byte", "state_statement", PYTHON_CALL, PYTHON_OPCODE, PYTHON_FIRST_OPCODE)
"""The keys this module measures itself (the durable state commit, section 3.1)."""
BASE = "base"
"""The per-input term of the model (not an operation key)."""
LARGE_STATE_VALUE = 64 * 1024
"""Bytes written by the large commit of the state kernels (many pages; the small one writes 16)."""
TARGET_ERROR = 0.25
"""The issue's bound on |model_error| for every step."""

Timer = Callable[[], float]
Kernel = Callable[[str], Callable[[], object]]
Units = Callable[[str], int]


@dataclass(frozen=True)
class HostProfile:
    """Seconds per unit of each key measured on this machine, the per-input base, the keys with no kernel, and
    the first-time instructions of the base's own input (section 5.1: the framework's, warm, in the base)."""

    seconds: Mapping[str, float]
    base: float
    unmeasured: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    base_first_opcodes: float = 0.0

    def predict(self, counts: Mapping[str, float]) -> float | None:
        """The model's seconds for one input with ``counts``; None if a counted key has no cost.  First-time
        instructions are priced beyond the base's own."""
        if any(k not in self.seconds for k, n in counts.items() if n):
            return None
        return self.base + sum(self._units(k, n) * self.seconds[k] for k, n in counts.items() if n)

    def _units(self, key: str, n: float) -> float:
        return max(0.0, n - self.base_first_opcodes) if key == PYTHON_FIRST_OPCODE else n

    def to_json(self) -> dict[str, Any]:
        return {"seconds_per_unit": dict(sorted(self.seconds.items())), "base_seconds": self.base,
                "base_first_opcodes": self.base_first_opcodes,
                "unmeasured": list(self.unmeasured), "detail": dict(self.detail)}


def opkernels() -> tuple[Kernel, Units]:
    """``kernel`` and ``units`` of :mod:`protocols.primitives.opkernels` (the counters' benchmark kernels),
    and of :func:`library_kernel` for the ``library_call`` keys."""
    try:
        module = importlib.import_module("protocols.primitives.opkernels")
    except ModuleNotFoundError as exc:
        raise ParameterError(f"no operation kernels in this installation ({exc})") from None

    def kernel(key: str) -> Callable[[], object]:
        return library_kernel(key) if key.startswith(LIBRARY_CALL + ":") else module.kernel(key)

    def units(key: str) -> int:
        return 1 if key.startswith(LIBRARY_CALL + ":") else int(module.units(key))
    return kernel, units


def library_kernel(key: str) -> Callable[[], object]:
    """Section 5.1: one call of the library entry point of a ``library_call`` key, as the protocols make it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

    seed = bytes(range(1, 33))
    if key == f"{LIBRARY_CALL}:x25519_load":
        return lambda: x25519.X25519PrivateKey.from_private_bytes(seed)
    if key == f"{LIBRARY_CALL}:ed25519_load":
        return lambda: ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    if key == f"{LIBRARY_CALL}:der_key_load":
        der = ed25519.Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return lambda: serialization.load_der_private_key(der, password=None)
    if key == f"{LIBRARY_CALL}:p256_affine":
        from protocols.schemes import eccsi
        point = eccsi.G() * 0x5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A    # projective, as a multiplication leaves it
        return point._get_xy_bytes
    raise ParameterError(f"no kernel for operation key {key!r}")


# --------------------------------------------------------------------------
# The state file and the framework (section 5.1)


def _mean_counts(fn: Callable[[], object], calls: int = 8) -> dict[str, float]:
    """The mean counts of one call of ``fn``, its Python calls and bytecode instructions (section 3.1)
    included (first-time instructions: those of each call)."""
    with opcount.counting() as counts:
        for _ in range(calls):
            with python_calls(opcodes=True):
                fn()
    return {k: v / calls for k, v in counts.items() if v}


def _modelled(counts: Mapping[str, float], seconds: Mapping[str, float], but: Iterable[str] = ()) -> float:
    """The cost of ``counts`` at ``seconds`` per unit, leaving out the keys in ``but`` and unknown keys."""
    skip = set(but)
    return sum(n * seconds.get(k, 0.0) for k, n in counts.items() if k not in skip)


class _StateKernel:
    """Commits to a real state file as the framework does for an input: each call looks the input up in the
    journal, records it with ``size`` bytes of outputs and updates a kv entry of ``size`` bytes."""

    def __init__(self, directory: str, size: int) -> None:
        self.store = Store.create(os.path.join(directory, f"kernel-{size}.sqlite"),
                                  Identity("costs", "kernel", "kernel", 1), ())
        self.size, self.calls = size, 0

    def __call__(self) -> None:
        self.calls += 1
        value = self.calls.to_bytes(8, "big") * (self.size // 8 or 1)
        digest = self.calls.to_bytes(8, "big") * 4
        with self.store.transaction():
            self.store.journal_lookup(digest)
            self.store.put(f"k{self.calls % 4}", value)
            self.store.journal_record(digest, value)

    def statements(self, count: int, work: Callable[[], object] = lambda: None, statements: bool = True) -> None:
        """BEGIN IMMEDIATE, ``count`` statements as a step makes them (alternately a read of a kv entry by
        name and an upsert of a 200-byte entry), each followed by ``work``, ROLLBACK: statements without a
        commit.  With ``statements`` false only the work runs, in the same transaction."""
        value = bytes(200)
        self.store.db.execute("BEGIN IMMEDIATE")
        for i in range(count):
            if statements and i % 2:
                self.store.put(f"s{i}", value)
            elif statements:
                self.store.get(f"k{i % 4}")
            work()
        self.store.db.execute("ROLLBACK")


STATEMENTS = 200
"""Statements in the statement kernel's rolled-back transaction."""


def _codec_work() -> Callable[[], None]:
    """A message's worth of Python between two statements: the CBOR codec on a message-like item (section
    5.1: statements are timed among other work, as a step runs them, not in a tight loop)."""
    item = {1: "meter-report", 2: 17, 3: bytes(64), 4: [1, 2, 3]}
    blob = cbor.encode(item)

    def work() -> None:
        cbor.decode(blob, max_size=len(blob) + 1)
    return work


def measure_state(directory: str, repeats: int, min_time: float, seconds: Mapping[str, float],
                  timer: Timer = time.perf_counter) -> tuple[dict[str, float], dict[str, Any]]:
    """Seconds of ``state_statement`` (a rolled-back transaction of :data:`STATEMENTS` statements each
    followed by a message's worth of Python, against the same transaction with the Python alone, less the
    statements' own Python calls), then of ``state_commit`` and ``state_byte``, solved from a small and a
    large commit less the cost of their statements and other counts."""
    small, large = _StateKernel(directory, 16), _StateKernel(directory, LARGE_STATE_VALUE)
    work = _codec_work()
    try:
        small()
        runs = {flag: (lambda flag=flag: small.statements(STATEMENTS, work, flag)) for flag in (False, True)}
        times = {flag: benchmark.measure(fn, repeats=repeats, min_time=min_time, timer=timer).median
                 for flag, fn in runs.items()}
        python = {flag: _modelled(_mean_counts(runs[flag]), seconds, but=STATE_KEYS[:3]) for flag in runs}
        extra = times[True] - times[False] - (python[True] - python[False])
        known = {**seconds, "state_statement": max(0.0, extra / STATEMENTS)}
        left, pages = [], []
        for kernel in (small, large):
            time_ = benchmark.measure(kernel, repeats=repeats, min_time=min_time, timer=timer).median
            counts = _mean_counts(kernel)
            left.append(time_ - _modelled(counts, known, but=("state_commit", "state_byte")))
            pages.append(counts.get("state_byte", 0.0))
    finally:
        small.store.close()
        large.store.close()
    per_byte = max(0.0, (left[1] - left[0]) / (pages[1] - pages[0])) if pages[1] > pages[0] else 0.0
    per_commit = max(0.0, left[0] - per_byte * pages[0])
    return ({"state_statement": known["state_statement"], "state_commit": per_commit, "state_byte": per_byte},
            {"commit_seconds_less_statements": left, "commit_state_bytes": pages,
             "statement_kernel_seconds": [times[False], times[True]]})


EMPTY_ROLE = costs.EMPTY_ROLE
"""A role that accepts every input and does nothing: the framework's cost of one input."""


def measure_base(directory: str, repeats: int, min_time: float,
                 timer: Timer = time.perf_counter) -> dict[str, tuple[float, dict[str, float]]]:
    """For each input of :data:`EMPTY_ROLE` (one it commits, one it refuses): the median seconds of one
    (seeded, so its DRBG state is saved as in a run), and its mean counts."""
    path = os.path.join(directory, "empty.sqlite")
    provision_party(EMPTY_ROLE, path, "empty", {})
    party = Party.open(EMPTY_ROLE, path, "empty", "costs")
    sent = [0]
    found = {}
    try:
        for kind in (costs.PROBE_COMMITTED, costs.PROBE_REFUSED):
            def one(kind: str = kind) -> None:
                sent[0] += 1
                try:
                    party.handle(wire.Envelope(wire.HARNESS, "empty", kind, cbor.encode({1: sent[0]})))
                except StateError:
                    if kind != costs.PROBE_REFUSED:
                        raise
            found[kind] = (benchmark.measure(one, repeats=repeats, min_time=min_time, timer=timer).median,
                           _mean_counts(one))
    finally:
        party.close()
    return found


CBOR_KEYS = ("cbor_decode_byte", "cbor_encode_byte")


def measure_python(bodies: Sequence[bytes], repeats: int, min_time: float,
                   timer: Timer = time.perf_counter) -> dict[str, float]:
    """Section 5.1: seconds of one Python call, from the CBOR codec (pure Python) decoding and encoding again
    the traced run's own messages and stored entries; the CBOR keys then cost 0 on the host (their cost is
    the codec's calls).  Empty when no body decodes."""
    found = costs.codec_items(bodies)
    if not found:
        return {}
    blobs, items = [blob for blob, _ in found], [item for _, item in found]

    def codec() -> None:
        for blob in blobs:
            cbor.decode(blob, max_size=len(blob) + 1)
        for item in items:
            cbor.encode(item)

    opcodes = _mean_counts(codec, calls=1).get(PYTHON_OPCODE, 0.0)
    if not opcodes:
        return {}
    per_opcode = benchmark.measure(codec, repeats=repeats, min_time=min_time, timer=timer).median / opcodes
    return {PYTHON_OPCODE: per_opcode, PYTHON_CALL: 0.0, **{key: 0.0 for key in CBOR_KEYS}}


def python_in_runs(passes: Sequence[tuple[float, int, int]]) -> tuple[float, float] | None:
    """Section 5.1: seconds of an instruction and of a first-time instruction in the runs, the least-squares
    solution of ``seconds = opcodes * a + first_opcodes * b`` over the probe's codec passes, (seconds,
    opcodes, first opcodes) each, both clamped at 0.  None unless the passes determine both (at least two,
    with different ratios of opcodes to first opcodes)."""
    used = [p for p in passes if p[1] or p[2]]
    if len({p[1] / p[2] if p[2] else float("inf") for p in used}) < 2:
        return None
    counts = numpy.array([(float(p[1]), float(p[2])) for p in used])
    times = numpy.array([float(p[0]) for p in used])
    per_opcode, per_first = numpy.linalg.lstsq(counts, times, rcond=None)[0]
    return max(0.0, float(per_opcode)), max(0.0, float(per_first))


# --------------------------------------------------------------------------
# The profile


def measure_kernels(keys: Iterable[str], kernels: tuple[Kernel, Units], known: Mapping[str, float], repeats: int,
                    min_time: float, progress: Callable[[str], None] = lambda line: None,
                    timer: Timer = time.perf_counter, pace: Callable[[], float] = lambda: 1.0
                    ) -> tuple[dict[str, float], list[str], dict[str, dict[str, float]]]:
    """Section 5.1: each key's seconds per unit from its kernel's median time.

    A kernel may count other keys besides its own units (a ``modexp_bit`` kernel its ``modexp``): every
    key a kernel counts is measured too, and the costs solve ``time[k] = sum(counts[k][j] * cost[j])``
    over all the kernels (least squares; exact when, as here, there is one kernel per key and their
    counts are independent), the costs in ``known`` (measured otherwise) moved to the left.  Each kernel's
    time is multiplied by ``pace()`` called just before it (the machine's speed then against a reference).
    Returns the costs (clamped at 0), the keys with no kernel, and each kernel's counts.
    """
    kernel, units = kernels
    todo, seen = sorted(set(keys) - set(known)), set(keys) | set(known)
    times: dict[str, float] = {}
    counts: dict[str, dict[str, float]] = {}
    unmeasured: list[str] = []
    while todo:
        key = todo.pop(0)
        try:
            fn, n = kernel(key), units(key)
        except ParameterError:
            unmeasured.append(key)
            continue
        if type(n) is not int or n < 1:
            raise ParameterError(f"kernel of {key} performs {n!r} units; a positive integer is needed")
        progress(f"host kernel {len(times) + 1}/{len(times) + len(todo) + 1}: {key}")
        factor = pace()
        times[key] = benchmark.measure(fn, repeats=repeats, min_time=min_time, timer=timer).median * factor
        counts[key] = _mean_counts(fn, calls=1)
        counts[key].setdefault(key, float(n))
        for side in sorted(counts[key]):
            if side not in seen and side not in costs.PYTHON_KEYS:   # priced by measure_python, python_in_runs
                seen.add(side)
                todo.append(side)
    measured = sorted(times)
    if not measured:
        return {}, unmeasured, counts
    matrix = numpy.array([[counts[k].get(j, 0.0) for j in measured] for k in measured])
    rhs = numpy.array([times[k] - _modelled(counts[k], known, but=measured) for k in measured])
    solution = numpy.linalg.lstsq(matrix, rhs, rcond=None)[0]
    return {k: max(0.0, float(v)) for k, v in zip(measured, solution)}, unmeasured, counts


def measure_host(keys: Iterable[str], *, repeats: int = 5, min_time: float = benchmark.MIN_REPEAT_SECONDS,
                 kernels: tuple[Kernel, Units] | None = None, directory: str | None = None,
                 bodies: Sequence[bytes] = (), progress: Callable[[str], None] = lambda line: None,
                 timer: Timer = time.perf_counter,
                 probe_seconds: Mapping[str, Sequence[float]] | None = None,
                 codec_passes: Sequence[tuple[float, int, int]] = ()) -> HostProfile:
    """Section 5.1: the cost of each of ``keys`` on this machine, and the base.

    ``kernels`` defaults to :func:`opkernels`; a key whose kernel raises ``ParameterError`` is unmeasured
    (a step that counts it gets no prediction).  The CBOR keys are measured on ``bodies`` (the traced
    messages) when there are any.  ``directory``: where the state kernels write (default: a new directory
    under the system's temporary directory, where the traces write too).  ``timer``: the clock of every
    measurement (:func:`time.thread_time` counts only this thread's CPU time, steadier on a busy machine).
    ``probe_seconds`` and ``codec_passes``: what the runs' probe measured (section 5.1); without passes a
    first-time instruction costs what any instruction does.
    """
    seconds: dict[str, float] = {}
    probe_seconds = probe_seconds or {}
    speed = costs.speed_workload()
    speed_before = benchmark.measure(speed, repeats=repeats, min_time=min_time, timer=timer).median
    paces: list[float] = []

    def pace() -> float:   # section 5.1: each kernel at the reference speed, whatever the machine did meanwhile
        paces.append(speed_before / benchmark.measure(speed, repeats=3, min_time=min_time / 2, timer=timer).median)
        return paces[-1]
    if bodies:
        progress(f"host kernels: Python calls of the CBOR codec on the run's {len(bodies)} messages and entries")
        factor = pace()
        seconds.update({k: v * factor for k, v in measure_python(bodies, repeats, min_time, timer).items()})
    wanted = set(keys) - set(STATE_KEYS)
    found, unmeasured, kernel_counts = measure_kernels(
        wanted, kernels if kernels is not None else opkernels(), seconds, repeats, min_time, progress, timer, pace)
    seconds.update(found)
    with tempfile.TemporaryDirectory(prefix="usapp-costs-host-", dir=directory) as where:
        progress("host kernels: state statements and commits, the per-input base")
        state, detail = measure_state(where, repeats, min_time, seconds, timer)
        seconds.update(state)
        empty = measure_base(where, repeats, min_time, timer)
    speed_after = benchmark.measure(speed, repeats=repeats, min_time=min_time, timer=timer).median
    speeds = probe_seconds.get(costs.PROBE_SPEED)
    if speeds:   # section 5.1: the machine's speed in the runs against its speed beside the kernels
        slower = statistics.median(speeds) / speed_before
        seconds = {k: v * slower if k not in ("state_commit", "state_byte") else v for k, v in seconds.items()}
        detail["speed"] = {"kernels_seconds": [speed_before, speed_after], "runs_seconds": statistics.median(speeds),
                           "runs_over_kernels": slower, "kernel_paces": [min(paces, default=1.0),
                                                                         max(paces, default=1.0)]}
    if PYTHON_OPCODE in seconds:   # section 5.1: Python's two prices, from the codec passes in the runs
        seconds[PYTHON_FIRST_OPCODE] = 0.0
        prices = python_in_runs(codec_passes)
        if prices is not None:
            detail["python_opcode_kernel"] = seconds[PYTHON_OPCODE]
            seconds[PYTHON_OPCODE], seconds[PYTHON_FIRST_OPCODE] = prices
            detail["codec_passes"] = {"passes": len(codec_passes), "seconds": sum(p[0] for p in codec_passes),
                                      "opcodes": sum(p[1] for p in codec_passes),
                                      "first_opcodes": sum(p[2] for p in codec_passes)}
    detail = {**detail, "kernel_counts": kernel_counts,
              "empty_input_seconds": {kind: t for kind, (t, _) in empty.items()},
              "empty_input_counts": {kind: c for kind, (_, c) in empty.items()}}
    times = {kind: t for kind, (t, _) in empty.items()}
    if all(probe_seconds.get(kind) for kind in times):    # section 5.1: the empty party within the runs
        times = {kind: statistics.median(probe_seconds[kind]) for kind in times}
        detail.update(probe_input_seconds=times, probe_inputs=sum(len(v) for v in probe_seconds.values()),
                      state_commit_kernel=seconds["state_commit"])
    committed, refused = (empty[k][1] for k in (costs.PROBE_COMMITTED, costs.PROBE_REFUSED))
    # section 5.1: the empty input's first-time instructions are the framework's, run on every input: warm,
    # and part of the base as measured; a step pays the cold price only for first-time instructions beyond
    first = refused.get(PYTHON_FIRST_OPCODE, 0.0)
    base = max(0.0, times[costs.PROBE_REFUSED] - _modelled(refused, seconds, but=(PYTHON_FIRST_OPCODE,)))
    if "probe_input_seconds" in detail and committed.get("state_commit"):
        rest = (times[costs.PROBE_COMMITTED] - base
                - _modelled(committed, seconds, but=("state_commit", PYTHON_FIRST_OPCODE))
                - seconds.get(PYTHON_FIRST_OPCODE, 0.0) * max(0.0, committed.get(PYTHON_FIRST_OPCODE, 0.0) - first))
        seconds["state_commit"] = max(0.0, rest / committed["state_commit"])
    return HostProfile(seconds, base, tuple(unmeasured), detail, first)


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




def markdown(rows: Sequence[Any], meta: Mapping[str, Any]) -> str:
    """Section 5.3: a summary line, then one table row per step (``*``: meter-side) with its invocations,
    the predicted and measured ms and the error."""
    summary = meta.get("model_check", {})
    median, largest = summary.get("median_abs_error"), summary.get("max_abs_error")
    meter = [r for r in rows if r.meter_side and r.model_error is not None]
    lines = [f"{summary.get('within_25pct')} of {summary.get('steps')} steps within 25% "
             f"({sum(abs(r.model_error) <= TARGET_ERROR for r in meter)} of {len(meter)} meter-side), median "
             f"|error| {'-' if median is None else f'{median:.0%}'}, max "
             f"{'-' if largest is None else f'{largest:.0%}'} "
             f"(clock {meta.get('clock')}, {meta.get('runs')} timed runs)", "",
             "| protocol | role | step | n | predicted ms | measured ms | error |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        error = "-" if r.model_error is None else f"{r.model_error:+.0%}"
        predicted = "-" if r.ms is None else f"{r.ms:.3f}"
        measured = "-" if r.measured_ms is None else f"{r.measured_ms:.3f}"
        lines.append(f"| {r.protocol} | {r.role}{' *' if r.meter_side else ''} | {r.step} | {r.invocations} | "
                     f"{predicted} | {measured} | {error} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m protocols.system.costs_host [--cpu-time] [--repeats N] [--json]``: the check of section 5.2
    (``usapp bench --device host`` with a choice of clock)."""
    import argparse
    import json

    from protocols.system import costs_bench, costs_report

    parser = argparse.ArgumentParser(prog="python -m protocols.system.costs_host",
                                     description="The host model's check (specs/costs.md section 5).")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with this thread's CPU time (time.thread_time) instead of time.perf_counter")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each scenario (default 7)")
    parser.add_argument("--json", action="store_true", help="print the JSON of usapp bench --device host --json")
    parser.add_argument("--markdown", action="store_true",
                        help="print the check as the Markdown table of specs/costs.md 5.3")
    args = parser.parse_args(argv)
    if not 1 <= args.repeats <= 100:
        parser.error("--repeats must be 1 to 100")
    timer: Timer = time.thread_time if args.cpu_time else time.perf_counter
    report = costs_bench.device_report(costs_report.HOST, runs=args.repeats, timer=timer,
                                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(costs_report.to_json(report.rows, report.meta), indent=2, sort_keys=True))
    elif args.markdown:
        print(markdown(report.rows, report.meta), end="")
    else:
        print(costs_report.render(report.rows) + costs_bench.host_summary_text(report), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
