"""Vector family ``rfc6507``: RFC 6507 Appendix A, ECCSI on P-256 with SHA-256
(specs/sakke_eccsi.md sections 4 and 9).

``vectors/rfc6507.json`` is transcribed, not generated: :func:`transcribe`
copies the values of the project's checked reference set
``reference-vectors/rfc6507_eccsi_vectors.json`` (parsed by script from the
RFC text, never retyped; hex lower-cased), and the file is pinned by its
digest.  One vector, ``A``, grouped by step as the appendix is:

* ``kms`` (section 4.2): KSAK chosen, KPAK = [KSAK]G computed;
* ``identifier`` (RFC 6509 section 3.2): period and URI chosen, ID computed;
* ``construct`` (5.1.1): v chosen; PVT, the HS input, HS and SSK computed;
* ``validate`` (5.1.2): HS computed again by the signer, who checks
  KPAK = [SSK]G - [HS]PVT;
* ``sign`` (5.2.1): M and j chosen; J, r, the HE input, HE, s', s and the
  signature computed;
* ``verify`` (5.2.2): HS, the HE input, HE, Y, J and Jx computed.

:func:`verify_vector` recomputes every value with :mod:`protocols.schemes.eccsi`
(``kms_from_ksak``, ``construct_ssk_pvt_with_v``, ``ValidateSsk``,
``sign_with_j``, ``verify_trace``) and once more through the injected
randomness (``KeyGen``, ``ConstructSskPvt``, ``Sign`` fed the 32-octet draws
that make ``random_range(rng, 1, q)`` return KSAK, v and j); any difference
is a ``VectorMismatchError`` naming the field (e.g. ``sign.HE``).

The group helpers below (:func:`group`, :func:`expect_group`,
:class:`Recorder`) are shared with the ``rfc6508`` and ``sakke_eccsi`` families.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.schemes import eccsi
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    field,
    hexint,
    int_field,
    recompute,
    str_field,
)
from protocols.system.vectorsets._fields import reference_hex as _hex

PROTOCOL = "rfc6507"
SUITE = "ECCSI-P256-SHA256"
FILE = "rfc6507.json"

# --------------------------------------------------------------------------
# Helpers shared by the SAKKE / ECCSI families


def group(vector: Mapping[str, Any], name: str, keys: Iterable[str]) -> Mapping[str, Any]:
    """The object ``vector[name]``, which must hold exactly ``keys``."""
    value = field(vector, name)
    wanted = set(keys)
    if not isinstance(value, dict) or set(value) != wanted:
        raise VectorMismatchError(f"field {name!r} must be an object with exactly {sorted(wanted)}", field=name)
    return value


def expect_group(vector: Mapping[str, Any], name: str, inputs: Iterable[str],
                 outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Check that ``vector[name]`` holds exactly ``inputs`` and ``outputs`` and
    that every output equals its stored value (a mismatch names ``name.key``)."""
    value = group(vector, name, (*tuple(inputs), *outputs))
    for key, computed in outputs.items():
        expect(f"{name}.{key}", value[key], computed)
    return value


class Recorder:
    """A seeded HMAC_DRBG that records every random_bytes call as
    ``{"name": label, "hex": ...}``; the caller sets :attr:`label` before each
    step that draws (specs/conventions.md section 4.3: draws by name, in order)."""

    def __init__(self, seed: str) -> None:
        self.drbg = HmacDrbg.from_seed(seed)
        self.draws: list[dict[str, str]] = []
        self.label = "draw"

    def random_bytes(self, n: int) -> bytes:
        out = self.drbg.random_bytes(n)
        self.draws.append({"name": self.label, "hex": out.hex()})
        return out


def scalar_draw(value: int) -> bytes:
    """The one 32-octet draw that makes ``random_range(rng, 1, q)`` return
    ``value`` (specs/conventions.md 3.2: low + the draw read big-endian)."""
    return (value - 1).to_bytes(eccsi.N, "big")


# --------------------------------------------------------------------------
# The Appendix A vector

POINT = eccsi.POINT_BYTES
KMS = ("KSAK",)
IDENTIFIER = ("period", "uri")
CONSTRUCT = ("v",)
SIGN = ("M",  "j")


def _scalar(group_value: Mapping[str, Any], name: str, where: str) -> int:
    value = int_field(group_value, name, max_bits=256)
    if not 0 < value < eccsi.q:
        raise VectorMismatchError(f"field '{where}.{name}' must lie in [1, q)", field=f"{where}.{name}")
    return value


def appendix_a_outputs(v: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Every computed value of the vector, from its chosen values, by the
    reference code (RFC 6507 sections 4.2, 5.1.1, 5.1.2, 5.2.1, 5.2.2)."""
    KSAK = _scalar(group(v, "kms", (*KMS, "KPAK")), "KSAK", "kms")
    ident = group(v, "identifier", (*IDENTIFIER, "ID"))
    identifier = recompute("identifier", lambda: eccsi.Identifier(
        str_field(ident, "period", max_len=16), str_field(ident, "uri", max_len=eccsi.MAX_URI_BYTES)))
    ID = identifier.encode()
    construct = group(v, "construct", (*CONSTRUCT, "PVT", "HS_input", "HS", "SSK"))
    v_scalar = _scalar(construct, "v", "construct")
    sign = group(v, "sign", (*SIGN, "J", "r", "HE_input", "HE", "s_prime", "s", "signature"))
    M = bytes_field(sign, "M", max_len=eccsi.MAX_MESSAGE_BYTES)
    j = _scalar(sign, "j", "sign")

    kms = recompute("kms.KPAK", lambda: eccsi.kms_from_ksak(KSAK))                         # 4.2
    issued = recompute("construct", lambda: eccsi.construct_ssk_pvt_with_v(kms, ID, v_scalar))  # 5.1.1
    key = recompute("validate", lambda: eccsi.ValidateSsk(kms.KPAK, ID, issued.SSK, issued.PVT))  # 5.1.2
    trace = recompute("sign", lambda: eccsi.sign_with_j(key, M, j))                         # 5.2.1
    check = recompute("verify", lambda: eccsi.verify_trace(kms.KPAK, ID, M, trace.signature))  # 5.2.2
    # Through the injected randomness: the draws that make RandomRange(1, q) give KSAK, v, j.
    kms2 = recompute("kms.KSAK", lambda: eccsi.KeyGen(ReplayRandom([scalar_draw(KSAK)])))
    issued2 = recompute("construct.v", lambda: eccsi.ConstructSskPvt(kms2, ID, ReplayRandom([scalar_draw(v_scalar)])))
    signature2 = recompute("sign.j", lambda: eccsi.Sign(key, M, ReplayRandom([scalar_draw(j)])))
    expect("kms.KPAK", kms2.KPAK.hex(), kms.KPAK.hex())
    expect("construct.SSK", (issued2.SSK + issued2.PVT).hex(), (issued.SSK + issued.PVT).hex())
    expect("sign.signature", signature2.hex(), trace.signature.hex())
    hs_input = eccsi.hs_input(kms.KPAK, ID, issued.PVT)
    he_input = eccsi.he_input(key.HS, trace.r, M)
    J_point = eccsi.decode_point(check.J, "J")
    return {
        "kms": {"KPAK": kms.KPAK.hex()},
        "identifier": {"ID": ID.hex()},
        "construct": {"PVT": issued.PVT.hex(), "HS_input": hs_input.hex(),
                      "HS": eccsi.compute_HS(kms.KPAK, ID, issued.PVT).hex(), "SSK": issued.SSK.hex()},
        "validate": {"HS": key.HS.hex()},
        "sign": {"J": trace.J.hex(), "r": eccsi.I2OSP_N(trace.r).hex(), "HE_input": he_input.hex(),
                 "HE": trace.HE.hex(), "s_prime": eccsi.I2OSP_N(trace.s_prime).hex(),
                 "s": eccsi.I2OSP_N(trace.s).hex(), "signature": trace.signature.hex()},
        "verify": {"HS": check.HS.hex(), "HE_input": eccsi.he_input(check.HS, trace.r, M).hex(),
                   "HE": check.HE.hex(), "Y": check.Y.hex(), "J": check.J.hex(),
                   "Jx": eccsi.I2OSP_N(int(J_point.x)).hex()},
    }


INPUTS = {"kms": KMS, "identifier": IDENTIFIER, "construct": CONSTRUCT, "validate": (), "sign": SIGN,
          "verify": ()}
TOP = ("name", "operation", "section", "origin", *INPUTS)


def _appendix_a(v: Mapping[str, Any]) -> None:
    if set(v) != set(TOP):
        raise VectorMismatchError(f"the vector must hold exactly {sorted(TOP)}")
    expect("section", str_field(v, "section"), "Appendix A")
    str_field(v, "origin")
    for name, outputs in appendix_a_outputs(v).items():
        expect_group(v, name, INPUTS[name], outputs)


OPERATIONS = {"eccsi-appendix-a": _appendix_a}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# --------------------------------------------------------------------------
# Transcription from the shared reference set


def transcribe(reference: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope of ``vectors/rfc6507.json`` from
    ``reference-vectors/rfc6507_eccsi_vectors.json``: every value copied
    (lower-cased), KSAK, v and j as minimal hex; the vector must verify."""
    kms, ssk, sig, ver = (reference[k] for k in ("kms", "ssk_pvt_construction", "signing", "verification"))
    vector = {
        "name": "A",
        "operation": "eccsi-appendix-a",
        "section": "Appendix A",
        "origin": "RFC 6507 Appendix A 'Test Data', transcribed; reproduced value for value",
        "kms": {"KSAK": hexint(int(kms["KSAK"], 16)), "KPAK": _hex(kms["KPAK"])},
        "identifier": {"period": "2011-02", "uri": "tel:+447700900123", "ID": _hex(reference["signer_id"]["ID"])},
        "construct": {"v": hexint(int(ssk["v"], 16)), "PVT": _hex(ssk["PVT"]),
                      "HS_input": _hex(ssk["HS_hash_input_G_KPAK_ID_PVT"]), "HS": _hex(ssk["HS"]),
                      "SSK": _hex(ssk["SSK"])},
        "validate": {"HS": _hex(ssk["HS"])},
        "sign": {"M": _hex(sig["M"]), "j": hexint(int(sig["j"], 16)), "J": _hex(sig["J"]), "r": _hex(sig["r"]),
                 "HE_input": _hex(sig["HE_hash_input_HS_r_M"]), "HE": _hex(sig["HE"]),
                 "s_prime": _hex(sig["s_prime"]), "s": _hex(sig["s"]), "signature": _hex(sig["Signature"])},
        "verify": {"HS": _hex(ssk["HS"]), "HE_input": _hex(sig["HE_hash_input_HS_r_M"]), "HE": _hex(sig["HE"]),
                   "Y": _hex(ver["Y"]), "J": _hex(ver["J"]), "Jx": _hex(ver["Jx"])},
    }
    if reference["signer_id"]["ID_as_printed"] != "2011-02\\0tel:+447700900123\\0":
        raise VectorMismatchError("the reference identifier is not the one transcribed")
    params = reference["parameters"]
    envelope: dict[str, Any] = {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("RFC 6507 (M. Groves, 'Elliptic Curve-Based Certificateless Signatures for Identity-Based "
                   "Encryption (ECCSI)', February 2012), Appendix A 'Test Data', as checked into "
                   "reference-vectors/rfc6507_eccsi_vectors.json (parsed by script from the RFC Editor's plain "
                   "text); identifier form RFC 6509 section 3.2"),
        "generated_by": ("transcribed by protocols.system.vectorsets.rfc6507.transcribe from "
                         "reference-vectors/rfc6507_eccsi_vectors.json (values copied by script, never retyped; "
                         "hex lower-cased; KSAK, v, j as minimal hex)"),
        "description": ("RFC 6507 known answers on NIST P-256 with SHA-256: the KMS's KPAK from KSAK, the SSK and "
                        "PVT from v with the HS input, the signer's validation, the signature from j with the HE "
                        "input, and the verifier's HS, HE, Y, J and Jx. Byte strings are lower-case hex; points "
                        "0x04 || x || y (65 octets); r, s, s', HS, HE, SSK, Jx 32 octets."),
        "parameters": {"curve": "P-256", "hash": "SHA-256", "n": params["n"], "N": params["N"],
                       "p": _hex(params["p"]), "B": _hex(params["B"]), "q": _hex(params["q"]),
                       "G": _hex(params["G"])},
        "vectors": [vector],
    }
    for item in envelope["vectors"]:
        verify_vector(item)
    _check_parameters(envelope["parameters"])
    return envelope


def _check_parameters(parameters: Mapping[str, Any]) -> None:
    """The envelope's parameters are the code's (RFC 6507 4.1, P-256)."""
    expect("parameters.p", parameters["p"], eccsi.I2OSP_N(eccsi.p).hex())
    expect("parameters.B", parameters["B"], eccsi.I2OSP_N(eccsi.B).hex())
    expect("parameters.q", parameters["q"], eccsi.I2OSP_N(eccsi.q).hex())
    expect("parameters.G", parameters["G"], eccsi.encode_point(eccsi.G()).hex())
    expect("parameters.N", parameters["N"], eccsi.N)


PINNED_SHA256 = "b9d2fc059c426509d47e5283720c38276e063babeb8f55d0a67b2bbb609e5665"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
