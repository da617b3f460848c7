"""Vector family ``integrity``: billing logs, their feedback, disputes and refusals (specs/integrity.md
section 12; field list in vectors/README.md and vectors/schema/integrity.json).

Operations:

* ``run``: a meter's records, the utility's receipts, Y at the sizes in ``checks``, an inclusion message,
  and, when ``tamper`` names a change the utility makes to its log, the Y of the tampered log and the
  meter's bisection (every probe and its decision).  ``steps`` is the per-role transcript (spec 12.2).
* ``dispute``: one side changes its evidence; the arbiter's verdict (spec 8).
* ``refuse``: an invalid message given to one role's step; the spec's error name (``result`` "invalid").
* ``resync``: a meter restored from a backup (spec 9); ``steps`` is the per-role transcript (meter, utility,
  arbiter) of the restore, the refused record, the resync (Y, probe, inclusions, adoption, re-signed records)
  and what follows (spec 12.2).
* ``resync-refuse``: a restore, a resync given the utility's ``answers`` or the utility's accept around a
  resync, refused with the spec's error name (``result`` "invalid").

Ed25519 signatures are deterministic and the keys are inputs, so nothing is drawn.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import integrity as ig
from protocols.errors import ReplayError, VectorMismatchError
from protocols.primitives import cbor
from protocols.schemes import merkle
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    UINT32,
    UINT64,
    bytes_field,
    dispatch,
    field,
    expect_outputs,
    expect_refusal,
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
_META = ("operation", "name", "result", "flags", "error", "comment")


def _records(v: Mapping[str, Any], name: str = "records") -> list[tuple[int, list[int]]]:
    out = []
    for i, item in enumerate(list_field(v, name, max_items=64)):
        if not isinstance(item, dict):
            raise VectorMismatchError(f"{name}[{i}] must be an object")
        registers = list_field(item, "registers", max_items=64)
        if any(type(r) is not int for r in registers):
            raise VectorMismatchError(f"{name}[{i}].registers must be integers")
        out.append((small_int_field(item, "period", low=0, high=UINT64), registers))
    if not 1 <= len(out) <= 64:
        raise VectorMismatchError(f"field {name!r}: 1 to 64 records")
    return out


def _root(log: merkle.MerkleLog, size: int | None = None) -> str:
    size = log.size if size is None else size
    return log.root(size).hex() if size else merkle.empty_root().hex()


def _parties(v: Mapping[str, Any]) -> tuple[bytes, int, ig.Utility, ig.Meter]:
    meter_id, time = bytes_field(v, "meter", max_len=1024), small_int_field(v, "time", low=0, high=UINT64)
    utility = ig.Utility(ig.UtilityState(bytes_field(v, "utility_key", size=32)))
    meter = ig.Meter(ig.MeterState(meter_id, bytes_field(v, "meter_key", size=32), utility.public_key))
    utility.register(meter_id, meter.public_key)
    return meter_id, time, utility, meter


def _checked(meter: ig.Meter) -> ig.TreeHead:
    """The meter's last checked head (spec 5.2); the vectors' runs always have one where this is read."""
    head = meter.state.checked
    if head is None:
        raise VectorMismatchError("the meter has checked no head")
    return head


def _head_parts(y: bytes) -> tuple[bytes, list[bytes]]:
    m = cbor.decode(y)
    return m[3], m[5]


class _Transcript:
    """The per-role steps of spec 12.2, built while the real classes run."""

    def __init__(self, meter: ig.Meter, utility: ig.Utility) -> None:
        self.meter, self.utility = meter, utility
        self.steps: list[dict] = []

    def _meter_state(self) -> dict:
        st = self.meter.state
        return {"size": st.log.size, "root": _root(st.log), "checked_size": st.checked.size if st.checked else None}

    def _utility_state(self) -> dict:
        log = self.utility.state.logs[self.meter.state.meter]
        return {"size": log.size, "root": _root(log)}

    def record(self, period: int, registers: list[int]) -> bytes:
        before = self._meter_state()
        data = self.meter.record(period, registers)
        rec = self.meter.state.records[-1]
        self.steps.append({"role": "meter", "action": "record", "state_before": before,
                           "input": {"period": period, "registers": list(registers)},
                           "intermediates": {"counter": rec.counter, "boot": rec.boot,
                                             "tbs": ig.record_tbs(rec.body()).hex(),
                                             "leaf_hash": merkle.leaf_hash(data).hex()},
                           "output": data.hex(), "state_after": self._meter_state()})
        return data

    def accept(self, data: bytes, time: int) -> bytes:
        before = self._utility_state()
        receipt = self.utility.accept(data, time)
        self.steps.append({"role": "utility", "action": "accept", "state_before": before, "input": data.hex(),
                           "output": receipt.hex(), "state_after": self._utility_state()})
        return receipt

    def receipt(self, data: bytes) -> None:
        before = len(self.meter.state.receipts)
        self.meter.receipt(data)
        self.steps.append({"role": "meter", "action": "receipt", "state_before": {"receipts": before},
                           "input": data.hex(), "output": "kept",
                           "state_after": {"receipts": len(self.meter.state.receipts)}})

    def feedback(self, since: int, time: int) -> bytes:
        y = self.utility.feedback(self.meter.state.meter, since, time)
        head, proof = _head_parts(y)
        self.steps.append({"role": "utility", "action": "feedback", "state_before": self._utility_state(),
                           "input": {"since": since, "time": time},
                           "intermediates": {"head": head.hex(), "proof": [h.hex() for h in proof]},
                           "output": y.hex(), "state_after": self._utility_state()})
        return y

    def check(self, y: bytes) -> ig.Finding:
        before = self._meter_state()
        finding = self.meter.check(y)
        self.steps.append({"role": "meter", "action": "check", "state_before": before, "input": y.hex(),
                           "output": {"match": finding.match, "index": finding.index, "period": finding.period},
                           "state_after": self._meter_state()})
        return finding

    def probe(self, size: int, head: ig.TreeHead, good: int, bad: int) -> bool:
        data = self.utility.probe(self.meter.state.meter, size, head.size)
        m = cbor.decode(data)
        self.steps.append({"role": "utility", "action": "probe", "state_before": self._utility_state(),
                           "input": {"size": size, "head_size": head.size},
                           "intermediates": {"root": m[5].hex(), "proof": [h.hex() for h in m[6]]},
                           "output": data.hex(), "state_after": self._utility_state()})
        agree = self.meter.check_probe(data, head)
        own = self.meter.state.log
        new_good, new_bad = (size, bad) if agree else (good, size)
        self.steps.append({"role": "meter", "action": "check-probe",
                           "state_before": {"good": good, "bad": bad, "head": head.to_bytes().hex()},
                           "input": data.hex(),
                           "intermediates": {"own_root": _root(own, size) if size <= own.size else None},
                           "output": {"agree": agree}, "state_after": {"good": new_good, "bad": new_bad}})
        return agree

    def locate(self, head: ig.TreeHead) -> tuple[int | None, int | None]:
        """Spec 6.2, step by step, as :func:`protocols.integrity.locate` does it (and checked against it)."""
        own = self.meter.state.log.size
        good, bad = 0, head.size
        result: tuple[int | None, int | None]
        if head.size <= own and self.probe(head.size, head, 0, head.size):
            result = (None, None) if head.size == own else (head.size, self.meter.state.records[head.size].period)
        else:
            while bad - good > 1:
                middle = (good + bad) // 2
                if self.probe(middle, head, good, bad):
                    good = middle
                else:
                    bad = middle
            index = bad - 1
            result = (index, self.meter.state.records[index].period if index < own else None)
        finding = ig.locate(self.meter, self.utility, head)
        if (finding.index, finding.period) != result:
            raise VectorMismatchError("the transcript's bisection differs from protocols.integrity.locate")
        self.steps.append({"role": "meter", "action": "locate", "state_before": {"good": 0, "bad": head.size},
                           "input": head.to_bytes().hex(), "output": {"index": result[0], "period": result[1]},
                           "state_after": {"good": good, "bad": bad}})
        return result

    def inclusion(self, index: int, head: ig.TreeHead) -> bytes:
        data = self.utility.inclusion(self.meter.state.meter, index, head.size)
        m = cbor.decode(data)
        self.steps.append({"role": "utility", "action": "inclusion", "state_before": self._utility_state(),
                           "input": {"index": index, "head_size": head.size},
                           "intermediates": {"leaf_hash": merkle.leaf_hash(m[5]).hex(),
                                             "proof": [h.hex() for h in m[6]]},
                           "output": data.hex(), "state_after": self._utility_state()})
        record = self.meter.check_inclusion(data, head)
        self.steps.append({"role": "meter", "action": "check-inclusion",
                           "state_before": {"head": head.to_bytes().hex()}, "input": data.hex(),
                           "output": record.to_bytes().hex(), "state_after": self._meter_state()})
        return data


def _honest(v: Mapping[str, Any], t: _Transcript, time: int, checks: list[int]) -> list[dict]:
    feedback = []
    for count, (period, registers) in enumerate(_records(v), start=1):
        t.receipt(t.accept(t.record(period, registers), time))
        if count in checks:
            since = t.meter.state.checked.size if t.meter.state.checked else 0
            y = t.feedback(since, time)
            feedback.append({"size": count, "since": since, "y": y.hex(), "match": t.check(y).match})
    return feedback


def _outputs(v: Mapping[str, Any]) -> dict:
    meter_id, time, utility, meter = _parties(v)
    checks = [small_int_field({"c": c}, "c", low=0, high=64) for c in list_field(v, "checks", max_items=64)]
    n = len(_records(v))
    if not checks or checks[-1] != n:
        raise VectorMismatchError("field 'checks' must end with the number of records")
    t = _Transcript(meter, utility)
    out: dict[str, Any] = {"meter_public": meter.public_key.hex(), "utility_public": utility.public_key.hex()}
    feedback = _honest(v, t, time, checks)
    out["accepted"] = [r.to_bytes().hex() for r in meter.state.records]
    out["receipts"] = [h.to_bytes().hex() for h in meter.state.receipts]
    out["feedback"] = feedback
    index = small_int_field(v, "inclusion_index", low=0, high=64)
    if not 0 <= index < n:
        raise VectorMismatchError("field 'inclusion_index' is outside the log")
    head = _checked(meter)                                      # spec 7: the last head the meter checked
    out["inclusion_head"] = head.to_bytes().hex()
    out["inclusion"] = t.inclusion(index, head).hex()
    out["root"] = head.root.hex()
    tamper = str_field(v, "tamper")
    if tamper != "none":
        out["tampered"] = _tampered(v, meter, utility, tamper, time)
    out["steps"] = t.steps
    return out


def _tamper_leaves(records: list[ig.Record], tamper: str, i: int) -> list[bytes]:
    leaves = [r.to_bytes() for r in records]
    if not 0 <= i < len(leaves) - (1 if tamper == "reordered" else 0):
        raise VectorMismatchError("field 'tamper_index' is outside the log")
    if tamper == "altered":
        r = records[i]
        leaves[i] = ig.Record(r.meter, r.period, r.counter, (r.registers[0] + 1,) + r.registers[1:],
                              r.signature, r.boot).to_bytes()
    elif tamper == "dropped":
        del leaves[i]
    elif tamper == "inserted":
        leaves.insert(i, records[i].to_bytes())
    elif tamper == "reordered":
        leaves[i], leaves[i + 1] = leaves[i + 1], leaves[i]
    else:
        raise VectorMismatchError(f"field 'tamper': unknown change {tamper!r}")
    return leaves


def _tampered(v: Mapping[str, Any], meter: ig.Meter, utility: ig.Utility, tamper: str, time: int) -> dict:
    leaves = _tamper_leaves(utility.state.records[meter.state.meter], tamper, small_int_field(v, "tamper_index", low=0, high=64))
    utility.state.logs[meter.state.meter] = merkle.MerkleLog.from_entries(leaves)
    utility.state.records[meter.state.meter] = [ig.decode_record(leaf) for leaf in leaves]
    # Spec 12.2 (I1): the tampered log is checked by a meter holding the same records and no checked head,
    # so it asks for Y from size 0 (proof empty).
    fresh = ig.Meter(ig.MeterState(meter.state.meter, meter.state.device_key, meter.state.utility_public,
                                   list(meter.state.records), meter.state.log))
    t = _Transcript(fresh, utility)
    y = t.feedback(0, time)
    finding = t.check(y)
    index, period = finding.index, finding.period
    if index is None:
        index, period = t.locate(_checked(fresh))
    asked = [s["input"]["size"] for s in t.steps if s["action"] == "probe"]
    checked = [s for s in t.steps if s["action"] == "check-probe"]
    probes = [{"size": size, "agree": s["output"]["agree"], "good": s["state_after"]["good"],
               "bad": s["state_after"]["bad"]} for size, s in zip(asked, checked)]
    return {"size": len(leaves), "since": 0, "y": y.hex(), "match": finding.match, "index": index,
            "period": period, "probes": probes, "steps": t.steps}


def _run(v: Mapping[str, Any]) -> None:
    expect_outputs(v, recompute("run", lambda: _outputs(v)), (*_INPUT_KEYS, *_META))


# -- disputes (spec 8) -------------------------------------------------------------------------------------

_DISPUTE_INPUT_KEYS = ("meter_key", "utility_key", "meter", "records", "time", "change", "change_index", "extra")
_CHANGES = ("none", "utility-altered", "utility-reordered", "utility-truncated", "meter-double-signed",
            "meter-omitted", "meter-unacknowledged", "utility-records-not-under-head", "meter-record-unsigned")


def _evidence(v: Mapping[str, Any]) -> dict:
    meter_id, time, utility, meter = _parties(v)
    records = _records(v)
    for period, registers in records:
        meter.receipt(utility.accept(meter.record(period, registers), time))
    change, i = str_field(v, "change"), small_int_field(v, "change_index", low=0, high=64)
    extra = small_int_field(v, "extra", low=0, high=8)
    if change not in _CHANGES or not 0 <= i < len(records) - 1 or not 0 <= extra <= 8:
        raise VectorMismatchError("fields 'change', 'change_index' or 'extra' out of range")
    mine = [r.to_bytes() for r in meter.state.records]
    receipts = [h.to_bytes() for h in meter.state.receipts]
    theirs = [r.to_bytes() for r in utility.state.records[meter_id]]
    key = Ed25519PrivateKey.from_private_bytes(bytes_field(v, "meter_key", size=32))
    last_period, last_registers = records[-1]
    if change in ("utility-altered", "utility-reordered"):
        theirs = _tamper_leaves(utility.state.records[meter_id], change.split("-")[1], i)
    elif change == "utility-truncated":
        theirs = theirs[:i + 1]
    elif change == "meter-double-signed":
        r = meter.state.records[i]
        mine[i] = ig.encode_record(key, meter_id, r.period, r.counter, [r.registers[0] + 1, *r.registers[1:]],
                                   r.boot).to_bytes()
        receipts = receipts[:i]
    elif change == "meter-omitted":
        mine, receipts = mine[:i + 1], receipts[:i + 1]
    elif change == "meter-unacknowledged":
        for k in range(1, extra + 1):
            mine.append(meter.record(last_period + 1800 * k, [x + k for x in last_registers]))
    elif change == "utility-records-not-under-head":
        theirs = theirs[:-1]
    elif change == "meter-record-unsigned":
        r = meter.state.records[i]
        mine[i] = ig.Record(r.meter, r.period, r.counter, r.registers, bytes(64), r.boot).to_bytes()
    head = utility.tree_head(meter_id, time).to_bytes()
    if change in ("utility-altered", "utility-reordered", "utility-truncated"):   # the utility signs its log
        head = head_over(bytes_field(v, "utility_key", size=32), meter_id, theirs, time)
    return {"meter_public": meter.public_key.hex(), "utility_public": utility.public_key.hex(),
            "meter_records": [r.hex() for r in mine], "meter_receipts": [r.hex() for r in receipts],
            "utility_head": head.hex(), "utility_records": [r.hex() for r in theirs]}


def head_over(utility_key: bytes, meter_id: bytes, leaves: list[bytes], time: int) -> bytes:
    """The tree head a utility with this key signs when its log holds exactly ``leaves`` (spec 4.2)."""
    utility = ig.Utility(ig.UtilityState(utility_key))
    utility.state.logs[meter_id] = merkle.MerkleLog.from_entries(leaves)
    return utility.tree_head(meter_id, time).to_bytes()


def _arbitrate(v: Mapping[str, Any], evidence: Mapping[str, Any]) -> ig.Verdict:
    return ig.arbitrate(bytes.fromhex(evidence["meter_public"]), bytes.fromhex(evidence["utility_public"]),
                        bytes_field(v, "meter"), [bytes.fromhex(r) for r in evidence["meter_records"]],
                        [bytes.fromhex(r) for r in evidence["meter_receipts"]],
                        bytes.fromhex(evidence["utility_head"]),
                        [bytes.fromhex(r) for r in evidence["utility_records"]])


def _dispute_outputs(v: Mapping[str, Any]) -> dict:
    evidence = _evidence(v)
    out: dict[str, Any] = dict(evidence)
    if v.get("result", "valid") == "invalid":
        return out
    verdict = _arbitrate(v, evidence)
    out["verdict"] = {"party": verdict.party, "kind": verdict.kind, "index": verdict.index,
                      "period": verdict.period}
    return out


def _dispute(v: Mapping[str, Any]) -> None:
    outputs = recompute("dispute", lambda: _dispute_outputs(v))
    expect_outputs(v, outputs, (*_DISPUTE_INPUT_KEYS, *_META))
    if v.get("result", "valid") == "invalid":
        expect_refusal(v, lambda: _arbitrate(v, outputs))


# -- refusals of the meter's and the utility's steps (Wycheproof style) --------------------------------------

_REFUSE_INPUT_KEYS = ("meter_key", "utility_key", "meter", "records", "time", "checked", "step", "input")
_STEPS = ("accept", "receipt", "check", "check-probe", "check-inclusion")


def _honest_state(v: Mapping[str, Any]) -> tuple[ig.Meter, ig.Utility, int]:
    meter_id, time, utility, meter = _parties(v)
    checked = small_int_field(v, "checked", low=0, high=64)
    records = _records(v)
    if not 0 <= checked <= len(records):
        raise VectorMismatchError("field 'checked' is outside the log")
    for count, (period, registers) in enumerate(records, start=1):
        meter.receipt(utility.accept(meter.record(period, registers), time))
        if count == checked:
            meter.check(utility.feedback(meter_id, 0, time))
    return meter, utility, time


def _refuse_step(v: Mapping[str, Any]) -> None:
    meter, utility, time = _honest_state(v)
    step, data = str_field(v, "step"), bytes_field(v, "input")
    if step == "accept":
        utility.accept(data, time)
    elif step == "receipt":
        meter.receipt(data)
    elif step == "check":
        meter.check(data)
    elif step in ("check-probe", "check-inclusion"):
        if meter.state.checked is None:
            raise VectorMismatchError("field 'checked': a probe or inclusion needs a checked head")
        (meter.check_probe if step == "check-probe" else meter.check_inclusion)(data, meter.state.checked)
    else:
        raise VectorMismatchError(f"field 'step': unknown step {step!r}")


def _refuse(v: Mapping[str, Any]) -> None:
    expect_outputs(v, {}, (*_REFUSE_INPUT_KEYS, *_META))
    if v.get("result") != "invalid":
        raise VectorMismatchError("field 'result': a refuse vector is invalid")
    expect_refusal(v, lambda: _refuse_step(v))


# -- resync (spec 9) -----------------------------------------------------------------------------------------

_RESYNC_INPUT_KEYS = ("meter_key", "utility_key", "meter", "records", "backup_size", "boot_before", "later", "time",
                      "resync")


class _ResyncTranscript(_Transcript):
    """The per-role steps of a restore and resync (spec 12.2): the meter's state also holds its receipts,
    its boot and ``restored_at``."""

    def _meter_state(self) -> dict:
        st = self.meter.state
        return {**super()._meter_state(), "receipts": len(st.receipts), "boot": st.boot,
                "restored_at": st.restored_at}

    def restore(self, backup: ig.MeterState, boot_before: int) -> ig.Meter:
        self.meter = ig.Meter(backup)
        before = {**self._meter_state(), "boot_counter": boot_before}
        counter = ig.BootCounter(boot_before)
        self.meter = ig.Meter.restore(backup, counter)
        self.steps.append({"role": "meter", "action": "restore", "state_before": before,
                           "input": {"boot_counter": boot_before}, "output": {"boot": self.meter.state.boot},
                           "state_after": {**self._meter_state(), "boot_counter": counter.value}})
        return self.meter

    def refused(self, data: bytes, time: int) -> str:
        before = self._utility_state()
        try:
            self.utility.accept(data, time)
        except ReplayError:
            self.steps.append({"role": "utility", "action": "accept", "state_before": before, "input": data.hex(),
                               "output": {"error": "ReplayError"}, "state_after": self._utility_state()})
            return "ReplayError"
        return "none"

    def resync(self, time: int) -> ig.Resync:
        """Spec 9.2 step by step on a copy of the meter (steps 1 to 3), then :func:`protocols.integrity.resync`
        on the meter itself, checked against the copy; the adoption and each re-signed record are steps."""
        real, st = self.meter, self.meter.state
        base = st.restored_at
        if base is None or st.checked is None:
            raise VectorMismatchError("resync: the vectors restore a backup that checked a head")
        self.meter = ig.Meter(copy.deepcopy(st))
        self.check(self.feedback(st.checked.size, time))                              # step 1
        head = self.meter.state.checked
        if head is None:
            raise VectorMismatchError("resync: no head after the check")
        common = min(base, head.size)
        if common:                                                                    # step 2
            self.extends(common, head)
        records = [self.meter.check_inclusion(self.inclusion_message(i, head), head).to_bytes()
                   for i in range(base, head.size)]                                   # step 3
        before = self._meter_state()                                  # after the checks, before adopting
        self.meter = real
        result = ig.resync(real, self.utility, time)
        if result.head != head or [r.to_bytes() for r in st.records[base:head.size]] != records:
            raise VectorMismatchError("the transcript's resync differs from protocols.integrity.resync")
        size = head.size if head.size > base else len(st.records) - len(result.resigned)
        adopted_state = {**self._meter_state(), "size": size, "root": _root(st.log, size)}
        self.steps.append({"role": "meter", "action": "adopt", "state_before": before, "input": head.to_bytes().hex(),
                           "intermediates": {"records_root": _root(st.log, size)},
                           "output": {"adopted": result.adopted, "superseded": result.superseded},
                           "state_after": adopted_state})
        for k, data in enumerate(result.resigned):                                    # step 4
            rec = ig.decode_record(data)
            self.steps.append({"role": "meter", "action": "resign",
                               "state_before": {**adopted_state, "size": size + k, "root": _root(st.log, size + k)},
                               "input": {"period": rec.period, "registers": list(rec.registers)},
                               "intermediates": {"counter": rec.counter, "boot": rec.boot,
                                                 "tbs": ig.record_tbs(rec.body()).hex(),
                                                 "leaf_hash": merkle.leaf_hash(data).hex()},
                               "output": data.hex(),
                               "state_after": {**adopted_state, "size": size + k + 1,
                                               "root": _root(st.log, size + k + 1)}})
        return result

    def extends(self, size: int, head: ig.TreeHead) -> None:
        """Spec 9.2 step 2: the probe at c = min(b, n) MUST give the meter's own root."""
        data = self.utility.probe(self.meter.state.meter, size, head.size)
        m = cbor.decode(data)
        self.steps.append({"role": "utility", "action": "probe", "state_before": self._utility_state(),
                           "input": {"size": size, "head_size": head.size},
                           "intermediates": {"root": m[5].hex(), "proof": [h.hex() for h in m[6]]},
                           "output": data.hex(), "state_after": self._utility_state()})
        before = self._meter_state()
        agree = self.meter.check_probe(data, head)
        self.steps.append({"role": "meter", "action": "check-probe", "state_before": {**before, "head": head.to_bytes().hex()},
                           "input": data.hex(), "intermediates": {"own_root": _root(self.meter.state.log, size)},
                           "output": {"agree": agree}, "state_after": self._meter_state()})

    def inclusion_message(self, index: int, head: ig.TreeHead) -> bytes:
        data = self.utility.inclusion(self.meter.state.meter, index, head.size)
        m = cbor.decode(data)
        self.steps.append({"role": "utility", "action": "inclusion", "state_before": self._utility_state(),
                           "input": {"index": index, "head_size": head.size},
                           "intermediates": {"leaf_hash": merkle.leaf_hash(m[5]).hex(),
                                             "proof": [h.hex() for h in m[6]]},
                           "output": data.hex(), "state_after": self._utility_state()})
        before = self._meter_state()
        record = self.meter.check_inclusion(data, head)
        self.steps.append({"role": "meter", "action": "check-inclusion",
                           "state_before": {**before, "head": head.to_bytes().hex()}, "input": data.hex(),
                           "output": record.to_bytes().hex(), "state_after": self._meter_state()})
        return data

    def arbitrate(self, evidence: dict, meter_id: bytes) -> ig.Verdict:
        verdict = ig.arbitrate(bytes.fromhex(evidence["meter_public"]), bytes.fromhex(evidence["utility_public"]),
                               meter_id, [bytes.fromhex(r) for r in evidence["meter_records"]],
                               [bytes.fromhex(r) for r in evidence["meter_receipts"]],
                               bytes.fromhex(evidence["utility_head"]),
                               [bytes.fromhex(r) for r in evidence["utility_records"]])
        self.steps.append({"role": "arbiter", "action": "arbitrate", "input": evidence,
                           "output": {"party": verdict.party, "kind": verdict.kind, "index": verdict.index,
                                      "period": verdict.period}})
        return verdict


def _history_backup(meter: ig.Meter, utility: ig.Utility, records: list[tuple[int, list[int]]], time: int,
                    backup_size: int, backup_checked: int) -> ig.MeterState:
    """Spec 12.1 (resync): every record accepted and its receipt kept; Y from 0 checked after
    ``backup_checked`` records (0: never); the state saved after ``backup_size``."""
    if not 0 <= backup_checked <= backup_size <= len(records) or backup_size < 1:
        raise VectorMismatchError("need 0 <= backup_checked <= backup_size <= len(records), backup_size >= 1")
    backup = None
    for count, (period, registers) in enumerate(records, start=1):
        meter.receipt(utility.accept(meter.record(period, registers), time))
        if count == backup_checked:
            meter.check(utility.feedback(meter.state.meter, 0, time))
        if count == backup_size:
            backup = copy.deepcopy(meter.state)
    if backup is None:
        raise VectorMismatchError("no backup")
    return backup


def _resync_outputs(v: Mapping[str, Any]) -> dict:
    meter_id, time, utility, meter = _parties(v)
    records, later = _records(v), _records(v, "later")
    backup_size = small_int_field(v, "backup_size", low=1, high=64)
    if not later:
        raise VectorMismatchError("need at least one later record")
    backup = _history_backup(meter, utility, records, time, backup_size, backup_size)
    t = _ResyncTranscript(meter, utility)
    restored = t.restore(backup, small_int_field(v, "boot_before", low=0, high=UINT32))
    first = t.record(*later[0])
    refused = t.refused(first, time)
    out: dict[str, Any] = {"boot": restored.state.boot, "first_later": first.hex(), "first_refused": refused}
    if v.get("resync") is True:
        since = restored.state.checked.size if restored.state.checked else 0
        y = utility.feedback(meter_id, since, time)
        head = utility.tree_head(meter_id, time)
        inclusions = [utility.inclusion(meter_id, i, head.size).hex() for i in range(backup_size, head.size)]
        result = t.resync(time)
        for data in result.resigned:
            t.receipt(t.accept(data, time))
        for period, registers in later[1:]:
            t.receipt(t.accept(t.record(period, registers), time))
        checked = restored.state.checked.size if restored.state.checked else 0
        final = t.feedback(checked, time)
        out.update({"y": y.hex(), "inclusions": inclusions, "adopted": result.adopted,
                    "resigned": [r.hex() for r in result.resigned], "superseded": result.superseded,
                    "final_feedback": final.hex(), "final_match": t.check(final).match})
    elif v.get("resync") is False:
        for period, registers in later[1:]:
            t.record(period, registers)
        evidence = {"meter_public": restored.public_key.hex(), "utility_public": utility.public_key.hex(),
                    "meter_records": [r.to_bytes().hex() for r in restored.state.records],
                    "meter_receipts": [h.to_bytes().hex() for h in restored.state.receipts],
                    "utility_head": utility.tree_head(meter_id, time).to_bytes().hex(),
                    "utility_records": [r.to_bytes().hex() for r in utility.state.records[meter_id]]}
        verdict = t.arbitrate(evidence, meter_id)
        out["verdict"] = {"party": verdict.party, "kind": verdict.kind, "index": verdict.index,
                          "period": verdict.period}
    else:
        raise VectorMismatchError("field 'resync' must be true or false")
    out["steps"] = t.steps
    return out


def _resync(v: Mapping[str, Any]) -> None:
    expect_outputs(v, recompute("resync", lambda: _resync_outputs(v)), (*_RESYNC_INPUT_KEYS, *_META))


# -- refusals of the restore and resync steps (spec 9; Wycheproof style) ---------------------------------------

_RESYNC_REFUSE_INPUT_KEYS = ("meter_key", "utility_key", "meter", "records", "backup_size", "backup_checked",
                             "boot_before", "later", "time", "step", "input", "answers")
_RESYNC_STEPS = ("restore", "resync-unrestored", "accept-before-resync", "resync", "accept-after-resync")


class _Answers(ig.Utility):
    """Spec 12.1 (resync-refuse, step "resync"): the utility's answers to the restored meter, given in
    the vector, returned in the order the meter asks (Y, the probe, the inclusion messages)."""

    def __init__(self, state: ig.UtilityState, answers: Mapping[str, Any]) -> None:
        super().__init__(state)
        self.y = bytes_field(answers, "y")
        self.probe_message = None if answers.get("probe") is None else bytes_field(answers, "probe")
        self.inclusions = [bytes_field({"i": h}, "i") for h in list_field(answers, "inclusions")]

    def feedback(self, meter: bytes, since: int, now: int) -> bytes:
        return self.y

    def probe(self, meter: bytes, size: int, head_size: int) -> bytes:
        if self.probe_message is None:
            raise VectorMismatchError("field 'answers.probe': the meter asks for a probe")
        return self.probe_message

    def inclusion(self, meter: bytes, index: int, head_size: int) -> bytes:
        if not self.inclusions:
            raise VectorMismatchError("field 'answers.inclusions': the meter asks for another inclusion")
        return self.inclusions.pop(0)


def _resync_refuse_step(v: Mapping[str, Any]) -> None:
    meter_id, time, utility, meter = _parties(v)
    records, later = _records(v), _records(v, "later")
    backup = _history_backup(meter, utility, records, time, small_int_field(v, "backup_size", low=0, high=64),
                             small_int_field(v, "backup_checked", low=0, high=64))
    step = str_field(v, "step")
    if step not in _RESYNC_STEPS:
        raise VectorMismatchError(f"field 'step': unknown step {step!r}")
    if step == "resync-unrestored":
        ig.resync(meter, utility, time)
        return
    restored = ig.Meter.restore(backup, ig.BootCounter(small_int_field(v, "boot_before", low=0, high=UINT32)))
    if step == "restore":
        return
    restored.record(*later[0])
    if step == "accept-before-resync":
        utility.accept(bytes_field(v, "input"), time)
    elif step == "resync":
        answers = field(v, "answers")
        if not isinstance(answers, dict):
            raise VectorMismatchError("field 'answers' must be an object")
        ig.resync(restored, _Answers(utility.state, answers), time)
    else:
        for data in recompute("resync", lambda: ig.resync(restored, utility, time)).resigned:
            restored.receipt(utility.accept(data, time))
        utility.accept(bytes_field(v, "input"), time)


def _resync_refuse(v: Mapping[str, Any]) -> None:
    expect_outputs(v, {}, (*_RESYNC_REFUSE_INPUT_KEYS, *_META))
    if v.get("result") != "invalid":
        raise VectorMismatchError("field 'result': a resync-refuse vector is invalid")
    expect_refusal(v, lambda: _resync_refuse_step(v))


OPERATIONS = {"run": _run, "dispute": _dispute, "refuse": _refuse, "resync": _resync,
              "resync-refuse": _resync_refuse}


def verify_vector(vector: Mapping[str, Any]) -> None:
    result = vector.get("result", "valid")
    if result not in ("valid", "invalid"):
        raise VectorMismatchError("field 'result' must be 'valid' or 'invalid'")
    if (result == "invalid") != ("error" in vector):
        raise VectorMismatchError("field 'error' is given exactly for invalid vectors")
    for flag in vector.get("flags", []):
        if flag not in NOTES:
            raise VectorMismatchError(f"field 'flags': {flag!r} is not documented in the file's notes")
    dispatch(OPERATIONS, vector)


# -- generation ---------------------------------------------------------------------------------------------


def _history(name: str, n: int) -> dict:
    seed = hashlib.sha256(b"usapp-vectors/integrity/" + name.encode()).digest()
    records, totals = [], [0, 0]
    for i in range(n):
        totals = [totals[0] + 137 * (i % 5 + 1), totals[1] + 41 * (i % 3)]
        records.append({"period": 1_767_225_600 + 1800 * i, "registers": list(totals)})
    return {"meter_key": hashlib.sha256(seed + b"meter").hexdigest(),
            "utility_key": hashlib.sha256(seed + b"utility").hexdigest(),
            "meter": b"SM-000123".hex(), "records": records, "time": 1_767_312_000}


def _case(name: str, n: int, checks: list[int], tamper: str, tamper_index: int, inclusion_index: int) -> dict:
    v: dict[str, Any] = {"operation": "run", "name": name, **_history(name, n), "checks": checks,
                         "inclusion_index": inclusion_index, "tamper": tamper, "tamper_index": tamper_index}
    v.update(_outputs(v))
    return v


def _dispute_case(name: str, n: int, change: str, index: int, extra: int = 0, error: str | None = None,
                  flags: tuple[str, ...] = ()) -> dict:
    v: dict[str, Any] = {"operation": "dispute", "name": name, **_history(name, n), "change": change,
                         "change_index": index, "extra": extra}
    if error:
        v.update({"result": "invalid", "flags": list(flags), "error": error})
    v.update(_dispute_outputs(v))
    if error:
        expect_refusal(v, lambda: _arbitrate(v, v))
    return v


def _refusals() -> list[dict]:
    base = _history("refusals", 8)
    meter_id, time, utility, meter = _parties({**base})
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(base["meter_key"]))
    for period, registers in _records(base):
        meter.receipt(utility.accept(meter.record(period, registers), time))
    recs = meter.state.records
    last = recs[-1]
    nxt = (last.period + 1800, [x + 1 for x in last.registers])

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]

    def signed_head(leaves: list[bytes]) -> bytes:
        return head_over(bytes.fromhex(base["utility_key"]), meter_id, leaves, time)

    good_next = ig.encode_record(mkey, meter_id, nxt[0], 8, nxt[1]).to_bytes()
    y5 = utility.feedback(meter_id, 5, time)
    m = cbor.decode(y5)
    y5_bad_proof = cbor.encode({**m, 5: [flip(m[5][0], 0), *m[5][1:]]})
    y5_bad_sig = cbor.encode({**m, 3: flip(m[3], len(m[3]) - 1)})
    y5_wrong_since = cbor.encode({**m, 4: 4, 5: utility.state.logs[meter_id].consistency_proof(4, 8)})
    y_shrunk = cbor.encode({1: 2, 2: "feedback", 3: signed_head([r.to_bytes() for r in recs[:6]]), 4: 5, 5: []})
    other_log = [ig.encode_record(mkey, meter_id, r.period, r.counter, [x + 1 for x in r.registers]).to_bytes()
                 for r in recs]
    probe = cbor.decode(utility.probe(meter_id, 3, 8))
    inclusion = cbor.decode(utility.inclusion(meter_id, 2, 8))
    cases = [
        ("accept", 8, "tampered-record", "VerificationError", ["tampered"],
         ig.Record(meter_id, last.period, last.counter, (last.registers[0] + 1, *last.registers[1:]),
                   last.signature, last.boot).to_bytes(), "the last record with register 0 + 1, signature kept"),
        ("accept", 8, "bad-signature", "VerificationError", ["tampered", "bad-signature"],
         flip(good_next, len(good_next) - 1), "the next record with the last bit of its signature flipped"),
        ("accept", 8, "replayed-counter", "ReplayError", ["replay"], recs[5].to_bytes(),
         "record 5 sent again"),
        ("accept", 8, "counter-gap", "StateError", ["out-of-order"],
         ig.encode_record(mkey, meter_id, nxt[0], 9, nxt[1]).to_bytes(), "a valid record with counter 9, not 8"),
        ("accept", 8, "period-not-after", "StateError", ["out-of-order"],
         ig.encode_record(mkey, meter_id, last.period, 8, nxt[1]).to_bytes(),
         "a valid record 8 with the period of record 7"),
        ("accept", 8, "register-backwards", "StateError", ["out-of-order"],
         ig.encode_record(mkey, meter_id, nxt[0], 8, [last.registers[0] - 1, last.registers[1]]).to_bytes(),
         "a valid record 8 whose register 0 is below record 7's"),
        ("accept", 8, "truncated-record", "DecodeError", ["truncated"], good_next[:-1],
         "the next record without its last byte"),
        ("accept", 8, "trailing-bytes", "DecodeError", ["trailing"], good_next + b"\x00",
         "the next record with one 0x00 byte appended"),
        ("receipt", 8, "receipt-not-covering", "VerificationError", ["bad-proof"],
         signed_head(other_log),
         "a utility-signed head of size 8 over meter-signed records with every register + 1 (not the meter's log)"),
        ("check", 8, "shrunk-log", "VerificationError", ["shrunk-log"], y_shrunk,
         "a utility-signed Y of size 6 after the meter checked size 8"),
        ("check", 5, "bad-consistency-proof", "VerificationError", ["bad-proof"], y5_bad_proof,
         "Y from 5 to 8 with the first proof hash's first bit flipped"),
        ("check", 5, "bad-head-signature", "VerificationError", ["bad-signature"], y5_bad_sig,
         "Y whose tree head has the last bit of its signature flipped"),
        ("check", 5, "wrong-since", "DecodeError", ["wrong-size"], y5_wrong_since,
         "Y with a (valid) proof from size 4 while the meter last checked 5"),
        ("check-probe", 8, "bad-probe-proof", "VerificationError", ["bad-proof"],
         cbor.encode({**probe, 6: [flip(probe[6][0], 31), *probe[6][1:]]}),
         "a probe at size 3 under the head of size 8 with a proof hash's last bit flipped"),
        ("check-probe", 8, "probe-wrong-head-size", "DecodeError", ["wrong-size"],
         cbor.encode({**probe, 4: 7}), "a probe that names head size 7 under the head of size 8"),
        ("check-inclusion", 8, "bad-inclusion-proof", "VerificationError", ["bad-proof"],
         cbor.encode({**inclusion, 6: [flip(inclusion[6][0], 0), *inclusion[6][1:]]}),
         "the inclusion of record 2 under the head of size 8 with a proof hash's first bit flipped"),
        ("check-inclusion", 8, "inclusion-tampered-record", "VerificationError", ["tampered"],
         cbor.encode({**inclusion, 5: recs[3].to_bytes()}), "the inclusion of record 2 carrying record 3"),
        ("check-inclusion", 8, "inclusion-wrong-head-size", "DecodeError", ["wrong-size"],
         cbor.encode({**inclusion, 4: 9}), "an inclusion message that names head size 9 under the head of size 8"),
    ]
    out = []
    for step, checked, label, error, flags, data, comment in cases:
        v = {"operation": "refuse", "name": f"refuse-{label}", **base, "checked": checked, "step": step,
             "input": data.hex(), "result": "invalid", "flags": flags, "error": error, "comment": comment}
        _refuse(v)
        out.append(v)
    return out


def _resync_refusals() -> list[dict]:
    """Spec 12.3: every refusal of a restore (9.1), a resync (9.2) and the utility's accept around it."""
    base = {**_history("resync-refusals", 13)}
    records, later = base["records"][:10], base["records"][10:]
    base.update({"records": records, "later": later, "backup_size": 5, "backup_checked": 5, "boot_before": 0})
    meter_id, time, utility, meter = _parties(base)
    mkey = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(base["meter_key"]))
    ukey = bytes.fromhex(base["utility_key"])
    backup = _history_backup(meter, utility, _records(base), time, 5, 5)
    leaves = [r.to_bytes() for r in utility.state.records[meter_id]]
    recs = list(utility.state.records[meter_id])
    lp, lr = later[0]["period"], later[0]["registers"]

    def restored() -> ig.Meter:
        m = ig.Meter.restore(backup, ig.BootCounter(0))
        m.record(lp, lr)
        return m

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]

    def answers(log: list[bytes], since: int = 5, size: int = 5) -> dict:
        """The answers of a utility (this key) whose log is ``log``, to a meter restored at ``size``."""
        u = ig.Utility(ig.UtilityState(ukey))
        u.register(meter_id, meter.public_key)
        u.state.logs[meter_id] = merkle.MerkleLog.from_entries(log)
        n, tree = len(log), u.state.logs[meter_id]
        # spec 7.1's message, built from the leaf bytes (a leaf here need not decode as a record)
        inclusions = [cbor.encode({1: ig.VERSION, 2: "inclusion", 3: i, 4: n, 5: log[i],
                                   6: tree.inclusion_proof(i, n)}).hex() for i in range(size, n)]
        return {"y": u.feedback(meter_id, since, time).hex(),
                "probe": u.probe(meter_id, min(size, n), n).hex() if min(size, n) else None,
                "inclusions": inclusions}

    def signed(index: int, period: int, registers: list[int], boot: int = 0, meter: bytes = meter_id,
               counter: int | None = None) -> bytes:
        return ig.encode_record(mkey, meter, period, index if counter is None else counter, registers,
                                boot).to_bytes()

    honest = answers(leaves)
    y = cbor.decode(bytes.fromhex(honest["y"]))
    r5, r4 = recs[5], recs[4]
    forged5 = ig.Record(r5.meter, r5.period, r5.counter, (r5.registers[0] + 1, *r5.registers[1:]), r5.signature,
                        r5.boot).to_bytes()
    other_key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"usapp-vectors/integrity/not-the-meter").digest())
    unsigned5 = ig.encode_record(other_key, meter_id, r5.period, 5, list(r5.registers)).to_bytes()
    first_later = restored().state.records[-1].to_bytes()
    inc0 = cbor.decode(bytes.fromhex(honest["inclusions"][0]))
    stale = signed(11, later[1]["period"], later[1]["registers"], boot=0)
    r3 = recs[3]
    forged3 = ig.Record(r3.meter, r3.period, r3.counter, (r3.registers[0] + 1, *r3.registers[1:]), r3.signature,
                        r3.boot).to_bytes()
    cases: list[tuple[str, str, str, list[str], dict, str]] = [
        ("boot-counter-exhausted", "restore", "StateError", ["boot-exhausted"], {"boot_before": ig.MAX_BOOT},
         "the durable boot counter is at 2^32 - 1: the restore cannot bump it"),
        ("not-restored", "resync-unrestored", "StateError", ["not-restored"], {},
         "resync asked of the meter that was never restored"),
        ("replayed-before-resync", "accept-before-resync", "ReplayError", ["replay"], {"input": first_later.hex()},
         "the restored meter's first record (counter 5, boot 1) reaches the utility, which holds counter 5"),
        ("stale-boot-after-resync", "accept-after-resync", "StateError", ["stale-boot"], {"input": stale.hex()},
         "after the resync, a record with the next counter (11) and a later period signed in boot 0 (a boot "
         "counter restored with the state)"),
        ("y-bad-signature", "resync", "VerificationError", ["bad-signature"],
         {"answers": {**honest, "y": cbor.encode({**y, 3: flip(y[3], len(y[3]) - 1)}).hex()}},
         "Y whose tree head has the last bit of its signature flipped"),
        ("y-shrunk", "resync", "VerificationError", ["shrunk-log"],
         {"answers": {**honest, "y": cbor.encode({**y, 3: head_over(ukey, meter_id, leaves[:4], time), 4: 5,
                                                 5: []}).hex()}},
         "a utility-signed Y of size 4 to a meter whose backup checked size 5"),
        ("y-bad-proof", "resync", "VerificationError", ["bad-proof"],
         {"answers": {**honest, "y": cbor.encode({**y, 5: [flip(y[5][0], 0), *y[5][1:]]}).hex()}},
         "Y from 5 to 10 with the first proof hash's first bit flipped"),
        ("y-wrong-since", "resync", "DecodeError", ["wrong-size"],
         {"answers": {**honest, "y": cbor.encode({**y, 4: 4,
                                                 5: utility.state.logs[meter_id].consistency_proof(4, 10)}).hex()}},
         "Y with a (valid) proof from size 4 while the backup last checked 5"),
        ("log-does-not-extend-backup", "resync", "VerificationError", ["tampered"],
         {"backup_checked": 3, "answers": answers(leaves[:3] + [forged3] + leaves[4:], since=3)},
         "the backup checked size 3 and holds 5 records; the utility's log has record 3 with register 0 + 1 "
         "(signature kept): the probe at 5 disagrees"),
        ("bad-inclusion-proof", "resync", "VerificationError", ["bad-proof"],
         {"answers": {**honest, "inclusions": [cbor.encode({**inc0, 6: [flip(inc0[6][0], 0), *inc0[6][1:]]}).hex(),
                                               *honest["inclusions"][1:]]}},
         "the inclusion of record 5 with its first proof hash's first bit flipped"),
        ("undecodable-record", "resync", "DecodeError", ["truncated"],
         {"answers": answers(leaves[:5] + [leaves[5][:-1]] + leaves[6:])},
         "the utility's log holds record 5 without its last byte (its inclusion proof verifies)"),
        ("adopt-forged-record", "resync", "VerificationError", ["tampered"],
         {"answers": answers(leaves[:5] + [forged5] + leaves[6:])},
         "record 5 in the utility's log with register 0 + 1, signature kept"),
        ("adopt-not-meter-signed", "resync", "VerificationError", ["bad-signature"],
         {"answers": answers(leaves[:5] + [unsigned5] + leaves[6:])},
         "record 5 signed by another Ed25519 key (SHA-256('usapp-vectors/integrity/not-the-meter'))"),
        ("adopt-wrong-counter", "resync", "VerificationError", ["out-of-order"],
         {"answers": answers(leaves[:5] + leaves[6:])}, "the utility's log without record 5: index 5 holds counter 6"),
        ("adopt-other-meter", "resync", "VerificationError", ["wrong-meter"],
         {"answers": answers(leaves[:5] + [signed(5, r5.period, list(r5.registers), meter=b"SM-000999")] + leaves[6:])},
         "record 5 signed by the meter's key for the meter id 'SM-000999'"),
        ("adopt-future-boot", "resync", "VerificationError", ["future-boot"],
         {"answers": answers(leaves[:5] + [signed(5, r5.period, list(r5.registers), boot=2)] + leaves[6:])},
         "record 5 meter-signed in boot 2, after the restored meter's boot 1"),
        ("adopt-boot-goes-back", "resync", "VerificationError", ["stale-boot"],
         {"answers": answers(leaves[:5] + [signed(5, r5.period, list(r5.registers), boot=1)] + leaves[6:])},
         "record 5 meter-signed in boot 1, record 6 (boot 0) after it"),
        ("adopt-period-not-after", "resync", "VerificationError", ["out-of-order"],
         {"answers": answers(leaves[:5] + [signed(5, r4.period, list(r5.registers))] + leaves[6:])},
         "record 5 meter-signed with the period of record 4"),
        ("adopt-register-backwards", "resync", "VerificationError", ["out-of-order"],
         {"answers": answers(leaves[:5] + [signed(5, r5.period, [r4.registers[0] - 1, *r5.registers[1:]])]
                             + leaves[6:])},
         "record 5 meter-signed with register 0 below record 4's"),
    ]
    out = []
    for label, step, error, flags, extra, comment in cases:
        v = {"operation": "resync-refuse", "name": f"resync-refuse-{label}", **base, "step": step, **extra,
             "result": "invalid", "flags": flags, "error": error, "comment": comment}
        _resync_refuse(v)
        out.append(v)
    return out


def _resync_case(name: str, n: int, backup_size: int, n_later: int, resync: bool, boot_before: int = 0,
                 superseded: int = 0) -> dict:
    """``superseded``: the restored meter's first that many later records are for periods the lost records
    already cover (those of records backup_size, backup_size + 1, ..., registers from the later ones)."""
    history = _history(name, n + n_later)
    records = history["records"]
    later = [{"period": records[backup_size + k]["period"], "registers": r["registers"]} if k < superseded else r
             for k, r in enumerate(records[n:])]
    v: dict[str, Any] = {"operation": "resync", "name": name, **history, "records": records[:n],
                         "backup_size": backup_size, "boot_before": boot_before, "later": later, "resync": resync}
    v.update(_resync_outputs(v))
    return v


NOTES = {
    "tampered": "a record or message changed after it was signed (signature kept)",
    "bad-signature": "a signature (the meter's or the utility's) that does not verify",
    "replay": "a record whose counter the utility already accepted",
    "out-of-order": "a correctly signed record the utility must refuse: counter gap, period or register going back",
    "truncated": "an encoding missing its last byte",
    "trailing": "an encoding followed by extra bytes",
    "shrunk-log": "a signed tree head smaller than the one the meter last checked",
    "bad-proof": "a consistency or inclusion proof (or receipt root) that does not verify",
    "wrong-size": "a message naming a size other than the one the meter's state requires",
    "void-evidence": "evidence the arbiter refuses before applying rule 2 (rule 1)",
    "boot-exhausted": "a restore with the durable boot counter at 2^32 - 1: it cannot be bumped (spec 9.1)",
    "not-restored": "a resync asked of a meter that was not restored from a backup (spec 9.2 step 0)",
    "stale-boot": "a record whose boot is below the boot of the record before it (a boot counter restored with "
                  "the meter's state, or a log going back in boot)",
    "future-boot": "a record in the utility's log signed in a boot after the restored meter's current boot",
    "wrong-meter": "a record carrying another meter's id",
}


def build() -> dict:
    vectors = [
        _case("eleven-records-three-checks", 11, [3, 7, 11], "none", 0, 5),
        _case("altered-record", 9, [9], "altered", 4, 0),
        _case("dropped-record", 9, [9], "dropped", 2, 8),
        _case("inserted-record", 8, [8], "inserted", 6, 3),
        _case("reordered-records", 8, [4, 8], "reordered", 5, 7),
        _case("utility-log-longer", 6, [6], "inserted", 5, 1),
        _dispute_case("dispute-agree", 6, "none", 0),
        _dispute_case("dispute-utility-forged", 6, "utility-altered", 3),
        _dispute_case("dispute-utility-out-of-order", 6, "utility-reordered", 2),
        _dispute_case("dispute-utility-rewritten", 6, "utility-truncated", 3),
        _dispute_case("dispute-meter-double-signed", 6, "meter-double-signed", 4),
        _dispute_case("dispute-meter-omitted", 6, "meter-omitted", 3),
        _dispute_case("dispute-unacknowledged", 6, "meter-unacknowledged", 0, 2),
        _dispute_case("dispute-void-utility-evidence", 6, "utility-records-not-under-head", 0,
                      error="VerificationError", flags=("void-evidence",)),
        _dispute_case("dispute-void-meter-evidence", 6, "meter-record-unsigned", 2,
                      error="VerificationError", flags=("void-evidence", "bad-signature")),
        *_refusals(),
        _resync_case("restored-meter-resyncs", 10, 5, 3, True),
        _resync_case("restored-meter-lost-state-verdict", 10, 5, 3, False),
        _resync_case("restored-meter-resync-supersedes", 9, 4, 3, True, boot_before=6, superseded=1),
        *_resync_refusals(),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": "generated by the USaPP reference implementation; procedures in specs/integrity.md (sections 3 "
                  "to 9; vectors section 12) and RFC 9162 section 2.1",
        "generated_by": "usapp vectors generate (keys SHA-256(SHA-256('usapp-vectors/integrity/' || name) || "
                        "'meter' / 'utility'); Ed25519 is deterministic, nothing else is drawn)",
        "description": (
            "Billing logs (specs/integrity.md section 12; every field in vectors/README.md and "
            "vectors/schema/integrity.json). Operation 'run': records, receipts, Y at each check, the inclusion "
            "message under the last checked head, and for a tampered log its Y from size 0 and the meter's "
            "bisection; 'steps' is the per-role transcript (meter, utility). Operation 'dispute': the evidence "
            "and the arbiter's verdict (spec 8). Operation 'refuse': an invalid message given to one role's step "
            "and the spec error it raises. Operation 'resync': a meter restored from a backup (spec 9), with its "
            "per-role steps (meter, utility, arbiter). Operation 'resync-refuse': a restore, a resync on the "
            "utility's given answers, or the utility's accept around a resync, and the spec error it raises."),
        "notes": dict(NOTES),
        "vectors": vectors,
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
