"""The ECCSI families of issuance and integrity, recomputed from the spec text alone.

Implements, from specs/issuance.md sections 10.4 (the ECCSI/SAKKE suite: epochs and key periods, the
RFC 6509 identifier, v by HMAC_DRBG, the 354-octet key, the extractor and the device's check_key),
10.5 (ECCSI split t-of-n: the dealer, node keys and check_publics, the commit/reveal/answer rounds,
verify_response, combine, the node extractor and the share verifier), 13.1 and 13.2 (the two vector
files: every draw, value, message, transcript and refusal); specs/integrity.md sections 2 and 3.1-3.3
(the ECCSI record, its signed bytes, identifier, key choice, low s, the decoder and the verifier's five
checks in order), 4.2-4.3 (tree heads and receipts), 5 (Y and the meter's check), 8.2 (the arbiter,
the meter's signature checked from the KPAK and the URI alone) and 12.4 (the vector file); and
specs/conventions.md 3.2-3.4 (RandomRange, RandomBelow, HMAC_DRBG instantiated and from_seed) and
4.3, 4.6, 5.1 (the vector layout, negative vectors, errors).  Every value of
vectors/issuance_eccsi.json, vectors/issuance_eccsi_threshold.json and vectors/integrity_eccsi.json is
recomputed byte for byte; each invalid vector is refused with its error, by the check its flags name.
specs/roles.md 8.1 (the deployment with this suite) has no vector in these files and is not exercised.

It imports nothing from protocols.  It reuses, by import, the other clean-room modules: SAKKE, ECCSI,
HMAC_DRBG, the draws, the RFC 6509 identifier and the epoch/period map of
tests/test_sakke_eccsi_from_spec.py; the CBOR codec, lp4, the RFC 9162 Merkle tree, the Ed25519 tree
heads, Y and the tree-head signature check of tests/test_integrity_from_spec.py; and the PKG and device
of tests/test_issuance_from_spec.py (issuance sections 2 to 9: the identity grammar, the messages,
every check of the PKG including the certificate chain, HPKE, the log, `enrollment_run` and
`roles_alone`), into which this suite's extractors and key checks plug (section 3.2, 7.3 step 5).
Written here, because the imported pieces do not fit: HMAC_DRBG instantiated with an explicit
(entropy, nonce, personalization) (the imported one is from_seed only); the ECCSI record's encoder,
decoder and verifier and the arbiter with the ECCSI check (the imported ones are Ed25519 only); the
split issuance.  The errors (conventions 5.1) are the sakke_eccsi module's, which the issuance module
raises too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import test_integrity_from_spec as ti
import test_issuance_from_spec as iss
import test_sakke_eccsi_from_spec as sk

_VECTORS = Path(__file__).resolve().parent.parent / "vectors"
ISSUANCE = json.loads((_VECTORS / "issuance_eccsi.json").read_text())
THRESHOLD = json.loads((_VECTORS / "issuance_eccsi_threshold.json").read_text())
INTEGRITY = json.loads((_VECTORS / "integrity_eccsi.json").read_text())

UsappError = sk.UsappError
DecodeError = sk.DecodeError
ParameterError = sk.ParameterError
VerificationError = sk.VerificationError
StateError = sk.StateError
RecoveryError = sk.RecoveryError


h2b = bytes.fromhex
Q = sk.EQ  # the order of P-256
SUITE_ECCSI_SAKKE = "usapp-eccsi-sakke-p256-p1-v1"
SUITE_THRESHOLD = "usapp-eccsi-p256-threshold-v1"


# --- a field-by-field comparison that counts (for the first-run tally) ----------------------------


@dataclass
class Check:
    """Collects every compared value of one vector; `done` fails listing each mismatch."""

    name: str
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)

    def eq(self, what: str, got: Any, want: Any) -> None:
        self.compared += 1
        if got != want:
            self.mismatches.append(f"{self.name}: {what}: got {str(got)[:80]} want {str(want)[:80]}")

    def done(self) -> None:
        assert not self.mismatches, "\n".join(self.mismatches)


# --- HMAC_DRBG with an explicit instantiation (issuance 10.4.3, 10.5.2) ---------------------------


class InstantiatedDrbg(sk.HmacDrbg):
    """SP 800-90A 10.1.2.3 HMAC_DRBG_Instantiate(entropy_input, nonce, personalization_string)."""

    def __init__(self, entropy: bytes, nonce: bytes, personalization: bytes) -> None:  # noqa: D107
        self._k = bytes(32)
        self._v = b"\x01" * 32
        self._update(entropy + nonce + personalization)


def derived_scalar(entropy: bytes, nonce: bytes, personalization: bytes) -> tuple[int, list[bytes]]:
    """Issuance 10.4.3 / 10.5.2: RandomRange(drbg, 1, q) and the drbg's outputs until it accepts."""
    rec = sk.Recorder(InstantiatedDrbg(entropy, nonce, personalization))
    return sk.random_range(rec, 1, Q), rec.calls


# --- identities (issuance 2.2, 2.3) and the RFC 6509 identifier (10.4.1, 10.4.2) -----------------

Identity = iss.Identity  # issuance 2.2: (namespace, serial, role, epoch)


def parse_identity(b: bytes) -> iss.Identity:
    """Issuance 2.3: exactly the encoding of 2.2, else DecodeError (the issuance clean-room's parser)."""
    return iss.Identity.parse(b)


def uri_of(ident: Identity) -> str:
    """Issuance 10.4.2."""
    return f"urn:usapp:{ident.namespace}:{ident.role}:{ident.serial}"


def identifier_of(ident: Identity) -> bytes:
    """Issuance 10.4.2: period(e) || 0x00 || uri || 0x00 (period(e) of 10.4.1: ParameterError past 96359)."""
    try:
        period = sk.period_of_epoch(ident.epoch)
    except ParameterError as exc:
        raise ParameterError("no key period for this epoch", "epoch") from exc
    return sk.identifier(period, uri_of(ident))


# --- one enrollment through the issuance clean-room's PKG and device (issuance 5 to 9, 13) -------------


def enroll(v: dict, extractor: Any, verify_key: Callable[[bytes, bytes], bool], seed: str, c: Check
           ) -> dict[str, Any]:
    """Issuance 5.1-5.3, 7.2-7.3, 9.1 and 13: iss.enrollment_run (Pkg, Meter, every check of the PKG
    including the chain of section 6) from HMAC_DRBG(seed), then each role alone from its draws; every
    message, the log and the per-role transcript compared with the vector."""
    run = iss.enrollment_run(v, extractor, verify_key, seed)
    tally = iss.Tally()
    iss.roles_alone(v, run, extractor, verify_key, tally)
    c.compared += tally.values
    return run


def check_enrollment(c: Check, run: dict, v: dict, prefix: str = "") -> None:
    """The messages, log and per-role transcript of one enrollment (issuance 13, 13.1)."""
    for k in ("challenge", "enrollment", "key_delivery", "log_entry", "log_head", "hpke_public"):
        c.eq(prefix + k, run[k], v[k])
    c.eq(prefix + "identity", run["roles"][1]["intermediates"]["identity"], v["identity"])
    c.eq(prefix + "roles count", len(run["roles"]), len(v["roles"]))
    for i, (mine, theirs) in enumerate(zip(run["roles"], v["roles"])):
        for k in sorted(set(mine) | set(theirs)):
            c.eq(f"{prefix}roles[{i}].{k}", mine.get(k), theirs.get(k))


def continued_drbg(seed: str, skip: int) -> sk.Recorder:
    """HMAC_DRBG(seed) after `skip` random_bytes(32) calls (the enrollment's three draws, issuance 13.1):
    each call is one Generate, so the state after them is the enrollment's own."""
    drbg = sk.HmacDrbg(seed)
    for _ in range(skip):
        drbg.random_bytes(32)
    return sk.Recorder(drbg)


# --- the ECCSI/SAKKE suite (issuance 10.4) ----------------------------------------------------------


@dataclass(frozen=True)
class EccsiSakkeKms:
    """Issuance 10.4.5: the KSAK and z (the master secrets) and the public KPAK and Z."""

    KSAK: int
    z: int

    @property
    def KPAK(self) -> bytes:
        return sk.eccsi_kms(self.KSAK)

    @property
    def Z(self) -> bytes:
        return sk.sakke_kms(self.z)


def eccsi_extract(KSAK: int, KPAK: bytes, ID: bytes) -> dict[str, Any]:
    """Issuance 10.4.3 + RFC 6507 5.1.1: v from the HMAC_DRBG of (I2OSP(KSAK, 32), ID, "usapp-eccsi-v/v1")."""
    pers = b"usapp-eccsi-v/v1"
    rec = sk.Recorder(InstantiatedDrbg(sk.i2osp(KSAK, 32), ID, pers))
    while True:  # 5.1.1 step 5 restarts with the next RandomRange of the same drbg
        v = sk.random_range(rec, 1, Q)
        try:
            c = sk.eccsi_construct(KSAK, KPAK, ID, v=v)
        except ParameterError:
            continue
        c["drbg"] = {"entropy_input": sk.i2osp(KSAK, 32).hex(), "nonce": ID.hex(), "personalization": pers.hex()}
        c["outputs"] = [x.hex() for x in rec.calls]
        return c


@dataclass
class EccsiSakkeExtractor:
    """Issuance 10.4.5: extract(identity) = SSK || PVT || RSK (10.4.4); keeps the last trace."""

    kms: EccsiSakkeKms
    suite: str = SUITE_ECCSI_SAKKE
    trace: dict[str, Any] = field(default_factory=dict)

    def extract(self, identity: bytes) -> bytes:
        ID = identifier_of(parse_identity(identity))
        c = eccsi_extract(self.kms.KSAK, self.kms.KPAK, ID)  # 10.4.3, RFC 6507 5.1.1
        inv, rsk = sk.sakke_extract(self.kms.z, ID)  # RFC 6508 6.1.1
        self.trace = {**c, "ID": ID, "inv": inv, "RSK": rsk}
        return c["SSK"] + c["PVT"] + rsk


def check_key(KPAK: bytes, Z: bytes, identity: bytes, key: bytes) -> bool:
    """Issuance 10.4.6: the KPAK and Z once, then steps 1-4 in order."""
    sk.e_decode(KPAK)
    sk.s_decode(Z)
    ID = identifier_of(parse_identity(identity))  # step 1
    if len(key) != 354:  # step 2
        raise DecodeError("key not 354 octets", "key-length")
    sk.eccsi_validate(KPAK, ID, key[:32], key[32:97])  # step 3
    sk.sakke_validate_rsk(Z, ID, key[97:])  # step 4
    return True


def run_enroll(v: dict) -> Check:
    """Issuance 13.1 operation enroll: every listed value, recomputed."""
    c = Check(v["name"])
    kms = EccsiSakkeKms(sk.os2ip(h2b(v["KSAK"])), sk.os2ip(h2b(v["z"])))
    KPAK, Z = kms.KPAK, kms.Z
    c.eq("KPAK", KPAK.hex(), v["KPAK"])
    c.eq("Z", Z.hex(), v["Z"])
    extractor = EccsiSakkeExtractor(kms)
    out = enroll(v, extractor, lambda i, k: check_key(KPAK, Z, i, k), v["run_seed"], c)
    check_enrollment(c, out, v)
    trace = extractor.trace
    ident = parse_identity(out["roles"][1]["intermediates"]["identity"].encode())
    ID = trace["ID"]
    c.eq("uri", uri_of(ident), v["uri"])
    c.eq("identifier", ID.hex(), v["identifier"])
    c.eq("v_drbg", trace["drbg"], v["v_drbg"])
    c.eq("v_drbg_outputs", trace["outputs"], v["v_drbg_outputs"])
    c.eq("v", sk.be(trace["v"], 32), v["v"])
    for k in ("PVT", "HS_input", "HS", "SSK", "RSK"):
        c.eq(k, trace[k].hex(), v[k])
    c.eq("rsk_inverse", sk.be(trace["inv"], 128), v["rsk_inverse"])
    c.eq("key", out["key"], v["key"])
    rk = sk.sakke_validate_rsk(Z, ID, trace["RSK"])  # the device's check (10.4.6 step 4)
    c.eq("bP_plus_Z", sk.s_encode(rk.bPZ).hex(), v["bP_plus_Z"])
    c.eq("rsk_pairing", sk.be(rk.pairing, 128), v["rsk_pairing"])
    rng = continued_drbg(v["run_seed"], 3)  # draws 4 and 5 (13.1)
    e = sk.sakke_encapsulate(Z, ID, rng)  # draw 4: the SSV
    for mine, theirs in (("SSV", "SSV"), ("r_input", "sakke_r_input"), ("R", "R"), ("g_r", "g_r"), ("mask", "mask"),
                         ("H", "H"), ("encapsulated", "encapsulated")):
        c.eq(theirs, e[mine].hex(), v[theirs])
    c.eq("sakke_r", sk.be(e["r"], 128), v["sakke_r"])
    d = sk.sakke_decapsulate(rk, e["encapsulated"])
    c.eq("w", d["w"].hex(), v["w"])
    c.eq("decapsulated_SSV", d["SSV"].hex(), v["decapsulated_SSV"])
    c.eq("TEST", d["TEST"].hex(), v["TEST"])
    HS = sk.eccsi_validate(KPAK, ID, trace["SSK"], trace["PVT"])
    sg = sk.eccsi_sign(HS, trace["SSK"], trace["PVT"], h2b(v["message"]), rng)  # draw 5: j
    check_signing(c, sg, v["signing"])
    vr = sk.eccsi_verify(KPAK, ID, h2b(v["message"]), sg["signature"])
    c.eq("verify_Y", vr["Y"].hex(), v["verify_Y"])
    c.eq("verify_J", vr["J"].hex(), v["verify_J"])
    draws = [{"hex": x, "name": n} for n, x in out["draws"].items()]
    draws += [{"hex": x.hex(), "name": n} for x, n in zip(rng.calls, ("SSV", "j"))]
    c.eq("draws", draws, v["draws"])
    c.eq("draw count", 3 + len(rng.calls), len(v["draws"]))
    return c


def check_signing(c: Check, sg: dict[str, Any], want: dict[str, str]) -> None:
    """RFC 6507 5.2.1's intermediates as the files list them under `signing`."""
    c.eq("signing.j", sk.be(sg["j"], 32), want["j"])
    for k in ("J", "r", "HE_input", "HE", "s_prime", "s", "signature"):
        c.eq("signing." + k, sg[k].hex(), want[k])


def check_key_refusal(v: dict) -> Exception | None:
    """Issuance 13.1 operation check-key: the error check_key raises, or None."""
    try:
        check_key(h2b(v["KPAK"]), h2b(v["Z"]), v["identity"].encode(), h2b(v["key"]))
    except UsappError as exc:
        return exc
    return None


# --- ECCSI split t-of-n (issuance 10.5) --------------------------------------------------------------


def lagrange_at(i: int, x: int, nodes: list[int]) -> int:
    """Issuance 10.5.1: lambda_i(x) over `nodes`, mod q."""
    num, den = 1, 1
    for k in nodes:
        if k != i:
            num, den = num * (x - k) % Q, den * (i - k) % Q
    return num * pow(den, -1, Q) % Q


def deal(rng: Any, t: int, nodes: list[int]) -> tuple[int, list[int], dict[int, int]]:
    """Issuance 10.5.1: KSAK = RandomRange(1, q), a_1 .. a_{t-1} = RandomBelow(q), KSAK_i = f(i)."""
    KSAK = sk.random_range(rng, 1, Q)
    coeffs = [sk.random_below(rng, Q) for _ in range(t - 1)]
    shares = {i: sum(a * pow(i, k, Q) for k, a in enumerate([KSAK, *coeffs])) % Q for i in nodes}
    if 0 in shares.values():
        raise ParameterError("a share of 0: deal again")
    return KSAK, coeffs, shares


def point_sum(points: list[sk.Pt]) -> sk.Pt:
    acc: sk.Pt = None
    for p in points:
        acc = sk.e_add(acc, p)
    return acc


def check_publics(KPAK: bytes, node_keys: dict[int, bytes], t: int, nodes: list[int]) -> None:
    """Issuance 10.5.1: the first t node keys interpolate to the KPAK at 0 and every other node key."""
    kpak = sk.e_decode(KPAK)
    pts = {i: sk.e_decode(node_keys[i]) for i in nodes}
    base = nodes[:t]
    for j, want in [(0, kpak)] + [(j, pts[j]) for j in nodes[t:]]:
        got = point_sum([sk.e_mul(lagrange_at(i, j, base), pts[i]) for i in base])
        if got != want:
            raise VerificationError(f"node keys do not interpolate at {j}", "interpolation")


def check_session(session: list[int], t: int, nodes: list[int]) -> None:
    """Issuance 10.5.2: exactly t distinct nodes of the KMS, sorted."""
    if len(session) != t or sorted(set(session)) != session or not set(session) <= set(nodes):
        raise ParameterError("a session is t distinct nodes of the KMS, sorted", "session")


def u_personalization(t: int, session: list[int]) -> bytes:
    """Issuance 10.5.2 step 1."""
    return b"usapp-eccsi-threshold-u/v1" + sk.i2osp(t, 1) + bytes(session)


def commitment_input(i: int, ID: bytes, U: bytes) -> bytes:
    """Issuance 10.5.2 step 1."""
    return b"usapp-eccsi-threshold-commit/v1" + sk.i2osp(i, 1) + sk.i2osp(len(ID), 2) + ID + U


def combine_pvt(ID: bytes, commitments: dict[int, bytes], reveals: dict[int, bytes], session: list[int]) -> bytes:
    """Issuance 10.5.2 step 2: every U_j a point and its commitment's; PVT = sum of the U_j."""
    pts = []
    for j in session:
        pts.append(sk.e_decode(reveals[j]))
        if sk.sha256(commitment_input(j, ID, reveals[j])) != commitments[j]:
            raise VerificationError(f"node {j}'s U does not match its commitment", "commitment")
    pvt = point_sum(pts)
    if pvt is None:
        raise VerificationError("PVT is the point at infinity", "pvt-infinity")
    return sk.e_encode(pvt)


def verify_response(KPAK: bytes, ID: bytes, node_keys: dict[int, bytes], session: list[int], reveals: dict[int, bytes],
                    i: int, answer: bytes) -> None:
    """Issuance 10.5.3: [SSK_i]G = [lambda_i(0)]KPAK_i + [HS]U_i."""
    if any(j not in reveals for j in session):
        raise RecoveryError("a U_j of the session missing", "missing")
    if len(answer) != 32:
        raise DecodeError("an answer is 32 octets", "answer-length")
    pvt = sk.e_encode(point_sum([sk.e_decode(reveals[j]) for j in session]))
    _, HS = sk.eccsi_hs(KPAK, ID, pvt)
    right = sk.e_add(sk.e_mul(lagrange_at(i, 0, session), sk.e_decode(node_keys[i])),
                     sk.e_mul(sk.os2ip(HS), sk.e_decode(reveals[i])))
    if sk.e_mul(sk.os2ip(answer), sk.EG) != right:
        raise VerificationError(f"node {i} lies", "response-check")


def combine(KPAK: bytes, ID: bytes, node_keys: dict[int, bytes], session: list[int], reveals: dict[int, bytes],
            answers: dict[int, bytes]) -> tuple[bytes, bytes, bytes]:
    """Issuance 10.5.3: every answer checked, SSK = sum mod q, PVT = sum, then ValidateSsk."""
    if any(i not in answers for i in session):
        raise RecoveryError("answers from fewer than the t nodes of S", "missing")
    for i in session:
        verify_response(KPAK, ID, node_keys, session, reveals, i, answers[i])
    SSK = sk.i2osp(sum(sk.os2ip(answers[i]) for i in session) % Q, 32)
    PVT = sk.e_encode(point_sum([sk.e_decode(reveals[j]) for j in session]))
    return SSK, PVT, sk.eccsi_validate(KPAK, ID, SSK, PVT)


def share_verifier(KPAK: bytes, node_keys: dict[int, bytes], t: int, nodes: list[int], session: list[int], i: int,
                   identity: bytes, key: bytes) -> bool:
    """Issuance 10.5.5: check_publics, the length 32 + 65 t, then verify_response."""
    check_publics(KPAK, node_keys, t, nodes)
    ID = identifier_of(parse_identity(identity))
    if len(key) != 32 + 65 * t:
        raise DecodeError("key_i is 32 + 65 t octets", "key-length")
    reveals = {j: key[32 + 65 * k:97 + 65 * k] for k, j in enumerate(session)}
    verify_response(KPAK, ID, node_keys, session, reveals, i, key[:32])
    return True


def node_round(KSAK_i: int, i: int, ID: bytes, t: int, session: list[int]) -> dict[str, Any]:
    """Issuance 10.5.2 step 1 for node i: u_i, U_i, the commitment."""
    u, outputs = derived_scalar(sk.i2osp(KSAK_i, 32), ID, u_personalization(t, session))
    U = sk.e_encode(sk.e_mul(u, sk.EG))
    ci = commitment_input(i, ID, U)
    return {"u": u, "outputs": outputs, "U": U, "commitment_input": ci, "commitment": sk.sha256(ci)}


@dataclass(frozen=True)
class ThresholdNodeExtractor:
    """Issuance 10.5.5: node i's key for an identity, the rounds of 10.5.2 run among the nodes of S.

    `shares` holds the node keys KSAK_j of S: in a deployment each node holds only its own and the rounds
    travel between the nodes; here one process plays every node of S.
    """

    node: int
    shares: dict[int, int]
    KPAK: bytes
    t: int
    session: list[int]
    suite: str = SUITE_THRESHOLD

    def extract(self, identity: bytes) -> bytes:
        ID = identifier_of(parse_identity(identity))
        rounds = {j: node_round(self.shares[j], j, ID, self.t, self.session) for j in self.session}
        reveals = {j: r["U"] for j, r in rounds.items()}
        PVT = combine_pvt(ID, {j: r["commitment"] for j, r in rounds.items()}, reveals, self.session)
        _, HS = sk.eccsi_hs(self.KPAK, ID, PVT)
        answer = (lagrange_at(self.node, 0, self.session) * self.shares[self.node]
                  + sk.os2ip(HS) * rounds[self.node]["u"]) % Q
        return sk.i2osp(answer, 32) + b"".join(reveals[j] for j in self.session)


@dataclass(frozen=True)
class ShareVerifier:
    """Issuance 10.5.5: threshold_eccsi_share_verifier(KMS, S, i)."""

    KPAK: bytes
    node_keys: dict[int, bytes]
    t: int
    nodes: list[int]
    session: list[int]
    node: int

    def verify_key(self, identity: bytes, key: bytes) -> bool:
        return share_verifier(self.KPAK, self.node_keys, self.t, self.nodes, self.session, self.node, identity, key)


def run_split_enroll(v: dict) -> Check:
    """Issuance 13.2 operation split-enroll."""
    c = Check(v["name"])
    t, nodes, session = v["threshold"], v["nodes"], v["session"]
    check_session(session, t, nodes)
    drng = sk.Recorder(sk.HmacDrbg(v["deal_seed"]))
    KSAK, coeffs, shares = deal(drng, t, nodes)
    c.eq("deal_draws", [{"hex": x.hex(), "name": n} for x, n in zip(drng.calls, ["KSAK"] + [f"a_{k}" for k in
                                                                                          range(1, t)])],
         v["deal_draws"])
    c.eq("deal draw count", len(drng.calls), len(v["deal_draws"]))
    c.eq("node_shares", {str(i): sk.be(s, 32) for i, s in shares.items()}, v["node_shares"])
    node_keys = {i: sk.eccsi_kms(s) for i, s in shares.items()}
    c.eq("node_keys", {str(i): k.hex() for i, k in node_keys.items()}, v["node_keys"])
    KPAK = sk.eccsi_kms(KSAK)
    c.eq("KPAK", KPAK.hex(), v["KPAK"])
    check_publics(KPAK, node_keys, t, nodes)
    ident = Identity(v["namespace"], v["serial"], v["role"], v["epoch"])
    ID = identifier_of(ident)
    c.eq("uri", uri_of(ident), v["uri"])
    c.eq("identifier", ID.hex(), v["identifier"])
    rounds = {i: node_round(shares[i], i, ID, t, session) for i in session}
    commitments = {i: r["commitment"] for i, r in rounds.items()}
    reveals = {i: r["U"] for i, r in rounds.items()}
    PVT = combine_pvt(ID, commitments, reveals, session)
    hs_input, HS = sk.eccsi_hs(KPAK, ID, PVT)
    answers = {i: sk.i2osp((lagrange_at(i, 0, session) * shares[i] + sk.os2ip(HS) * rounds[i]["u"]) % Q, 32)
               for i in session}
    c.eq("enrollment count", len(v["enrollments"]), len(session))
    for i, ve in zip(session, v["enrollments"]):
        p = f"node {i} "
        r = rounds[i]
        c.eq(p + "node", i, ve["node"])
        c.eq(p + "u_personalization", u_personalization(t, session).hex(), ve["u_personalization"])
        c.eq(p + "u_drbg_outputs", [x.hex() for x in r["outputs"]], ve["u_drbg_outputs"])
        c.eq(p + "u", sk.be(r["u"], 32), ve["u"])
        for k in ("U", "commitment_input", "commitment"):
            c.eq(p + k, r[k].hex(), ve[k])
        c.eq(p + "lambda", sk.be(lagrange_at(i, 0, session), 32), ve["lambda"])
        c.eq(p + "SSK_i", answers[i].hex(), ve["SSK_i"])
        share = answers[i] + b"".join(reveals[j] for j in session)  # 10.5.5
        c.eq(p + "share", share.hex(), ve["share"])
        extractor = ThresholdNodeExtractor(i, shares, KPAK, t, session)
        verifier = ShareVerifier(KPAK, node_keys, t, nodes, session, i)
        out = enroll(v, extractor, verifier.verify_key, ve["run_seed"], c)
        check_enrollment(c, out, ve, p)
        c.eq(p + "delivered key", out["key"], share.hex())
        c.eq(p + "draws", [{"hex": x, "name": n} for n, x in out["draws"].items()], ve["draws"])
    SSK, PVT2, HS2 = combine(KPAK, ID, node_keys, session, reveals, answers)
    c.eq("PVT", PVT.hex(), v["PVT"])
    c.eq("PVT as combined", PVT2, PVT)
    c.eq("HS_input", hs_input.hex(), v["HS_input"])
    c.eq("HS", HS.hex(), v["HS"])
    c.eq("HS as validated", HS2, HS)
    c.eq("SSK", SSK.hex(), v["SSK"])
    srng = sk.Recorder(sk.HmacDrbg(v["sign_seed"]))
    sg = sk.eccsi_sign(HS, SSK, PVT, h2b(v["message"]), srng)
    check_signing(c, sg, v["signing"])
    c.eq("sign_draws", [{"hex": x.hex(), "name": "j"} for x in srng.calls], v["sign_draws"])
    vr = sk.eccsi_verify(KPAK, ID, h2b(v["message"]), sg["signature"])
    c.eq("verify_Y", vr["Y"].hex(), v["verify_Y"])
    c.eq("verify_J", vr["J"].hex(), v["verify_J"])
    return c


def _points(d: dict[str, str]) -> dict[int, bytes]:
    return {int(k): h2b(x) for k, x in d.items()}


def threshold_refusal(v: dict) -> Exception | None:
    """Issuance 13.2 operation refuse: the step `target` names, on the vector's inputs."""
    t, nodes, session, target = v["threshold"], v["nodes"], v["session"], v["target"]
    KPAK, node_keys = h2b(v["KPAK"]), _points(v["node_keys"])
    steps: dict[str, Callable[[], Any]] = {
        "session": lambda: check_session(session, t, nodes),
        "check-publics": lambda: check_publics(KPAK, node_keys, t, nodes),
        "share-verifier": lambda: share_verifier(KPAK, node_keys, t, nodes, session, v.get("node", 0),
                                                 v.get("identity", "").encode(), h2b(v.get("share", ""))),
        "combine-pvt": lambda: combine_pvt(h2b(v["identifier"]), _points(v["commitments"]), _points(v["reveals"]),
                                           session),
        "verify-response": lambda: verify_response(KPAK, h2b(v["identifier"]), node_keys, session,
                                                   _points(v["reveals"]), v["node"],
                                                   h2b(v["answers"][str(v["node"])])),
        "combine": lambda: combine(KPAK, h2b(v["identifier"]), node_keys, session, _points(v["reveals"]),
                                   _points(v["answers"])),
    }
    try:
        steps[target]()
    except UsappError as exc:
        return exc
    return None


# --- the ECCSI record suite (integrity 3.3) -----------------------------------------------------------

DOMAIN = ti.DOMAIN
ACCEPT_DELAY = 60  # integrity 12.4: the utility accepts each record at its period + 60 seconds
LAST_PERIOD = 253402127999  # 9999-12-29T23:59:59Z (integrity 3.3 check 3)
_PERIOD_TEXT = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def utc_date(seconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).date()


def accepted_on(seconds: int) -> list[str]:
    """Integrity 3.3 / sakke_eccsi 1.3: the key periods accepted on the UTC date of `seconds`."""
    d = utc_date(seconds)
    return sk.accepted_periods(d.year, d.month, d.day)


def record_body(meter: str, period: int, counter: int, registers: list[int], boot: int, key_period: str) -> dict:
    """Integrity 3.3: keys 1-7, 9, 10."""
    return {1: 2, 2: "record", 3: meter.encode("ascii"), 4: period, 5: counter, 6: list(registers), 7: boot,
            9: "eccsi-p256", 10: key_period}


def signed_bytes(body: dict) -> bytes:
    """Integrity 3.3: M = DOMAIN || lp4("record") || CBOR(the map without key 8)."""
    return DOMAIN + ti.lp4(b"record") + ti.cbor({k: x for k, x in body.items() if k != 8})


def record_identifier(key_period: str, meter: str) -> bytes:
    """Integrity 3.3: ID = key period || 0x00 || meter || 0x00 (RFC 6509 3.2, sakke_eccsi 1.3)."""
    return sk.identifier(key_period, meter)


@dataclass
class MeterKey:
    """One key period's (SSK, PVT) and HS (issuance 10.4.3 for the meter's URI)."""

    period: str
    SSK: bytes
    PVT: bytes
    HS: bytes


def pick_key_period(held: list[str], period: int) -> str:
    """Integrity 3.3 signing: the record's own month if held, else the newest other accepted period."""
    accepted = accepted_on(period)
    own = f"{utc_date(period).year:04d}-{utc_date(period).month:02d}"
    if own in held:
        return own
    for p in sorted(accepted, reverse=True):
        if p in held:
            return p
    raise StateError("no key for the record's date: enroll")


def sign_record(key: MeterKey, body: dict, rng: Any) -> tuple[dict[str, Any], bytes, bool]:
    """Integrity 3.3: RFC 6507 5.2.1 over M, then s replaced by q - s if s > (q - 1)/2."""
    sg = sk.eccsi_sign(key.HS, key.SSK, key.PVT, signed_bytes(body), rng)
    s = sk.os2ip(sg["s"])
    low = s > (Q - 1) // 2
    sig = sg["r"] + sk.i2osp(Q - s if low else s, 32) + key.PVT
    return sg, sig, low


def decode_any_record(data: bytes) -> dict:
    """Integrity 3.1 / 3.3: key 9 picks the schema; canonical; each fault a DecodeError."""
    if len(data) > 1024:
        raise DecodeError("record over 1,024 octets", "decode")
    try:
        m = ti.uncbor(data)
    except (AssertionError, IndexError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise DecodeError("not CBOR", "decode") from exc
    if not isinstance(m, dict):
        raise DecodeError("not a map", "decode")
    eccsi = 9 in m
    types = {**ti.RECORD, **({9: str, 10: str} if eccsi else {})}
    if set(m) != set(types) or any(not isinstance(m[k], tp) for k, tp in types.items()):
        raise DecodeError("keys or types", "decode")
    if m[1] != 2 or m[2] != "record" or ti.cbor(m) != data:
        raise DecodeError("version, kind or not canonical", "decode")
    if not 1 <= len(m[3]) <= 128 or not 1 <= len(m[6]) <= 16 or m[7] >= 1 << 32:
        raise DecodeError("field sizes", "decode")
    if any(not isinstance(x, int) or x >= 1 << 64 for x in (m[4], m[5], *m[6])):
        raise DecodeError("not uint64", "decode")
    if eccsi and (m[9] != "eccsi-p256" or not _PERIOD_TEXT.fullmatch(m[10]) or len(m[8]) != 129):
        raise DecodeError("key 9, key 10 or an ECCSI signature of other than 129 octets", "decode")
    if not eccsi and len(m[8]) != 64:
        raise DecodeError("an Ed25519 signature is 64 octets", "decode")
    return m


@dataclass(frozen=True)
class EccsiRecordKey:
    """Integrity 3.3: the KPAK (a point of P-256) and the meter's RFC 6509 URI."""

    KPAK: bytes
    meter: str

    def __post_init__(self) -> None:
        try:
            sk.e_decode(self.KPAK)
        except DecodeError as exc:
            raise ParameterError("KPAK not a point of P-256") from exc
        if not sk.valid_uri(self.meter):
            raise ParameterError("meter not an RFC 6509 URI")


def verify_record(m: dict, key: EccsiRecordKey) -> None:
    """Integrity 3.3 verification, checks 1 to 5 in order, each a VerificationError."""
    if m.get(9) != "eccsi-p256":
        raise VerificationError("not an eccsi-p256 record", "1:suite")  # 1
    if m[3] != key.meter.encode("ascii"):
        raise VerificationError("another meter", "2:meter")  # 2
    if m[4] > LAST_PERIOD or m[10] not in accepted_on(m[4]):
        raise VerificationError("key period not accepted on the record's date", "3:period")  # 3
    sig = m[8]
    if sk.os2ip(sig[32:64]) > (Q - 1) // 2:
        raise VerificationError("high s", "4:low-s")  # 4
    try:
        sk.eccsi_verify(key.KPAK, record_identifier(m[10], key.meter), signed_bytes(m), sig)  # 5
    except UsappError as exc:
        raise VerificationError(f"RFC 6507 Verify: {type(exc).__name__}", f"5:{exc.check}") from exc


def record_verifies(data: bytes, key: EccsiRecordKey) -> bool:
    try:
        verify_record(decode_any_record(data), key)
    except UsappError:
        return False
    return True


def arbitrate(key: EccsiRecordKey, upub: bytes, mine_b: list[bytes], receipts_b: list[bytes], head_b: bytes,
              theirs_b: list[bytes]) -> dict:
    """Integrity 8.2, rules 1 to 5, every meter signature the check of 3.3 (KPAK and URI alone)."""
    meter = key.meter.encode("ascii")
    head = ti.uncbor(head_b)
    if head[3] != meter or not ti.signed_by(upub, "tree-head", head, 7):
        raise VerificationError("void: the utility's head")
    if head[4] != len(theirs_b) or head[5] != ti.mth(theirs_b):
        raise VerificationError("void: the utility's records do not hash to its head")
    if not all(record_verifies(r, key) for r in mine_b):
        raise VerificationError("void: a meter record without the meter's signature")
    mine, theirs = [ti.uncbor(r) for r in mine_b], [ti.uncbor(r) for r in theirs_b]

    def verdict(party: str | None, index: int | None, period: int | None, kind: str) -> dict:
        return {"party": party, "kind": kind, "index": index, "period": period}

    for i, (rb, r) in enumerate(zip(theirs_b, theirs)):  # rule 2
        if not record_verifies(rb, key):
            return verdict("utility", i, r[4], "forged")
        if r[5] != i or (i and r[7] < theirs[i - 1][7]):
            return verdict("utility", i, r[4], "out-of-order")
    first = next((i for i, (a, b) in enumerate(zip(mine_b, theirs_b)) if a != b), None)
    if first is None and len(mine_b) != len(theirs_b):
        first = min(len(mine_b), len(theirs_b))
    for data in receipts_b:  # rule 3
        rc = ti.uncbor(data)
        if not ti.signed_by(upub, "tree-head", rc, 7) or rc[3] != meter:
            raise VerificationError("void: a receipt")
        if rc[4] <= len(theirs_b) and ti.mth(theirs_b[:rc[4]]) == rc[5]:
            continue
        return verdict("utility", first, mine[first][4] if first is not None and first < len(mine) else None,
                       "rewritten")
    for i, r in enumerate(mine):  # rule 4
        if r[5] != i or (i and r[7] < mine[i - 1][7]):
            return verdict("meter", i, r[4], "meter-gap")
    if first is None:
        return verdict(None, None, None, "agree")
    if first < len(mine) and first < len(theirs):
        m, u = mine[first], theirs[first]
        if m[7] > u[7] and all(m[4] > r[4] for r in theirs if r[7] < m[7]):
            return verdict(None, first, m[4], "lost-state")
        return verdict("meter", first, m[4], "double-signed")
    if first < len(theirs):
        return verdict("meter", first, theirs[first][4], "omitted")
    return verdict(None, first, mine[first][4], "unacknowledged")  # rule 5


def run_integrity(v: dict) -> Check:
    """Integrity 12.4 operation run."""
    c = Check(v["name"])
    KSAK = sk.os2ip(h2b(v["KSAK"]))
    KPAK = sk.eccsi_kms(KSAK)
    c.eq("KPAK", KPAK.hex(), v["KPAK"])
    meter = v["meter"]
    keys: dict[str, MeterKey] = {}
    c.eq("key count", len(v["keys"]), len(v["key_periods"]))
    for kp, vk in zip(v["key_periods"], v["keys"]):
        ID = record_identifier(kp, meter)
        x = eccsi_extract(KSAK, KPAK, ID)
        HS = sk.eccsi_validate(KPAK, ID, x["SSK"], x["PVT"])  # Meter.add_key
        keys[kp] = MeterKey(kp, x["SSK"], x["PVT"], HS)
        c.eq(f"key {kp} period", kp, vk["period"])
        c.eq(f"key {kp} identifier", ID.hex(), vk["identifier"])
        c.eq(f"key {kp} v_drbg", x["drbg"], vk["v_drbg"])
        c.eq(f"key {kp} v_drbg_outputs", x["outputs"], vk["v_drbg_outputs"])
        c.eq(f"key {kp} v", sk.be(x["v"], 32), vk["v"])
        for k in ("PVT", "HS_input", "HS", "SSK"):
            c.eq(f"key {kp} {k}", x[k].hex(), vk[k])
    ukey = Ed25519PrivateKey.from_private_bytes(h2b(v["utility_key"]))
    upub = ti.public(ukey)
    c.eq("utility_public", upub.hex(), v["utility_public"])
    rkey = EccsiRecordKey(KPAK, meter)
    mb = meter.encode("ascii")
    rng = sk.Recorder(sk.HmacDrbg(v["run_seed"]))
    log: list[bytes] = []  # the utility's
    receipts: list[bytes] = []  # the meter's
    for n, vr in enumerate(v["records"]):
        p = f"record {n} "
        before = len(rng.calls)
        kp = pick_key_period(list(keys), vr["period"])
        body = record_body(meter, vr["period"], n, vr["registers"], 0, kp)
        sg, sig, low = sign_record(keys[kp], body, rng)
        rec = ti.cbor({**body, 8: sig})
        c.eq(p + "counter", n, vr["counter"])
        c.eq(p + "day", utc_date(vr["period"]).isoformat(), vr["day"])
        c.eq(p + "key_period", kp, vr["key_period"])
        c.eq(p + "identifier", record_identifier(kp, meter).hex(), vr["identifier"])
        c.eq(p + "tbs", signed_bytes(body).hex(), vr["tbs"])
        check_signing(c, sg, vr["signing"])
        c.eq(p + "low_s_replaced", low, vr["low_s_replaced"])
        c.eq(p + "signature", sig.hex(), vr["signature"])
        c.eq(p + "record", rec.hex(), vr["record"])
        c.eq(p + "draws", [{"hex": x.hex(), "name": "j"} for x in rng.calls[before:]], vr["draws"])
        verify_record(decode_any_record(rec), rkey)  # Utility.accept (4.3): counter n, period after the last
        log.append(rec)
        receipt = ti.tree_head(ukey, mb, log, vr["period"] + ACCEPT_DELAY)
        c.eq(p + "receipt", receipt.hex(), vr["receipt"])
        receipts.append(receipt)
    time = v["time"]
    y = ti.feedback(ukey, mb, log, 0, time)
    c.eq("feedback", y.hex(), v["feedback"])
    head = ti.uncbor(ti.uncbor(y)[3])
    c.eq("finding_match", head[4] == len(log) and head[5] == ti.mth(log), v["finding_match"])
    tree_head = ti.tree_head(ukey, mb, log, time)
    c.eq("tree_head", tree_head.hex(), v["tree_head"])
    c.eq("verdict", arbitrate(rkey, upub, log, receipts, tree_head, log), v["verdict"])
    fi = v["forge_index"]
    forged = ti.uncbor(log[fi])
    forged[6] = [forged[6][0] + 1, *forged[6][1:]]
    forged_b = ti.cbor(forged)
    c.eq("forged_record", forged_b.hex(), v["forged_record"])
    flog = log[:fi] + [forged_b] + log[fi + 1:]
    fhead = ti.tree_head(ukey, mb, flog, time)
    c.eq("forged_head", fhead.hex(), v["forged_head"])
    c.eq("forged_verdict", arbitrate(rkey, upub, log, receipts, fhead, flog), v["forged_verdict"])
    return c


def record_refusal(v: dict) -> Exception | None:
    """Integrity 12.4 operation verify-record: decode_record then verify_record."""
    try:
        verify_record(decode_any_record(h2b(v["record"])), EccsiRecordKey(h2b(v["KPAK"]), v["meter"]))
    except UsappError as exc:
        return exc
    return None


# --- the tests ----------------------------------------------------------------------------------------


def of(doc: dict, op: str) -> list[dict]:
    return [v for v in doc["vectors"] if v["operation"] == op]


@pytest.mark.parametrize("vec", of(ISSUANCE, "enroll"), ids=lambda v: v["name"])
def test_issuance_eccsi_enroll(vec: dict) -> None:
    run_enroll(vec).done()


@pytest.mark.parametrize("vec", of(THRESHOLD, "split-enroll"), ids=lambda v: v["name"])
def test_issuance_eccsi_split_enroll(vec: dict) -> None:
    run_split_enroll(vec).done()


@pytest.mark.parametrize("vec", of(INTEGRITY, "run"), ids=lambda v: v["name"])
def test_integrity_eccsi_run(vec: dict) -> None:
    run_integrity(vec).done()


# The check that each flag's reason reaches (the files' `notes`, read against the spec's order of checks):
# a refusal must come from a check in the intersection of its flags' sets.
CHECK_KEY_REASONS = {  # issuance 10.4.6 (and the KPAK and Z checked once before it)
    "InvalidPoint": {"eccsi-point", "sakke-point"}, "WrongSubgroup": {"sakke-point"},
    "OutOfRange": {"ssk-range", "epoch"}, "Truncated": {"key-length", "sakke-point"},
    "TrailingBytes": {"key-length"}, "Unparseable": {"2.3 parse"}, "Tampered": {"ssk-check"},
    "PvtValidation": {"ssk-check"}, "RskValidation": {"rsk-check"}, "WrongEpoch": {"ssk-check"},
    "WrongIdentity": {"ssk-check", "rsk-check"}, "WrongKms": {"ssk-check", "rsk-check"},
}
SPLIT_REASONS = {  # issuance 10.5.1 to 10.5.5
    "Commitment": {"commitment"}, "ForgedNodeKey": {"interpolation"}, "InvalidPoint": {"eccsi-point"},
    "LyingNode": {"response-check"}, "Missing": {"missing"}, "Truncated": {"answer-length", "key-length"},
    "WrongSession": {"session"},
}
RECORD_REASONS = {  # integrity 3.3: the decoder, then verification checks 1 to 5
    "Truncated": {"decode"}, "TrailingBytes": {"decode"}, "WrongSuite": {"decode", "1:suite"},
    "WrongIdentity": {"2:meter", "5:signature-check"}, "NotAccepted": {"3:period"},
    "WrongPeriod": {"3:period", "5:signature-check"}, "HighS": {"4:low-s"},
    "OutOfRange": {"4:low-s", "5:r-s-range"}, "InvalidPoint": {"5:eccsi-point"},
    "Tampered": {"5:signature-check"}, "WrongPvt": {"5:signature-check"}, "WrongKms": {"5:signature-check"},
}


# Checks that only their own reason reaches: issuance 13.1 ("VerificationError, before any pairing" unless
# the RSK check is named), integrity 3.3 (check 3 only for a period not accepted; check 4 only for a high s).
EXCLUSIVE = {"rsk-check": "RskValidation", "3:period": "NotAccepted", "4:low-s": "HighS"}


def _expect_refusal(vec: dict, notes: dict, reasons: dict[str, set[str]], err: Exception | None) -> None:
    """The named error, raised by a check that the vector's flags name (conventions 4.6)."""
    assert set(vec["flags"]) <= set(notes) and set(vec["flags"]) <= set(reasons)
    assert err is not None, f"{vec['name']}: accepted"
    assert type(err).__name__ == vec["error"], f"{vec['name']}: {type(err).__name__} ({err})"
    allowed = set.intersection(*(reasons[f] for f in vec["flags"]))
    check = getattr(err, "check", None)
    assert check in allowed, f"{vec['name']}: refused by {check}, not by {sorted(allowed)}"
    for named, flag in EXCLUSIVE.items():  # a check these flags name is reached iff the flag is there
        assert (check == named) == (flag in vec["flags"]), f"{vec['name']}: {check} and {flag}"
    if "LyingNode" in vec["flags"]:  # 10.5.3: the lying node is named
        assert re.search(rf"node {vec.get('node', '[0-9]+')} ", str(err)), str(err)


@pytest.mark.parametrize("vec", of(ISSUANCE, "check-key"), ids=lambda v: v["name"])
def test_check_key_refusals(vec: dict) -> None:
    _expect_refusal(vec, ISSUANCE["notes"], CHECK_KEY_REASONS, check_key_refusal(vec))


@pytest.mark.parametrize("vec", of(THRESHOLD, "refuse"), ids=lambda v: v["name"])
def test_split_issuance_refusals(vec: dict) -> None:
    _expect_refusal(vec, THRESHOLD["notes"], SPLIT_REASONS, threshold_refusal(vec))


@pytest.mark.parametrize("vec", of(INTEGRITY, "verify-record"), ids=lambda v: v["name"])
def test_record_refusals(vec: dict) -> None:
    _expect_refusal(vec, INTEGRITY["notes"], RECORD_REASONS, record_refusal(vec))


def test_vector_counts() -> None:
    """Every vector of the three files is one of the kinds above, and each kind is checked."""
    counts = {(name, v["operation"], v["result"]) for name, doc in
              (("issuance", ISSUANCE), ("threshold", THRESHOLD), ("integrity", INTEGRITY)) for v in doc["vectors"]}
    assert counts == {("issuance", "enroll", "valid"), ("issuance", "check-key", "invalid"),
                      ("threshold", "split-enroll", "valid"), ("threshold", "refuse", "invalid"),
                      ("integrity", "run", "valid"), ("integrity", "verify-record", "invalid")}
    assert (len(of(ISSUANCE, "enroll")), len(of(ISSUANCE, "check-key"))) == (2, 17)
    assert (len(of(THRESHOLD, "split-enroll")), len(of(THRESHOLD, "refuse"))) == (2, 11)
    assert (len(of(INTEGRITY, "run")), len(of(INTEGRITY, "verify-record"))) == (2, 19)
    assert INTEGRITY["parameters"]["accept_delay_seconds"] == ACCEPT_DELAY
    assert len(ISSUANCE["vectors"]) == 19 and len(THRESHOLD["vectors"]) == 13 and len(INTEGRITY["vectors"]) == 21


# --- the format: every field of the files is named in the spec sections that define them -------------

_SPECS = Path(__file__).resolve().parent.parent / "specs"
ENVELOPE_FIELDS = {"name", "operation", "result", "flags", "comment"}  # conventions 4.2, 4.6


def _section(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i)]


def _field_names(o: Any, acc: set[str]) -> set[str]:
    if isinstance(o, dict):
        for k, x in o.items():
            if not k.isdigit():  # node numbers as keys are values, not field names
                acc.add(k)
            _field_names(x, acc)
    elif isinstance(o, list):
        for x in o:
            _field_names(x, acc)
    return acc


def test_every_field_of_the_files_is_named_in_the_spec() -> None:
    """Issuance 13.1, 13.2 and integrity 12.4 name every field a vendor reads (found as a format gap)."""
    issuance, integrity = (_SPECS / "issuance.md").read_text(), (_SPECS / "integrity.md").read_text()
    s13 = _section(issuance, "## 13. Test vectors", "### 13.1")  # the roles transcript, shared
    s131 = _section(issuance, "### 13.1", "### 13.2")
    s132 = _section(issuance, "### 13.2", "## 14.")
    s124 = _section(integrity, "### 12.4", "## 13.")
    for doc, text in ((ISSUANCE, s13 + s131), (THRESHOLD, s13 + s132 + s131), (INTEGRITY, s124)):
        unnamed = {k for k in _field_names(doc["vectors"], set()) - ENVELOPE_FIELDS
                   if not re.search(r'[`"]' + re.escape(k) + r'[`"]', text)}
        assert not unnamed, sorted(unnamed)
