"""The aggregation round's per-meter cost, and the aggregator against python-paillier (phe) (specs/aggregation.md).

One 2048-bit key from a fixed DRBG seed (the key of bench/paillier.py).

1. Per-meter cost of one round (v2: double masking over a sparse graph,
   a committee, the minimum reporting set) for N = 100, 1,000 and 10,000
   meters (degree 16, the default threshold t = ceil(2k/3), the default
   committee, one 32-bit reading, FastEncryptor: the DJN randomiser is
   computed online inside report()).  The round is played role by role in
   the order of protocols/system/neighbourhood.py, with the clock read
   around every call, so each meter's advertise, accept_bundle, report,
   sign_commit (committee members) and unmask is timed on its own; the
   figures are the median and [min..max] over every meter of the timed
   rounds.  The utility's and the tree's time is per phase and round.
   Bytes are per meter and message, X25519 agreements per meter are counted
   by wrapping protocols.aggregation.schedule._x25519 (the first round
   derives the static pair secrets; later rounds only the round secrets).
   Every round's sums are checked against the plaintext sums.  v1's figures,
   measured on the old code, are shown as the reference row.
2. Aggregator throughput: Aggregator.aggregate over 1,000 meter reports
   (decode, validation, multiplication, the outgoing report) against phe
   summing EncryptedNumbers of the same readings with ``+``, in memory and
   parsed from phe's JSON form; plus our arithmetic core (sum_ciphertexts).
3. Packing: the same aggregation with as many 16-bit readings per ciphertext
   as the layout holds for 1,000 meters, per reading, against phe's one
   EncryptedNumber per reading.

The rounds run with the provisioned heap frozen (gc.freeze): the simulation
holds N meters' state where a meter holds one.  Setup (provisioning) is not
timed.  It runs with the draft directory's
digest cached: meter.reveal_graph_nonce recomputes the digest of the whole
directory for every meter, so an N-meter setup in one process costs O(N^2)
(a real meter hashes the directory once; the simulation does it N times).

2b. The fold at the limit: every step of the aggregator's path per report
   (the reader, the product variants, the whole path) against one
   multiplication mod n^2 and against phe on the same ciphertexts, CPU and
   wall time, interleaved (specs/aggregation.md 13.4).
4. With ``--scale`` (instead of 1): one round at the utility and the tree
   for N = 10^3 to 10^6 meters, as N / 1,000 replays of one real cached
   1,000-meter neighbourhood round, in-process, on a process pool and on a
   Dask LocalCluster of 1 and 2 workers (specs/aggregation.md 13.4); the
   environment variable USAPP_BENCH_SCALE_RUNS picks a subset
   (``dask:2:100000,process:1:1000000``).  The 2-3 comparisons with phe
   follow.  Writes bench/results/aggregation_scale.png and caches the round
   in bench/results/aggregation-scale-cache-1000.pickle.

Writes bench/results/aggregation_per_meter.png.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import operator
import os
import statistics
import time
from dataclasses import replace
from typing import Any

import gmpy2
from gmpy2 import mpz

from protocols.aggregation import (
    Aggregator,
    AggregatorState,
    Layout,
    Meter,
    MeterReport,
    Neighbourhood,
    Utility,
    balanced_tree,
    provision,
    schedule,
)
from protocols.aggregation.city import MeterMessages, utility_round
from protocols.aggregation.executor import make_executor, run_tasks
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_below
from protocols.schemes.paillier import FastEncryptor, generate_keypair, sum_ciphertexts
from protocols.system.benchmark import (
    BenchConfig,
    Benchmark,
    Comparison,
    Figures,
    compare,
    format_columns,
    format_seconds,
    per_item,
    plot_spread,
    pyplot_or_none,
    require_module,
    save_plot,
    spread,
)
from protocols.system.neighbourhood import post_order, run_round

KEY_SEED = "usapp-bench/paillier-2048"
KEY_BITS = 2048
FANOUT = 32
DEGREE = 16
SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (60, 120)
WARM_ROUNDS_LARGE = 1
"""Timed rounds at N = 10,000 (each costs minutes of simulated meters); smaller N run ``--repeats``."""
VALUE_BITS = 32
THROUGHPUT_METERS = 1_000
QUICK_THROUGHPUT_METERS = 100
PACKED_VALUE_BITS = 16
UTILITY_LIMIT_SECONDS = 60.0
PLOT_NAME = "aggregation_per_meter.png"

METER_PHASES = ("advertise", "accept_bundle", "report", "sign_commit", "unmask")
UTILITY_PHASES = ("bundles", "aggregation", "receive", "commit_requests", "collect_signatures",
                  "unmask_requests", "finish")
SENT = ("mask-advert", "meter-report", "commit-signature", "unmask-response")
RECEIVED = ("mask-bundle", "commit-request", "unmask-request")
V1_REFERENCE: dict[str, Any] = {
    "note": "v1 (single masking, self-correction unmask), measured on the old code, N = 100..10,000, k = 8",
    "bytes": {"meter-report": 954, "unmask-request": 514, "unmask-response": 570},
    "x25519_first_round": 8, "x25519_later_rounds": 0,
    "seconds": {"report": [0.87e-3, 0.96e-3], "unmask": [0.12e-3, 0.15e-3]},
}


def _meter_ids(count: int) -> list[str]:
    return [f"sm-{i:05d}" for i in range(count)]


def _readings(meters, slots, value_bits, rng):
    return {m: [random_below(rng, 1 << value_bits) for _ in range(slots)] for m in meters}


def _check(result, readings, what: str) -> None:
    """A wrong sum is a bug, not a measurement: stop the benchmark."""
    expected = tuple(map(sum, zip(*readings.values())))
    if result is None or result.sums != expected or result.missing:
        got = None if result is None else result.sums
        raise RuntimeError(f"aggregation bench: {what}: the round released {got}, the plaintext sums are {expected}")


@contextlib.contextmanager
def _cached_directory_digest():
    """Setup only: compute each directory's digest once (see the module note on reveal_graph_nonce)."""
    original = Neighbourhood.directory_digest

    def cached(self):
        digest = self.__dict__.get("_bench_digest")
        if digest is None:
            digest = original(self)
            object.__setattr__(self, "_bench_digest", digest)
        return digest

    Neighbourhood.directory_digest = cached
    try:
        yield
    finally:
        Neighbourhood.directory_digest = original


def _provision(sk, meters, tree, root, rng, **options):
    with _cached_directory_digest():
        return provision(sk, meters, tree, root, rng, **options)


@contextlib.contextmanager
def _frozen_heap():
    """Keep the simulation's N meter states out of the cyclic collector's scans (gc.freeze): a meter
    holds one state, the simulation holds N, and scanning them would be charged to whichever call
    triggers a collection."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _X25519Counter:
    """Counts X25519 agreements by wrapping schedule._x25519 (base-point multiplications are not agreements)."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.contextmanager
    def installed(self):
        original = schedule._x25519

        def counting(private, public, what):
            self.calls += 1
            return original(private, public, what)

        schedule._x25519 = counting
        try:
            yield self
        finally:
            schedule._x25519 = original


class _Round:
    """Per-meter times, X25519 counts and message sizes of one round."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {phase: [] for phase in METER_PHASES}
        self.x25519 = {phase: 0 for phase in (*METER_PHASES, "utility")}
        self.sizes: dict[str, list[int]] = {kind: [] for kind in (*SENT, *RECEIVED)}
        self.utility: dict[str, float] = {}
        self.aggregate_bytes: dict[str, int] = {}


def _call(record: _Round, counter: _X25519Counter, phase: str, fn, *args, **kwargs):
    calls = counter.calls
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    record.times[phase].append(time.perf_counter() - start)
    record.x25519[phase] += counter.calls - calls
    return out


def _utility_call(record: _Round, counter: _X25519Counter, phase: str, fn, *args):
    calls = counter.calls
    start = time.perf_counter()
    out = fn(*args)
    record.utility[phase] = time.perf_counter() - start
    record.x25519["utility"] += counter.calls - calls
    return out


def _timed_round(p, round_id: int, readings, encryptor, rng, counter: _X25519Counter) -> _Round:
    """One round, every meter taking part, in the order of neighbourhood.run_round; each call timed."""
    hood = p.hood
    record = _Round()
    meters = {m: Meter(hood, p.meters[m]) for m in hood.meters}
    utility = Utility(hood, p.utility)
    adverts = [_call(record, counter, "advertise", meters[m].advertise, round_id, rng) for m in hood.meters]
    rs, bundles = _utility_call(record, counter, "bundles", utility.bundles, round_id, adverts)
    for m in hood.meters:
        _call(record, counter, "accept_bundle", meters[m].accept_bundle, bundles[m])
    reports = {m: _call(record, counter, "report", meters[m].report, round_id, readings[m], rng, encryptor=encryptor)
               for m in hood.meters}
    start = time.perf_counter()
    outputs = dict(reports)
    for node in post_order(hood.tree, hood.root):
        outputs[node] = Aggregator(hood, p.aggregators[node]).aggregate(
            round_id, [outputs[child] for child in hood.children(node)])
    record.utility["aggregation"] = time.perf_counter() - start
    record.aggregate_bytes = {"root": len(outputs[hood.root]),
                              "all": sum(len(outputs[node]) for node in hood.tree)}
    rs = _utility_call(record, counter, "receive", utility.receive, rs, outputs[hood.root])
    commits = _utility_call(record, counter, "commit_requests", utility.commit_requests, rs)
    signatures = [_call(record, counter, "sign_commit", meters[m].sign_commit, raw) for m, raw in commits.items()]
    _utility_call(record, counter, "collect_signatures", utility.collect_signatures, rs, signatures)
    requests = _utility_call(record, counter, "unmask_requests", utility.unmask_requests, rs)
    responses = [_call(record, counter, "unmask", meters[m].unmask, raw) for m, raw in requests.items()]
    result = _utility_call(record, counter, "finish", utility.finish, rs, responses)
    _check(result, readings, f"N={len(hood.meters)}, round {round_id}")
    for kind, messages in (("mask-advert", adverts), ("mask-bundle", bundles.values()),
                           ("meter-report", reports.values()), ("commit-request", commits.values()),
                           ("commit-signature", signatures), ("unmask-request", requests.values()),
                           ("unmask-response", responses)):
        record.sizes[kind] = [len(raw) for raw in messages]
    return record


# ---------------------------------------------------------------------------
# 1. Per-meter cost of a round


def _per_meter(config: BenchConfig, sk, encryptor, n: int, rng) -> dict:
    warm = config.repeats if n < 10_000 else WARM_ROUNDS_LARGE
    meters = _meter_ids(n)
    config.progress(f"aggregation: N={n}: provisioning (degree {DEGREE}, fanout {FANOUT}; untimed)")
    start = time.perf_counter()
    p = _provision(sk, meters, *balanced_tree(meters, FANOUT), rng, slots=1, value_bits=VALUE_BITS, degree=DEGREE)
    provision_s = time.perf_counter() - start
    hood = p.hood
    counter = _X25519Counter()
    rounds = []
    with counter.installed(), _frozen_heap():
        for round_id in range(1, warm + 2):
            config.progress(f"aggregation: N={n}: round {round_id} of {warm + 1} "
                            f"({'first: derives the pair secrets' if round_id == 1 else 'timed'})")
            rounds.append(_timed_round(p, round_id, _readings(meters, 1, VALUE_BITS, rng), encryptor, rng, counter))
            gc.collect()
    first, timed = rounds[0], rounds[1:]
    committee = len(hood.committee)
    per_meter_x25519 = {
        label: {phase: r.x25519[phase] / (committee if phase == "sign_commit" else n) for phase in METER_PHASES}
        for label, r in (("first_round", first), ("later_rounds", timed[-1]))}
    return {
        "meters": n, "degree": hood.degree, "threshold": hood.threshold, "min_reporting": hood.min_reporting,
        "committee": committee, "committee_threshold": hood.committee_threshold,
        "neighbours": spread(len(hood.neighbours(m)) for m in hood.meters),
        "timed_rounds": len(timed), "provision_seconds": provision_s,
        "meter_seconds": {phase: spread(t for r in timed for t in r.times[phase]) for phase in METER_PHASES},
        "meter_seconds_first_round": {phase: spread(first.times[phase]) for phase in METER_PHASES},
        "meter_total_median_seconds": sum(statistics.median(t for r in timed for t in r.times[phase])
                                          for phase in METER_PHASES if phase != "sign_commit"),
        "utility_seconds": {phase: spread(r.utility[phase] for r in timed) for phase in UTILITY_PHASES},
        "bytes": {kind: spread(timed[-1].sizes[kind]) for kind in (*SENT, *RECEIVED)},
        "x25519_per_meter": per_meter_x25519,
        "x25519_utility_per_round": timed[-1].x25519["utility"],
        "aggregate_report_bytes": {"root": timed[-1].aggregate_bytes["root"],
                                   "all_per_meter": timed[-1].aggregate_bytes["all"] / n},
        "load_average": os.getloadavg()[0],
    }


# ---------------------------------------------------------------------------
# 2 and 3. The aggregator against phe


def _flat(sk, encryptor, rng, count: int, slots: int, value_bits: int):
    """``count`` meters under one aggregator, and one checked round of their reports."""
    meters = _meter_ids(count)
    tree, root = balanced_tree(meters, len(meters))
    p = _provision(sk, meters, tree, root, rng, slots=slots, value_bits=value_bits)
    readings = _readings(meters, slots, value_bits, rng)
    transcript = run_round(p, 1, readings, rng, encryptors=dict.fromkeys(meters, encryptor))
    _check(transcript.result, readings, f"flat round of {len(meters)} meters, {slots} slots")
    reports = list(transcript.meter_reports.values())

    def aggregate():
        state = AggregatorState(root, p.aggregators[root].key)  # fresh: an aggregator takes a round once
        return Aggregator(p.hood, state).aggregate(1, reports)

    return p, readings, reports, aggregate


class _PheBaseline:
    """phe summing EncryptedNumbers with ``+``: in memory, or each parsed first from phe's
    documented JSON form {"v": str(ciphertext), "e": exponent}.  The ciphertexts are ``ciphertexts``
    (the very ones of our meter-reports: the same input on both sides), else fresh encryptions of
    ``values``."""

    def __init__(self, phe, public_key, encryptor, values, rng, ciphertexts=None):
        self.phe = phe
        self.public_key = phe.PaillierPublicKey(int(public_key.n))
        if ciphertexts is None:
            ciphertexts = [encryptor.encrypt(v, rng).c for v in values]
        self.numbers = [phe.EncryptedNumber(self.public_key, int(c)) for c in ciphertexts]
        self.serialised = [json.dumps({"v": str(x.ciphertext(be_secure=False)), "e": x.exponent})
                           for x in self.numbers]

    def in_memory(self):
        return functools.reduce(operator.add, self.numbers)

    def from_json(self):
        parsed = (json.loads(text) for text in self.serialised)
        new = self.phe.EncryptedNumber
        return functools.reduce(operator.add, (new(self.public_key, int(d["v"]), int(d["e"])) for d in parsed))


BASELINE_NOTES = {
    "in memory": "phe: reduce(operator.add) over EncryptedNumber objects already in memory",
    "from JSON": "phe: each ciphertext first parsed from its documented JSON form, json.loads of "
                 "{'v': str(c), 'e': exponent} then EncryptedNumber(pk, int(v), int(e)), then summed with +",
}


def _versus_phe(config: BenchConfig, phe, sk, encryptor, rng) -> list[Comparison | Figures]:
    count = QUICK_THROUGHPUT_METERS if config.quick else THROUGHPUT_METERS
    common = {"baseline_name": "phe " + getattr(phe, "__version__", "1.5"), "repeats": config.repeats,
              "min_time": config.min_time}
    results: list[Comparison | Figures] = []

    def case(name, ours, baseline, note, target, ours_items, unit, **details):
        config.progress(f"aggregation: {name}")
        timed = compare(name, ours, baseline, target=target, setup_note=note, details=details, **common)
        item = per_item(timed, ours_items, count, unit=unit)
        if unit == "ciphertext":
            item = replace(item, details={**item.details, "ours_ciphertexts_per_second": round(1 / item.ours.median),
                                          "baseline_ciphertexts_per_second": round(1 / item.baseline.median)})
        results.append(item)

    config.progress(f"aggregation: throughput: a flat round of {count} meter reports")
    p, readings, reports, aggregate = _flat(sk, encryptor, rng, count, 1, VALUE_BITS)
    same = [MeterReport.decode(report, p.hood).ciphertext.c for report in reports]
    phe_sums = _PheBaseline(phe, sk.public_key, encryptor, None, rng, ciphertexts=same)
    ours_note = (f"ours: Aggregator.aggregate of {count} meter-report messages (CBOR decode, validation, "
                 "product, the outgoing report and its MAC)")
    for kind, baseline in (("in memory", phe_sums.in_memory), ("from JSON", phe_sums.from_json)):
        case(f"aggregator throughput vs phe {kind}", aggregate, baseline,
             f"{ours_note}; {BASELINE_NOTES[kind]} (the very ciphertexts of our reports)", 2.0, count, "ciphertext")
    anatomy = _fold_anatomy(config, phe, p.hood, reports, aggregate)
    decoded = [MeterReport.decode(report, p.hood).ciphertext for report in reports]
    case("arithmetic core (sum_ciphertexts) vs phe in memory", lambda: sum_ciphertexts(decoded),
         phe_sums.in_memory, "ours: the product of already decoded ciphertexts, nothing else; "
         + BASELINE_NOTES["in memory"], None, count, "ciphertext")

    slots = Layout.max_slots(PACKED_VALUE_BITS, 0, count, sk.public_key.bits)
    config.progress(f"aggregation: packing: a flat round of {count} meters, {slots} readings each")
    _, packed_readings, _, packed_aggregate = _flat(sk, encryptor, rng, count, slots, PACKED_VALUE_BITS)
    phe_packed = _PheBaseline(phe, sk.public_key, encryptor, [r[0] for r in packed_readings.values()], rng)
    for kind, baseline in (("in memory", phe_packed.in_memory), ("from JSON", phe_packed.from_json)):
        case(f"per reading, packed {slots} x {PACKED_VALUE_BITS} bits vs phe {kind}", packed_aggregate, baseline,
             f"ours: Aggregator.aggregate of {count} packed meter reports ({count * slots} readings); "
             f"{BASELINE_NOTES[kind]}, {count} of the same readings, one EncryptedNumber each; "
             "each side's time divided by its readings", 20.0, count * slots, "reading",
             slots=slots, value_bits=PACKED_VALUE_BITS)
    return [*results, anatomy]


# ---------------------------------------------------------------------------
# 2b. The fold at the limit: every step of the aggregator's path against one multiplication mod n^2


FOLD_REPEATS = 15
"""Interleaved repeats of every variant in :func:`_fold_anatomy` (``--quick``: 3)."""


def _lazy_pairs(values, modulus):
    """The product mod ``modulus`` with one reduction per two multiplications (a variant measured)."""
    acc = mpz(1)
    for i in range(0, len(values) - 1, 2):
        acc = acc * values[i] * values[i + 1] % modulus
    if len(values) % 2:
        acc = acc * values[-1] % modulus
    return acc


def _pairwise_tree(values, modulus):
    """The product mod ``modulus`` as a balanced tree of reduced pairwise products (a variant measured)."""
    level = list(values)
    while len(level) > 1:
        paired = [level[i] * level[i + 1] % modulus for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0] % modulus if level else mpz(1) % modulus


def _fold_anatomy(config: BenchConfig, phe, hood, reports: list[bytes], aggregate) -> Figures:
    """Per report, CPU and wall time of each step of the aggregator's path and of phe on the same
    ciphertexts, all timed in one process, interleaved repeat by repeat (specs/aggregation.md 13.4)."""
    from protocols.aggregation.aggregator import _MeterReportReader, fold_product
    from protocols.schemes.paillier import product_mod

    pk = hood.public_key
    n, nsquare, width = mpz(pk.n), mpz(pk.nsquare), pk.ciphertext_length()
    reader = _MeterReportReader(hood, 1)
    read = [reader.read_encoded(raw) for raw in reports]
    if any(r is None for r in read):
        raise RuntimeError("aggregation fold: a report left the fast reader")
    cs = [r[1] for r in read if r is not None]
    wire = [int(c).to_bytes(width, "big") for c in cs]  # key 4 of each report: I2OSP(c, len(n^2))
    if any(w not in raw for w, raw in zip(wire, reports)):
        raise RuntimeError("aggregation fold: a ciphertext is not in its report")
    phe_key = phe.PaillierPublicKey(int(n))
    objects = [phe.EncryptedNumber(phe_key, int(c)) for c in cs]
    new = phe.EncryptedNumber

    def modmul():
        acc = mpz(1)
        for c in cs:
            acc = acc * c % nsquare
        return acc

    def checked(product):
        def fold():
            if not all(0 < c < nsquare for c in cs):
                raise RuntimeError("out of range")
            acc = product(cs, nsquare)
            if gmpy2.gcd(acc, n) != 1:
                raise RuntimeError("not a unit")
            return acc
        return fold

    def read_all():
        fast = _MeterReportReader(hood, 1).read_encoded
        return [fast(raw) for raw in reports]

    variants = {
        "one multiplication mod n^2 per report (a * b % n2, one thread)": modmul,
        "phe: + over EncryptedNumber objects of the same ciphertexts": lambda: functools.reduce(operator.add, objects),
        "phe: from the same ciphertext bytes (int.from_bytes, EncryptedNumber, +)":
            lambda: functools.reduce(operator.add, (new(phe_key, int.from_bytes(w, "big")) for w in wire)),
        "ours: read and check the meter-reports (7.3 reader)": read_all,
        "ours: fold as the aggregator does it (fold_product: product, one gcd; range checked by the reader)":
            lambda: fold_product(cs, pk)[0],
        "ours: fold, one thread, one reduction per product": checked(lambda v, m: functools.reduce(
            lambda a, b: a * b % m, v, mpz(1))),
        "ours: fold, product_mod (two threads from 256 factors)": checked(product_mod),
        "ours: fold, one reduction per two products": checked(_lazy_pairs),
        "ours: fold, balanced tree of reduced pairwise products": checked(_pairwise_tree),
        "ours: whole Aggregator.aggregate (read, checks, fold, report and MAC)": aggregate,
    }
    expected = modmul()
    for name in list(variants)[3:]:
        if name.startswith("ours: fold") and variants[name]() != expected:
            raise RuntimeError(f"aggregation fold: {name} gave another product")
    repeats = 3 if config.quick else FOLD_REPEATS
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    config.progress(f"aggregation: the fold at the limit, {len(variants)} variants x {repeats} interleaved repeats")
    for _ in range(repeats):
        for name, fn in variants.items():
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append((time.process_time() - c0) / len(reports))
            wall[name].append((time.perf_counter() - w0) / len(reports))
    rows: list[dict[str, Any]] = [{"name": name, "cpu_us": {k: v * 1e6 for k, v in spread(cpu[name]).items()},
             "wall_us": {k: v * 1e6 for k, v in spread(wall[name]).items()}} for name in variants]
    base = {key: statistics.median(cpu[name]) for key, name in
            (("modmul", list(variants)[0]), ("phe", list(variants)[1]))}
    for row, name in zip(rows, variants):
        row["cpu_vs_modmul"] = statistics.median(cpu[name]) / base["modmul"]
        row["phe_cpu_over_ours_cpu"] = base["phe"] / statistics.median(cpu[name])
        row["phe_cpu_over_ours_wall"] = base["phe"] / statistics.median(wall[name])
    header = ("step (per report)", "CPU us median [min..max]", "wall us median", "CPU / modmul",
              "phe CPU / this CPU", "phe CPU / this wall")
    cells = [(row["name"], _cell(row["cpu_us"], 2), f"{row['wall_us']['median']:.2f}", f"{row['cpu_vs_modmul']:.2f}",
              f"{row['phe_cpu_over_ours_cpu']:.2f}x", f"{row['phe_cpu_over_ours_wall']:.2f}x") for row in rows]
    lines = [f"{len(reports):,} meter-reports of one round into one aggregator, 2048-bit n; every variant over the "
             f"same ciphertexts, {repeats} repeats interleaved; CPU = process time (all threads), so a two-thread "
             f"product counts both cores; load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs:"]
    lines += format_columns(header, cells)
    lines.append(f"2x phe needs at most {base['phe'] / 2 * 1e6:.2f} us of CPU per report; one multiplication mod "
                 f"n^2 is {base['modmul'] * 1e6:.2f} us: phe costs {base['phe'] / base['modmul']:.2f} of them.")
    values = {"reports": len(reports), "repeats": repeats, "rows": rows, "modmul_cpu_us": base["modmul"] * 1e6,
              "phe_cpu_us": base["phe"] * 1e6, "load_average": os.getloadavg()[0]}
    return Figures("aggregation: the fold at the limit (per report)", values, "\n".join(lines))


# ---------------------------------------------------------------------------
# Figures: table, targets, plot


def _cell(s: dict, digits: int = 0) -> str:
    if s["min"] == s["max"]:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}..{s['max']:.{digits}f}]"


def _time_cell(s: dict) -> str:
    return f"{format_seconds(s['median'])} [{format_seconds(s['min'])}..{format_seconds(s['max'])}]"


def _plot(config: BenchConfig, rows: list[dict]) -> str | None:
    pyplot = pyplot_or_none(config, "aggregation")
    if pyplot is None:
        return None
    sizes = [row["meters"] for row in rows]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    for phase in METER_PHASES:
        spreads = [{k: v * 1e3 for k, v in row["meter_seconds"][phase].items()} for row in rows]
        plot_spread(left, sizes, spreads, marker="o", label=phase)
    left.set(xscale="log", yscale="log", xlabel="meters N",
             ylabel="milliseconds per meter (median, min..max over meters)",
             title=f"One meter's calls per round (degree {DEGREE}, {KEY_BITS}-bit key)")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    for phase in UTILITY_PHASES:
        plot_spread(right, sizes, [row["utility_seconds"][phase] for row in rows], marker="o", label=phase)
    right.set(xscale="log", yscale="log", xlabel="meters N", ylabel="seconds per round",
              title="Utility (and tree) per phase")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize="small")
    return save_plot(config, pyplot, figure, PLOT_NAME)


def _targets(rows: list[dict], comparisons: list[Comparison]) -> list[dict]:
    targets = [{"name": c.name, "value": c.ratio, "spread": list(c.ratio_spread or ()),
                "target": f">= {c.target:g}x", "met": c.meets_target} for c in comparisons if c.target is not None]
    large = [row for row in rows if row["meters"] == 10_000]
    name = "10,000-meter round: the utility's and the tree's time within a minute"
    if large:
        u = large[0]["utility_seconds"]
        total = {k: sum(u[phase][k] for phase in UTILITY_PHASES) for k in ("median", "min", "max")}
        targets.append({"name": name, "value": total["median"], "spread": [total["min"], total["max"]],
                        "target": f"<= {UTILITY_LIMIT_SECONDS:g} s", "met": total["max"] <= UTILITY_LIMIT_SECONDS})
    else:
        targets.append({"name": name, "value": None, "target": f"<= {UTILITY_LIMIT_SECONDS:g} s", "met": None,
                        "note": "not run (--quick)"})
    return targets


def _meter_table(rows: list[dict]) -> list[str]:
    header = ("N", "d [min..max]", "t", "committee", *(f"{p} ms" for p in METER_PHASES), "X25519 1st / later")
    cells = []
    for row in rows:
        x1, x2 = (sum(row["x25519_per_meter"][k][p] for p in METER_PHASES if p != "sign_commit")
                  for k in ("first_round", "later_rounds"))
        cells.append((f"{row['meters']:,}", _cell(row["neighbours"]), str(row["threshold"]),
                      f"{row['committee_threshold']} of {row['committee']}",
                      *(_cell({k: v * 1e3 for k, v in row["meter_seconds"][p].items()}, 2) for p in METER_PHASES),
                      f"{x1:.1f} / {x2:.1f}"))
    v1 = V1_REFERENCE
    cells.append(("v1 ref", "8", "-", "-", "-", "-",
                  "{:.2f}..{:.2f}".format(*(x * 1e3 for x in v1["seconds"]["report"])), "-",
                  "{:.2f}..{:.2f}".format(*(x * 1e3 for x in v1["seconds"]["unmask"])),
                  f"{v1['x25519_first_round']} / {v1['x25519_later_rounds']}"))
    return format_columns(header, cells)


def _bytes_table(rows: list[dict]) -> list[str]:
    header = ("N", *(f"{k} (sent)" for k in SENT), *(f"{k} (recv)" for k in RECEIVED), "root report",
              "aggregate reports / N")
    cells = [(f"{row['meters']:,}", *(_cell(row["bytes"][k]) for k in (*SENT, *RECEIVED)),
              str(row["aggregate_report_bytes"]["root"]), f"{row['aggregate_report_bytes']['all_per_meter']:.0f}")
             for row in rows]
    v1 = V1_REFERENCE["bytes"]
    cells.append(("v1 ref", "-", str(v1["meter-report"]), "-", str(v1["unmask-response"]), "-", "-",
                  str(v1["unmask-request"]), "-", "-"))
    return format_columns(header, cells)


def _utility_table(rows: list[dict]) -> list[str]:
    header = ("N", "rounds", *UTILITY_PHASES, "provision (untimed)", "load avg")
    cells = [(f"{row['meters']:,}", str(row["timed_rounds"]),
              *(format_seconds(row["utility_seconds"][p]["median"]) for p in UTILITY_PHASES),
              format_seconds(row["provision_seconds"]), f"{row['load_average']:.1f}") for row in rows]
    return format_columns(header, cells)


def _figures(config: BenchConfig, rows: list[dict], comparisons: list[Comparison]) -> Figures:
    targets = _targets(rows, comparisons)
    lines = ["per meter and call, milliseconds, median [min..max] over every meter of the timed rounds "
             "(sign_commit: committee members only); X25519 = agreements per meter per round "
             "(schedule._x25519 calls; the first round adds the static pair secrets):"]
    lines += _meter_table(rows)
    last = rows[-1]
    for label in ("first_round", "later_rounds"):
        counts = last["x25519_per_meter"][label]
        lines.append(f"  X25519 per meter by call at N={last['meters']:,}, {label.replace('_', ' ')}: "
                     + ", ".join(f"{phase} {counts[phase]:.1f}" for phase in METER_PHASES if counts[phase]))
    lines.append(f"  the utility: {last['x25519_utility_per_round']} X25519 per round (only for missing meters; "
                 "none here)")
    lines += ["", "bytes per meter and message, median [min..max] over meters (commit-* for committee members); "
              "root report = the root's aggregate-report (it carries every covered meter's confirmations):"]
    lines += _bytes_table(rows)
    lines += ["", "utility and tree, seconds per round (median of the timed rounds; aggregation = every "
              "aggregator of the tree, post-order; load avg = 1-minute load when the size finished, on "
              f"{os.cpu_count()} CPUs):"]
    lines += _utility_table(rows)
    lines += ["", f"v1 reference: {V1_REFERENCE['note']}.", "", "targets:"]
    for t in targets:
        if t["value"] is None:
            value = "-"
        elif t["target"].endswith("x"):
            value = "{:.2f}x [{:.2f}..{:.2f}]".format(t["value"], *t["spread"])
        else:
            value = "{} [{}..{}]".format(*map(format_seconds, (t["value"], *t["spread"])))
        met = {None: t.get("note", "-"), True: "met", False: "NOT met"}[t["met"]]
        lines.append(f"  {t['name']}: {value} (target {t['target']}): {met}")
    plot = _plot(config, rows)
    values = {"key_bits": KEY_BITS, "fanout": FANOUT, "degree": DEGREE, "slots": 1, "value_bits": VALUE_BITS,
              "per_meter": rows, "v1_reference": V1_REFERENCE, "targets": targets, "plot": plot}
    return Figures("aggregation per-meter cost (v2 round)", values, "\n".join(lines),
                   {} if plot is None else {"plot": plot})


# ---------------------------------------------------------------------------
# 4. Scaling (--scale): the utility's and the concentrators' round for 10^3 to 10^6 meters


SCALE_HOOD_METERS = 1_000
"""Meters per neighbourhood in the scale runs: a city of N meters is N / 1,000 neighbourhoods."""
SCALE_SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SCALE_SIZES = (1_000, 10_000)
SCALE_RUNS = (("inprocess", 1, 100_000), ("process", 1, 1_000_000), ("process", 2, 1_000_000),
              ("dask", 1, 1_000_000), ("dask", 2, 1_000_000))
"""(executor, workers, largest N): the in-process executor stops at 10^5 (it is the 1-worker process
run without the pool); ``dask`` is a LocalCluster of worker processes (needs the ``dask`` extra)."""
SCALE_RUNS_ENV = "USAPP_BENCH_SCALE_RUNS"
"""Optional: a comma-separated subset of the runs, each ``executor:workers:largest N``
(``dask:2:100000``), to split the full table (about 25 minutes) into shorter invocations."""
SCALE_TASKS_PER_WORKER = 4
SCALE_LIMIT_SECONDS = 900.0
"""The time limit of one round: a 15-minute reporting interval (the issue's shortest)."""
SCALE_CACHE = f"aggregation-scale-cache-{SCALE_HOOD_METERS}.pickle"
SCALE_PLOT = "aggregation_scale.png"


def _build_scale_cache(path: str) -> None:
    """Provision one neighbourhood of SCALE_HOOD_METERS meters, play one real round (every meter
    reporting, FastEncryptor), and keep what the utility and the tree receive and hold."""
    import pickle

    sk = generate_keypair(KEY_BITS, HmacDrbg.from_seed(KEY_SEED))
    rng = HmacDrbg.from_seed(KEY_SEED + "/aggregation-scale")
    encryptor = FastEncryptor.create(sk.public_key, rng, window=8)
    meters = _meter_ids(SCALE_HOOD_METERS)
    p = _provision(sk, meters, *balanced_tree(meters, FANOUT), rng, slots=1, value_bits=VALUE_BITS, degree=DEGREE)
    pristine = ({a: AggregatorState(a, s.key) for a, s in p.aggregators.items()}, replace(p.utility))
    readings = _readings(meters, 1, VALUE_BITS, rng)
    transcript = run_round(p, 1, readings, rng, encryptors=dict.fromkeys(meters, encryptor))
    _check(transcript.result, readings, "scale cache round")
    messages = MeterMessages(1, tuple(transcript.adverts.values()), tuple(transcript.meter_reports.items()),
                             tuple(transcript.commit_signatures.values()), tuple(transcript.responses.values()))
    sums = None if transcript.result is None else transcript.result.sums
    payload = {"hood": p.hood, "aggregators": pristine[0], "utility": pristine[1], "messages": messages,
               "sums": sums}
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def _replay_batch(task: tuple[str, int]) -> tuple[int, int, int]:
    """One scale task: ``count`` neighbourhood rounds at the utility and the tree, from the cached
    messages (read from disk once per task), each with fresh role state.  Returns (rounds done, pid,
    this process's peak RSS)."""
    import pickle

    path, count = task
    with open(path, "rb") as handle:
        cached = pickle.load(handle)
    hood, messages = cached["hood"], cached["messages"]
    for _ in range(count):
        aggregators = {a: AggregatorState(a, s.key) for a, s in cached["aggregators"].items()}
        out = utility_round(hood, replace(cached["utility"]), aggregators, messages)
        if out.result.sums != cached["sums"]:
            raise RuntimeError("aggregation scale: a replayed round released the wrong sums")
    return count, os.getpid(), _peak_rss_bytes()


def _other_children_rss(workers: set[int]) -> int:
    """The resident set, now, of this process's descendants that ran no task (Dask's nannies, a
    pool's idle workers); 0 without psutil (which the ``dask`` extra brings)."""
    import importlib

    try:
        psutil = importlib.import_module("psutil")
    except ModuleNotFoundError:
        return 0
    total = 0
    for child in psutil.Process().children(recursive=True):
        if child.pid not in workers:
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
    return total


def _scale_point(path: str, n: int, name: str, workers: int, conn) -> None:
    """One (N, executor, workers) round in a fresh child process; sends its figures through ``conn``."""
    try:
        hoods = n // SCALE_HOOD_METERS
        per_task = max(1, -(-hoods // (workers * SCALE_TASKS_PER_WORKER)))
        tasks = [(path, min(per_task, hoods - i)) for i in range(0, hoods, per_task)]
        executor = make_executor(name, workers)
        try:
            start = time.perf_counter()
            done = run_tasks(executor, _replay_batch, tasks, retries=0)
            seconds = time.perf_counter() - start
            others = _other_children_rss({pid for _, pid, _ in done})
        finally:
            executor.close()
        if sum(d[0] for d in done) != hoods:
            raise RuntimeError("aggregation scale: not every neighbourhood was aggregated")
        workers_peak: dict[int, int] = {}
        for _, pid, rss in done:
            workers_peak[pid] = max(rss, workers_peak.get(pid, 0))
        own = _peak_rss_bytes()
        peak = own if name == "inprocess" else own + sum(workers_peak.values()) + others
        conn.send({"n": n, "executor": name, "workers": workers, "round_s": seconds,
                   "reports_per_s_per_core": n / seconds / workers, "peak_rss_bytes": peak,
                   "helper_rss_bytes": others, "own_rss_bytes": own,
                   "worker_peak_rss_bytes": sorted(workers_peak.values()),
                   "neighbourhoods": hoods, "tasks": len(tasks), "load_average": os.getloadavg()[0]})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def _run_point(path: str, n: int, name: str, workers: int) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_scale_point, args=(path, n, name, workers, child))
    process.start()
    child.close()
    try:
        row = parent.recv()
    except EOFError:
        row = {"error": f"the scale run died (exit code {process.exitcode})"}
    process.join()
    if "error" in row:
        raise RuntimeError(f"aggregation scale: N={n} {name} x{workers}: {row['error']}")
    return row


def _scale_runs(text: str | None) -> tuple[tuple[str, int, int], ...]:
    """:data:`SCALE_RUNS`, or the subset named by ``text`` (:data:`SCALE_RUNS_ENV`)."""
    if not text:
        return SCALE_RUNS
    runs = []
    for part in text.split(",")[:len(SCALE_RUNS) * 4]:
        fields = part.strip().split(":")
        if len(fields) != 3 or fields[0] not in {r[0] for r in SCALE_RUNS} or not all(f.isdigit() for f in fields[1:]):
            raise ValueError(f"{SCALE_RUNS_ENV}: {part!r} is not executor:workers:largest-N")
        runs.append((fields[0], int(fields[1]), int(fields[2])))
    return tuple(runs)


def _scale(config: BenchConfig) -> list[dict]:
    import multiprocessing

    path = str(config.output_path(SCALE_CACHE))
    if not os.path.exists(path):
        config.progress(f"aggregation scale: generating one {SCALE_HOOD_METERS:,}-meter neighbourhood's round "
                        f"(cached in {path})")
        builder = multiprocessing.get_context("fork").Process(target=_build_scale_cache, args=(path,))
        builder.start()
        builder.join()
        if builder.exitcode != 0 or not os.path.exists(path):
            raise RuntimeError("aggregation scale: building the cached round failed")
    sizes = QUICK_SCALE_SIZES if config.quick else SCALE_SIZES
    runs = _scale_runs(os.environ.get(SCALE_RUNS_ENV))
    rows = []
    for n in sizes:
        for name, workers, largest in runs:
            if n > largest:
                continue
            config.progress(f"aggregation scale: N={n:,}, {name}, {workers} worker(s)")
            rows.append(_run_point(path, n, name, workers))
    return rows


def _scale_plot(config: BenchConfig, rows: list[dict]) -> str | None:
    pyplot = pyplot_or_none(config, "aggregation")
    if pyplot is None:
        return None
    figure, axis = pyplot.subplots(figsize=(6.5, 4.5))
    for name, workers in dict.fromkeys((r["executor"], r["workers"]) for r in rows):
        points = [(r["n"], r["round_s"]) for r in rows if r["executor"] == name and r["workers"] == workers]
        if points:
            axis.plot(*zip(*points), marker="o", label=f"{name}, {workers} worker(s)")
    axis.axhline(SCALE_LIMIT_SECONDS, color="grey", linestyle="--", label="15-minute interval")
    axis.set(xscale="log", yscale="log", xlabel="meters N", ylabel="seconds per round",
             title=f"Utility and tree per round ({SCALE_HOOD_METERS:,}-meter neighbourhoods, {KEY_BITS}-bit key)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize="small")
    return save_plot(config, pyplot, figure, SCALE_PLOT)


def _scale_figures(config: BenchConfig, rows: list[dict], comparisons: list[Comparison]) -> Figures:
    header = ("N", "executor", "workers", "round", "reports/s/core", "peak RSS MiB", "tasks", "load avg")
    cells = [(f"{r['n']:,}", r["executor"], str(r["workers"]), format_seconds(r["round_s"]),
              f"{r['reports_per_s_per_core']:,.0f}", f"{r['peak_rss_bytes'] / 2**20:,.0f}", str(r["tasks"]),
              f"{r.get('load_average', float('nan')):.1f}") for r in rows]
    largest = max(r["n"] for r in rows)
    slowest = max(r["round_s"] for r in rows if r["n"] == largest)
    targets: list[dict[str, Any]] = [
        {"name": c.name, "value": c.ratio, "spread": list(c.ratio_spread or ()), "target": f">= {c.target:g}x",
         "met": c.meets_target} for c in comparisons if c.target is not None]
    targets.append({"name": f"a {largest:,}-meter round within {SCALE_LIMIT_SECONDS:g} s", "value": slowest,
                    "target": f"<= {SCALE_LIMIT_SECONDS:g} s", "met": slowest <= SCALE_LIMIT_SECONDS})
    lines = [f"one round at the utility and the tree (spec 13.4): N / {SCALE_HOOD_METERS:,} neighbourhoods, each a "
             "replay of one real cached round (bundles, the tree's fold, receipt, commit, unmask requests, "
             "finish with the sums checked); reports/s/core = N / round / workers; peak RSS = the run's process "
             "plus each worker's peak plus, sampled at the end, any other child process (Dask's nannies, a "
             "resource tracker) (shared pages counted in each: an upper bound); load avg = 1-minute load "
             f"when the point finished, on {os.cpu_count()} CPUs:"]
    lines += format_columns(header, cells)
    lines += ["", "targets:"]
    for t in targets:
        value = (f"{t['value']:.2f}x" if t["target"].endswith("x") else format_seconds(t["value"]))
        lines.append(f"  {t['name']}: {value} (target {t['target']}): {'met' if t['met'] else 'NOT met'}")
    plot = _scale_plot(config, rows)
    values = {"key_bits": KEY_BITS, "hood_meters": SCALE_HOOD_METERS, "fanout": FANOUT, "degree": DEGREE,
              "cpu_count": os.cpu_count(), "scale": rows, "targets": targets, "plot": plot}
    return Figures("aggregation at scale (utility and tree per round)", values, "\n".join(lines),
                   {} if plot is None else {"plot": plot})


def run(config: BenchConfig) -> list[Comparison | Figures]:
    phe = require_module("phe")
    scale_rows = _scale(config) if config.scale else []
    config.progress(f"aggregation: generating a {KEY_BITS}-bit key and a DJN encryptor")
    sk = generate_keypair(KEY_BITS, HmacDrbg.from_seed(KEY_SEED))
    rng = HmacDrbg.from_seed(KEY_SEED + "/aggregation")
    encryptor = FastEncryptor.create(sk.public_key, rng, window=8)
    if config.scale:
        versus = _versus_phe(config, phe, sk, encryptor, rng)
        return [*versus, _scale_figures(config, scale_rows, _comparisons(versus))]
    rows = [_per_meter(config, sk, encryptor, n, rng) for n in (QUICK_SIZES if config.quick else SIZES)]
    versus = _versus_phe(config, phe, sk, encryptor, rng)
    return [*versus, _figures(config, rows, _comparisons(versus))]


def _comparisons(results: list[Comparison | Figures]) -> list[Comparison]:
    return [r for r in results if isinstance(r, Comparison)]


BENCHMARK = Benchmark(
    name="aggregation",
    description="per-meter cost of a v2 aggregation round for 100 to 10,000 meters; the aggregator and "
                "packing against phe",
    run=run,
)
