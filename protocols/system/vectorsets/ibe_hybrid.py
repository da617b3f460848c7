"""Vector family ``ibe-hybrid`` / ``bf-rfc5091``: hybrid encryption to an identity with
RFC 5091 BF as the KEM and ChaCha20-Poly1305 (specs/ibe.md sections 3.13 and 4.4; format
in section 3.13.4), generated from fixed HMAC_DRBG seeds.

One vector is one step of one role: ``extract`` (PKG: S_id and its DER key block),
``seal`` (sender: every draw, every intermediate of BFencrypt, the AEAD's key, nonce,
associated data, ciphertext and tag, the envelope) and ``open`` (device: the
decapsulation's intermediates and the plaintext, or the refusal).  Every random value is
in ``draws`` (one entry per random_bytes call, in order: ``key`` then ``rho``), so a
vendor reproduces ``seal`` without a DRBG; ``seed`` names the HMAC_DRBG whose output the
draws are.  An invalid vector (``result: invalid``) holds only the step's inputs and must
be refused with exactly the error it names.

The (BB1) scheme of RFC 5091 is not a hybrid suite: only BF is (specs/ibe.md 3.13).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from protocols.errors import VectorMismatchError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import RandomSource, ReplayRandom
from protocols.primitives.supersingular import Canonical, Fp2, Pairing1, Point, PointMultiply
from protocols.schemes import bf
from protocols.schemes import ibe_hybrid as hy
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    UINT64,
    role_vector,
    bytes_field,
    check_result,
    dispatch,
    expect_outputs,
    hexint,
    int_field,
    list_field,
    small_int_field,
    str_field,
    vector_result,
)

PROTOCOL = "ibe-hybrid"
SUITE = hy.RFC5091_SUITE
FILE = "ibe_hybrid.json"
SEED = "usapp-vectors/ibe-hybrid/"
SETUP_SEED = SEED + "setup"
LEVEL = 2048
TAG_BYTES = 16
COMMON = ("name", "operation", "role", "result", "flags", "error", "comment")

NOTES = {
    "Valid": "the step succeeds; every output field must be reproduced byte for byte",
    "Malformed": "the envelope is not the CBOR map of specs/ibe.md 4.4 (conventions section 2.3)",
    "Truncated": "the input is one byte (or more) shorter than a well-formed one",
    "TrailingBytes": "a well-formed input with one byte appended",
    "NonCanonical": "a CBOR item with a longer head than the shortest (conventions section 2.3)",
    "WrongVersion": "the envelope's version is 2, not 1",
    "WrongSuite": "the envelope names another suite than the recipient's",
    "WrongEpoch": "the device expects another key epoch than the envelope's",
    "OutOfRange": "an integer outside its range: an epoch >= 2^32, or a coordinate of U not below p",
    "WrongIdentity": "the envelope is for another identity, or its header was rewritten to the device's",
    "MalformedEncapsulation": "the DER BFCiphertextBlock inside the envelope is malformed",
    "InvalidPoint": "U is not a point of the curve",
    "WrongSubgroup": "U is a point of the curve outside the subgroup of order q",
    "WrongLength": "V is not hashlen octets",
    "TamperedEncapsulation": "one bit of V or W flipped: BFdecrypt step 9 fails",
    "WrongKeyLength": "a consistent BF ciphertext of a 16-byte key instead of a 32-byte one",
    "TamperedCiphertext": "one bit of the AEAD ciphertext (not the tag) flipped",
    "TamperedTag": "one bit of the AEAD tag flipped, or the AEAD ciphertext shorter than the tag",
    "TamperedAad": "the caller's associated data differs from the sealer's",
    "EmptyIdentity": "the sender is asked to seal to the empty identity",
}


# --- reading fields -----------------------------------------------------------------------------

MAX_DER_BYTES = 2048
"""Longest DER of RFC 5091 public parameters or a private key read (a 1536-bit p takes about 1 KiB)."""


def _params(v: Mapping[str, Any]) -> bf.BFPublicParameters:
    return bf.BFPublicParameters.from_der(bytes_field(v, "public_parameters", max_len=MAX_DER_BYTES))


def _recipient(v: Mapping[str, Any], params: bf.BFPublicParameters) -> hy.Rfc5091Recipient:
    key = bf.BFPrivateKey.from_der(bytes_field(v, "private_key", max_len=MAX_DER_BYTES), params)
    return hy.Rfc5091Recipient(params, bytes_field(v, "identity"), key)


def _point(P: Point) -> dict[str, str]:
    return {"x": hexint(P.x), "y": hexint(P.y)}


def _fp2(value: Fp2) -> dict[str, str]:
    return {"a0": hexint(value.a0), "a1": hexint(value.a1)}


def _draws(v: Mapping[str, Any]) -> list[bytes]:
    items = list_field(v, "draws")
    if not all(isinstance(d, dict) and set(d) == {"name", "hex"} for d in items):
        raise VectorMismatchError("field 'draws' must be a list of {name, hex}")
    names = [d["name"] for d in items]
    if not names or names[0] != "key" or any(name != "rho" for name in names[1:]) or len(names) < 2:
        raise VectorMismatchError("field 'draws' must name one 'key' draw, then one or more 'rho' draws")
    return [bytes_field(d, "hex") for d in items]


class _Recorder:
    """Wraps a seeded HMAC_DRBG and records every random_bytes call: the first is the AEAD key,
    the others are rho (specs/ibe.md 3.13.1)."""

    def __init__(self, seed: str) -> None:
        self.drbg = HmacDrbg.from_seed(seed)
        self.draws: list[dict[str, str]] = []

    def random_bytes(self, n: int) -> bytes:
        out = self.drbg.random_bytes(n)
        self.draws.append({"name": "rho" if self.draws else "key", "hex": out.hex()})
        return out


# --- the steps, each returning (inputs, outputs) or raising the step's own error -----------------

def _bf_trace(params: bf.BFPublicParameters, identity: bytes, m: bytes, rho: bytes) -> dict[str, Any]:
    """The intermediates of BFencrypt_with_rho (RFC 5091 5.4.1 steps 2-12, specs/ibe.md 3.5.4)."""
    E, H = params.curve, params.hashfcn
    Q_id = bf.BFderivePubl(params, identity)
    t = H(m)
    l = bf.HashToRange(rho + t, E.q, H)
    U = PointMultiply(E, l, params.P)
    theta = Pairing1(E, params.P_pub, Q_id)
    z = Canonical(E, 0, theta ** l)
    w = H(z)
    return {"Q_id": _point(Q_id), "t": t.hex(), "l": hexint(l), "U": _point(U), "theta": _fp2(theta),
            "theta_l": _fp2(theta ** l), "z": z.hex(), "w": w.hex(), "V": bf._xor(w, rho).hex(),
            "W": bf._xor(bf.HashBytes(len(m), rho, H), m).hex()}


def _op_extract(v: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    params = _params(v)
    identity = bytes_field(v, "identity")
    key = bf.BFextractPriv(params, bf.BFMasterSecret(int_field(v, "master_secret")), identity)
    return ("public_parameters", "master_secret", "identity"), {
        "Q_id": _point(bf.BFderivePubl(params, identity)), "S_id": _point(key.S_id),
        "private_key": key.to_der().hex()}


SEAL_INPUTS = ("public_parameters", "identity", "epoch", "plaintext", "aad")


def _seal(v: Mapping[str, Any], rng: RandomSource) -> bytes:
    return hy.seal(hy.Rfc5091Sender(_params(v)), bytes_field(v, "identity"), small_int_field(v, "epoch", low=-UINT64, high=UINT64),
                   bytes_field(v, "plaintext"), bytes_field(v, "aad"), rng)


def _op_seal(v: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    if vector_result(v) == "invalid":  # refused before any draw: an empty ReplayRandom
        _seal(v, ReplayRandom([]))
        return SEAL_INPUTS, {}
    draws = _draws(v)
    envelope = _seal(v, ReplayRandom(list(draws)))
    recorder = _Recorder(str_field(v, "seed"))
    if _seal(v, recorder) != envelope or recorder.draws != list_field(v, "draws"):
        raise VectorMismatchError("field 'draws' is not what HMAC_DRBG(seed) yields")
    params, identity = _params(v), bytes_field(v, "identity")
    key, rho = draws[0], draws[-1]
    trace = _bf_trace(params, identity, key, rho)
    enc = bf.BFencrypt_with_rho(params, identity, key, rho).to_der()
    header = {1: hy.VERSION, 2: SUITE, 3: identity, 4: small_int_field(v, "epoch", low=-UINT64, high=UINT64), 5: enc}
    aad = hy._aad(header, bytes_field(v, "aad"))
    sealed = ChaCha20Poly1305(key).encrypt(hy.NONCE, bytes_field(v, "plaintext"), aad)
    return (*SEAL_INPUTS, "seed", "draws"), {
        "kem_key": key.hex(), "rho": rho.hex(), **trace, "enc": enc.hex(), "header": cbor.encode(header).hex(),
        "aead_nonce": hy.NONCE.hex(), "aead_aad": aad.hex(), "aead_ciphertext": sealed[:-TAG_BYTES].hex(),
        "aead_tag": sealed[-TAG_BYTES:].hex(), "envelope": envelope.hex()}


OPEN_INPUTS = ("public_parameters", "identity", "private_key", "epoch", "aad", "envelope")


def _op_open(v: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    params = _params(v)
    recipient = _recipient(v, params)
    plaintext = hy.open_envelope(recipient, bytes_field(v, "envelope"), small_int_field(v, "epoch", low=-UINT64, high=UINT64),
                                 bytes_field(v, "aad"))
    if vector_result(v) == "invalid":
        return OPEN_INPUTS, {}
    # the decapsulation's intermediates (RFC 5091 5.5.1, specs/ibe.md 3.5.5), for a vendor's debugging
    E, H = params.curve, params.hashfcn
    enc = cbor.decode(bytes_field(v, "envelope"))[5]
    c = bf.BFCiphertext.from_der(enc, params)
    theta = Pairing1(E, c.U, recipient.key.S_id)
    rho = bf._xor(H(Canonical(E, 0, theta)), c.V)
    key = bf._xor(bf.HashBytes(len(c.W), rho, H), c.W)
    t = H(key)
    return OPEN_INPUTS, {"enc": enc.hex(), "theta": _fp2(theta), "rho": rho.hex(), "kem_key": key.hex(),
                         "t": t.hex(), "l": hexint(bf.HashToRange(rho + t, E.q, H)),
                         "plaintext": plaintext.hex()}


OPS: dict[str, Callable[[Mapping[str, Any]], tuple[tuple[str, ...], dict[str, Any]]]] = {
    "extract": _op_extract, "seal": _op_seal, "open": _op_open}
ROLES = {"extract": "pkg", "seal": "sender", "open": "device"}
INVALID_INPUTS = {"seal": SEAL_INPUTS, "open": OPEN_INPUTS}


def _checked(operation: str) -> Callable[[Mapping[str, Any]], None]:
    def run(v: Mapping[str, Any]) -> None:
        if str_field(v, "role") != ROLES[operation]:
            raise VectorMismatchError(f"field 'role' must be {ROLES[operation]!r}")
        flags = list_field(v, "flags")
        if not flags or any(f not in NOTES for f in flags):
            raise VectorMismatchError("field 'flags' must name flags documented in the file's notes")
        if vector_result(v) == "invalid":
            if operation not in INVALID_INPUTS:
                raise VectorMismatchError(f"field 'result': {operation} has no invalid vectors")
            for key in v:
                if key not in (*COMMON, *INVALID_INPUTS[operation]):
                    raise VectorMismatchError(f"field {key!r} is not an input of an invalid vector")
            check_result(v, lambda: OPS[operation](v))
            return
        outcome: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        check_result(v, lambda: outcome.append(OPS[operation](v)))
        inputs, outputs = outcome[0]
        expect_outputs(v, outputs, (*COMMON, *inputs))
    return run


OPERATIONS = {name: _checked(name) for name in OPS}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# --- generation ---------------------------------------------------------------------------------

def _vector(name: str, operation: str, inputs: dict[str, Any], result: str = "valid",
            flags: tuple[str, ...] = ("Valid",), error: str | None = None,
            comment: str | None = None) -> dict[str, Any]:
    outputs = (lambda vector: OPS[operation](vector)[1]) if result == "valid" else None
    v = role_vector(name, operation, ROLES[operation], inputs, outputs, result, flags, error, comment)
    _checked(operation)(v)  # every generated vector verifies; an invalid one is refused with its error
    return v


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


def _rewrite(envelope: bytes, **changes: Any) -> bytes:
    """The envelope re-encoded with some of its entries replaced (keys k1..k6)."""
    message = cbor.decode(envelope)
    for key, value in changes.items():
        message[int(key[1:])] = value
    return cbor.encode(message)


def _with_ciphertext(params: bf.BFPublicParameters, der: bytes, **changes: Any) -> bytes:
    """A BFCiphertextBlock DER with U, V or W replaced (the encoder does not validate)."""
    c = bf.BFCiphertext.from_der(der, params)
    return bf.BFCiphertext(changes.get("U", c.U), changes.get("V", c.V), changes.get("W", c.W)).to_der()


IDENTITIES = (b"usapp-id-v1|serial=SM-0001|role=meter|epoch=1",
              b"usapp-id-v1|serial=SM-0002|role=meter|epoch=1",
              bytes(range(256)))
SEALS = ((0, b"", b"", 0),
         (1, b"disconnect meter SM-0002 at 12:00", b"hdr", 1),
         (2, bytes(range(100)), b"\x00" * 5, (1 << 32) - 1))


def build() -> dict[str, Any]:
    params, master = bf.BFsetup(LEVEL, HmacDrbg.from_seed(SETUP_SEED))
    public = params.to_der().hex()
    s = hexint(master.s)
    vectors: list[dict[str, Any]] = []
    keys: list[str] = []
    for i, identity in enumerate(IDENTITIES):
        vectors.append(_vector(f"extract-{i}", "extract", {"public_parameters": public, "master_secret": s,
                                                           "identity": identity.hex()}))
        keys.append(vectors[-1]["private_key"])
    seals: list[dict[str, Any]] = []
    for i, (who, plaintext, aad, epoch) in enumerate(SEALS):
        seed = SEED + f"seal-{i}"
        recorder = _Recorder(seed)
        hy.seal(hy.Rfc5091Sender(params), IDENTITIES[who], epoch, plaintext, aad, recorder)
        seals.append(_vector(f"seal-{i}", "seal", {
            "public_parameters": public, "identity": IDENTITIES[who].hex(), "epoch": epoch,
            "plaintext": plaintext.hex(), "aad": aad.hex(), "seed": seed, "draws": recorder.draws}))
        vectors.append(seals[-1])
    for i, (who, _, aad, epoch) in enumerate(SEALS):
        vectors.append(_vector(f"open-{i}", "open", {
            "public_parameters": public, "identity": IDENTITIES[who].hex(), "private_key": keys[who],
            "epoch": epoch, "aad": aad.hex(), "envelope": seals[i]["envelope"]}))
    vectors.extend(_invalid_seals(public))
    vectors.extend(_invalid_opens(params, seals[1], keys))
    return {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("generated by the USaPP reference implementation; the envelope is specs/ibe.md section 4.4, "
                   "its RFC 5091 KEM section 3.13, BF (RFC 5091) sections 3.4 and 3.5"),
        "generated_by": (f"usapp vectors generate (HMAC_DRBG SHA-256 from_seed; public parameters from "
                         f"BFsetup({LEVEL}, from_seed({SETUP_SEED!r})), section 3.5.1; seal draws from seeds "
                         f"{SEED}seal-<i>)"),
        "description": ("Hybrid encryption to an identity with RFC 5091 BF as the KEM and ChaCha20-Poly1305 "
                        "(specs/ibe.md 3.13): key extraction, sealing with every draw (key, rho) and every "
                        "intermediate of BFencrypt and of the AEAD, opening with the decapsulation's "
                        "intermediates, and invalid envelopes and requests with the spec's error."),
        "parameters": {"level": LEVEL, "hashfcn": params.hashfcn.oid, "p": hexint(params.curve.p),
                       "q": hexint(params.curve.q), "P": _point(params.P), "P_pub": _point(params.P_pub)},
        "notes": NOTES,
        "vectors": vectors,
    }


def _invalid_seals(public: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"public_parameters": public, "identity": IDENTITIES[0].hex(), "epoch": 0,
                            "plaintext": "00", "aad": ""}
    cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        ("empty-identity", {"identity": ""}, ("EmptyIdentity",)),
        ("epoch-2^32", {"epoch": 1 << 32}, ("OutOfRange",)),
        ("epoch-negative", {"epoch": -1}, ("OutOfRange",))]
    return [_vector(f"seal-invalid-{label}", "seal", {**base, **change}, "invalid", flags, "ParameterError")
            for label, change, flags in cases]


def _invalid_opens(params: bf.BFPublicParameters, seal: dict[str, Any],
                   keys: list[str]) -> list[dict[str, Any]]:
    """Refusals of the device for seal-1 (identity 1, epoch 1, aad "hdr")."""
    env = bytes.fromhex(seal["envelope"])
    enc = bytes.fromhex(seal["enc"])
    base = {"public_parameters": params.to_der().hex(), "identity": seal["identity"], "private_key": keys[1],
            "epoch": seal["epoch"], "aad": seal["aad"], "envelope": seal["envelope"]}
    c = bf.BFCiphertext.from_der(enc, params)
    E = params.curve
    # a consistent BF ciphertext of a 16-byte key (its rho from its own seed), under identity 1
    short = bf.BFencrypt(params, IDENTITIES[1], bytes(16), HmacDrbg.from_seed(SEED + "short-key")).to_der()
    aead_start = len(env) - len(bytes.fromhex(seal["aead_ciphertext"])) - TAG_BYTES
    if env[-TAG_BYTES:] != bytes.fromhex(seal["aead_tag"]):  # the AEAD output ends the envelope
        raise VectorMismatchError("the envelope does not end with the AEAD tag")
    noncanonical = env[:1] + b"\x01\x18\x01" + env[3:]  # version 1 with a two-byte head
    header0 = {"identity": IDENTITIES[0].hex(), "private_key": keys[0]}
    order3 = Point(0, 1)  # on y^2 = x^3 + 1, of order 3: outside the subgroup of order q
    cases: list[tuple[str, dict[str, Any], tuple[str, ...], str]] = [
        ("empty", {"envelope": ""}, ("Malformed", "Truncated"), "DecodeError"),
        ("truncated", {"envelope": env[:-1].hex()}, ("Malformed", "Truncated"), "DecodeError"),
        ("trailing-byte", {"envelope": (env + b"\x00").hex()}, ("Malformed", "TrailingBytes"), "DecodeError"),
        ("noncanonical-version", {"envelope": noncanonical.hex()}, ("Malformed", "NonCanonical"), "DecodeError"),
        ("missing-ciphertext", {"envelope": cbor.encode({k: val for k, val in cbor.decode(env).items()
                                                         if k != 6}).hex()}, ("Malformed",), "DecodeError"),
        ("version-2", {"envelope": _rewrite(env, k1=2).hex()}, ("WrongVersion",), "DecodeError"),
        ("wrong-suite", {"envelope": _rewrite(env, k2="usapp-bf-ibe-bls12381-v1").hex()}, ("WrongSuite",),
         "ParameterError"),
        ("wrong-epoch", {"epoch": seal["epoch"] + 1}, ("WrongEpoch",), "StateError"),
        ("header-epoch-2^32", {"envelope": _rewrite(env, k4=1 << 32).hex()}, ("WrongEpoch", "OutOfRange"),
         "StateError"),
        ("wrong-identity", header0, ("WrongIdentity",), "VerificationError"),
        ("header-identity-rewritten", {**header0, "envelope": _rewrite(env, k3=IDENTITIES[0]).hex()},
         ("WrongIdentity",), "VerificationError"),
        ("enc-truncated", {"envelope": _rewrite(env, k5=enc[:-1]).hex()}, ("MalformedEncapsulation", "Truncated"),
         "DecodeError"),
        ("enc-trailing-byte", {"envelope": _rewrite(env, k5=enc + b"\x00").hex()},
         ("MalformedEncapsulation", "TrailingBytes"), "DecodeError"),
        ("u-off-curve", {"envelope": _rewrite(env, k5=_with_ciphertext(
            params, enc, U=Point(c.U.x, (c.U.y + 1) % E.p))).hex()}, ("InvalidPoint",), "InvalidCiphertextError"),
        ("u-x-not-below-p", {"envelope": _rewrite(env, k5=_with_ciphertext(
            params, enc, U=Point(c.U.x + E.p, c.U.y))).hex()}, ("InvalidPoint", "OutOfRange"),
         "InvalidCiphertextError"),
        ("u-wrong-subgroup", {"envelope": _rewrite(env, k5=_with_ciphertext(params, enc, U=order3)).hex()},
         ("WrongSubgroup",), "InvalidCiphertextError"),
        ("v-short", {"envelope": _rewrite(env, k5=_with_ciphertext(params, enc, V=c.V[:-1])).hex()},
         ("WrongLength",), "InvalidCiphertextError"),
        ("v-bit-flipped", {"envelope": _rewrite(env, k5=_with_ciphertext(params, enc, V=_flip(c.V, 0))).hex()},
         ("TamperedEncapsulation",), "VerificationError"),
        ("w-bit-flipped", {"envelope": _rewrite(env, k5=_with_ciphertext(params, enc, W=_flip(c.W, 31))).hex()},
         ("TamperedEncapsulation",), "VerificationError"),
        ("short-key", {"envelope": _rewrite(env, k5=short).hex()}, ("WrongKeyLength",), "VerificationError"),
        ("aead-ciphertext-bit-flipped", {"envelope": _flip(env, aead_start).hex()}, ("TamperedCiphertext",),
         "VerificationError"),
        ("aead-tag-bit-flipped", {"envelope": _flip(env, len(env) - 1).hex()}, ("TamperedTag",),
         "VerificationError"),
        ("aead-shorter-than-tag", {"envelope": _rewrite(env, k6=env[-TAG_BYTES + 1:]).hex()},
         ("TamperedTag", "Truncated"), "VerificationError"),
        ("other-aad", {"aad": (bytes.fromhex(seal["aad"]) + b"x").hex()}, ("TamperedAad",), "VerificationError"),
    ]
    return [_vector(f"open-invalid-{label}", "open", {**base, **change}, "invalid", flags, error)
            for label, change, flags, error in cases]


FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector, build=build)
