"""Vector family ``integrity`` / ``usapp-integrity-v2/eccsi-p256``: billing records signed with ECCSI
(specs/integrity.md sections 3.3 and 12.4).

Operation ``run`` (result valid): a meter holding the ECCSI keys of ``key_periods`` (each issued as
the ECCSI half of specs/issuance.md 10.4.3: v from the HMAC_DRBG of the KSAK and the identifier)
signs ``records``; the utility, registered with the KPAK and the meter's URI alone, accepts each
(at the record's period + 60 s) and returns a receipt; the meter checks the feedback Y from size 0
at ``time``; the arbiter decides from both sides' evidence (the honest logs: no dispute), and again
after the utility changed one register of record ``forge_index`` in its log (the utility forged).
Every j is drawn from HMAC_DRBG(run_seed), one 32-octet draw per attempt (RandomRange(1, q)), in
record order.  Computed per record: the counter, the date and the key period chosen (spec 3.3), the
signed bytes M and the identifier, RFC 6507 5.2.1's J, r, HE input, HE, s', s, whether s was
replaced by q - s (low s), the signature, the record's encoding and the receipt.

Operation ``verify-record`` (result invalid): ``decode_record`` then ``verify_record`` with
``EccsiRecordKey(KPAK, meter)`` on a changed record; it MUST raise ``error``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import integrity as ig
from protocols.errors import VectorMismatchError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import eccsi
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    UINT64,
    bytes_field,
    dispatch,
    expect,
    expect_outputs,
    expect_refusal,
    field,
    invalid_vectors,
    list_field,
    recompute,
    small_int_field,
    str_field,
)
from protocols.system.vectorsets.integrity import head_over
from protocols.system.vectorsets.issuance_eccsi import signature_fields, v_derivation
from protocols.system.vectorsets.rfc6507 import Recorder

PROTOCOL = "integrity"
SUITE = f"usapp-integrity-v2/{ig.SUITE_ECCSI}"
FILE = "integrity_eccsi.json"
SEED = "usapp-vectors/integrity-eccsi/"
META = ("name", "operation", "result", "flags", "error", "comment")
RUN_INPUTS = ("KSAK", "meter", "key_periods", "utility_key", "run_seed", "records", "time", "forge_index")
RECORD_INPUTS = ("period", "registers")
ACCEPT_DELAY = 60
"""The utility accepts each record at its period + 60 seconds (the receipt's time)."""

NOTES = {
    "Tampered": "a register changed and the record re-encoded with the meter's signature",
    "Truncated": "the record or its signature one octet short",
    "TrailingBytes": "the record with one octet appended",
    "WrongIdentity": "verified for another meter's URI, or the record's key 3 changed to it",
    "WrongPeriod": "key 10 changed to another key period",
    "NotAccepted": "a key period not accepted on the record's date (RFC 6509 3.3), or a date past 9999-12-29",
    "OutOfRange": "r not in [1, p) or s not in [1, q)",
    "HighS": "the twin signature (r, q - s): valid for plain RFC 6507, refused by the low-s rule of spec 3.3",
    "InvalidPoint": "the signature's PVT off P-256",
    "WrongPvt": "a valid PVT of another identifier in the signature",
    "WrongKms": "verified with another KMS's KPAK",
    "WrongSuite": "an Ed25519 record for an ECCSI meter, or key 9 naming another suite",
}


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------


def _records(v: Mapping[str, Any]) -> list[tuple[int, list[int]]]:
    items = list_field(v, "records", max_items=16)
    if not items or any(not isinstance(item, dict) for item in items):
        raise VectorMismatchError("field 'records': 1 to 16 objects", field="records")
    out = []
    for item in items:
        registers = [small_int_field({"r": r}, "r", low=0, high=UINT64)
                     for r in list_field(item, "registers", max_items=ig.MAX_REGISTERS)]
        out.append((small_int_field(item, "period", low=0, high=UINT64), registers))
    return out


def _key_fields(kms: eccsi.EccsiKms, meter: bytes, period: str) -> tuple[dict, eccsi.IssuedKey]:
    """Spec 3.3 via specs/issuance.md 10.4.3: the key of ``period`` and its intermediates."""
    ID = eccsi.Identifier(period, meter.decode("ascii")).encode()
    setup, outputs, v = v_derivation(kms.KSAK, ID)
    issued = eccsi.construct_ssk_pvt_with_v(kms, ID, v)
    return {"period": period, "identifier": ID.hex(), "v_drbg": setup, "v_drbg_outputs": outputs,
            "v": eccsi.I2OSP_N(v).hex(), "PVT": issued.PVT.hex(),
            "HS_input": eccsi.hs_input(kms.KPAK, ID, issued.PVT).hex(),
            "HS": eccsi.compute_HS(kms.KPAK, ID, issued.PVT).hex(), "SSK": issued.SSK.hex()}, issued


def run_outputs(v: Mapping[str, Any]) -> tuple[dict, list[dict]]:
    """The top-level outputs and each record's outputs of a ``run`` vector."""
    KSAK = int.from_bytes(bytes_field(v, "KSAK", size=eccsi.N), "big")
    kms = eccsi.kms_from_ksak(KSAK)
    meter_id = str_field(v, "meter", max_len=128).encode("ascii", "replace")
    periods = [str_field({"p": p}, "p", max_len=7) for p in list_field(v, "key_periods", max_items=4)]
    utility = ig.Utility(ig.UtilityState(bytes_field(v, "utility_key", size=32)))
    meter = ig.Meter(ig.MeterState(meter_id, b"", utility.public_key, suite=ig.SUITE_ECCSI, kpak=kms.KPAK))
    keys, signing = [], {}
    for key_period in periods:
        fields, issued = _key_fields(kms, meter_id, key_period)
        meter.add_key(key_period, issued.SSK, issued.PVT)
        keys.append(fields)
        signing[key_period] = eccsi.ValidateSsk(kms.KPAK, bytes.fromhex(fields["identifier"]), issued.SSK,
                                                issued.PVT)
    utility.register(meter_id, meter.verification_key)
    rng = Recorder(str_field(v, "run_seed", max_len=256))
    rng.label = "j"
    per_record = []
    for index, (period, registers) in enumerate(_records(v)):
        start = len(rng.draws)
        data = meter.record(period, registers, rng)
        receipt = utility.accept(data, period + ACCEPT_DELAY)
        meter.receipt(receipt)
        record = ig.decode_record(data)
        key = signing[record.key_period]
        M = ig.record_tbs(record.body())
        j = 1 + int.from_bytes(bytes.fromhex(rng.draws[-1]["hex"]), "big")
        signed = signature_fields(key, M, j)
        sig = eccsi.Signature.decode(record.signature)
        per_record.append({
            "counter": record.counter, "day": ig.record_day(period).isoformat(), "key_period": record.key_period,
            "identifier": key.ID.hex(), "tbs": M.hex(), "draws": rng.draws[start:], "signing": signed,
            "low_s_replaced": signed["s"] != eccsi.I2OSP_N(sig.s).hex(), "signature": record.signature.hex(),
            "record": data.hex(), "receipt": receipt.hex()})
    time = small_int_field(v, "time", low=0, high=UINT64)
    feedback = utility.feedback(meter_id, 0, time)
    finding = meter.check(feedback)
    mine = [r.to_bytes() for r in meter.state.records]
    receipts = [h.to_bytes() for h in meter.state.receipts]
    head = utility.tree_head(meter_id, time).to_bytes()
    honest = ig.arbitrate(meter.verification_key, utility.public_key, meter_id, mine, receipts, head, mine)
    forge = small_int_field(v, "forge_index", low=0, high=len(mine) - 1)
    original = meter.state.records[forge]
    altered = dataclasses.replace(original, registers=(original.registers[0] + 1, *original.registers[1:]))
    theirs = [*mine[:forge], altered.to_bytes(), *mine[forge + 1:]]
    forged_head = head_over(utility.state.signing_key, meter_id, theirs, time)
    forged = ig.arbitrate(meter.verification_key, utility.public_key, meter_id, mine, receipts, forged_head, theirs)
    return {
        "KPAK": kms.KPAK.hex(), "utility_public": utility.public_key.hex(), "keys": keys,
        "feedback": feedback.hex(), "finding_match": finding.match, "tree_head": head.hex(),
        "verdict": _verdict(honest), "forged_record": altered.to_bytes().hex(), "forged_head": forged_head,
        "forged_verdict": _verdict(forged),
    }, per_record


def _verdict(verdict: ig.Verdict) -> dict:
    return {"party": verdict.party, "index": verdict.index, "period": verdict.period, "kind": verdict.kind}


def _run(v: Mapping[str, Any]) -> None:
    if v.get("result", "valid") != "valid":
        raise VectorMismatchError("field 'result': run vectors are valid", field="result")
    top, per_record = recompute("result", lambda: run_outputs(v))
    top["forged_head"] = top["forged_head"].hex()
    for index, (item, computed) in enumerate(zip(list_field(v, "records"), per_record)):
        for key in item:
            if key not in RECORD_INPUTS and key not in computed:
                raise VectorMismatchError(f"records[{index}].{key} is neither an input nor an output")
        for name, value in computed.items():
            expect(f"records[{index}].{name}", field(item, name), value)
    expect_outputs(v, top, (*META, *RUN_INPUTS))


# ---------------------------------------------------------------------------
# verify-record (negative vectors)
# ---------------------------------------------------------------------------

REFUSE_INPUTS = ("KPAK", "meter", "record")


def _verify_record(v: Mapping[str, Any]) -> None:
    for key in v:
        if key not in (*META, *REFUSE_INPUTS):
            raise VectorMismatchError(f"field {key!r} is not an input of verify-record", field=key)
    if v.get("result") != "invalid":
        raise VectorMismatchError("field 'result': verify-record vectors are invalid", field="result")
    KPAK = bytes_field(v, "KPAK", size=eccsi.POINT_BYTES)
    meter = str_field(v, "meter", max_len=128).encode("ascii", "replace")
    data = bytes_field(v, "record", max_len=ig.MAX_RECORD_BYTES + 1)
    key = recompute("KPAK", lambda: ig.EccsiRecordKey(KPAK, meter))
    expect_refusal(v, lambda: ig.verify_record(ig.decode_record(data), key))


OPERATIONS = {"run": _run, "verify-record": _verify_record}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def _utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime.datetime(year, month, day, hour, tzinfo=datetime.timezone.utc).timestamp())


def _case(name: str, meter: str, periods: list[str], records: list[tuple[int, list[int]]], time: int,
          forge_index: int) -> dict:
    drbg = HmacDrbg.from_seed(SEED + name + "/keys")
    kms = eccsi.KeyGen(drbg)
    vector: dict[str, Any] = {
        "name": name, "operation": "run", "result": "valid", "KSAK": eccsi.I2OSP_N(kms.KSAK).hex(), "meter": meter,
        "key_periods": periods, "utility_key": drbg.random_bytes(32).hex(), "run_seed": SEED + name + "/run",
        "records": [{"period": p, "registers": r} for p, r in records], "time": time, "forge_index": forge_index}
    top, per_record = run_outputs(vector)
    top["forged_head"] = top["forged_head"].hex()
    for item, computed in zip(vector["records"], per_record):
        item.update(computed)
    vector.update(top)
    return vector


def _encode(record: ig.Record) -> str:
    return record.to_bytes().hex()


def _negatives(base: dict, other: dict) -> list[dict]:
    KPAK, meter = base["KPAK"], base["meter"]
    first = ig.decode_record(bytes.fromhex(base["records"][0]["record"]))
    near_change = ig.decode_record(bytes.fromhex(base["records"][1]["record"]))
    sig = eccsi.Signature.decode(first.signature)
    p, q = eccsi.p, eccsi.q
    other_pvt = bytes.fromhex(other["records"][0]["signature"])[64:]

    def with_sig(r: int | None = None, s: int | None = None, PVT: bytes | None = None) -> str:
        new = eccsi.Signature(sig.r if r is None else r, sig.s if s is None else s, sig.PVT if PVT is None else PVT)
        return _encode(dataclasses.replace(first, signature=new.encode()))

    data = first.to_bytes()
    body = {**first.body(), 8: first.signature}
    off_pvt = sig.PVT[:-1] + bytes([sig.PVT[-1] ^ 1])
    ed_key = Ed25519PrivateKey.from_private_bytes(HmacDrbg.from_seed(SEED + "ed25519-meter").random_bytes(32))
    ed_record = ig.encode_record(ed_key, meter.encode("ascii"), first.period, 0, first.registers)
    late = dataclasses.replace(first, period=ig.LAST_DAY + 1)
    other_meter = other["meter"]
    cases: list[tuple[str, dict, list[str], str, str]] = [
        ("register-changed", {"record": _encode(dataclasses.replace(first, registers=(first.registers[0] + 1,
                                                                                       *first.registers[1:])))},
         ["Tampered"], "VerificationError", "register 0 + 1, the meter's signature kept"),
        ("record-truncated", {"record": data[:-1].hex()}, ["Truncated"], "DecodeError", "one octet short"),
        ("record-trailing-byte", {"record": (data + b"\x00").hex()}, ["TrailingBytes"], "DecodeError",
         "one octet appended"),
        ("signature-truncated", {"record": cbor.encode({**body, 8: first.signature[:-1]}).hex()}, ["Truncated"],
         "DecodeError", "a 128-octet signature"),
        ("for-another-meter", {"meter": other_meter}, ["WrongIdentity"], "VerificationError",
         "verified with the other meter's URI"),
        ("meter-field-changed", {"meter": other_meter,
                                 "record": _encode(dataclasses.replace(first, meter=other_meter.encode("ascii")))},
         ["WrongIdentity"], "VerificationError", "key 3 changed to the other meter's URI, verified as that meter"),
        ("key-period-not-accepted", {"record": _encode(dataclasses.replace(first, key_period="2025-12"))},
         ["NotAccepted", "WrongPeriod"], "VerificationError", "key 10 = 2025-12 on a record dated 2026-01-10"),
        ("key-period-changed", {"record": _encode(dataclasses.replace(near_change, key_period="2026-02"))},
         ["WrongPeriod"], "VerificationError",
         "key 10 changed from 2026-01 to 2026-02, which 2026-01-30 accepts: the signature fails"),
        ("period-past-9999-12-29", {"record": _encode(late)}, ["NotAccepted"], "VerificationError",
         "period 253402128000"),
        ("r-zero", {"record": with_sig(r=0)}, ["OutOfRange"], "VerificationError", "r = 0"),
        ("r-p", {"record": with_sig(r=p)}, ["OutOfRange"], "VerificationError", "r = p"),
        ("s-zero", {"record": with_sig(s=0)}, ["OutOfRange"], "VerificationError", "s = 0"),
        ("s-q", {"record": with_sig(s=q)}, ["OutOfRange", "HighS"], "VerificationError", "s = q"),
        ("s-high-twin", {"record": with_sig(s=q - sig.s)}, ["HighS"], "VerificationError",
         "(r, q - s): RFC 6507 accepts it, spec 3.3 refuses"),
        ("pvt-off-curve", {"record": with_sig(PVT=off_pvt)}, ["InvalidPoint"], "VerificationError",
         "the PVT's last octet XOR 1 (a VerificationError, not a DecodeError: spec 3.3 step 5)"),
        ("pvt-of-another-identity", {"record": with_sig(PVT=other_pvt)}, ["WrongPvt"], "VerificationError",
         "the other meter's PVT"),
        ("another-kms", {"KPAK": other["KPAK"]}, ["WrongKms"], "VerificationError", "the other run's KPAK"),
        ("ed25519-record", {"record": _encode(ed_record)}, ["WrongSuite"], "VerificationError",
         "an Ed25519 record (no key 9) for an ECCSI meter"),
        ("suite-named-ed25519", {"record": cbor.encode({**body, 9: "ed25519"}).hex()}, ["WrongSuite"],
         "DecodeError", "key 9 = \"ed25519\""),
    ]
    start = {"KPAK": KPAK, "meter": meter, "record": data.hex()}
    return invalid_vectors("verify-record", start, cases, _verify_record)


def build() -> dict:
    runs = [
        _case("two-periods-around-the-change", "urn:usapp:usapp-vectors:meter:SM-000123", ["2026-01", "2026-02"],
              [(_utc(2026, 1, 10), [100, 20]), (_utc(2026, 1, 30), [180, 35]), (_utc(2026, 2, 1), [200, 41]),
               (_utc(2026, 2, 15), [260, 52]), (_utc(2026, 3, 1), [300, 60])],
              _utc(2026, 3, 2), 2),
        _case("tel-uri-one-period", "tel:+447700900123", ["2026-06"],
              [(_utc(2026, 6, 5, 12), [7]), (_utc(2026, 6, 6, 12), [9])], _utc(2026, 6, 7), 0),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("generated by the USaPP reference implementation; specs/integrity.md sections 3.3, 4, 5, 8 and "
                   "12.4; keys by specs/issuance.md 10.4.3; ECCSI by specs/sakke_eccsi.md (RFC 6507 on P-256)"),
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed: the KSAK (eccsi.KeyGen) then the "
                         f"utility's 32-octet key from {SEED}<name>/keys; j from {SEED}<name>/run; the Ed25519 "
                         f"record's key from {SEED}ed25519-meter)"),
        "description": (
            "Operation 'run': a meter signs ECCSI records (suite eccsi-p256), the utility verifies each with the "
            "KPAK and the meter's URI alone and returns receipts, the meter checks Y, and the arbiter rules on "
            "the honest evidence and on a log in which the utility changed a register of record forge_index. "
            "Chosen: KSAK, meter (its URI), key_periods, utility_key, run_seed, each record's period and "
            "registers, time, forge_index. Draws: j from HMAC_DRBG(run_seed), 32 octets per attempt "
            "(RandomRange(1, q)), one record after the other. Computed: KPAK, each key (identifier, v's "
            "HMAC_DRBG and outputs, v, PVT, HS input, HS, SSK), each record's counter, date, key period, signed "
            "bytes, identifier, j, J, r, HE input, HE, s', s, low_s_replaced, signature, encoding and receipt; "
            "Y, the tree head, both verdicts. Operation 'verify-record' (invalid): decode_record then "
            "verify_record with EccsiRecordKey(KPAK, meter) MUST raise 'error'."),
        "parameters": {"eccsi_curve": "P-256", "hash": "SHA-256", "record_suite": ig.SUITE_ECCSI,
                       "accept_delay_seconds": ACCEPT_DELAY},
        "notes": NOTES,
        "vectors": [*runs, *_negatives(runs[0], runs[1])],
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
