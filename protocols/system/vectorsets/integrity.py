"""Vector family ``integrity``: billing logs and their feedback (specs/integrity.md section 11).

Each vector (operation ``run``) has the meter's and the utility's raw Ed25519
keys (chosen), the meter id, the records' periods and register values, the
times, and the sizes at which the meter asks for feedback.  Outputs: every
record and receipt, each feedback message Y with the meter's finding, an
inclusion proof for ``inclusion_index``, and, when ``tamper`` names a change
the utility makes to its log (altered, dropped, inserted or reordered at
``tamper_index``), the feedback of the tampered log and the index and period
that ``locate`` names.  Operation ``resync`` (spec 9): the same meter and
utility; the meter is backed up after ``backup_size`` records, makes the rest
(all accepted), is restored with its boot counter bumped from ``boot_before``,
signs ``later`` records (the first is refused as a replay), and either
resyncs (outputs: Y, the inclusion messages, the records adopted and
re-signed, the feedback after the re-signed records are accepted) or, for the
lost-state verdict, keeps signing and goes to the arbiter (outputs: the
verdict's party, kind, index and period).  Ed25519 signatures are
deterministic, so nothing is drawn.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from protocols import integrity as ig
from protocols.errors import ReplayError, VectorMismatchError
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
SUITE = "usapp-integrity-v2"
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


_RESYNC_INPUT_KEYS = ("meter_key", "utility_key", "meter", "records", "backup_size", "boot_before", "later", "time",
                      "resync")


def _records_of(v: Mapping[str, Any], name: str) -> list[tuple[int, list[int]]]:
    return _records({"records": list_field(v, name)})


def _resync_outputs(v: Mapping[str, Any]) -> dict:
    meter_id, time = bytes_field(v, "meter"), small_int_field(v, "time")
    utility = ig.Utility(ig.UtilityState(bytes_field(v, "utility_key")))
    meter = ig.Meter(ig.MeterState(meter_id, bytes_field(v, "meter_key"), utility.public_key))
    utility.register(meter_id, meter.public_key)
    records, later = _records(v), _records_of(v, "later")
    backup_size = small_int_field(v, "backup_size")
    if not 1 <= backup_size <= len(records) or not later:
        raise VectorMismatchError("need 1 <= backup_size <= len(records) and at least one later record")
    backup = None
    for count, (period, registers) in enumerate(records, start=1):
        meter.receipt(utility.accept(meter.record(period, registers), time))
        if count == backup_size:
            meter.check(utility.feedback(meter_id, 0, time))
            backup = copy.deepcopy(meter.state)
    restored = ig.Meter.restore(backup, ig.BootCounter(small_int_field(v, "boot_before")))
    first = restored.record(*later[0])
    try:
        utility.accept(first, time)
        refused = "none"
    except ReplayError:
        refused = "ReplayError"
    out: dict[str, Any] = {"boot": restored.state.boot, "first_later": first.hex(), "first_refused": refused}
    if v.get("resync") is True:
        since = restored.state.checked.size
        y = utility.feedback(meter_id, since, time)
        head = utility.tree_head(meter_id, time)
        inclusions = [utility.inclusion(meter_id, i, head.size).hex() for i in range(backup_size, head.size)]
        result = ig.resync(restored, utility, time)
        for data in result.resigned:
            restored.receipt(utility.accept(data, time))
        for period, registers in later[1:]:
            restored.receipt(utility.accept(restored.record(period, registers), time))
        final = utility.feedback(meter_id, restored.state.checked.size, time)
        out.update({"y": y.hex(), "inclusions": inclusions, "adopted": result.adopted,
                    "resigned": [r.hex() for r in result.resigned], "superseded": result.superseded,
                    "final_feedback": final.hex(), "final_match": restored.check(final).match})
    elif v.get("resync") is False:
        for period, registers in later[1:]:
            restored.record(period, registers)
        verdict = ig.arbitrate(restored.public_key, utility.public_key, meter_id,
                               [r.to_bytes() for r in restored.state.records],
                               [h.to_bytes() for h in restored.state.receipts],
                               utility.tree_head(meter_id, time).to_bytes(),
                               [r.to_bytes() for r in utility.state.records[meter_id]])
        out["verdict"] = {"party": verdict.party, "kind": verdict.kind, "index": verdict.index,
                          "period": verdict.period}
    else:
        raise VectorMismatchError("field 'resync' must be true or false")
    return out


def _resync(v: Mapping[str, Any]) -> None:
    expect_outputs(v, recompute("resync", lambda: _resync_outputs(v)), (*_RESYNC_INPUT_KEYS, "operation", "name"))


OPERATIONS = {"run": _run, "resync": _resync}


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


def _resync_case(name: str, n: int, backup_size: int, n_later: int, resync: bool) -> dict:
    import hashlib
    seed = hashlib.sha256(b"usapp-vectors/integrity/" + name.encode()).digest()
    records, totals = [], [0, 0]
    for i in range(n + n_later):
        totals = [totals[0] + 137 * (i % 5 + 1), totals[1] + 41 * (i % 3)]
        records.append({"period": 1_767_225_600 + 1800 * i, "registers": list(totals)})
    v: dict[str, Any] = {
        "operation": "resync", "name": name,
        "meter_key": hashlib.sha256(seed + b"meter").hexdigest(),
        "utility_key": hashlib.sha256(seed + b"utility").hexdigest(),
        "meter": b"SM-000123".hex(), "records": records[:n], "backup_size": backup_size, "boot_before": 0,
        "later": records[n:], "time": 1_767_312_000, "resync": resync,
    }
    v.update(_resync_outputs(v))
    return v


def build() -> dict:
    vectors = [
        _case("eleven-records-three-checks", 11, [3, 7, 11], "none", 0, 5),
        _case("altered-record", 9, [9], "altered", 4, 0),
        _case("dropped-record", 9, [9], "dropped", 2, 8),
        _case("inserted-record", 8, [8], "inserted", 6, 3),
        _case("reordered-records", 8, [4, 8], "reordered", 5, 7),
        _resync_case("restored-meter-resyncs", 10, 5, 3, True),
        _resync_case("restored-meter-lost-state-verdict", 10, 5, 3, False),
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
            "and the index and period the meter's check and bisection name. Operation 'resync' (spec 9): records (all "
            "accepted), backup_size (the meter's state is saved, with a check of Y, after that many), boot_before "
            "(the durable boot counter before the restore), later (records the restored meter signs), resync (true: "
            "the meter resyncs after its first later record is refused; false: it keeps signing and the arbiter "
            "decides). Outputs: boot, first_later, first_refused, and either y, inclusions (index backup_size .. "
            "size - 1 under the head of the same time), adopted, resigned, superseded, final_feedback and "
            "final_match, or the verdict (party, kind, index, period)."),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
