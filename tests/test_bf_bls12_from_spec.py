"""An independent implementation of the BLS12-381 BF-IBE suite written from the spec text alone
(specs/ibe.md 4.1-4.3, 4.5.1-4.5.2, 4.8 and specs/bls12_381.md 4, 7; RandomNonzeroScalar and
RandomBelow of specs/conventions.md 3.2), checked against vectors/bf_bls12.json byte for byte.

It does not import protocols.schemes.bf_bls12 nor protocols.primitives: only hashlib and the
py-arkworks-bls12381 group operations (hash_to_curve, scalar multiplication, compressed encodings,
the pairing).  The pairing of specs/bls12_381.md section 7 is also computed here in plain Python
(Miller loop and final exponentiation), to pin that the binding's value is the cube of the optimal
ate pairing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import py_arkworks_bls12381 as ark
import pytest

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "bf_bls12.json").read_text())["vectors"]

P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
X = -0xD201000000010000  # the BLS parameter x of BLS12-381
DST_ID = b"USAPP-BF-IBE-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
DST_RHO = b"USAPP-BF-IBE-V01-CS01-H-RHO"
DST_MASK = b"USAPP-BF-IBE-V01-CS01-H-MASK"
DST_KEY = b"USAPP-BF-IBE-V01-CS01-H-KEY"
DST_POP = b"USAPP-BF-IBE-V01-CS01-DKG-POP"


class Refused(Exception):
    """A refusal, carrying the spec's error name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def vectors(operation: str, result: str = "valid") -> list[dict]:
    return [v for v in VECTORS if v["operation"] == operation and v.get("result", "valid") == result]


# --- RFC 9380 expand_message_xmd (section 5.3.1), SHA-256 -------------------------------------

def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    if len(dst) > 255:
        dst = hashlib.sha256(b"H2C-OVERSIZE-DST-" + dst).digest()
    ell = -(-length // 32)
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha256(bytes(64) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    b = [hashlib.sha256(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        b.append(hashlib.sha256(bytes(x ^ y for x, y in zip(b0, b[-1])) + bytes([i]) + dst_prime).digest())
    return b"".join(b)[:length]


def hash_to_scalar(msg: bytes, dst: bytes) -> int:
    return int.from_bytes(expand_message_xmd(msg, dst, 48), "big") % R


def lp(x: bytes) -> bytes:
    return len(x).to_bytes(2, "big") + x


def g1() -> ark.G1Point:
    return ark.G1Point()


def g2() -> ark.G2Point:
    return ark.G2Point()


def q_id(identity: bytes) -> ark.G1Point:
    return ark.G1Point.hash_to_curve(identity, DST_ID)


def gt_bytes(value: ark.GT) -> bytes:
    """specs/bls12_381.md 4.3: 12 F_p coefficients, 48 bytes little-endian each (arkworks' layout)."""
    raw = bytes.fromhex(str(value))
    assert len(raw) == 576
    return raw


def decode_g2(data: bytes) -> ark.G2Point:
    """specs/bls12_381.md 4.2: every fault a DecodeError; the identity refused."""
    if len(data) != 96 or not data[0] & 0x80:
        raise Refused("DecodeError")
    if data[0] & 0x40:
        raise Refused("DecodeError")  # identity (canonical or not): refused here
    try:
        return ark.G2Point.from_compressed_bytes(data)  # x < p, on the curve, in the subgroup
    except ValueError:
        raise Refused("DecodeError") from None


def decode_g1(data: bytes) -> ark.G1Point:
    if len(data) != 48 or not data[0] & 0x80 or data[0] & 0x40:
        raise Refused("DecodeError")
    try:
        return ark.G1Point.from_compressed_bytes(data)
    except ValueError:
        raise Refused("DecodeError") from None


def random_below(draws: list[bytes], bound: int) -> int:
    """conventions 3.2 RandomBelow(rng, bound) for a bound of 255 bits (r or r - 1): 32 bytes per
    attempt, big-endian, low 255 bits kept, rejected unless below the bound."""
    while True:
        x = int.from_bytes(draws.pop(0), "big") & ((1 << 255) - 1)
        if x < bound:
            return x


def random_nonzero_scalar(draws: list[bytes]) -> int:
    """specs/ibe.md 4.1: RandomNonzeroScalar(rng) = RandomRange(rng, 1, r) = 1 + RandomBelow(rng, r - 1)
    (never conventions' RandomScalar, which includes 0)."""
    return 1 + random_below(draws, R - 1)


# --- the KEM (specs/ibe.md 4.3) ------------------------------------------------------------------

def encapsulate(p_pub: bytes, identity: bytes, sigma: bytes) -> dict:
    rho = hash_to_scalar(sigma + lp(identity), DST_RHO)
    assert rho != 0
    u = (g2() * ark.Scalar(rho)).to_compressed_bytes()
    theta = gt_bytes(ark.GT.pairing(q_id(identity) * ark.Scalar(rho), decode_g2(p_pub)))
    mask = expand_message_xmd(theta + u + lp(identity), DST_MASK, 32)
    v = bytes(a ^ b for a, b in zip(sigma, mask))
    key = expand_message_xmd(sigma + u + v + lp(identity), DST_KEY, 32)
    return {"sigma": sigma.hex(), "rho": rho.to_bytes(32, "big").hex(), "theta": theta.hex(), "mask": mask.hex(),
            "U": u.hex(), "V": v.hex(), "enc": (u + v).hex(), "key": key.hex()}


def decapsulate(d_id: bytes, identity: bytes, enc: bytes) -> dict:
    if len(enc) != 128:
        raise Refused("DecodeError")
    u_bytes, v = enc[:96], enc[96:]
    u = decode_g2(u_bytes)
    theta = gt_bytes(ark.GT.pairing(decode_g1(d_id), u))
    mask = expand_message_xmd(theta + u_bytes + lp(identity), DST_MASK, 32)
    sigma = bytes(a ^ b for a, b in zip(v, mask))
    rho = hash_to_scalar(sigma + lp(identity), DST_RHO)
    if rho == 0 or (g2() * ark.Scalar(rho)).to_compressed_bytes() != u_bytes:
        raise Refused("VerificationError")
    key = expand_message_xmd(sigma + u_bytes + v + lp(identity), DST_KEY, 32)
    return {"sigma": sigma.hex(), "rho": rho.to_bytes(32, "big").hex(), "theta": theta.hex(), "mask": mask.hex(),
            "U": u_bytes.hex(), "V": v.hex(), "key": key.hex()}


def test_setup_and_extract_from_the_draws():
    (setup,) = vectors("setup")
    s = random_nonzero_scalar([bytes.fromhex(d["hex"]) for d in setup["draws"]])
    assert s.to_bytes(32, "big").hex() == setup["master_secret"]
    assert (g2() * ark.Scalar(s)).to_compressed_bytes().hex() == setup["p_pub"]
    for v in vectors("extract"):
        s = int(v["master_secret"], 16)
        identity = bytes.fromhex(v["identity"])
        assert q_id(identity).to_compressed_bytes().hex() == v["q_id"]
        assert (q_id(identity) * ark.Scalar(s)).to_compressed_bytes().hex() == v["d_id"]


def test_encapsulate_reproduces_u_v_and_the_key():
    cases = vectors("encapsulate")
    assert len(cases) == 4
    for v in cases:
        (sigma,) = [bytes.fromhex(d["hex"]) for d in v["draws"]]  # one draw: rho was never 0
        out = encapsulate(bytes.fromhex(v["p_pub"]), bytes.fromhex(v["identity"]), sigma)
        assert out == {k: v[k] for k in out}
        assert q_id(bytes.fromhex(v["identity"])).to_compressed_bytes().hex() == v["q_id"]


def test_decapsulate_reproduces_every_intermediate_and_refuses_every_invalid_vector():
    for v in vectors("decapsulate"):
        out = decapsulate(bytes.fromhex(v["d_id"]), bytes.fromhex(v["identity"]), bytes.fromhex(v["enc"]))
        assert out == {k: v[k] for k in out}
    invalid = vectors("decapsulate", "invalid")
    assert len(invalid) >= 10
    for v in invalid:
        with pytest.raises(Refused) as caught:
            decapsulate(bytes.fromhex(v["d_id"]), bytes.fromhex(v["identity"]), bytes.fromhex(v["enc"]))
        assert caught.value.name == v["error"], v["name"]


def test_dealing_from_the_draws():
    for v in vectors("deal"):
        draws = [bytes.fromhex(d["hex"]) for d in v["draws"]]
        t, nodes, j, context = v["threshold"], v["nodes"], v["dealer"], bytes.fromhex(v["context"])
        a = [random_nonzero_scalar(draws)] + [random_below(draws, R) for _ in range(t - 1)]
        k = random_nonzero_scalar(draws)
        assert not draws
        assert [x.to_bytes(32, "big").hex() for x in a] == v["coefficients"] and k.to_bytes(32, "big").hex() == v["k"]
        commitments = [(g2() * ark.Scalar(x)).to_compressed_bytes() for x in a]
        r_point = (g2() * ark.Scalar(k)).to_compressed_bytes()
        c = hash_to_scalar(lp(context) + t.to_bytes(2, "big") + len(nodes).to_bytes(2, "big")
                           + b"".join(i.to_bytes(32, "big") for i in nodes) + j.to_bytes(32, "big")
                           + commitments[0] + r_point, DST_POP)
        assert [x.hex() for x in commitments] == v["commitments"] and r_point.hex() == v["R"]
        assert c.to_bytes(32, "big").hex() == v["c"]
        assert ((k + c * a[0]) % R).to_bytes(32, "big").hex() == v["z"]
        shares = {str(i): (sum(x * pow(i, e, R) for e, x in enumerate(a)) % R).to_bytes(32, "big").hex()
                  for i in nodes}
        assert shares == v["shares"]


# --- specs/bls12_381.md section 7 in plain Python ------------------------------------------------

def f2mul(a, b):
    return (a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P


def f2add(a, b):
    return (a[0] + b[0]) % P, (a[1] + b[1]) % P


def f2sub(a, b):
    return (a[0] - b[0]) % P, (a[1] - b[1]) % P


def f2inv(a):
    n = pow(a[0] * a[0] + a[1] * a[1], P - 2, P)
    return a[0] * n % P, -a[1] * n % P


XI = (1, 1)  # v^3 = 1 + I


def f6mul(a, b):
    c = [(0, 0)] * 5
    for i in range(3):
        for j in range(3):
            c[i + j] = f2add(c[i + j], f2mul(a[i], b[j]))
    return (f2add(c[0], f2mul(XI, c[3])), f2add(c[1], f2mul(XI, c[4])), c[2])


def f6add(a, b):
    return tuple(f2add(x, y) for x, y in zip(a, b))


def f12mul(a, b):  # (a0 + a1 w)(b0 + b1 w), w^2 = v
    t0, t1 = f6mul(a[0], b[0]), f6mul(a[1], b[1])
    vt1 = (f2mul(XI, t1[2]), t1[0], t1[1])
    return f6add(t0, vt1), f6add(f6mul(a[0], b[1]), f6mul(a[1], b[0]))


def f12pow(a, e):
    out = (((1, 0), (0, 0), (0, 0)), ((0, 0),) * 3)
    for bit in bin(e)[2:]:
        out = f12mul(out, out)
        if bit == "1":
            out = f12mul(out, a)
    return out


def f12bytes(a):  # specs/bls12_381.md 4.3 order: c0.c0.c0, c0.c0.c1, ..., c1.c2.c1
    return b"".join(c.to_bytes(48, "little") for half in a for fp2 in half for c in fp2)


def line(t, lam, xp, yp):
    """The line through T with slope lam (on the twist), at P, times w^3 (an F_p^4 factor that the
    final exponentiation removes): (lam x_T - y_T) - lam x_P v + y_P v w."""
    return ((f2sub(f2mul(lam, t[0]), t[1]), (-lam[0] * xp % P, -lam[1] * xp % P), (0, 0)),
            ((0, 0), (yp % P, 0), (0, 0)))


def optimal_ate(p_aff, q_aff, exponent_factor=1):
    """f_{|x|,Q}(P), conjugated as x < 0, raised to exponent_factor (p^12 - 1) / r.  The untwist
    is (x', y') -> (x' / w^2, y' / w^3) (E' is an M-type twist: w^6 = 1 + I)."""
    xp, yp = p_aff
    t, f = q_aff, (((1, 0), (0, 0), (0, 0)), ((0, 0),) * 3)
    for bit in bin(-X)[3:]:
        lam = f2mul(f2mul((3, 0), f2mul(t[0], t[0])), f2inv(f2add(t[1], t[1])))
        f = f12mul(f12mul(f, f), line(t, lam, xp, yp))
        x3 = f2sub(f2sub(f2mul(lam, lam), t[0]), t[0])
        t = (x3, f2sub(f2mul(lam, f2sub(t[0], x3)), t[1]))
        if bit == "1":
            lam = f2mul(f2sub(q_aff[1], t[1]), f2inv(f2sub(q_aff[0], t[0])))
            f = f12mul(f, line(t, lam, xp, yp))
            x3 = f2sub(f2sub(f2mul(lam, lam), t[0]), q_aff[0])
            t = (x3, f2sub(f2mul(lam, f2sub(t[0], x3)), t[1]))
    f = (f[0], tuple((-c[0] % P, -c[1] % P) for c in f[1]))  # conjugation, x < 0
    return f12pow(f, exponent_factor * (P ** 12 - 1) // R)


def _affine_g1(data: bytes):
    x = int.from_bytes(data, "big") & ((1 << 381) - 1)
    y = pow(x ** 3 + 4, (P + 1) // 4, P)
    if (y > (P - 1) // 2) != bool(data[0] & 0x20):
        y = P - y
    return x, y


def _affine_g2(data: bytes):
    """Decompression of specs/bls12_381.md 4.2 (square root in F_p^2 by the p = 3 mod 4 method)."""
    x = (int.from_bytes(data[48:], "big"), int.from_bytes(data[:48], "big") & ((1 << 381) - 1))
    rhs = f2add(f2mul(x, f2mul(x, x)), (4, 4))
    a1 = rhs
    for bit in bin((P - 3) // 4)[3:]:  # a1 = rhs^((p - 3) / 4)
        a1 = f2mul(a1, a1)
        if bit == "1":
            a1 = f2mul(a1, rhs)
    x0 = f2mul(a1, rhs)
    alpha = f2mul(a1, x0)
    if alpha == (P - 1, 0):
        y = f2mul((0, 1), x0)
    else:
        b = (1 + alpha[0], alpha[1])
        e = (P - 1) // 2
        bb = (1, 0)
        for bit in bin(e)[2:]:
            bb = f2mul(bb, bb)
            if bit == "1":
                bb = f2mul(bb, b)
        y = f2mul(bb, x0)
    assert f2mul(y, y) == rhs
    larger = y[1] > (P - 1) // 2 or (y[1] == 0 and y[0] > (P - 1) // 2)
    if larger != bool(data[0] & 0x20):
        y = ((-y[0]) % P, (-y[1]) % P)
    return x, y


def test_the_pairing_is_the_cube_of_the_optimal_ate_pairing():
    """specs/bls12_381.md 7: pairing(P, Q) = f_{x,Q}(P)^(3 (p^12 - 1) / r); e_optimal_ate is the uncubed value."""
    cases = vectors("pairing")
    assert len(cases) == 2
    for v in cases:
        p_bytes, q_bytes = bytes.fromhex(v["P"]), bytes.fromhex(v["Q"])
        ate = optimal_ate(_affine_g1(p_bytes), _affine_g2(q_bytes))
        assert f12bytes(ate).hex() == v["e_optimal_ate"]
        assert f12bytes(f12mul(ate, f12mul(ate, ate))).hex() == v["pairing"]
        binding = ark.GT.pairing(ark.G1Point.from_compressed_bytes(p_bytes), ark.G2Point.from_compressed_bytes(q_bytes))
        assert gt_bytes(binding).hex() == v["pairing"]
        assert f12bytes(ate) != gt_bytes(binding)
