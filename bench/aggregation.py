"""Whole aggregation rounds, and the aggregator against python-paillier (phe) (specs/aggregation.md).

One 2048-bit key from a fixed DRBG seed (the key of bench/paillier.py).

1. Scaling: a whole round for N = 100, 1,000 and 10,000 meters (100 and
   1,000 with --quick) over a balanced aggregator tree of fanout 32, one
   32-bit reading per meter.  Each meter encrypts with a RandomiserPool
   refilled offline (DJN randomisers, untimed).  Timed per round: the meter
   reports, aggregation up the tree, and the utility's part (receipt, unmask
   requests, the meters' unmask responses, decryption and verification).
   Setup (provisioning, and a first untimed round that derives and caches
   the meters' pairwise X25519 secrets) is reported apart.  Every round's
   sums are checked against the plaintext sums.
2. Aggregator throughput: Aggregator.aggregate over 1,000 meter reports
   (decode, validation, multiplication, the outgoing report) against phe
   summing EncryptedNumbers of the same readings with ``+``, in memory and
   parsed from phe's JSON form; plus our arithmetic core (sum_ciphertexts).
3. Packing: the same aggregation with as many 16-bit readings per ciphertext
   as the layout holds for 1,000 meters, per reading, against phe's one
   EncryptedNumber per reading.

Writes the scaling figure to bench/results/aggregation_scaling.png.
"""

from __future__ import annotations

import functools
import json
import operator
import time
from dataclasses import replace

from protocols.aggregation import (
    Aggregator,
    AggregatorState,
    Layout,
    Meter,
    MeterReport,
    balanced_tree,
    provision,
)
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_below
from protocols.schemes.paillier import FastEncryptor, RandomiserPool, generate_keypair, sum_ciphertexts
from protocols.system.benchmark import (
    BenchConfig,
    Benchmark,
    Comparison,
    Figures,
    Timing,
    compare,
    format_columns,
    format_seconds,
    per_item,
    plot_spread,
    pyplot_or_none,
    save_plot,
    spread,
    require_module,
)
from protocols.system.neighbourhood import Transcript, finish, post_order, run_round

KEY_SEED = "usapp-bench/paillier-2048"
KEY_BITS = 2048
FANOUT = 32
SIZES = (100, 1_000, 10_000)
QUICK_SIZES = (100, 1_000)
LARGE_REPEATS = (3, 5)
"""Repeats of rounds of 10,000 meters: at least 3, at most 5 (each costs seconds)."""
VALUE_BITS = 32
THROUGHPUT_METERS = 1_000
PACKED_VALUE_BITS = 16
ROUND_LIMIT_SECONDS = 60.0
PLOT_NAME = "aggregation_scaling.png"
PHASES = ("meter reports", "aggregation", "utility")
PHASE_NOTES = {
    "meter reports": "every meter blinds, tags, encrypts (precomputed randomiser) and MACs its report",
    "aggregation": "every aggregator decodes, checks and multiplies its children's reports, post-order",
    "utility": "receive the root's report, unmask requests, the meters' responses, decrypt, verify the tag",
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


def _timed_round(p, round_id, readings, pools, rng) -> tuple[tuple[float, ...], Transcript]:
    """One round as neighbourhood.run_round plays it, with the clock read between the phases."""
    hood = p.hood
    transcript = Transcript(round_id)
    start = time.perf_counter()
    for meter in hood.meters:
        transcript.meter_reports[meter] = Meter(hood, p.meters[meter]).report(
            round_id, readings[meter], rng, encryptor=pools[meter])
    reported = time.perf_counter()
    outputs = dict(transcript.meter_reports)
    for node in post_order(hood.tree, hood.root):
        outputs[node] = Aggregator(hood, p.aggregators[node]).aggregate(
            round_id, [outputs[child] for child in hood.children(node)])
        transcript.aggregate_reports[node] = outputs[node]
    aggregated = time.perf_counter()
    finish(p, transcript)
    done = time.perf_counter()
    return (reported - start, aggregated - reported, done - aggregated), transcript


# ---------------------------------------------------------------------------
# 1. Scaling


def _scaling(config: BenchConfig, sk, encryptor, n: int, rng) -> tuple[list[Comparison], dict]:
    repeats = config.repeats if n < 10_000 else max(LARGE_REPEATS[0], min(config.repeats, LARGE_REPEATS[1]))
    meters = _meter_ids(n)
    config.progress(f"aggregation: N={n}: provisioning (fanout {FANOUT})")
    start = time.perf_counter()
    p = provision(sk, meters, *balanced_tree(meters, FANOUT), rng, slots=1, value_bits=VALUE_BITS)
    provision_s = time.perf_counter() - start
    config.progress(f"aggregation: N={n}: {n * (repeats + 1)} randomisers offline (untimed)")
    pools = {m: RandomiserPool(sk.public_key, encryptor) for m in meters}
    start = time.perf_counter()
    for pool in pools.values():
        pool.refill(repeats + 1, rng)
    offline_s = (time.perf_counter() - start) / (n * (repeats + 1))
    config.progress(f"aggregation: N={n}: first round (untimed: derives the pairwise secrets)")
    readings = _readings(meters, 1, VALUE_BITS, rng)
    first_s, transcript = _timed_round(p, 1, readings, pools, rng)
    _check(transcript.result, readings, f"N={n}, round 1")
    phases: list[tuple[float, ...]] = []
    for round_id in range(2, repeats + 2):
        config.progress(f"aggregation: N={n}: timed round {round_id - 1}/{repeats}")
        readings = _readings(meters, 1, VALUE_BITS, rng)
        times, transcript = _timed_round(p, round_id, readings, pools, rng)
        _check(transcript.result, readings, f"N={n}, round {round_id}")
        phases.append(times)

    timings = {name: Timing(tuple(t[i] for t in phases), 1) for i, name in enumerate(PHASES)}
    whole = Timing(tuple(map(sum, phases)), 1)
    aggregators = len(p.hood.tree)
    inputs = n + aggregators - 1  # every meter report and every aggregate report but the root's
    wire = {
        "upload": transcript.upload_bytes() / n,
        "unmask_request": sum(map(len, transcript.requests.values())) / n,
        "unmask_response": sum(map(len, transcript.responses.values())) / n,
        "aggregate_reports": sum(map(len, transcript.aggregate_reports.values())) / n,
    }
    results = [Comparison(f"N={n} round: {name}", timings[name], unit="round", setup_note=PHASE_NOTES[name])
               for name in PHASES]
    results.append(Comparison(
        f"N={n} round: whole", whole, unit="round",
        details={"aggregators": aggregators, "upload_bytes_per_meter": round(wire["upload"]),
                 "unmask_bytes_per_meter": round(wire["unmask_request"] + wire["unmask_response"])}))
    row = {
        "meters": n, "aggregators": aggregators, "fanout": FANOUT, "repeats": repeats,
        "degree": p.hood.degree, "threshold": p.hood.threshold,
        "setup_seconds": {"provision": provision_s, "first_round": sum(first_s)},
        "offline_seconds_per_randomiser": offline_s,
        "phases": {name: spread(timing.per_call) for name, timing in timings.items()},
        "whole_round": spread(whole.per_call),
        "per_meter_seconds": {"whole_round": whole.median / n, "meter_report": timings["meter reports"].median / n},
        "tree_ciphertexts_per_second": inputs / timings["aggregation"].median,
        "bytes_per_meter": wire,
    }
    return results, row


# ---------------------------------------------------------------------------
# 2 and 3. The aggregator against phe


def _flat(sk, encryptor, rng, slots: int, value_bits: int):
    """1,000 meters under one aggregator, and one checked round of their reports."""
    meters = _meter_ids(THROUGHPUT_METERS)
    tree, root = balanced_tree(meters, len(meters))
    p = provision(sk, meters, tree, root, rng, slots=slots, value_bits=value_bits)
    readings = _readings(meters, slots, value_bits, rng)
    transcript = run_round(p, 1, readings, rng, encryptors=dict.fromkeys(meters, encryptor))
    _check(transcript.result, readings, f"flat round of {len(meters)} meters, {slots} slots")
    reports = list(transcript.meter_reports.values())

    def aggregate():
        state = AggregatorState(root, p.aggregators[root].key)  # fresh: an aggregator takes a round once
        return Aggregator(p.hood, state).aggregate(1, reports)

    return p, readings, reports, aggregate


class _PheBaseline:
    """phe summing EncryptedNumbers of readings with ``+``: in memory, or each
    parsed first from phe's documented JSON form {"v": str(ciphertext), "e": exponent}."""

    def __init__(self, phe, public_key, encryptor, values, rng):
        self.phe = phe
        self.public_key = phe.PaillierPublicKey(int(public_key.n))
        self.numbers = [phe.EncryptedNumber(self.public_key, int(encryptor.encrypt(v, rng).c)) for v in values]
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


def _versus_phe(config: BenchConfig, phe, sk, encryptor, rng) -> list[Comparison]:
    count = THROUGHPUT_METERS
    common = {"baseline_name": "phe " + getattr(phe, "__version__", "1.5"), "repeats": config.repeats,
              "min_time": config.min_time}
    results = []

    def case(name, ours, baseline, note, target, ours_items, unit, **details):
        config.progress(f"aggregation: {name}")
        timed = compare(name, ours, baseline, target=target, setup_note=note, details=details, **common)
        item = per_item(timed, ours_items, count, unit=unit)
        if unit == "ciphertext":
            item = replace(item, details={**item.details, "ours_ciphertexts_per_second": round(1 / item.ours.median),
                                          "baseline_ciphertexts_per_second": round(1 / item.baseline.median)})
        results.append(item)

    config.progress(f"aggregation: throughput: a flat round of {count} meter reports")
    p, readings, reports, aggregate = _flat(sk, encryptor, rng, 1, VALUE_BITS)
    phe_sums = _PheBaseline(phe, sk.public_key, encryptor, [r[0] for r in readings.values()], rng)
    ours_note = (f"ours: Aggregator.aggregate of {count} meter-report messages (CBOR decode, validation, "
                 "product, the outgoing report and its MAC)")
    for kind, baseline in (("in memory", phe_sums.in_memory), ("from JSON", phe_sums.from_json)):
        case(f"aggregator throughput vs phe {kind}", aggregate, baseline,
             f"{ours_note}; {BASELINE_NOTES[kind]}", 2.0, count, "ciphertext")
    decoded = [MeterReport.decode(report, p.hood).ciphertext for report in reports]
    case("arithmetic core (sum_ciphertexts) vs phe in memory", lambda: sum_ciphertexts(decoded),
         phe_sums.in_memory, "ours: the product of already decoded ciphertexts, nothing else; "
         + BASELINE_NOTES["in memory"], None, count, "ciphertext")

    slots = Layout.max_slots(PACKED_VALUE_BITS, 0, count, sk.public_key.bits)
    config.progress(f"aggregation: packing: a flat round of {count} meters, {slots} readings each")
    _, packed_readings, _, packed_aggregate = _flat(sk, encryptor, rng, slots, PACKED_VALUE_BITS)
    phe_packed = _PheBaseline(phe, sk.public_key, encryptor, [r[0] for r in packed_readings.values()], rng)
    for kind, baseline in (("in memory", phe_packed.in_memory), ("from JSON", phe_packed.from_json)):
        case(f"per reading, packed {slots} x {PACKED_VALUE_BITS} bits vs phe {kind}", packed_aggregate, baseline,
             f"ours: Aggregator.aggregate of {count} packed meter reports ({count * slots} readings); "
             f"{BASELINE_NOTES[kind]}, {count} of the same readings, one EncryptedNumber each; "
             "each side's time divided by its readings", 20.0, count * slots, "reading",
             slots=slots, value_bits=PACKED_VALUE_BITS)
    return results


# ---------------------------------------------------------------------------
# Figures: table, targets, plot


def _plot(config: BenchConfig, rows: list[dict]) -> str | None:
    pyplot = pyplot_or_none(config, "aggregation")
    if pyplot is None:
        return None

    sizes = [row["meters"] for row in rows]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    for name in (*PHASES, "whole round"):
        spreads = [row["whole_round"] if name == "whole round" else row["phases"][name] for row in rows]
        plot_spread(left, sizes, spreads, marker="o", label=name)
    left.set(xscale="log", yscale="log", xlabel="meters N", ylabel="seconds per round (median, min..max)",
             title=f"Round time per phase ({KEY_BITS}-bit Paillier, fanout {FANOUT})")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    for key, label in (("whole_round", "whole round / N"), ("meter_report", "meter report (one meter)")):
        right.plot(sizes, [row["per_meter_seconds"][key] * 1e3 for row in rows], marker="o", label=label)
    right.set(xscale="log", xlabel="meters N", ylabel="milliseconds per meter", title="Per-meter cost (median)")
    right.set_ylim(bottom=0)
    right.grid(True, which="both", alpha=0.3)
    right.legend()
    return save_plot(config, pyplot, figure, PLOT_NAME)


def _targets(rows: list[dict], comparisons: list[Comparison]) -> list[dict]:
    targets = [{"name": c.name, "value": c.ratio, "spread": list(c.ratio_spread), "target": f">= {c.target:g}x",
                "met": c.meets_target} for c in comparisons if c.target is not None]
    large = [row for row in rows if row["meters"] == 10_000]
    if large:
        whole = large[0]["whole_round"]
        targets.append({"name": "10,000-meter round within a minute", "value": whole["median"],
                        "spread": [whole["min"], whole["max"]], "target": f"<= {ROUND_LIMIT_SECONDS:g} s",
                        "met": whole["max"] <= ROUND_LIMIT_SECONDS})
    else:
        targets.append({"name": "10,000-meter round within a minute", "value": None,
                        "target": f"<= {ROUND_LIMIT_SECONDS:g} s", "met": None, "note": "not run (--quick)"})
    return targets


def _figures(config: BenchConfig, rows: list[dict], comparisons: list[Comparison]) -> Figures:
    header = ("N", "aggregators", "repeats", "whole round", "per meter", "meter report", "tree ct/s",
              "upload B/meter", "unmask B/meter", "aggregate B/meter", "setup (provision + first round)")
    cells = []
    for row in rows:
        wire, setup = row["bytes_per_meter"], row["setup_seconds"]
        cells.append((
            f"{row['meters']:,}", str(row["aggregators"]), str(row["repeats"]),
            format_seconds(row["whole_round"]["median"]),
            format_seconds(row["per_meter_seconds"]["whole_round"]),
            format_seconds(row["per_meter_seconds"]["meter_report"]),
            f"{row['tree_ciphertexts_per_second']:,.0f}",
            f"{wire['upload']:.0f}", f"{wire['unmask_request'] + wire['unmask_response']:.0f}",
            f"{wire['aggregate_reports']:.0f}",
            f"{format_seconds(setup['provision'])} + {format_seconds(setup['first_round'])}",
        ))
    targets = _targets(rows, comparisons)
    lines = format_columns(header, cells)
    lines += ["", "per meter = whole round / N; meter report = one meter's report (the meter's own cost); "
              "tree ct/s = reports aggregated per second over the whole tree; aggregate B/meter = the bytes of "
              "every aggregate report / N (each level forwards the share boxes); setup is not in the round time.",
              "offline randomiser (DJN, untimed in rounds): "
              f"{format_seconds(rows[0]['offline_seconds_per_randomiser'])} each", "", "targets:"]
    for t in targets:
        if t["value"] is None:
            value = "-"
        elif t["target"].endswith("x"):
            value = "{:.2f}x [{:.2f}..{:.2f}]".format(t["value"], *t["spread"])
        else:
            value = "{} [{}..{}]".format(*map(format_seconds, (t["value"], *t["spread"])))
        met = {None: t.get("note", "-"), True: "met", False: "NOT met"}[t["met"]]
        lines.append(f"  {t['name']}: {value} (target {t['target']}): {met}")
    lines.append("  (median [min..max]: paired ratios of the repeats; the round target holds when the slowest "
                 "repeat is within it)")
    plot = _plot(config, rows)
    values = {"key_bits": KEY_BITS, "fanout": FANOUT, "slots": 1, "value_bits": VALUE_BITS,
              "scaling": rows, "targets": targets, "plot": plot}
    return Figures("aggregation scaling", values, "\n".join(lines), {} if plot is None else {"plot": plot})


def run(config: BenchConfig) -> list[Comparison | Figures]:
    phe = require_module("phe")
    config.progress(f"aggregation: generating a {KEY_BITS}-bit key and a DJN encryptor")
    sk = generate_keypair(KEY_BITS, HmacDrbg.from_seed(KEY_SEED))
    rng = HmacDrbg.from_seed(KEY_SEED + "/aggregation")
    encryptor = FastEncryptor.create(sk.public_key, rng, window=8)
    results: list[Comparison | Figures] = []
    rows = []
    for n in QUICK_SIZES if config.quick else SIZES:
        comparisons, row = _scaling(config, sk, encryptor, n, rng)
        results.extend(comparisons)
        rows.append(row)
    versus = _versus_phe(config, phe, sk, encryptor, rng)
    results.extend(versus)
    results.append(_figures(config, rows, versus))
    return results


BENCHMARK = Benchmark(
    name="aggregation",
    description="whole aggregation rounds for 100 to 10,000 meters; the aggregator and packing against phe",
    run=run,
)
