"""Vector family ``integrity``: billing logs and their feedback (specs/integrity.md section 11).

Each vector (operation ``run``) has the meter's and the utility's raw Ed25519
keys (chosen), the meter id, the records' periods and register values, the
times, and the sizes at which the meter asks for feedback.  Outputs: every
record and receipt, each feedback message Y with the meter's finding, an
inclusion proof for ``inclusion_index``, and, when ``tamper`` names a change
the utility makes to its log (altered, dropped, inserted or reordered at
``tamper_index``), the feedback of the tampered log and the index and period
that ``locate`` names.  Ed25519 signatures are deterministic, so nothing is
drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols import integrity as ig
from protocols.errors import VectorMismatchError
from protocols.schemes import merkle
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect_outputs,
    list_field,
    recompute,
    small_int_field,
    str_field,
)

PROTOCOL = "integrity"
SUITE = "usapp-integrity-v1"
FILE = "integrity.json"
_INPUT_KEYS = ("meter_key", "utility_key", "meter", "records", "time", "checks", "inclusion_index", "tamper",
               "tamper_index")


def _records(v: Mapping[str, Any]) -> list[tuple[int, list[int]]]:
    out = []
    for i, item in enumerate(list_field(v, "records")):
        if not isinstance(item, dict):
            raise VectorMismatchError(f"records[{i}] must be an object")
        registers = list_field(item, "registers")
        if any(type(r) is not int for r in registers):
            raise VectorMismatchError(f"records[{i}].registers must be integers")
        out.append((small_int_field(item, "period"), registers))
    if not 1 <= len(out) <= 64:
        raise VectorMismatchError("a run has 1 to 64 records")
    return out


def _outputs(v: Mapping[str, Any]) -> dict:
    meter_id = bytes_field(v, "meter")
    time = small_int_field(v, "time")
    utility = ig.Utility(ig.UtilityState(bytes_field(v, "utility_key")))
    meter = ig.Meter(ig.MeterState(meter_id, bytes_field(v, "meter_key"), utility.public_key))
    utility.register(meter_id, meter.public_key)
    checks = [small_int_field({"c": c}, "c") for c in list_field(v, "checks")]
    out: dict[str, Any] = {"meter_public": meter.public_key.hex(), "utility_public": utility.public_key.hex(),
                           "accepted": [], "receipts": [], "feedback": []}
    for count, (period, registers) in enumerate(_records(v), start=1):
        record = meter.record(period, registers)
        receipt = utility.accept(record, time)
        meter.receipt(receipt)
        out["accepted"].append(record.hex())
        out["receipts"].append(receipt.hex())
        if count in checks:
            since = meter.state.checked.size if meter.state.checked else 0
            y = utility.feedback(meter_id, since, time)
            finding = meter.check(y)
            out["feedback"].append({"size": count, "y": y.hex(), "match": finding.match})
    size = meter.state.log.size
    index = small_int_field(v, "inclusion_index")
    head = ig.decode_tree_head(utility.tree_head(meter_id, time).to_bytes())
    inclusion = utility.inclusion(meter_id, index, size) if 0 <= index < size else None
    if inclusion is None:
        raise VectorMismatchError("field 'inclusion_index' is outside the log")
    meter.check_inclusion(inclusion, head)
    out["inclusion"] = inclusion.hex()
    out["root"] = head.root.hex()
    tamper = str_field(v, "tamper")
    if tamper != "none":
        out["tampered"] = _tampered(v, meter, utility, tamper, time)
    return out


def _tampered(v: Mapping[str, Any], meter: ig.Meter, utility: ig.Utility, tamper: str, time: int) -> dict:
    i = small_int_field(v, "tamper_index")
    records = utility.state.records[meter.state.meter]
    leaves = [r.to_bytes() for r in records]
    if not 0 <= i < len(leaves) - (1 if tamper == "reordered" else 0):
        raise VectorMismatchError("field 'tamper_index' is outside the log")
    if tamper == "altered":
        r = records[i]
        leaves[i] = ig.Record(r.meter, r.period, r.counter, (r.registers[0] + 1,) + r.registers[1:],
                              r.signature).to_bytes()
    elif tamper == "dropped":
        del leaves[i]
    elif tamper == "inserted":
        leaves.insert(i, records[i].to_bytes())
    elif tamper == "reordered":
        leaves[i], leaves[i + 1] = leaves[i + 1], leaves[i]
    else:
        raise VectorMismatchError(f"field 'tamper': unknown change {tamper!r}")
    log = merkle.MerkleLog()
    for leaf in leaves:
        log.append(leaf)
    utility.state.logs[meter.state.meter] = log
    utility.state.records[meter.state.meter] = [ig.decode_record(leaf) for leaf in leaves]
    fresh = ig.Meter(ig.MeterState(meter.state.meter, meter.state.device_key, meter.state.utility_public,
                                   list(meter.state.records), meter.state.log))
    y = utility.feedback(meter.state.meter, 0, time)
    finding = fresh.check(y)
    if finding.index is None:
        finding = ig.locate(fresh, utility, fresh.state.checked)
    return {"y": y.hex(), "match": finding.match, "index": finding.index, "period": finding.period}


def _run(v: Mapping[str, Any]) -> None:
    expect_outputs(v, recompute("run", lambda: _outputs(v)), (*_INPUT_KEYS, "operation", "name"))


OPERATIONS = {"run": _run}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


def _case(name: str, n: int, checks: list[int], tamper: str, tamper_index: int, inclusion_index: int) -> dict:
    import hashlib
    seed = hashlib.sha256(b"usapp-vectors/integrity/" + name.encode()).digest()
    records, totals = [], [0, 0]
    for i in range(n):
        totals = [totals[0] + 137 * (i % 5 + 1), totals[1] + 41 * (i % 3)]
        records.append({"period": 1_767_225_600 + 1800 * i, "registers": list(totals)})
    v: dict[str, Any] = {
        "operation": "run", "name": name,
        "meter_key": hashlib.sha256(seed + b"meter").hexdigest(),
        "utility_key": hashlib.sha256(seed + b"utility").hexdigest(),
        "meter": b"SM-000123".hex(), "records": records, "time": 1_767_312_000, "checks": checks,
        "inclusion_index": inclusion_index, "tamper": tamper, "tamper_index": tamper_index,
    }
    v.update(_outputs(v))
    return v


def build() -> dict:
    vectors = [
        _case("eleven-records-three-checks", 11, [3, 7, 11], "none", 0, 5),
        _case("altered-record", 9, [9], "altered", 4, 0),
        _case("dropped-record", 9, [9], "dropped", 2, 8),
        _case("inserted-record", 8, [8], "inserted", 6, 3),
        _case("reordered-records", 8, [4, 8], "reordered", 5, 7),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/integrity.md (sections 3 "
                  "to 7; vectors section 11) and RFC 9162 section 2.1",
        "generated_by": "usapp vectors generate (keys SHA-256(SHA-256('usapp-vectors/integrity/' || name) || "
                        "'meter' / 'utility'); Ed25519 is deterministic, nothing else is drawn)",
        "description": (
            "Billing logs (operation 'run'). Inputs: meter_key and utility_key (raw Ed25519 private keys), meter "
            "(hex id), records (period and registers, in order; counters 0, 1, ...), time (of every receipt and "
            "feedback), checks (the log sizes after which the meter asks for feedback, from the size it last "
            "checked), inclusion_index, tamper ('none', or the change the utility then makes to its log: altered "
            "(register 0 + 1, signature kept), dropped, inserted (a copy of the record at the index), reordered "
            "(swapped with the next)) and tamper_index. Outputs: meter_public, utility_public, accepted (each "
            "record, hex CBOR), receipts (each signed tree head), feedback (per check: Y in hex and whether it "
            "matched), inclusion (the inclusion message for inclusion_index), root, and for a tampered log its Y "
            "and the index and period the meter's check and bisection name."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
