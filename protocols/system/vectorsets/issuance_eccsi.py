"""Vector family ``issuance`` / ``usapp-eccsi-sakke-p256-p1-v1``: whole enrollments of the ECCSI/SAKKE
suite (specs/issuance.md sections 10.4 and 13.1).

Operation ``enroll`` (result valid): one enrollment through the real PKG and meter of
specs/issuance.md sections 4 to 9, with :class:`protocols.issuance_eccsi.EccsiSakkeExtractor` and the
device's :func:`protocols.issuance_eccsi.eccsi_sakke_key_verifier`, then the delivered key in use: a
head-end encapsulates an SSV to the identifier (RFC 6508 6.2.1), the device decapsulates it (6.2.2),
signs ``message`` (RFC 6507 5.2.1) and a verifier checks the signature with the KPAK and the
identifier alone (5.2.2).  Inputs (chosen by the generator): the certificates and device key of
``vectors/issuance.json``'s first case, the KMS secrets KSAK and z, ``run_seed``, ``message``.
Every draw comes from HMAC_DRBG(run_seed) in this order, listed by name under ``draws``: the PKG's
challenge nonce, the device's HPKE ikm, the PKG's HPKE ikmE, the head-end's SSV, the device's j.
The extraction draws nothing: v comes from the HMAC_DRBG of spec 10.4.3, whose instantiation and
outputs are listed too (``v_drbg``).  Computed: every message, the log, every intermediate of
extraction (identifier, v, PVT, HS, SSK, the RSK's inverse and the RSK), of the device's check
([b]P + Z and the pairing value), of the encapsulation, decapsulation, signature and verification.

Operation ``check-key`` (result invalid): the device's check of spec 10.4.6 (``check_key(KPAK, Z,
identity, key)``) on a changed input; it MUST raise ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols import issuance as iss
from protocols import issuance_eccsi as ie
from protocols.errors import VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import random_range
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.primitives.sakke_curve import pairing
from protocols.schemes import eccsi, sakke
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets import issuance as bf_family
from protocols.system.vectorsets._fields import (
    UINT64,
    bytes_field,
    dispatch,
    expect_outputs,
    expect_refusal,
    hex_list_field,
    invalid_vectors,
    list_field,
    recompute,
    small_int_field,
    str_field,
)
from protocols.system.vectorsets.rfc6507 import Recorder
from protocols.system.vectorsets.sakke_eccsi import outside_subgroup

PROTOCOL = "issuance"
SUITE = ie.SUITE
FILE = "issuance_eccsi.json"
SEED = "usapp-vectors/issuance-eccsi/"
NOW = 1_796_860_800            # 2026-12-10T00:00:00Z: the PKG is at epoch 683 (2026-12), spec 10.4.1
EPOCH = ie.epoch_of_period("2026-12")
MAX_POINT = 2 * PS1.L + 2
"""Longest point field read: a 257-octet SAKKE point plus one octet."""
META = ("name", "operation", "result", "flags", "error", "comment")
DEVICE_INPUTS = ("suite", "root_certificate", "anchor_roles", "namespace", "chain", "device_key", "serial", "role",
                 "epoch", "now", "challenge_lifetime")
ENROLL_INPUTS = (*DEVICE_INPUTS, "KSAK", "z", "run_seed", "message")
ENROLL_DRAWS = ("challenge_nonce", "device_ikm", "pkg_ikm_e")

NOTES = {
    "Tampered": "one bit of the SSK flipped: the pair fails RFC 6507 5.1.2 step 3",
    "Truncated": "the key one octet short of 354",
    "TrailingBytes": "the key with one octet appended",
    "WrongIdentity": "a valid key checked for another meter's identity (another serial)",
    "WrongEpoch": "a valid key checked for the next epoch's identity (the next key period)",
    "WrongKms": "checked against another KMS's KPAK or Z",
    "PvtValidation": "KPAK != [SSK]G - [HS]PVT (RFC 6507 5.1.2 step 3)",
    "RskValidation": "<[b]P + Z, RSK> != g (RFC 6508 6.1.2)",
    "InvalidPoint": "a point off its curve",
    "WrongSubgroup": "a point of the SAKKE curve outside the subgroup of order q",
    "OutOfRange": "an SSK of 0 or q, or an epoch past 96359 (9999-12)",
    "Unparseable": "an identity that is not the encoding of specs/issuance.md 2.2",
}


# ---------------------------------------------------------------------------
# One enrollment through the real PKG and meter (shared with the threshold family)
# ---------------------------------------------------------------------------


def device(v: Mapping[str, Any], suite: str) -> dict:
    """The device's inputs (the fields of ``vectors/issuance.json``), checked and decoded."""
    if str_field(v, "suite") != suite:
        raise VectorMismatchError(f"field 'suite' must be {suite!r}", field="suite")
    device_key = bytes_field(v, "device_key")
    bf_family._canonical_device_key(device_key)
    root = bytes_field(v, "root_certificate")
    chain = tuple(hex_list_field(v, "chain", max_items=4))
    for name, der in [("root_certificate", root)] + [(f"chain[{i}]", c) for i, c in enumerate(chain)]:
        bf_family._canonical_certificate(der, name)
    roles = [str_field({"r": r}, "r", max_len=32) for r in list_field(v, "anchor_roles", max_items=8)]
    namespace = str_field(v, "namespace", max_len=64)
    return {
        "suite": suite, "anchors": (iss.TrustAnchor(root, frozenset(roles), namespace),), "chain": chain,
        "device_key": device_key, "namespace": namespace, "serial": str_field(v, "serial", max_len=64),
        "role": str_field(v, "role", max_len=32), "epoch": small_int_field(v, "epoch", low=0, high=UINT64),
        "now": small_int_field(v, "now", low=0, high=UINT64),
        "lifetime": small_int_field(v, "challenge_lifetime", low=0, high=UINT64),
    }


def enrollment(d: dict, extractor: iss.KeyExtractor, verify_key: iss.KeyVerifier, rng: Recorder
               ) -> tuple[dict, iss.IssuedKey]:
    """Spec 5 and 7: challenge, enrollment, key-delivery, receipt; the draws are labelled in ``rng``.
    Returns the messages, the log and the per-role transcript (as ``vectors/issuance.json``)."""
    pkg = iss.Pkg(iss.PkgState(d["anchors"], d["epoch"], challenge_lifetime=d["lifetime"]), extractor)
    meter = iss.Meter(iss.MeterState(d["namespace"], d["serial"], d["role"], d["suite"], d["device_key"],
                                     d["chain"]), verify_key)
    start = len(rng.draws)
    rng.label = "challenge_nonce"
    challenge = pkg.challenge(d["now"], rng)
    rng.label = "device_ikm"
    request = meter.enroll(challenge, rng)
    rng.label = "pkg_ikm_e"
    delivery = pkg.enroll(request, d["now"], rng)
    issued = meter.receive(delivery)
    drawn = rng.draws[start:]
    if [item["name"] for item in drawn] != list(ENROLL_DRAWS):
        raise VectorMismatchError(f"the enrollment drew {len(drawn)} times, not 3", field="draws")
    nonce, ikm = bytes.fromhex(drawn[0]["hex"]), bytes.fromhex(drawn[1]["hex"])
    (entry,) = pkg.state.log.entries
    identity = iss.Identity(d["namespace"], d["serial"], d["role"], d["epoch"]).to_bytes()
    device_pk = iss.DeriveKeyPair(ikm)[1]
    roles = bf_family.enrollment_roles(d, pkg, d["suite"], nonce, ikm, challenge, request, delivery, issued)
    return {"identity": identity.decode("ascii"), "hpke_public": device_pk.hex(), "challenge": challenge.hex(),
            "enrollment": request.hex(), "key_delivery": delivery.hex(), "log_entry": entry.hex(),
            "log_head": pkg.state.log.head.hex(), "roles": roles}, issued


class OutputTap:
    """A DRBG whose every output is also kept, in hex, in :attr:`outputs` (a derivation's draws as data)."""

    def __init__(self, drbg: HmacDrbg) -> None:
        self.drbg = drbg
        self.outputs: list[str] = []

    def random_bytes(self, n: int) -> bytes:
        out = self.drbg.random_bytes(n)
        self.outputs.append(out.hex())
        return out


def v_derivation(KSAK: int, ID: bytes) -> tuple[dict, list[str], int]:
    """Spec 10.4.3 as data: the DRBG's instantiation, its outputs until v is accepted, and v."""
    tap = OutputTap(ie.derive_v(KSAK, ID))
    outputs = tap.outputs
    v = random_range(tap, 1, eccsi.q)
    setup = {"entropy_input": eccsi.I2OSP_N(KSAK).hex(), "nonce": ID.hex(),
             "personalization": ie.V_PERSONALIZATION.hex()}
    return setup, outputs, v


def signature_fields(key: eccsi.SigningKey, M: bytes, j: int) -> dict:
    """RFC 6507 5.2.1 with every intermediate (J, r, HE input, HE, s', s, the signature)."""
    trace = eccsi.sign_with_j(key, M, j)
    return {"j": eccsi.I2OSP_N(j).hex(), "J": trace.J.hex(), "r": eccsi.I2OSP_N(trace.r).hex(),
            "HE_input": eccsi.he_input(key.HS, trace.r, M).hex(), "HE": trace.HE.hex(),
            "s_prime": eccsi.I2OSP_N(trace.s_prime).hex(), "s": eccsi.I2OSP_N(trace.s).hex(),
            "signature": trace.signature.hex()}


def _fp(value: int) -> str:
    return PS1.encode_fp(value).hex()


# ---------------------------------------------------------------------------
# enroll
# ---------------------------------------------------------------------------


def _kms(v: Mapping[str, Any]) -> ie.EccsiSakkeExtractor:
    KSAK = int.from_bytes(bytes_field(v, "KSAK", size=eccsi.N), "big")
    z = int.from_bytes(bytes_field(v, "z", size=PS1.L), "big")
    return recompute("KSAK", lambda: ie.EccsiSakkeExtractor(eccsi.kms_from_ksak(KSAK), sakke.kms_from_z(PS1, z)))


def enroll_outputs(v: Mapping[str, Any]) -> dict:
    """Every output of an ``enroll`` vector, recomputed from its inputs."""
    d = device(v, SUITE)
    kms = _kms(v)
    M = bytes_field(v, "message", max_len=4096)
    rng = Recorder(str_field(v, "run_seed", max_len=256))
    run, issued = enrollment(d, kms, ie.eccsi_sakke_key_verifier(kms.KPAK, kms.Z), rng)
    keys = ie.check_key(kms.KPAK, kms.Z, issued.identity, issued.key)
    ID = keys.identifier.encode()
    rng.label = "SSV"
    ssv, encapsulated = sakke.Encapsulate(PS1, kms.Z, ID, rng)
    rng.label = "j"
    signature = eccsi.Sign(keys.signing, M, rng)
    draws = rng.draws[3:]
    if [item["name"] for item in draws] != ["SSV", "j"]:
        raise VectorMismatchError("the use drew other than one SSV and one j", field="draws")
    # the intermediates, each by the scheme's own traced step
    v_setup, v_draws, v_scalar = v_derivation(kms.eccsi_kms.KSAK, ID)
    issued_pair = eccsi.construct_ssk_pvt_with_v(kms.eccsi_kms, ID, v_scalar)
    parts = ie.decode_key(issued.key)
    if (parts.SSK, parts.PVT) != (issued_pair.SSK, issued_pair.PVT):
        raise VectorMismatchError("field 'key': the SSK and PVT are not those of v (spec 10.4.3)", field="key")
    q = int(PS1.q)
    enc = sakke.encapsulate_with_ssv(PS1, kms.Z, ID, int.from_bytes(ssv, "big"))
    if enc.encapsulated != encapsulated:
        raise VectorMismatchError("field 'encapsulated': Encapsulate and its trace differ", field="encapsulated")
    dec = sakke.decapsulate_trace(keys.receiver, encapsulated)
    j = 1 + int.from_bytes(bytes.fromhex(draws[1]["hex"]), "big")
    signed = signature_fields(keys.signing, M, j)
    if signed["signature"] != signature.hex():
        raise VectorMismatchError("field 'signature': Sign and its trace differ", field="signature")
    check = eccsi.verify_trace(kms.KPAK, ID, M, signature)
    return {
        "KPAK": kms.KPAK.hex(), "Z": kms.Z.hex(), "draws": rng.draws, **run,
        "uri": keys.identifier.uri, "identifier": ID.hex(),
        "v_drbg": v_setup, "v_drbg_outputs": v_draws, "v": eccsi.I2OSP_N(v_scalar).hex(), "PVT": parts.PVT.hex(),
        "HS_input": eccsi.hs_input(kms.KPAK, ID, parts.PVT).hex(), "HS": keys.signing.HS.hex(),
        "SSK": parts.SSK.hex(),
        "rsk_inverse": _fp(pow((int.from_bytes(ID, "big") + kms.sakke_kms.z) % q, -1, q)), "RSK": parts.RSK.hex(),
        "key": issued.key.hex(),
        "bP_plus_Z": PS1.encode_point(keys.receiver.base).hex(),
        "rsk_pairing": _fp(pairing(PS1.p, PS1.q, keys.receiver.base, keys.receiver.K)),
        "SSV": enc.SSV.hex(), "sakke_r_input": (enc.SSV + ID).hex(), "sakke_r": _fp(enc.r), "R": enc.R.hex(),
        "g_r": _fp(enc.g_r),
        "mask": enc.mask.to_bytes(PS1.ssv_bytes, "big").hex(), "H": enc.H.to_bytes(PS1.ssv_bytes, "big").hex(),
        "encapsulated": encapsulated.hex(), "w": _fp(dec.w), "decapsulated_SSV": dec.SSV.hex(),
        "TEST": dec.TEST.hex(),
        "signing": signed, "verify_Y": check.Y.hex(), "verify_J": check.J.hex(),
    }


def _enroll(v: Mapping[str, Any]) -> None:
    if v.get("result", "valid") != "valid":
        raise VectorMismatchError("field 'result': enroll vectors are valid", field="result")
    expect_outputs(v, recompute("result", lambda: enroll_outputs(v)), (*META, *ENROLL_INPUTS))


# ---------------------------------------------------------------------------
# check-key (negative vectors)
# ---------------------------------------------------------------------------

CHECK_INPUTS = ("KPAK", "Z", "identity", "key")


def _check_key(v: Mapping[str, Any]) -> None:
    for key in v:
        if key not in (*META, *CHECK_INPUTS):
            raise VectorMismatchError(f"field {key!r} is not an input of check-key", field=key)
    if v.get("result") != "invalid":
        raise VectorMismatchError("field 'result': check-key vectors are invalid", field="result")
    KPAK = bytes_field(v, "KPAK", max_len=eccsi.POINT_BYTES + 1)
    Z = bytes_field(v, "Z", max_len=MAX_POINT)
    identity = str_field(v, "identity", max_len=256).encode("ascii", "replace")
    delivered = bytes_field(v, "key", max_len=ie.KEY_BYTES + 1)
    expect_refusal(v, lambda: ie.check_key(KPAK, Z, identity, delivered))


OPERATIONS = {"enroll": _enroll, "check-key": _check_key}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def device_inputs(name: str, serial: str, kind: str, suite: str) -> dict:
    """The certificates and device key of ``vectors/issuance.json`` (same seeds), for ``suite``."""
    vector = bf_family._device_inputs(name, serial, kind)
    vector.update({"suite": suite, "epoch": EPOCH, "now": NOW})
    return vector


def _enroll_case(name: str, serial: str, kind: str, message: bytes) -> dict:
    vector = device_inputs(name, serial, kind, SUITE)
    rng = HmacDrbg.from_seed(SEED + name + "/kms")
    kms = ie.EccsiSakkeExtractor(eccsi.KeyGen(rng), sakke.KeyGen(PS1, rng))
    vector.update({"KSAK": eccsi.I2OSP_N(kms.eccsi_kms.KSAK).hex(), "z": _fp(kms.sakke_kms.z),
                   "run_seed": SEED + name + "/run", "message": message.hex(), "result": "valid"})
    vector.update(enroll_outputs(vector))
    return vector


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


def _identity(base: dict, serial: str | None = None, epoch: int | None = None) -> str:
    return iss.Identity(base["namespace"], serial or base["serial"], base["role"],
                        base["epoch"] if epoch is None else epoch).to_bytes().decode("ascii")


def _negatives(base: dict, other: dict) -> list[dict]:
    KPAK, Z, key = (bytes.fromhex(base[k]) for k in ("KPAK", "Z", "key"))
    SSK, PVT, RSK = key[:32], key[32:97], key[97:]
    other_key = bytes.fromhex(other["key"])
    q = eccsi.q
    start = {"KPAK": KPAK.hex(), "Z": Z.hex(), "identity": base["identity"], "key": key.hex()}
    off_rsk = RSK[:-1] + bytes([RSK[-1] ^ 1])
    kms = _kms(base)
    foreign_rsk = ie.decode_key(kms.extract(_identity(base, serial="SM-999999").encode())).RSK
    cases: list[tuple[str, dict, list[str], str, str]] = [
        ("ssk-bit-flipped", {"key": (_flip(SSK, 31) + PVT + RSK).hex()}, ["Tampered", "PvtValidation"],
         "VerificationError", "the SSK's last octet XOR 1"),
        ("key-truncated", {"key": key[:-1].hex()}, ["Truncated"], "DecodeError", "353 octets"),
        ("key-trailing-byte", {"key": (key + b"\x00").hex()}, ["TrailingBytes"], "DecodeError", "355 octets"),
        ("another-identity", {"identity": _identity(base, serial=other["serial"])}, ["WrongIdentity"],
         "VerificationError", "the key checked for another serial's identity"),
        ("another-epoch", {"identity": _identity(base, epoch=base["epoch"] + 1)}, ["WrongEpoch"],
         "VerificationError", "the key checked for the next epoch (2027-01)"),
        ("another-kpak", {"KPAK": other["KPAK"]}, ["WrongKms", "PvtValidation"], "VerificationError",
         "the other vector's KPAK"),
        ("pvt-of-another-identity", {"key": (SSK + other_key[32:97] + RSK).hex()}, ["PvtValidation"],
         "VerificationError", "the PVT replaced by the other vector's (a valid point)"),
        ("pvt-off-curve", {"key": (SSK + _flip(PVT, 64) + RSK).hex()}, ["InvalidPoint"], "DecodeError",
         "the PVT's last octet XOR 1"),
        ("ssk-zero", {"key": (bytes(32) + PVT + RSK).hex()}, ["OutOfRange"], "VerificationError", "SSK = 0"),
        ("ssk-q", {"key": (q.to_bytes(32, "big") + PVT + RSK).hex()}, ["OutOfRange"], "VerificationError",
         "SSK = q"),
        ("rsk-off-curve", {"key": (SSK + PVT + off_rsk).hex()}, ["InvalidPoint"], "DecodeError",
         "the RSK's last octet XOR 1"),
        ("rsk-outside-subgroup", {"key": (SSK + PVT + outside_subgroup()).hex()}, ["WrongSubgroup"],
         "DecodeError", "the RSK a point of E of order other than q"),
        ("rsk-of-another-identity", {"key": (SSK + PVT + foreign_rsk).hex()}, ["RskValidation", "WrongIdentity"],
         "VerificationError", "the RSK of serial SM-999999 under the same KMS (a valid point of E[q])"),
        ("another-z", {"Z": other["Z"]}, ["WrongKms", "RskValidation"], "VerificationError",
         "the other vector's Z: the ECCSI half passes, the RSK check fails"),
        ("z-truncated", {"Z": Z[:-1].hex()}, ["Truncated"], "DecodeError", "Z of 256 octets"),
        ("epoch-past-9999-12", {"identity": _identity(base, epoch=ie.MAX_SUITE_EPOCH + 1)}, ["OutOfRange"],
         "ParameterError", "epoch 96360 has no key period"),
        ("identity-unparseable", {"identity": base["identity"].replace("/meter/", "/meter//")}, ["Unparseable"],
         "DecodeError", "an empty field in the identity"),
    ]
    return invalid_vectors("check-key", start, cases, _check_key)


def build() -> dict:
    runs = [
        _enroll_case("ed25519-device-under-root", "SM-000123", "ed25519-under-root",
                     b"billing record 2026-12 kWh=1234"),
        _enroll_case("p256-device-via-intermediate", "SM-004567", "p256-under-intermediate", b""),
    ]
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("generated by the USaPP reference implementation; specs/issuance.md sections 4 to 9, 10.4 and "
                   "13.1; the schemes of specs/sakke_eccsi.md (RFC 6507 on P-256, RFC 6508 on RFC 6509 "
                   "parameter set 1)"),
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed: KSAK then z by eccsi.KeyGen and "
                         f"sakke.KeyGen from {SEED}<name>/kms; run draws from {SEED}<name>/run; certificates "
                         "and device keys as vectors/issuance.json)"),
        "description": (
            "Operation 'enroll': one enrollment of the ECCSI/SAKKE suite through the PKG and the meter, then the "
            "key in use. Chosen: the certificates, device key, namespace, serial, role, epoch (683 = 2026-12), "
            "now, challenge_lifetime, KSAK (32 octets), z (128 octets), run_seed, message. Draws from "
            "HMAC_DRBG(run_seed), in order: challenge_nonce (32), device_ikm (32), pkg_ikm_e (32), SSV (16: "
            "random_bits(128)), j (32 per attempt: RandomRange(1, q)). Computed: KPAK, Z, the messages, the "
            "log, the per-role transcript, the identifier (spec 10.4.2), v's HMAC_DRBG and its outputs (10.4.3), "
            "v, PVT, HS input and HS, SSK, (identifier + z)^-1 mod q and the RSK, the 354-octet key (10.4.4), "
            "[b]P + Z and the pairing <[b]P + Z, RSK> (= g), the SAKKE encapsulation (r, R, g^r, mask, H), "
            "the decapsulation (w, SSV, TEST), the ECCSI signature (j, J, r, HE input, HE, s', s) and the "
            "verifier's Y and J. Operation 'check-key' (invalid): check_key(KPAK, Z, identity, key) of spec "
            "10.4.6 MUST raise 'error'."),
        "parameters": {"eccsi_curve": "P-256", "hash": "SHA-256", "sakke_parameters": PS1.name,
                       "key_bytes": ie.KEY_BYTES, "v_personalization": ie.V_PERSONALIZATION.decode("ascii")},
        "notes": NOTES,
        "vectors": [*runs, *_negatives(runs[0], runs[1])],
    }


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
