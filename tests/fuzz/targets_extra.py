"""More role messages: LKH rekeys, the operators' round two, re-identification and the integrity
arbiter.  Set up honestly from fixed DRBG seeds, like targets_protocols."""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
from dataclasses import dataclass

from protocols import escrow as esc
from protocols import groupkeys as gk
from protocols import integrity as ig
from protocols.errors import DecodeError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bb1, blind_rsa, frost, lkh

from .registry import ANY, Target
from .seeds import vectors
from .targets_protocols import METER_ID, PERIOD, T0, aggregation_run, escrow_run, integrity_run

# -- LKH (specs/groupkeys.md section 5): a member applies a rekey -------------------------------


@functools.cache
def _lkh() -> tuple[lkh.MemberKeys, bytes]:
    tree = lkh.KeyTree.create(3, b"usapp-fuzz-lkh", [b"m%d" % i for i in range(7)],
                              HmacDrbg.from_seed("tests/fuzz/lkh"))
    keys = tree.member_keys(b"m0")
    rekey = tree.rekey([b"m7"], [b"m3"], HmacDrbg.from_seed("tests/fuzz/lkh/rekey"))
    raw = cbor.encode([rekey.height, [list(n) for n in rekey.nodes], [[w.kid, w.kek, w.ct] for w in rekey.wraps]])
    return keys, raw


def lkh_apply(data: bytes) -> object:
    """Input: [height, [[level, position, kid]...], [[kid, kek, ct]...]] (the fields of a rekey message)."""
    fields = cbor.decode(data)
    if not (isinstance(fields, list) and len(fields) == 3 and isinstance(fields[1], list)
            and isinstance(fields[2], list) and all(isinstance(n, list) for n in fields[1])
            and all(isinstance(w, list) and len(w) == 3 for w in fields[2])):
        raise DecodeError("harness: not a rekey's fields")
    rekey = lkh.Rekey(fields[0], tuple(tuple(n) for n in fields[1]),
                      tuple(lkh.Wrap(w[0], w[1], w[2]) for w in fields[2]))
    return _lkh()[0].apply(rekey)


# -- the operators' round two (groupkeys spec 8) --------------------------------------------------


@dataclass
class OperatorRun:
    body: dict
    operator: gk.Operator        # operator 1 (its nonces do not survive a copy: each call commits afresh)
    other: bytes                 # operator 2's commitments, as sent


@functools.cache
def operator_run() -> OperatorRun:
    rng = HmacDrbg.from_seed("tests/fuzz/operators")
    operators, _ = gk.operator_ceremony(3, 2, b"nbh-fuzz", rng)
    body = gk.command_body(b"nbh-fuzz", 1, "disconnect", {1: [b"m001"]}, not_after=1_800_003_600, epoch=0)
    return OperatorRun(body, operators[0], operators[1].commit(rng).to_bytes())


def operator_sign(data: bytes) -> object:
    """Operator 1's round two with operator 2's commitments replaced by ``data``.  An operator cannot
    check another's commitments (RFC 9591 5.2): acceptance is judged by the aggregate's check."""
    run = operator_run()
    run.operator.approve(run.body)
    own = run.operator.commit(HmacDrbg.from_seed("tests/fuzz/operators/" + data.hex()))
    return run.operator.sign(run.body, [own, frost.SigningCommitments.from_bytes(data)])


# -- re-identification (escrow spec 8): the authorities and the combiner ----------------------------


@dataclass
class ReidRun:
    request: bytes
    sealed: bytes
    shares: dict[int, bytes]


@functools.cache
def reid_run() -> ReidRun:
    run = escrow_run("escrowed")
    fleet = copy.deepcopy(run.fleet)
    meter = fleet.meters["SM-00000"]
    rng = HmacDrbg.from_seed("tests/fuzz/reid")
    request = meter.request_hfid(0, rng)
    from .targets_protocols import _at
    hf = meter.receive_hfid(fleet.escrow.handle(request, _at(0, 0), rng))
    fingerprint = hashlib.sha256(hf.credential).digest()
    reid = esc.reidentification_request(fingerprint, "court order 17/2026", bytes(16))
    a1, _, a3 = fleet.authorities
    for a in (a1, a3):
        a.approve(reid)
    shares = {1: a1.share(reid, fleet.escrow, rng), 3: a3.share(reid, fleet.escrow, rng)}
    _FLEETS["escrowed"] = fleet
    return ReidRun(reid, fleet.escrow.sealed_link(fingerprint), shares)


_FLEETS: dict[str, object] = {}
"""The escrowed fleet holding the link the re-identification opens (set once by reid_run)."""


def authority_share(data: bytes) -> object:
    """Authority 2 approves and answers the request ``data`` (an approval is a human decision: any
    well-formed request naming a held link is answered; acceptance is judged at combination)."""
    reid_run()
    fleet = copy.deepcopy(_FLEETS["escrowed"])
    authority = fleet.authorities[1]   # type: ignore[attr-defined]
    authority.approve(data)
    return authority.share(data, fleet.escrow, HmacDrbg.from_seed("tests/fuzz/reid/share"))  # type: ignore[attr-defined]


def reidentify(data: bytes) -> object:
    """The combiner gets authority 3's share replaced by ``data``."""
    run = reid_run()
    info = escrow_run("escrowed").fleet.authority_info
    assert info is not None
    return esc.reidentify(info, run.request, run.sealed, {1: run.shares[1], 3: data})


def decode_link_seeds() -> list[bytes]:
    return [esc.encode_link("SM-00000", 0, bytes(range(32)))]


# -- the aggregation setup (spec 3.3): a meter's graph commitment and reveal --------------------------


def setup_reveal(data: bytes) -> object:
    """The directory with the first meter's reveal replaced by ``data`` (it must open the commitment)."""
    hood = aggregation_run().p.hood
    assert hood.reveals is not None
    first = hood.meters[0]
    return dataclasses.replace(hood, reveals={**hood.reveals, first: data})


def setup_commitment(data: bytes) -> object:
    """The directory with the first meter's commitment replaced by ``data`` (its reveal must open it)."""
    hood = aggregation_run().p.hood
    first = hood.meters[0]
    return dataclasses.replace(hood, commitments={**hood.commitments, first: data})


def _first_of(field: str) -> list[bytes]:
    hood = aggregation_run().p.hood
    values = getattr(hood, field)
    return [values[hood.meters[0]]]


# -- the blind-RSA signer (RFC 9474 4.3): it signs any blinded message of the right size ---------------


@functools.cache
def _rsa_signer() -> tuple[blind_rsa.PrivateKey, bytes]:
    v = next(vectors("rfc9474", "rsabssa"))
    return (blind_rsa.PrivateKey.from_factors(int(v["p"], 16), int(v["q"], 16), int(v["e"], 16)),
            bytes.fromhex(v["blinded_msg"]))


# -- the integrity arbiter (integrity spec 8.2) -----------------------------------------------------


@functools.cache
def _evidence() -> dict:
    run = integrity_run()
    utility = copy.deepcopy(run.utility)
    utility.accept(run.last_record, T0 + 5 * PERIOD + 60)
    head = utility.tree_head(METER_ID, T0 + 6 * PERIOD).to_bytes()
    return {"meter_public": run.meter.public_key, "utility_public": utility.public_key, "records": run.records,
            "receipts": run.heads, "head": head}


def arbitrate_head(data: bytes) -> object:
    e = _evidence()
    return ig.arbitrate(e["meter_public"], e["utility_public"], METER_ID, e["records"], e["receipts"], data,
                        e["records"])


def arbitrate_record(data: bytes) -> object:
    """The utility's evidence with its third record replaced by ``data``: refused, or a verdict
    against the utility (a record it cannot show signed is its doing) -- never an exception."""
    e = _evidence()
    records = list(e["records"])
    records[2] = data
    return ig.arbitrate(e["meter_public"], e["utility_public"], METER_ID, e["records"], e["receipts"], e["head"],
                        records)



TARGETS = [
    Target("aggregation.setup reveal", lambda: _first_of("reveals"), setup_reveal, examples=30),
    Target("aggregation.setup commitment", lambda: _first_of("commitments"), setup_commitment, examples=30),
    Target("bb1.BB1MasterSecret.from_der", lambda: [bb1.BB1MasterSecret(3, 5, 7).to_der()],
           bb1.BB1MasterSecret.from_der, accept=ANY, examples=30),
    Target("blind_rsa.BlindSign", lambda: [_rsa_signer()[1]], lambda d: blind_rsa.BlindSign(_rsa_signer()[0], d),
           accept=ANY, examples=20),
    Target("lkh.MemberKeys.apply", lambda: [_lkh()[1]], lkh_apply, kind="cbor", accept=ANY, examples=40),
    Target("frost.SignatureShare.from_bytes", lambda: [bytes.fromhex(r["sig_share"]) for v in
                                                       vectors("rfc9591", "frost_sign")
                                                       for r in v["round_two"].values()],
           lambda d: frost.SignatureShare.from_bytes(1, d), accept=ANY, examples=40),
    Target("groupkeys.Operator.sign(commitments)", lambda: [operator_run().other], operator_sign, accept=ANY,
           examples=30),
    Target("escrow.decode_link", decode_link_seeds, esc.decode_link, kind="cbor", accept=ANY, examples=40),
    Target("escrow.Authority.share(reid-request)", lambda: [reid_run().request], authority_share, kind="cbor",
           accept=ANY, examples=20),
    Target("escrow.reidentify(decryption share)", lambda: [reid_run().shares[3]], reidentify, examples=20),
    Target("integrity.arbitrate(utility head)", lambda: [_evidence()["head"]], arbitrate_head, kind="cbor",
           examples=30),
    Target("integrity.arbitrate(utility record)", lambda: [_evidence()["records"][2]], arbitrate_record,
           kind="cbor", accept=ANY, examples=30),
]
