"""Vector family ``rfc6508``: RFC 6508 Appendix A, SAKKE on RFC 6509 Appendix A
Parameter Set 1 (specs/sakke_eccsi.md sections 2, 3 and 9).

``vectors/rfc6508.json`` is transcribed, not generated: :func:`transcribe`
copies the values of the project's checked reference set
``reference-vectors/rfc6508_sakke_vectors.json`` (parsed by script from the
RFC texts, never retyped; hex lower-cased), and the file is pinned by its
digest.  Two vectors:

* ``A.HashToIntegerRange`` (section 5.1, the appendix's worked example):
  s chosen; A, h_0 .. h_4, v_1 .. v_4 and v mod q computed;
* ``A`` (sections 6.1 to 6.2.2), grouped by role and step: ``kms`` (6.1: z
  chosen, Z computed), ``identifier`` (RFC 6509 3.2: b), ``rsk`` (6.1.1: K_b,
  with the scalar (b + z)^-1 mod q that the RFC does not print),
  ``rsk_validation`` (6.1.2: [b]P + Z and <[b]P + Z, K_b> = g, not printed),
  ``sender`` (6.2.1: SSV chosen; SSV || b, r, R_(b,S), g^r, the mask, H, and
  the Encapsulated Data R_(b,S) || H, not printed as one string),
  ``receiver`` (6.2.2: w, SSV, r, TEST).  Values not printed by the RFC sit
  under ``computed_intermediates`` of their group.

:func:`verify_vector` recomputes every value with
:mod:`protocols.schemes.sakke` (``kms_from_z``, ``ExtractRSK``,
``ValidateRSK``, ``encapsulate_with_ssv``, ``decapsulate_trace``,
``hash_to_integer_range_trace``) and once more through the injected
randomness (``KeyGen`` fed the 128-octet draw of z - 2, ``Encapsulate`` the
16-octet SSV); a difference is a ``VectorMismatchError`` naming the field
(e.g. ``sender.H``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.errors import VectorMismatchError
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.primitives.sakke_curve import pairing, point_multiply
from protocols.schemes import eccsi, sakke
from protocols.system.vectorsets import VectorFamily
from protocols.system.vectorsets._fields import (
    bytes_field,
    dispatch,
    expect,
    hexint,
    int_field,
    list_field,
    recompute,
    str_field,
)
from protocols.system.vectorsets.rfc6507 import group
from protocols.system.vectorsets._fields import reference_hex as _hex

PROTOCOL = "rfc6508"
SUITE = "SAKKE-RFC6509-ParameterSet1"
FILE = "rfc6508.json"

L = PS1.L
SSV_BYTES = PS1.ssv_bytes


def fp(value: int) -> str:
    """An F_p element (or an integer below p) as L octets of hex (RFC 6508 section 4)."""
    return PS1.encode_fp(value).hex()


def z_draw(z: int) -> bytes:
    """The one 128-octet draw that makes ``random_range(rng, 2, q)`` return z
    (specs/conventions.md 3.2: the low 1022 bits of the draw, plus 2)."""
    return (z - 2).to_bytes(L, "big")


def point_xy(data: bytes) -> tuple[str, str]:
    """(x, y) of an encoded point as L-octet hex each."""
    return data[1:1 + L].hex(), data[1 + L:].hex()


def point_of(value: Mapping[str, Any], x: str, y: str, where: str) -> bytes:
    """The encoding 0x04 || x || y of two L-octet coordinates of a group."""
    return b"\x04" + bytes_field(value, x, size=L) + bytes_field(value, y, size=L)


def identifier_of(value: Mapping[str, Any]) -> bytes:
    """The RFC 6509 identifier period NUL uri NUL of a group's period and uri."""
    return recompute("identifier", lambda: eccsi.Identifier(
        str_field(value, "period", max_len=16), str_field(value, "uri", max_len=eccsi.MAX_URI_BYTES))).encode()


# --------------------------------------------------------------------------
# HashToIntegerRange (section 5.1)

HTIR_KEYS = ("name", "operation", "section", "origin", "s", "n", "A", "h", "v", "v_mod_q")


def _hash_to_integer_range(v: Mapping[str, Any]) -> None:
    if set(v) != set(HTIR_KEYS):
        raise VectorMismatchError(f"the vector must hold exactly {sorted(HTIR_KEYS)}")
    expect("section", str_field(v, "section"), "5.1, Appendix A")
    str_field(v, "origin")
    expect("n", str_field(v, "n"), "q")
    s = bytes_field(v, "s", max_len=sakke.MAX_ID_BYTES + SSV_BYTES)
    trace = recompute("s", lambda: sakke.hash_to_integer_range_trace(s, int(PS1.q), PS1))
    expect("A", bytes_field(v, "A"), trace.A)
    expect("h", list_field(v, "h", max_items=8), [h.hex() for h in trace.h])
    expect("v", list_field(v, "v", max_items=8), [part.hex() for part in trace.v_parts])
    expect("v_mod_q", bytes_field(v, "v_mod_q"), bytes.fromhex(fp(trace.v)))


# --------------------------------------------------------------------------
# The key exchange (sections 6.1 to 6.2.2)

KMS = ("z",)
IDENT = ("period", "uri")
SENDER = ("SSV",)
TOP = ("name", "operation", "section", "origin", "kms", "identifier", "rsk", "rsk_validation", "sender",
       "receiver")
INPUTS = {"kms": KMS, "identifier": IDENT, "rsk": (), "rsk_validation": (), "sender": SENDER, "receiver": ()}


def appendix_a_outputs(v: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every computed value of the ``A`` vector, from z, the identifier and the SSV."""
    z = int_field(group(v, "kms", (*KMS, "Zx", "Zy")), "z", max_bits=1024)
    ident = group(v, "identifier", (*IDENT, "b"))
    b = identifier_of(ident)
    sender = group(v, "sender", (*SENDER, "r_input", "r", "Rbx", "Rby", "g_r", "mask_input", "mask", "H",
                                 "computed_intermediates"))
    SSV = bytes_field(sender, "SSV", size=SSV_BYTES)

    kms = recompute("kms.z", lambda: sakke.kms_from_z(PS1, z))                            # 6.1
    Z = kms.public_key
    rsk = recompute("rsk", lambda: sakke.ExtractRSK(kms, b))                              # 6.1.1
    inverse = pow((int.from_bytes(b, "big") + z) % int(PS1.q), -1, int(PS1.q))
    if PS1.encode_point(point_multiply(PS1.p, inverse, PS1.P)) != rsk:
        raise VectorMismatchError("field 'rsk': K_b is not [(b + z)^-1]P", field="rsk")
    receiver = recompute("rsk_validation", lambda: sakke.ValidateRSK(PS1, Z, b, rsk))      # 6.1.2
    check = int(pairing(PS1.p, PS1.q, receiver.base, receiver.K))
    trace = recompute("sender", lambda: sakke.encapsulate_with_ssv(                        # 6.2.1
        PS1, Z, b, int.from_bytes(SSV, "big")))
    dec = recompute("receiver", lambda: sakke.decapsulate_trace(receiver, trace.encapsulated))  # 6.2.2
    # Through the injected randomness: z as one 128-octet draw of z - 2, the SSV as one 16-octet draw.
    kms2 = recompute("kms.z", lambda: sakke.KeyGen(PS1, ReplayRandom([z_draw(z)])))
    drawn = recompute("sender.SSV", lambda: sakke.Encapsulate(PS1, Z, b, ReplayRandom([SSV])))
    expect("kms.Zx", kms2.public_key.hex(), Z.hex())
    expect("sender.computed_intermediates.encapsulated", (drawn[0] + drawn[1]).hex(),
           (trace.SSV + trace.encapsulated).hex())
    Zx, Zy = point_xy(Z)
    Kx, Ky = point_xy(rsk)
    Rx, Ry = point_xy(trace.R)
    Tx, Ty = point_xy(dec.TEST)
    base = PS1.encode_point(receiver.base)
    return {
        "kms": {"Zx": Zx, "Zy": Zy},
        "identifier": {"b": b.hex()},
        "rsk": {"Kbx": Kx, "Kby": Ky, "computed_intermediates": {"inverse": fp(inverse)}},
        "rsk_validation": {"computed_intermediates": {
            "bP_plus_Z_x": point_xy(base)[0], "bP_plus_Z_y": point_xy(base)[1], "pairing": fp(check)}},
        "sender": {"r_input": (trace.SSV + b).hex(), "r": fp(trace.r), "Rbx": Rx, "Rby": Ry, "g_r": fp(trace.g_r),
                   "mask_input": fp(trace.g_r), "mask": trace.mask.to_bytes(SSV_BYTES, "big").hex(),
                   "H": trace.H.to_bytes(SSV_BYTES, "big").hex(),
                   "computed_intermediates": {"encapsulated": trace.encapsulated.hex()}},
        "receiver": {"w": fp(dec.w), "SSV": dec.SSV.hex(), "r": fp(dec.r), "TESTx": Tx, "TESTy": Ty},
    }


def _compare(v: Mapping[str, Any], name: str, outputs: Mapping[str, Any]) -> None:
    flat = {key: value for key, value in outputs.items() if key != "computed_intermediates"}
    keys = (*INPUTS[name], *flat, *(("computed_intermediates",) if "computed_intermediates" in outputs else ()))
    stored = group(v, name, keys)
    for key, value in flat.items():
        expect(f"{name}.{key}", stored[key], value)
    if "computed_intermediates" in outputs:
        inner = group(stored, "computed_intermediates", outputs["computed_intermediates"])
        for key, value in outputs["computed_intermediates"].items():
            expect(f"{name}.computed_intermediates.{key}", inner[key], value)


def _appendix_a(v: Mapping[str, Any]) -> None:
    if set(v) != set(TOP):
        raise VectorMismatchError(f"the vector must hold exactly {sorted(TOP)}")
    expect("section", str_field(v, "section"), "6, Appendix A")
    str_field(v, "origin")
    for name, outputs in appendix_a_outputs(v).items():
        _compare(v, name, outputs)


OPERATIONS = {"hash-to-integer-range": _hash_to_integer_range, "sakke-appendix-a": _appendix_a}


def verify_vector(vector: Mapping[str, Any]) -> None:
    dispatch(OPERATIONS, vector)


# --------------------------------------------------------------------------
# Transcription from the shared reference set


def transcribe(reference: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope of ``vectors/rfc6508.json`` from
    ``reference-vectors/rfc6508_sakke_vectors.json``: every value copied
    (lower-cased; z as minimal hex), the values the RFC does not print
    computed; every vector must verify."""
    kms, enc, rec, ex = (reference[k] for k in ("kms", "encapsulation", "receiver", "hash_to_integer_range_example"))
    params = reference["parameters_rfc6509_appendix_A_parameter_set_1"]
    htir = {
        "name": "A.HashToIntegerRange",
        "operation": "hash-to-integer-range",
        "section": "5.1, Appendix A",
        "origin": "RFC 6508 Appendix A, HashToIntegerRange(SSV || b, q, SHA-256) worked example, transcribed",
        "s": _hex(ex["M"]), "n": "q", "A": _hex(ex["A"]),
        "h": [_hex(ex[f"h{i}"]) for i in range(5)], "v": [_hex(ex[f"v{i}"]) for i in range(1, 5)],
        "v_mod_q": _hex(ex["v_mod_q"]),
    }
    z = int(kms["z"], 16)
    main: dict[str, Any] = {
        "name": "A",
        "operation": "sakke-appendix-a",
        "section": "6, Appendix A",
        "origin": ("RFC 6508 Appendix A 'Test Data' on RFC 6509 Appendix A Parameter Set 1, transcribed; values "
                   "under computed_intermediates are not printed by the RFC and were computed by the reference code"),
        "kms": {"z": hexint(z), "Zx": _hex(kms["Zx"]), "Zy": _hex(kms["Zy"])},
        "identifier": {"period": "2011-02", "uri": "tel:+447700900123", "b": _hex(enc["b"])},
        "rsk": {"Kbx": _hex(rec["Kbx"]), "Kby": _hex(rec["Kby"])},
        "rsk_validation": {},
        "sender": {"SSV": _hex(enc["SSV"]), "r_input": _hex(enc["r_hash_input_SSV_b"]), "r": _hex(enc["r"]),
                   "Rbx": _hex(enc["Rbx"]), "Rby": _hex(enc["Rby"]), "g_r": _hex(enc["g^r"]),
                   "mask_input": _hex(enc["mask_hash_input_g^r"]), "mask": _hex(enc["mask"]), "H": _hex(enc["H"])},
        "receiver": {"w": _hex(rec["w"]), "SSV": _hex(rec["SSV"]), "r": _hex(rec["r"]), "TESTx": _hex(rec["TESTx"]),
                     "TESTy": _hex(rec["TESTy"])},
    }
    if enc["b_meaning"] != "Identifier '2011-02\\0tel:+447700900123\\0' (RFC 6509 Section 3.2 format)":
        raise VectorMismatchError("the reference identifier is not the one transcribed")
    # The values the RFC does not print: computed by the reference code, compared for the printed ones.
    computed = appendix_a_outputs({**main, "sender": {**main["sender"], "computed_intermediates": {}}})
    main["rsk"]["computed_intermediates"] = computed["rsk"]["computed_intermediates"]
    main["rsk_validation"]["computed_intermediates"] = computed["rsk_validation"]["computed_intermediates"]
    main["sender"]["computed_intermediates"] = computed["sender"]["computed_intermediates"]
    envelope: dict[str, Any] = {
        "protocol": PROTOCOL,
        "suite": SUITE,
        "source": ("RFC 6508 (M. Groves, 'Sakai-Kasahara Key Encryption (SAKKE)', February 2012), Appendix A "
                   "'Test Data', with the public parameters of RFC 6509 Appendix A 'Parameter Set 1', as "
                   "checked into reference-vectors/rfc6508_sakke_vectors.json (parsed by script from the RFC "
                   "Editor's plain texts)"),
        "generated_by": ("transcribed by protocols.system.vectorsets.rfc6508.transcribe from "
                         "reference-vectors/rfc6508_sakke_vectors.json (values copied by script, never retyped; hex "
                         "lower-cased; z as minimal hex; computed_intermediates computed by the reference code)"),
        "description": ("RFC 6508 known answers on the 1024-bit supersingular curve y^2 = x^3 - 3x of RFC 6509 "
                        "Parameter Set 1 with SHA-256: the HashToIntegerRange example with every h_i and v_i; the "
                        "KMS Public Key Z from z, the RSK K_b, its validation, the Sender's r, R_(b,S), g^r, mask "
                        "and H from the SSV, and the Receiver's w, SSV, r and TEST. F_p elements and coordinates "
                        "are L = 128 octets of lower-case hex; the SSV, mask and H 16 octets."),
        "parameters": {"n": params["n"], "p": _hex(params["p"]), "q": _hex(params["q"]), "Px": _hex(params["Px"]),
                       "Py": _hex(params["Py"]), "g": _hex(params["g"]), "hash": "SHA-256", "L": L},
        "vectors": [htir, main],
    }
    _check_parameters(envelope["parameters"])
    for item in envelope["vectors"]:
        verify_vector(item)
    return envelope


def _check_parameters(parameters: Mapping[str, Any]) -> None:
    """The envelope's parameters are the code's Parameter Set 1."""
    for name, value in (("p", PS1.p), ("q", PS1.q), ("Px", PS1.Px), ("Py", PS1.Py), ("g", PS1.g)):
        expect(f"parameters.{name}", parameters[name], int(value).to_bytes(L, "big").hex())
    expect("parameters.n", parameters["n"], PS1.n)


PINNED_SHA256 = "9538353360f482e9a39b1b8f8c0a87e806f5bfad1059413d78ccbe535bf67d86"

FAMILY = VectorFamily(file=FILE, protocol=PROTOCOL, suite=SUITE, verify_vector=verify_vector,
                      pinned_sha256=PINNED_SHA256)
