"""Per-role traces: what each protocol step costs each role, counted from a real run (specs/costs.md section 3).

A *step* is one input handled by one party: (protocol, role, step) with ``step`` the type of the message
received (``env.*`` for the environment's inputs).  :func:`trace_protocol` runs the protocol's interop
scenario (``usapp interop PROTOCOL``, specs/roles.md section 5) with every party in this process, and
around each :meth:`~protocols.system.roles.process.Party.handle` opens an operation counter
(:mod:`protocols.primitives.opcount`) and a timer.  Bytes received and sent are the CBOR body lengths of
the input and of its outputs.  A refused input is the step ``TYPE (refused)``; an input answered from the
journal (a re-sent one, which commits nothing) is ``TYPE (re-sent)``.  :func:`aggregate` folds repeated
steps into per-invocation means.  The host model's times come from further runs with no counter open
(counting costs time), matched input by input with the counted run (:func:`align`).

``python -m protocols.system.costs --write-golden`` regenerates ``tests/golden/meter_costs.json``, the
pinned operation counts of the meter-side steps (section 3.3).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import gmpy2

from protocols.errors import ParameterError, StateError, UsappError
from protocols.primitives import cbor, opcount
from protocols.system.roles import harness, wire
from protocols.system.roles.base import PROTOCOLS, Context, Deployment, RoleSpec
from protocols.system.roles.process import Party, protocol_module, provision_party

SCENARIO_SEED = "costs"
"""The seed of every traced deployment and party (specs/roles.md sections 3.4 and 4)."""

VARIANTS: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "issuance-eccsi": ("issuance", {"suite": "usapp-eccsi-sakke-p256-p1-v1"}),
    "integrity-eccsi": ("integrity", {"suite": "eccsi-p256"}),
}
"""Traced runs of a protocol with another suite (section 3): name -> (protocol, its deployment's options)."""
TRACED: tuple[str, ...] = (*PROTOCOLS, *VARIANTS)
"""Every traced run: each protocol with its defaults, then the variants."""


def base_protocol(name: str) -> str:
    """The protocol a traced run (a protocol or a :data:`VARIANTS` name) runs."""
    return VARIANTS[name][0] if name in VARIANTS else name


METER_ROLES: Mapping[str, tuple[str, ...]] = {
    "aggregation": ("meter",), "groupkeys": ("member",), "issuance": ("device",), "escrow": ("meter",),
    "integrity": ("meter",),
}
"""The roles a meter plays in each protocol: their steps are the ones the golden file pins (section 3.3)."""

REFUSED_SUFFIX, RESENT_SUFFIX = " (refused)", " (re-sent)"
MAX_BODIES = 5000
"""At most this many CBOR blobs of a run are kept (its input bodies, then its parties' stored entries): the
host model measures the codec on them (section 5.1)."""

GOLDEN_PATH = Path(__file__).resolve().parents[2] / "tests" / "golden" / "meter_costs.json"
"""The golden file in a source checkout."""
GOLDEN_FORMAT = "usapp-meter-costs/1"
PYTHON_CALL = "python_call"
"""Host-only key (section 3.1): one call of a Python function (a ``call`` event of :func:`sys.setprofile`)."""
PYTHON_OPCODE = "python_opcode"
"""Host-only key (section 3.1): one bytecode instruction executed (an ``opcode`` event of :func:`sys.settrace`),
counted only when asked (the host check): a better measure of the interpreter's work than calls."""
PYTHON_FIRST_OPCODE = "python_first_opcode"
"""Host-only key (section 3.1): one instruction (code object and offset) executed for the first time in the
counted block, counted with :data:`PYTHON_OPCODE`: the code a step brings back into the caches."""
PYTHON_KEYS = (PYTHON_CALL, PYTHON_OPCODE, PYTHON_FIRST_OPCODE)
"""The keys of the interpreter's work (section 3.1)."""
LIBRARY_CALL = "library_call"
"""Host-only keys ``library_call:{name}`` (section 3.1): one call of a library entry point that does work a
device does not (OpenSSL derives the public key when it loads a private one)."""
LIBRARY_ENTRY_POINTS = (("x25519_load", "x25519", "from_private_bytes"),
                        ("ed25519_load", "ed25519", "from_private_bytes"),
                        ("der_key_load", "keys", "load_der_private_key"))
"""(name, module of cryptography's OpenSSL binding, function) of each ``library_call`` key."""
PYTHON_ENTRY_POINTS = (("p256_affine", "Crypto.PublicKey._point", "EccPoint", "_get_xy_bytes"),)
"""(name, module, class, method) of each ``library_call`` key whose entry point is a Python method wrapping a
C call the profiler does not see (a cffi function): pycryptodome's conversion of a P-256 point to affine
coordinates, a field inversion that the device figures price inside ``point_mul:p256``."""


def is_host_only(key: str) -> bool:
    """Keys a device profile does not price: they measure this host's Python, SQLite or library."""
    return key in (*PYTHON_KEYS, "state_statement") or key.startswith(LIBRARY_CALL + ":")


def is_unpinned(key: str) -> bool:
    """Counted but not pinned by the golden file (section 3.3): Python calls change with any refactoring,
    library calls with the library's version."""
    return key in PYTHON_KEYS or key.startswith(LIBRARY_CALL + ":")


def python_entry_points() -> dict[object, str]:
    """The code objects of :data:`PYTHON_ENTRY_POINTS`, to their ``library_call`` key."""
    found = {}
    for name, module, cls, method in PYTHON_ENTRY_POINTS:
        try:
            target = getattr(getattr(importlib.import_module(module), cls), method)
        except (ImportError, AttributeError):  # pragma: no cover - pycryptodome is a dependency
            continue
        found[target.__code__] = f"{LIBRARY_CALL}:{name}"
    return found


def library_entry_points() -> list[tuple[object, str]]:
    """The function objects of :data:`LIBRARY_ENTRY_POINTS` found in this installation, with their keys."""
    try:
        from cryptography.hazmat.bindings._rust import openssl as binding
    except ImportError:  # pragma: no cover - cryptography is a dependency
        return []
    found = []
    for name, module, function in LIBRARY_ENTRY_POINTS:
        target = getattr(getattr(binding, module, None), function, None)
        if target is not None:
            found.append((target, f"{LIBRARY_CALL}:{name}"))
    return found


@contextmanager
def python_calls(opcodes: bool = False) -> Iterator[None]:
    """Record :data:`PYTHON_CALL` for every Python function called in the block (this thread), and
    ``library_call:{name}`` for every call of a :func:`library_entry_points` function, then restore whatever
    profiler was set; with ``opcodes``, also :data:`PYTHON_OPCODE` for every bytecode instruction and
    :data:`PYTHON_FIRST_OPCODE` for every distinct (code object, offset) among them (a trace function,
    restored after).  Slows the block down: only counted runs use it, never timed ones."""
    calls, executed = [0], [0]
    sites: set[tuple[object, int]] = set()

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            executed[0] += 1
            sites.add((frame.f_code, frame.f_lasti))
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    previous_trace = sys.gettrace()
    targets = {id(target): (target, key) for target, key in library_entry_points()}
    library: Counter[str] = Counter()
    previous = sys.getprofile()

    wrapped = python_entry_points()

    def profiler(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            calls[0] += 1
            name = wrapped.get(frame.f_code)
            if name is not None:
                library[name] += 1
        elif event == "c_call":
            entry = targets.get(id(arg))
            if entry is not None and entry[0] is arg:
                library[entry[1]] += 1

    sys.setprofile(profiler)
    if opcodes:
        sys.settrace(tracer)
    try:
        yield
    finally:
        if opcodes:
            sys.settrace(previous_trace)
            opcount.record(PYTHON_OPCODE, executed[0])
            opcount.record(PYTHON_FIRST_OPCODE, len(sites))
            sites.clear()
        sys.setprofile(previous)
        opcount.record(PYTHON_CALL, calls[0])
        for key, n in library.items():
            opcount.record(key, n)


@dataclass(frozen=True)
class Sample:
    """One handled input: its step, what it counted, how long it took, its bytes."""

    protocol: str
    role: str
    step: str
    counts: Mapping[str, int]
    seconds: float
    bytes_received: int
    bytes_sent: int


@dataclass(frozen=True)
class StepTrace:
    """A step's per-invocation means over its ``invocations`` (section 3.2)."""

    protocol: str
    role: str
    step: str
    invocations: int
    counts: Mapping[str, float]
    seconds: float
    bytes_received: float
    bytes_sent: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.protocol, self.role, self.step)


def _nothing(ctx: Context, envelope: wire.Envelope) -> list[wire.Envelope]:
    if envelope.type == PROBE_REFUSED:
        raise StateError("the empty role refuses this input")
    return []


def _provision(ctx: Context, record: dict[str, object]) -> None:
    return None


EMPTY_ROLE = RoleSpec("costs", "empty", 1, (), _provision, _nothing)
"""A role that accepts every input and does nothing: the framework's cost of one input (section 5.1)."""
PROBE_ID = "costs-probe"
PROBE_COMMITTED, PROBE_REFUSED = "env.tick", "env.refuse"
"""The empty role's two inputs: one it accepts (and commits), one it refuses (rolled back)."""


@dataclass(frozen=True)
class CodecPass:
    """One pass of the CBOR codec over one message of a run (decode it, encode the item again) and the
    instructions it executes, all and first-time (section 5.1: the in-run price of cold Python)."""

    blob: bytes
    item: object
    opcodes: int
    first_opcodes: int

    def run(self) -> None:
        cbor.decode(self.blob, max_size=len(self.blob) + 1)
        cbor.encode(self.item)


def codec_items(bodies: Iterable[bytes]) -> list[tuple[bytes, object]]:
    """(blob, item) of each body that decodes, in order: the item and its encoding again (section 5.1, the
    codec's work on a run's messages)."""
    found = []
    for body in bodies:
        try:
            item = cbor.decode(body, max_size=len(body) + 1)
        except UsappError:
            continue
        found.append((cbor.encode(item), item))
    return found


def codec_corpus(bodies: Iterable[bytes], limit: int = MAX_BODIES) -> list[CodecPass]:
    """The codec passes over ``bodies`` (those that decode), in order, each counted once."""
    passes = []
    for blob, item in codec_items(bodies):
        shell = CodecPass(blob, item, 0, 0)
        with opcount.counting() as counts, python_calls(opcodes=True):
            shell.run()
        passes.append(CodecPass(blob, item, counts[PYTHON_OPCODE], counts[PYTHON_FIRST_OPCODE]))
        if len(passes) >= limit:
            break
    return passes


class _Probe:
    """An :data:`EMPTY_ROLE` party in a run's directory, handed one input after each of the run's inputs,
    alternately one it commits and one it refuses (section 5.2): the framework's cost of an input measured
    in the same run, on the same disk, among the same parties.  Given a ``corpus``, each turn first runs
    the codec over the corpus's next message and appends (seconds, opcodes, first opcodes) to ``passes``:
    Python on the caches a step finds."""

    def __init__(self, directory: str, timer: Callable[[], float], seconds: dict[str, list[float]],
                 corpus: Sequence[CodecPass] = (), passes: list[tuple[float, int, int]] | None = None) -> None:
        path = str(Path(directory) / f"{PROBE_ID}.sqlite")
        provision_party(EMPTY_ROLE, path, PROBE_ID, {})
        self.party = Party.open(EMPTY_ROLE, path, PROBE_ID, SCENARIO_SEED)
        self.timer, self.seconds, self.sent = timer, seconds, 0
        self.speed = speed_workload()
        self.corpus, self.passes = corpus, passes if passes is not None else []

    def tick(self) -> None:
        if self.corpus:   # first, on the caches the run's input left: one codec pass on the next message
            codec = self.corpus[(self.sent + len(self.corpus) // 2) % len(self.corpus)]   # not the input's own
            start = self.timer()
            codec.run()
            self.passes.append((self.timer() - start, codec.opcodes, codec.first_opcodes))
        self.sent += 1
        if self.sent % 4 == 0:
            start = self.timer()
            self.speed()
            self.seconds.setdefault(PROBE_SPEED, []).append(self.timer() - start)
        kind = PROBE_REFUSED if self.sent % 2 else PROBE_COMMITTED
        envelope = wire.Envelope(wire.HARNESS, PROBE_ID, kind, cbor.encode({1: self.sent}))
        start = self.timer()
        try:
            self.party.handle(envelope)
        except StateError:
            if kind != PROBE_REFUSED:
                raise
        self.seconds.setdefault(kind, []).append(self.timer() - start)

    def close(self) -> None:
        self.party.close()


PROBE_SPEED = "speed"
"""The third kind of probe time: :func:`speed_workload`, run after every fourth probe input."""


def speed_workload() -> Callable[[], None]:
    """A fixed piece of CPU work, half big-number arithmetic in C and half Python (the CBOR codec): timed
    within the runs and beside the kernels, the ratio of its times is how much slower the machine ran the
    steps than the kernels (specs/costs.md 5.1)."""
    modulus = gmpy2.mpz(2) ** 1024 - 105
    item = {1: "meter-report", 2: list(range(40)), 3: bytes(300), 4: {"a": [1, 2, 3], "b": "x" * 40}}
    blob = cbor.encode(item)

    def run() -> None:
        gmpy2.powmod(3, modulus - 2, modulus)
        for _ in range(4):
            cbor.decode(blob, max_size=len(blob) + 1)
            cbor.encode(item)
    return run


@dataclass
class _Traced:
    """An in-process party whose every exchange is timed, and counted if ``count``, into ``samples``."""

    inner: harness.LocalEndpoint
    protocol: str
    role: str
    samples: list[Sample]
    bodies: list[bytes]
    count: bool = True
    timer: Callable[[], float] = time.perf_counter
    probe: _Probe | None = None
    opcodes: bool = False

    def exchange(self, message: wire.Envelope) -> tuple[list[wire.Envelope], wire.Envelope]:
        if len(self.bodies) < MAX_BODIES:
            self.bodies.append(message.body)
        counts: Counter[str] = Counter()
        if self.count:
            with opcount.counting() as counts, python_calls(self.opcodes):
                start = self.timer()
                outputs, status = self.inner.exchange(message)
                seconds = self.timer() - start
        else:
            start = self.timer()
            outputs, status = self.inner.exchange(message)
            seconds = self.timer() - start
            if self.probe is not None:
                self.probe.tick()
        step = message.type
        if status.type == wire.REFUSED:
            step += REFUSED_SUFFIX
        elif self.count and counts["state_commit"] == 0:
            step += RESENT_SUFFIX
        self.samples.append(Sample(self.protocol, self.role, step, dict(counts), seconds, len(message.body),
                                   sum(len(o.body) for o in outputs)))
        return outputs, status

    def close(self) -> int:
        return self.inner.close()


def deployment(protocol: str, options: Mapping[str, Any] | None = None) -> Deployment:
    """The traced deployment of ``protocol`` (or of a :data:`VARIANTS` name): its role module's ``deploy``
    with the variant's options and ``options`` (defaults: the interop run's)."""
    fixed = VARIANTS[protocol][1] if protocol in VARIANTS else {}
    return protocol_module(base_protocol(protocol)).deploy(SCENARIO_SEED, **{**fixed, **dict(options or {})})


def run_traced(protocol: str, deployed: Deployment, directory: str,
               bodies: list[bytes] | None = None, *, count: bool = True,
               timer: Callable[[], float] = time.perf_counter,
               probe_seconds: dict[str, list[float]] | None = None, opcodes: bool = False,
               probe_corpus: Sequence[CodecPass] = (),
               probe_passes: list[tuple[float, int, int]] | None = None) -> list[Sample]:
    """One run of ``protocol``'s interop scenario in ``directory`` (new), every party in process and timed,
    and counted if ``count``; the input bodies are appended to ``bodies`` (up to :data:`MAX_BODIES`).
    With ``probe_seconds`` (and not ``count``), an empty party in the same directory is handed one input
    after each input of the run, and its times are appended there by kind (section 5.2); with
    ``probe_corpus`` it also runs one codec pass per turn, appended to ``probe_passes``.  ``opcodes``: a
    counted run also counts :data:`PYTHON_OPCODE` and :data:`PYTHON_FIRST_OPCODE`.

    ``StateError`` if a check of the scenario fails: a trace of a broken run would measure nothing real.
    The samples are named after ``protocol`` (a :data:`VARIANTS` name runs its protocol's scenario).
    """
    module = protocol_module(base_protocol(protocol))
    samples: list[Sample] = []
    kept: list[bytes] = [] if bodies is None else bodies
    probe = (_Probe(directory, timer, probe_seconds, probe_corpus, probe_passes)
             if probe_seconds is not None and not count else None)
    network = harness.open_network(deployed, directory, seed=SCENARIO_SEED, in_process=True)
    inner_factory = network.factory

    def traced(ident: str) -> harness.Endpoint:
        if inner_factory is None:  # pragma: no cover - open_network always sets it
            raise StateError("the network has no party factory")
        endpoint = inner_factory(ident)
        if not isinstance(endpoint, harness.LocalEndpoint):  # pragma: no cover - in_process=True
            raise StateError(f"{ident} is not an in-process party")
        return _Traced(endpoint, protocol, deployed.parties[ident][0], samples, kept, count, timer, probe,
                       opcodes)

    network.factory = traced
    for ident in list(network.parties):
        endpoint = network.parties[ident]
        if isinstance(endpoint, harness.LocalEndpoint):
            network.parties[ident] = _Traced(endpoint, protocol, deployed.parties[ident][0], samples, kept, count,
                                             timer, probe, opcodes)
    checks = harness.Checks()
    try:
        module.scenario(network, deployed, checks)
    finally:
        network.close()
        if probe is not None:
            probe.close()
    if not checks.ok:
        failed = [c.name for c in checks.results if not c.passed]
        raise StateError(f"{protocol}: the traced scenario failed its checks: {failed[:3]}")
    return samples


def stored_blobs(directory: str, limit: int) -> list[bytes]:
    """Up to ``limit`` of the kv entries the parties stored in ``directory``'s state files: the role state
    they decode and encode at every step besides the messages (the journal's outputs are left out: they
    wrap the message bodies, which are in the corpus already)."""
    found: list[bytes] = []
    for path in sorted(Path(directory).glob("*.sqlite")):
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            for (value,) in db.execute("SELECT value FROM kv LIMIT ?",
                                       (max(0, limit - len(found)),)):
                if isinstance(value, bytes):
                    found.append(value)
        finally:
            db.close()
    return found[:max(0, limit)]


def aggregate(samples: Iterable[Sample]) -> list[StepTrace]:
    """Section 3.2: per (protocol, role, step), the mean counts, time and bytes per invocation."""
    groups: dict[tuple[str, str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.protocol, sample.role, sample.step), []).append(sample)
    traces = []
    for (protocol, role, step), group in groups.items():
        n = len(group)
        total: Counter[str] = Counter()
        for sample in group:
            total.update(sample.counts)
        traces.append(StepTrace(protocol, role, step, n, {k: v / n for k, v in sorted(total.items()) if v},
                                sum(s.seconds for s in group) / n, sum(s.bytes_received for s in group) / n,
                                sum(s.bytes_sent for s in group) / n))
    return sorted(traces, key=lambda t: (TRACED.index(t.protocol) if t.protocol in TRACED else 99, t.key))


@dataclass(frozen=True)
class Measured:
    """Traces of one protocol: the counted run's steps, and each step's time in the timed runs."""

    traces: list[StepTrace]
    """Per-step means of the counted run (counts and bytes are the same in every seeded run)."""
    run_seconds: Mapping[tuple[str, str, str], tuple[float, ...]] = field(default_factory=dict)
    """Per step, its mean time per invocation in each timed run (the counted run's if there were none)."""
    bodies: tuple[bytes, ...] = ()
    """The input bodies and stored blobs of the counted run (at most :data:`MAX_BODIES`)."""
    probe_seconds: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """The times of the empty party's inputs in the timed runs by kind (section 5.2), one after each input."""
    codec_passes: tuple[tuple[float, int, int], ...] = ()
    """The probe's codec passes in the timed runs (section 5.1): (seconds, opcodes, first opcodes) each."""


def _base_step(step: str) -> str:
    return step[:-len(RESENT_SUFFIX)] if step.endswith(RESENT_SUFFIX) else step


def align(counted: Sequence[Sample], timed: Sequence[Sample]) -> list[Sample]:
    """Section 3.2: the samples of a timed run (no counters open) named and counted as the counted run's.

    A seeded run sends the same messages in the same order, so sample i of both runs is the same input;
    ``StateError`` if they are not (the same role, message type and outcome).
    """
    if len(counted) != len(timed):
        raise StateError(f"a timed run handled {len(timed)} inputs, the counted run {len(counted)}")
    out = []
    for c, t in zip(counted, timed):
        if (c.protocol, c.role, _base_step(c.step)) != (t.protocol, t.role, t.step):
            raise StateError(f"the runs diverged: {c.protocol}/{c.role}/{c.step} against {t.role}/{t.step}")
        out.append(Sample(c.protocol, c.role, c.step, c.counts, t.seconds, c.bytes_received, c.bytes_sent))
    return out


class _ProtocolRuns:
    """The runs of one traced protocol (section 5.2): an optional warm-up, the counted run, then timed runs
    one at a time, so that :func:`trace_all` can interleave the protocols' timed runs."""

    def __init__(self, protocol: str, options: Mapping[str, Any] | None, timer: Callable[[], float],
                 opcodes: bool) -> None:
        if protocol not in TRACED:
            raise ParameterError(f"unknown protocol {protocol!r}; known: {', '.join(TRACED)}")
        self.protocol, self.timer, self.opcodes = protocol, timer, opcodes
        self.deployed = deployment(protocol, options)
        self.probes: dict[str, list[float]] = {}
        self.passes: list[tuple[float, int, int]] = []
        self.corpus: list[CodecPass] = []
        self.bodies: list[bytes] = []
        self.counted: list[Sample] = []
        self.seconds: dict[tuple[str, str, str], list[float]] = {}

    def _run(self, count: bool, bodies: list[bytes] | None = None, probe: bool = False) -> list[Sample]:
        with tempfile.TemporaryDirectory(prefix=f"usapp-costs-{self.protocol}-") as directory:
            samples = run_traced(self.protocol, self.deployed, directory, bodies, count=count, timer=self.timer,
                                 probe_seconds=self.probes if probe else None, opcodes=self.opcodes,
                                 probe_corpus=self.corpus, probe_passes=self.passes)
            if bodies is not None:
                bodies += stored_blobs(directory, MAX_BODIES - len(bodies))
        return samples

    def count(self, warmup: bool, corpus: bool) -> None:
        """The warm-up (if asked) and the counted run; with ``corpus`` the probe's codec corpus from it."""
        if warmup:
            self._run(False)
        self.counted = self._run(True, self.bodies)
        if corpus:
            self.corpus.extend(codec_corpus(self.bodies))

    def time(self) -> None:
        """One timed run, with the probe, matched input by input with the counted run."""
        for step in aggregate(align(self.counted, self._run(False, probe=True))):
            self.seconds.setdefault(step.key, []).append(step.seconds)

    def measured(self) -> Measured:
        traces = aggregate(self.counted)
        seconds = self.seconds or {t.key: [t.seconds] for t in traces}
        return Measured(traces, {k: tuple(v) for k, v in seconds.items()}, tuple(self.bodies),
                        {k: tuple(v) for k, v in self.probes.items()}, tuple(self.passes))


def _check_runs(timed_runs: int) -> None:
    if type(timed_runs) is not int or not 0 <= timed_runs <= 100:
        raise ParameterError("timed_runs must be an integer in [0, 100]")


def trace_protocol(protocol: str, *, timed_runs: int = 0, warmup: bool = False,
                   options: Mapping[str, Any] | None = None,
                   timer: Callable[[], float] = time.perf_counter, opcodes: bool = False) -> Measured:
    """One counted run of ``protocol`` (after one discarded run if ``warmup``), then ``timed_runs`` runs
    with no counter open, whose times are those of the model check (counting costs time too: the
    counters' records and the state statements' trace).  Each run is in a new directory.  With ``opcodes``
    (the host check) the timed runs' probe also runs the codec over the counted run's messages
    (:func:`codec_corpus`, section 5.1).
    """
    _check_runs(timed_runs)
    runs = _ProtocolRuns(protocol, options, timer, opcodes)
    runs.count(warmup, opcodes and timed_runs > 0)
    for _ in range(timed_runs):
        runs.time()
    return runs.measured()


def trace_all(protocols: Sequence[str] = TRACED, *, timed_runs: int = 0, warmup: bool = False,
              timer: Callable[[], float] = time.perf_counter, opcodes: bool = False) -> dict[str, Measured]:
    """:func:`trace_protocol` of each protocol with its interop defaults, the timed runs taken in turn (run 1
    of every protocol, then run 2, ...): a slow minute of the machine then touches one run of each
    protocol, not every run of one (section 5.2)."""
    _check_runs(timed_runs)
    runs = [_ProtocolRuns(p, None, timer, opcodes) for p in protocols]
    for r in runs:
        r.count(warmup, opcodes and timed_runs > 0)
    for _ in range(timed_runs):
        for r in runs:
            r.time()
    return {r.protocol: r.measured() for r in runs}


# --------------------------------------------------------------------------
# The golden file of the meter-side steps (section 3.3)


def is_meter_step(trace: StepTrace) -> bool:
    return trace.role in METER_ROLES.get(base_protocol(trace.protocol), ())


def golden(traces: Iterable[StepTrace]) -> dict[str, Any]:
    """The golden document: every meter-side step's invocations, mean counts and mean bytes."""
    steps = []
    for t in traces:
        if is_meter_step(t):
            steps.append({"protocol": t.protocol, "role": t.role, "step": t.step, "invocations": t.invocations,
                          "counts": {k: _number(v) for k, v in sorted(t.counts.items()) if not is_unpinned(k)},
                          "bytes_received": _number(t.bytes_received), "bytes_sent": _number(t.bytes_sent)})
    return {"format": GOLDEN_FORMAT, "seed": SCENARIO_SEED,
            "regenerate": "python -m protocols.system.costs --write-golden", "steps": steps}


def _number(value: float) -> int | float:
    """An integral mean as an int; other means rounded to 6 decimals (they are exact ratios of counts)."""
    return int(value) if float(value).is_integer() else round(float(value), 6)


def golden_differences(expected: Mapping[str, Any], got: Mapping[str, Any]) -> list[str]:
    """Section 3.3: one line per meter-side step and key whose count or bytes changed, appeared or went away."""
    def index(doc: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
        steps = doc.get("steps")
        if not isinstance(steps, list):
            raise ParameterError("a golden document has a list 'steps'")
        return {(s["protocol"], s["role"], s["step"]): s for s in steps}

    old, new = index(expected), index(got)
    lines = []
    for key in sorted(set(old) | set(new)):
        name = "/".join(key)
        if key not in new:
            lines.append(f"{name}: step no longer happens")
            continue
        if key not in old:
            lines.append(f"{name}: new step")
            continue
        a, b = old[key], new[key]
        for fact in ("invocations", "bytes_received", "bytes_sent"):
            if a.get(fact) != b.get(fact):
                lines.append(f"{name}: {fact} {a.get(fact)} -> {b.get(fact)}")
        ca, cb = a.get("counts", {}), b.get("counts", {})
        for op in sorted(set(ca) | set(cb)):
            if ca.get(op) != cb.get(op):
                lines.append(f"{name}: count {op} {ca.get(op, 0)} -> {cb.get(op, 0)}")
    return lines


def write_golden(path: Path = GOLDEN_PATH, protocols: Sequence[str] = TRACED) -> dict[str, Any]:
    """Run each protocol once and write the golden file (sorted keys, trailing newline)."""
    traces = [t for m in trace_all(protocols).values() for t in m.traces]
    doc = golden(traces)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocols.system.costs",
                                     description="Per-role traces of every protocol (specs/costs.md section 3).")
    parser.add_argument("--write-golden", action="store_true", help=f"regenerate {GOLDEN_PATH.name}")
    parser.add_argument("--golden", default=str(GOLDEN_PATH), help="the golden file's path")
    parser.add_argument("--protocol", action="append", choices=TRACED,
                        help="trace only this protocol (repeatable; default: every protocol)")
    args = parser.parse_args(argv)
    chosen = args.protocol or list(TRACED)
    if args.write_golden:
        doc = write_golden(Path(args.golden), chosen)
        print(f"wrote {args.golden}: {len(doc['steps'])} meter-side steps")
        return 0
    for measured in trace_all(chosen).values():
        for t in measured.traces:
            ops = ", ".join(f"{k}={_number(v)}" for k, v in t.counts.items())
            print(f"{t.protocol}/{t.role}/{t.step} x{t.invocations}: {t.bytes_received:.0f} B in, "
                  f"{t.bytes_sent:.0f} B out; {ops}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
