"""Integrity feedback: the billing log's costs against feeding back the whole history (specs/integrity.md).

For logs of 1,000 to 1,000,000 records (records of the reference's size,
with random content: the tree's cost does not depend on what a leaf says):

- appending: the amortised time per record of building the log;
- Y: producing the signed tree head and the consistency proof from half the
  log, its size in bytes, and the meter's verification of both; an inclusion
  proof, produced and verified;
- the baseline, measured in the same run: feeding back the whole history
  (every record, as the utility holds it) and comparing it with the meter's
  own copy (a byte comparison, the cheapest whole-history check).

And, at one size, the protocol's per-record acceptance (signature check,
append, receipt) against verifying one plain Ed25519 signature.

Targets (issue 7): verification cost and proof size logarithmic in the
history (plotted), and a consistency proof for a 10^6-record log verified in
under 5 ms.
"""

from __future__ import annotations

import os
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import integrity as ig
from protocols.primitives import cbor
from protocols.schemes import merkle
from protocols.system.benchmark import (
    BenchConfig,
    Benchmark,
    Comparison,
    Figures,
    Timing,
    format_columns,
    format_seconds,
    plot_spread,
    pyplot_or_none,
    measure,
    save_plot,
    spread,
)

SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
RECORD_BYTES = 140
"""About the size of an encoded two-register record with its signature."""
CONSISTENCY_LIMIT = 0.005
PLOT_NAME = "integrity_scaling.png"
SAMPLES = 200
METER = b"SM-bench"


def _per_call(fn, calls: int, repeats: int) -> list[float]:
    return list(measure(fn, repeats=repeats, number=calls).per_call)


def _row(config: BenchConfig, n: int, key: Ed25519PrivateKey) -> dict:
    repeats = config.repeats
    config.progress(f"integrity: a log of {n:,} records")
    leaves = [os.urandom(RECORD_BYTES) for _ in range(n)]
    start = time.perf_counter()
    log = merkle.MerkleLog()
    for leaf in leaves:
        log.append(leaf)
    append = (time.perf_counter() - start) / n
    old = n // 2
    old_root, new_root = log.root(old), log.root(n)
    public = key.public_key()

    def produce():
        proof = log.consistency_proof(old, n)
        head = cbor.encode({1: 1, 2: "tree-head", 3: METER, 4: n, 5: new_root, 6: 0})
        return proof, head, key.sign(head)

    proof, head, signature = produce()
    y_bytes = len(cbor.encode({1: 1, 2: "feedback", 3: cbor.encode({**cbor.decode(head), 7: signature}),
                               4: old, 5: proof}))

    def verify():
        public.verify(signature, head)
        merkle.verify_consistency(old, n, old_root, new_root, proof)

    index = n // 3
    inclusion = log.inclusion_proof(index, n)
    leaf = merkle.leaf_hash(leaves[index])
    history = b"".join(leaves)
    mine = b"".join(bytes(leaf) for leaf in leaves)   # the meter's own copy (a distinct buffer)
    if mine is history or mine != history:
        raise RuntimeError("the whole-history baseline must compare two equal, distinct buffers")

    def whole_history():
        return history == mine

    produce_t = _per_call(produce, SAMPLES, repeats)
    verify_t = _per_call(verify, SAMPLES, repeats)
    consistency_t = _per_call(lambda: merkle.verify_consistency(old, n, old_root, new_root, proof), SAMPLES, repeats)
    inclusion_make_t = _per_call(lambda: log.inclusion_proof(index, n), SAMPLES, repeats)
    inclusion_t = _per_call(lambda: merkle.verify_inclusion(leaf, index, n, inclusion, new_root), SAMPLES, repeats)
    whole_t = _per_call(whole_history, max(1, 2_000_000 // n), repeats)
    return {
        "records": n, "append_seconds": append,
        "y": {"produce": spread(produce_t), "verify": spread(verify_t), "bytes": y_bytes,
              "proof_hashes": len(proof)},
        "consistency_verify": spread(consistency_t),
        "inclusion": {"produce": spread(inclusion_make_t), "verify": spread(inclusion_t),
                      "bytes": 32 * len(inclusion), "hashes": len(inclusion)},
        "whole_history": {"compare": spread(whole_t), "bytes": len(history)},
        "repeats": repeats, "per_repeat": {"verify_y": verify_t, "whole_history": whole_t},
    }


def _accept(config: BenchConfig) -> Comparison:
    """The protocol's acceptance of one record against one plain Ed25519 verification."""
    utility = ig.Utility(ig.UtilityState(os.urandom(32)))
    meter = ig.Meter(ig.MeterState(METER, os.urandom(32), utility.public_key))
    utility.register(METER, meter.public_key)
    records = [meter.record(1_767_225_600 + 1800 * i, [i, 2 * i]) for i in range(20_000)]
    pending = iter(records)
    key = Ed25519PrivateKey.generate()
    message = records[0]
    signature = key.sign(message)
    public = key.public_key()
    calls = 500
    ours = _per_call(lambda: utility.accept(next(pending), 0), calls, min(config.repeats, 20_000 // calls))
    base = _per_call(lambda: public.verify(signature, message), calls, len(ours))
    return Comparison("accept one record (decode, signature, checks, append, signed receipt) vs Ed25519 verify",
                      Timing(tuple(ours), calls), Timing(tuple(base), calls), "Ed25519 verify (cryptography)",
                      tuple(b / o for o, b in zip(ours, base)), unit="record",
                      details={"record_bytes": len(records[0])})


def _plot(config: BenchConfig, rows: list[dict]) -> str | None:
    pyplot = pyplot_or_none(config, "integrity")
    if pyplot is None:
        return None
    sizes = [r["records"] for r in rows]
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    left.plot(sizes, [r["y"]["bytes"] for r in rows], marker="o", label="Y: signed head + consistency proof")
    left.plot(sizes, [r["inclusion"]["bytes"] for r in rows], marker="s", label="inclusion proof")
    left.plot(sizes, [r["whole_history"]["bytes"] for r in rows], marker="^", label="whole history (baseline)")
    left.set(xscale="log", yscale="log", xlabel="records in the log", ylabel="bytes fed back",
             title="Feedback size")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    for key, label, marker in ((("y", "verify"), "verify Y (signature + consistency)", "o"),
                               (("consistency_verify",), "verify consistency proof", "D"),
                               (("inclusion", "verify"), "verify inclusion proof", "s"),
                               (("whole_history", "compare"), "compare whole history (baseline)", "^")):
        spreads = [r[key[0]] if len(key) == 1 else r[key[0]][key[1]] for r in rows]
        plot_spread(right, sizes, spreads, marker=marker, label=label)
    right.axhline(CONSISTENCY_LIMIT, color="grey", linestyle="--", label="5 ms target")
    right.set(xscale="log", yscale="log", xlabel="records in the log", ylabel="seconds (median, min..max)",
              title="The meter's verification")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    return save_plot(config, pyplot, figure, PLOT_NAME)


def _figures(config: BenchConfig, rows: list[dict]) -> Figures:
    header = ("records", "append", "make Y", "verify Y", "Y bytes", "consistency verify", "inclusion make/verify",
              "inclusion B", "whole history: compare", "bytes")
    cells = [(f"{r['records']:,}", format_seconds(r["append_seconds"]), format_seconds(r["y"]["produce"]["median"]),
              format_seconds(r["y"]["verify"]["median"]), f"{r['y']['bytes']:,}",
              format_seconds(r["consistency_verify"]["median"]),
              f"{format_seconds(r['inclusion']['produce']['median'])} / "
              f"{format_seconds(r['inclusion']['verify']['median'])}",
              f"{r['inclusion']['bytes']:,}", format_seconds(r["whole_history"]["compare"]["median"]),
              f"{r['whole_history']['bytes']:,}") for r in rows]
    lines = format_columns(header, cells)
    largest = rows[-1]
    c = largest["consistency_verify"]
    target = {"name": f"consistency proof for a {largest['records']:,}-record log verified within 5 ms",
              "value": c["median"], "spread": [c["min"], c["max"]], "target": "<= 5 ms",
              "met": c["max"] <= CONSISTENCY_LIMIT}
    if largest["records"] < 1_000_000:
        target["note"] = "run without --quick for the 1,000,000-record log"
    lines += ["", f"medians of {rows[0]['repeats']} repeats of {SAMPLES} calls; Y = the utility's signed tree head and "
              "the consistency proof from half the log; the baseline feeds back every record and compares it "
              "byte for byte with the meter's copy.", "",
              "target: {}: {} [{}..{}] (target <= 5 ms): {}{}".format(
                  target["name"], format_seconds(c["median"]), format_seconds(c["min"]), format_seconds(c["max"]),
                  "met" if target["met"] else "NOT met", f" ({target['note']})" if "note" in target else "")]
    plot = _plot(config, rows)
    return Figures("integrity scaling", {"scaling": rows, "targets": [target], "plot": plot}, "\n".join(lines),
                   {} if plot is None else {"plot": plot})


def run(config: BenchConfig) -> list[Comparison | Figures]:
    key = Ed25519PrivateKey.generate()
    rows = [_row(config, n, key) for n in (QUICK_SIZES if config.quick else SIZES)]
    results: list[Comparison | Figures] = []
    for r in rows:
        verify, whole = r["per_repeat"]["verify_y"], r["per_repeat"]["whole_history"]
        results.append(Comparison(
            f"verify Y, {r['records']:,} records, vs comparing the whole history",
            Timing(tuple(verify), SAMPLES), Timing(tuple(whole), max(1, 2_000_000 // r["records"])),
            "feed back and compare the whole history", tuple(b / o for o, b in zip(verify, whole)),
            unit="check", details={"y_bytes": r["y"]["bytes"], "history_bytes": r["whole_history"]["bytes"]}))
    results.append(_accept(config))
    results.append(_figures(config, rows))
    return results


BENCHMARK = Benchmark(
    name="integrity",
    description="billing log: append, Y with consistency and inclusion proofs for 1,000 to 1,000,000 records, "
                "against feeding back the whole history",
    run=run,
)
