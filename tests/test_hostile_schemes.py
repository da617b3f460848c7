"""Hostile input to the scheme and primitive decoders (issue 16: H3-H6, H9, limits as data).

Adversary: whoever supplies the bytes, JSON or numbers a decoder reads (a
meter, an aggregator, a peer on the wire).  It controls every byte and every
number; it sees the typed error.  The claim: every decoder bounds its input
size and every numeric field before work that grows with it, and raises only
subclasses of UsappError.  Bounds are shown structurally (the expensive step
is monkeypatched to fail if it is reached), never by timing.
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction
from typing import Any

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError,
    InvalidCiphertextError,
    ParameterError,
    UsappError,
    VerificationError,
)
from protocols.primitives import bls12_381 as bls
from protocols.primitives import ed25519
from protocols.primitives import supersingular as ss
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.numtheory import random_prime
from protocols.privacy import dp
from protocols.schemes import bb1, bf, blind_rsa, certificates, frost, hpke, lkh, merkle, paillier, paillier_encoding
from protocols.schemes import threshold_elgamal as te
from protocols.system import escrow_fleet

FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def small_key() -> paillier.PrivateKey:
    rng = HmacDrbg.from_seed("usapp-tests/hostile-paillier")
    return paillier.PrivateKey.from_factors(random_prime(512, rng), random_prime(512, rng), min_bits=1024)


def _no_primality_above(monkeypatch: pytest.MonkeyPatch, module: object, bits: int) -> None:
    """Make ``module.is_probable_prime`` fail the test if it is called on a number above ``bits``."""
    real = module.is_probable_prime  # type: ignore[attr-defined]

    def guarded(n: int, *args: object, **kwargs: object) -> bool:
        if gmpy2.mpz(n).bit_length() > bits:
            pytest.fail(f"primality test ran on a {gmpy2.mpz(n).bit_length()}-bit number")
        return bool(real(n, *args, **kwargs))

    monkeypatch.setattr(module, "is_probable_prime", guarded)


# -- H3, H4: phe JSON exponents and ciphertexts --------------------------------


@pytest.mark.parametrize("exponent", ["100000000000", "-100000000000", "1025", "-1025", "1e11", "true", "NaN",
                                      "Infinity", "1.0", '"3"'])
def test_phe_exponent_out_of_range_or_not_an_int_is_refused(small_key, exponent):
    """H3: {"e": 10^11} was accepted and decode() computed 16^(10^11)."""
    text = '{"v": "%d", "e": %s}' % (int(small_key.public_key.encrypt(5).c), exponent)
    with pytest.raises(DecodeError, match="exponent"):
        paillier_encoding.from_phe_json(text, small_key.public_key, min_bits=1024)


def test_phe_exponent_bounds_are_accepted(small_key):
    pk = small_key.public_key
    for e in (-paillier_encoding.MAX_EXPONENT_MAGNITUDE, paillier_encoding.MAX_EXPONENT_MAGNITUDE):
        text = '{"v": "%d", "e": %d}' % (int(pk.encrypt(5).c), e)
        number = paillier_encoding.from_phe_json(text, pk, min_bits=1024)
        assert isinstance(number, paillier_encoding.EncryptedNumber) and number.exponent == e


def test_encoded_number_exponent_is_bounded(small_key):
    pk = small_key.public_key
    with pytest.raises(ParameterError):
        paillier_encoding.EncodedNumber(pk, gmpy2.mpz(1), 10**11)
    number = paillier_encoding.EncodedNumber.encode(pk, 3)
    with pytest.raises(ParameterError):
        number.decrease_exponent_to(-(10**11))
    with pytest.raises(ParameterError):
        paillier_encoding.EncodedNumber.encode(pk, 3, max_exponent=-(10**11))
    with pytest.raises(ParameterError):
        paillier_encoding.EncryptedNumber(pk.encrypt(1), True)


def test_phe_ciphertext_with_more_digits_than_n_squared_is_refused(small_key):
    """H4: a 5000-digit "v" raised ValueError (Python's int/str digit limit)."""
    for digits in ("9" * 5000, "1" + "0" * (len(str(small_key.public_key.nsquare)))):
        with pytest.raises(InvalidCiphertextError):
            paillier_encoding.from_phe_json('{"v": "%s", "e": 0}' % digits, small_key.public_key, min_bits=1024)


def test_phe_json_nesting_and_size_are_bounded(small_key):
    with pytest.raises(DecodeError):
        paillier_encoding.from_phe_json("[" * 100000)
    with pytest.raises(DecodeError):
        paillier_encoding.from_phe_json(" " * (paillier_encoding.MAX_PHE_JSON_CHARS + 1))
    with pytest.raises(DecodeError):
        paillier_encoding.from_phe_json(7)


# -- H5: DER OBJECT IDENTIFIER -------------------------------------------------


def test_long_oid_arc_is_a_decode_error():
    """H5: an arc of 3000 base-128 digits raised ValueError in str()."""
    oid = ss._der_tlv(0x06, b"\x2b" + b"\xff" * 3000 + b"\x01")
    with pytest.raises(DecodeError, match="longer than"):
        ss.DerReader(oid).oid()
    longest = ss._der_tlv(0x06, b"\x2b" + b"\xff" * (ss.MAX_OID_BYTES - 2) + b"\x01")
    assert ss.DerReader(longest).oid().startswith("1.3.")


# -- H6: primality tests on attacker-sized numbers -----------------------------


def _type1_der_with_huge_p(extra_bytes: int) -> bytes:
    """BFPublicParameters DER with a valid 224-bit prime q and p = 12 * 2^(8 extra_bytes) * q - 1:
    p = 11 mod 12 and q | p + 1 exactly once, so only the size bound stops a primality test of p."""
    q = int(gmpy2.next_prime(2**223))
    p = 12 * (1 << (8 * extra_bytes)) * q - 1
    return ss.der_sequence(ss.der_integer(2), ss.der_oid(ss.TYPE1_CURVE_OID), ss.der_integer(p),
                           ss.der_integer(q), ss.der_fp_point(1, 2), ss.der_fp_point(1, 2),
                           ss.der_oid("2.16.840.1.101.3.4.2.1"))


def test_bf_and_bb1_parameters_bound_p_before_primality(monkeypatch):
    """H6: BFPublicParameters.from_der with a 20 KB p ran a primality test on it (118 s)."""
    _no_primality_above(monkeypatch, ss, ss.MAX_P_BITS)
    der = _type1_der_with_huge_p(20000)
    with pytest.raises(ParameterError, match="at most"):
        bf.BFPublicParameters.from_der(der)
    with pytest.raises(ParameterError, match="at most"):
        bb1.BB1PublicParameters.from_der(der)
    with pytest.raises(ParameterError, match="at most"):
        ss.Type1Curve(2**7681 - 1, 2**224 + 1)


def test_paillier_decoders_bound_sizes_before_primality(monkeypatch, small_key):
    """H6: PrivateKey.from_bytes, from_factors and the phe JWKs were unbounded."""
    _no_primality_above(monkeypatch, paillier, paillier.MAX_MODULUS_BITS // 2)
    big = (1 << (8 * 20000)) + 1
    with pytest.raises(DecodeError, match="at most"):
        paillier.PrivateKey.from_bytes(b"\x01" * 10000 + b"\x03" * 10000, min_bits=1024)
    with pytest.raises(ParameterError, match="at most"):
        paillier.PrivateKey.from_factors(big, big + 2, min_bits=1024)
    with pytest.raises(DecodeError, match="at most"):
        paillier.PublicKey.from_bytes(big.to_bytes(20001, "big"), min_bits=1024)
    with pytest.raises(ParameterError, match="above the maximum"):
        paillier.PublicKey(gmpy2.mpz(2**4097 + 1), min_bits=1024)
    jwk = json.loads(paillier_encoding.to_phe_json(small_key.public_key))
    huge = paillier_encoding._int_to_b64url((1 << (8 * 40000)) + 3)
    with pytest.raises(DecodeError, match="longer than"):
        paillier_encoding.from_phe_json(json.dumps(dict(jwk, n=huge)), min_bits=1024)
    private = json.loads(paillier_encoding.to_phe_json(small_key))
    with pytest.raises(DecodeError, match="longer than"):
        paillier_encoding.from_phe_json(json.dumps(dict(private, p=huge)), min_bits=1024)
    assert paillier.PrivateKey.from_bytes(small_key.to_bytes(), min_bits=1024) == small_key


@pytest.mark.parametrize("min_bits", [None, "x", True, 0, paillier.MAX_MODULUS_BITS + 1, 1.5])
def test_paillier_min_bits_must_be_an_int_in_range(small_key, min_bits):
    with pytest.raises(ParameterError):
        paillier.PublicKey.from_bytes(small_key.public_key.to_bytes(), min_bits=min_bits)


def test_rsa_modulus_is_bounded():
    with pytest.raises(ParameterError, match="above the maximum"):
        blind_rsa.PublicKey(gmpy2.mpz(2**(blind_rsa.MAX_MODULUS_BITS + 1) + 1), gmpy2.mpz(65537))


# -- H9: differential-privacy parameters ---------------------------------------


@pytest.mark.parametrize("field,value", [
    ("sensitivity", 10**400), ("participants", 10**400), ("sensitivity", dp.MAX_SENSITIVITY + 1),
    ("participants", dp.MAX_PARTICIPANTS + 1), ("sensitivity", 1.0), ("participants", True),
    ("honest_fraction", Fraction(1, 10**400)), ("delta", Fraction(1, 10**400)), ("delta", float("nan")),
])
def test_dp_config_bounds_every_number(field, value):
    """H9: sensitivity 10^400 gave ZeroDivisionError, participants 10^400 OverflowError."""
    args = {"level": dp.PrivacyLevel.HIGH, "sensitivity": 4000, "participants": 1000,
            "honest_fraction": Fraction(1, 2), "delta": Fraction(1, 10**6), field: value}
    with pytest.raises(ParameterError):
        dp.NoiseShareConfig(**args)


@pytest.mark.parametrize("level", list(dp.PrivacyLevel))
def test_dp_figures_are_finite_at_the_bounds(level):
    config = dp.NoiseShareConfig(level, dp.MAX_SENSITIVITY, dp.MAX_PARTICIPANTS,
                                 Fraction(1, 2**(dp.MAX_FRACTION_BITS - 1)), Fraction(1, 2**(dp.MAX_DELTA_BITS - 1)))
    figures = [dp.clamp_tail_probability(config), dp.clamp_delta_cost(config),
               dp.single_noise_variance(config), dp.expected_noise_variance(config)]
    assert all(f == f and abs(f) != float("inf") for f in figures)


@pytest.mark.parametrize("call", [
    lambda: dp.discrete_laplace(Fraction(10**2000)), lambda: dp.bernoulli(Fraction(1, 2**5000)),
    lambda: dp.bernoulli_exp(2**5000), lambda: dp.discrete_laplace(float("inf")),  # type: ignore[arg-type]
])
def test_dp_sampler_inputs_are_bounded(call):
    with pytest.raises(ParameterError):
        call()


# -- certificates -------------------------------------------------------------


def test_non_positive_serial_is_refused_without_a_deprecation_warning():
    """cryptography warns (CryptographyDeprecationWarning) when a non-positive serial is read;
    the profile refuses it with VerificationError instead (specs/issuance.md 6.2)."""
    rng = HmacDrbg.from_seed("usapp-tests/hostile-certificates")
    ca = escrow_fleet.ed25519_key(rng)
    der = escrow_fleet.device_certificate("SM-1", escrow_fleet.ed25519_key(rng), "root", ca, 7)
    assert der.count(b"\x02\x01\x07") == 1
    for serial in (b"\x00", b"\xf9"):
        cert = certificates.load_certificate(der.replace(b"\x02\x01\x07", b"\x02\x01" + serial), "c")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(VerificationError, match="serial number is not positive"):
                certificates.verify_device_chain([cert], [], 0)


def test_certificate_helpers_refuse_wrong_types():
    key = ed25519_public = escrow_fleet.ed25519_key(HmacDrbg.from_seed("k")).public_key()
    for signature in (None, b"", b"\x00" * 63, b"\x00" * 65):
        with pytest.raises(VerificationError):
            certificates.verify_signature(key, signature, b"m", "sig")
    with pytest.raises(DecodeError):
        certificates.certificate_fingerprint("not bytes")
    with pytest.raises(ParameterError):
        certificates.public_der(object())
    assert len(certificates.public_der(ed25519_public)) == 44


# -- limits as data: every byte decoder raises only UsappError -------------------


def _bf_toy() -> tuple[bf.BFPublicParameters, bytes]:
    """RFC 5091 section 7's BF parameters (192-bit p, toy sizes) and their DER."""
    E = ss.Type1Curve(0xA6A0FFD016103FFFFFFFFFF595F002FE9EF195F002FE9EFB, 0xFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFF,
                      min_p_bits=128, min_q_bits=128)
    params = bf.BFPublicParameters(
        E, E.point(0x6924C354256ACF5A0FF7F61BE4F0495B54540A5BF6395B3D,
                   0x024FD8E2EB7C09104BCA116F41C035219955237C0EAC19AB),
        E.point(0xA68412AE960D1392701066664D20B2F4A76D6EE715621108,
                0x9E7644E75C9A131D075752E143E3F0435FF231B6745A486F), bf.SHA1)
    return params, params.to_der()


def _decoders(small_key: paillier.PrivateKey) -> dict[str, tuple[object, bytes]]:
    params, params_der = _bf_toy()
    pk = small_key.public_key
    G1, G2 = bls.G1.generator(), bls.G2.generator()
    msk = bf.BFMasterSecret(0x749E52DDB807E0220054417E514742B05A0)
    return {
        "ed25519.DeserializeElement": (ed25519.DeserializeElement, ed25519.SerializeElement(ed25519.Generator())),
        "ed25519.DeserializeScalar": (ed25519.DeserializeScalar, ed25519.SerializeScalar(5)),
        "frost.Signature": (frost.Signature.from_bytes, bytes(64)),
        "frost.SigningCommitments": (frost.SigningCommitments.from_bytes, bytes(96)),
        "frost.SignatureShare": (lambda d: frost.SignatureShare.from_bytes(1, d), bytes(32)),
        "threshold_elgamal.DecryptionShare": (lambda d: te.DecryptionShare.from_bytes(1, d), bytes(96)),
        "threshold_elgamal.check_sealed": (lambda d: te.check_sealed(d, b""), bytes(160)),
        "bls12_381.G1": (bls.G1.from_bytes, G1.to_bytes()),
        "bls12_381.G2": (bls.G2.from_bytes, G2.to_bytes()),
        "bls12_381.scalar": (bls.scalar_from_bytes, bls.scalar_to_bytes(5)),
        "hpke.OpenBase": (lambda d: hpke.OpenBase(d, bytes(32), b"", b"", bytes(32)), bytes(32)),
        "paillier.PublicKey": (lambda d: paillier.PublicKey.from_bytes(d, min_bits=1024), pk.to_bytes()),
        "paillier.PrivateKey": (lambda d: paillier.PrivateKey.from_bytes(d, min_bits=1024), small_key.to_bytes()),
        "paillier.Ciphertext": (lambda d: paillier.Ciphertext.from_bytes(pk, d), pk.encrypt(3, HmacDrbg.from_seed("c")).to_bytes()),
        "phe JSON": (lambda d: paillier_encoding.from_phe_json(d, pk, min_bits=1024),
                     paillier_encoding.to_phe_json(paillier_encoding.encrypt_number(pk, 3, rng=HmacDrbg.from_seed("n"))).encode()),
        "bf.BFPublicParameters": (lambda d: bf.BFPublicParameters.from_der(d, min_p_bits=128, min_q_bits=128),
                                  params_der),
        "bf.BFMasterSecret": (bf.BFMasterSecret.from_der, msk.to_der()),
        "bf.BFPrivateKey": (lambda d: bf.BFPrivateKey.from_der(d, params),
                            bf.BFextractPriv(params, msk, b"Bob").to_der()),
        "certificates.load_certificate": (lambda d: certificates.load_certificate(d, "c"), bytes(40)),
        "certificates.load_device_key": (certificates.load_device_key, bytes(40)),
    }


JUNK: list[object] = [None, "str", 5, True, 1.5, float("nan"), [1], b"", b"\x00", b"\xff" * 97,
                      b"\x30\x84\xff\xff\xff\xff", b"\xff" * 200_000]


def test_every_decoder_refuses_junk_with_a_usapp_error(small_key):
    for name, (decode, _) in _decoders(small_key).items():
        for junk in JUNK:
            try:
                decode(junk)
            except UsappError:
                pass
            except Exception as exc:  # the finding this test guards against
                pytest.fail(f"{name}({junk!r:.30}) raised {type(exc).__name__}: {exc}")


@FAST
@given(data=st.data())
def test_every_decoder_refuses_mutations_with_a_usapp_error(small_key, data):
    """Truncations, extensions and bit flips of a valid encoding: accepted or a UsappError."""
    decoders = _decoders(small_key)
    name = data.draw(st.sampled_from(sorted(decoders)))
    decode, valid = decoders[name]
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip" and valid:
        i = data.draw(st.integers(0, len(valid) - 1))
        bit = data.draw(st.integers(0, 7))
        mutated = valid[:i] + bytes([valid[i] ^ (1 << bit)]) + valid[i + 1:]
    elif kind == "truncate":
        mutated = valid[:data.draw(st.integers(0, max(0, len(valid) - 1)))]
    else:
        mutated = valid + data.draw(st.binary(min_size=1, max_size=8))
    try:
        decode(mutated)
    except UsappError:
        pass


# -- LKH rekeys, Merkle logs, RSA keys: types and ranges -----------------------


@pytest.mark.parametrize("kid", [2**64, -1, True, 1.0, None])
def test_lkh_key_ids_are_bounded_when_a_rekey_is_built(kid):
    """A kid of 2^64 reached struct.pack(">Q") in unwrap (struct.error); now DecodeError on construction."""
    with pytest.raises(DecodeError):
        lkh.Wrap(kid, 1, bytes(lkh.WRAP_BYTES))
    with pytest.raises(DecodeError):
        lkh.Rekey(1, ((1, 0, kid),), ())


_HOSTILE_REKEYS: list[tuple[type, tuple[Any, ...]]] = [
    (lkh.Rekey, (0, (), ())), (lkh.Rekey, (lkh.MAX_HEIGHT + 1, (), ())), (lkh.Rekey, (True, (), ())),
    (lkh.Rekey, (1, [(1, 0, 1)], ())), (lkh.Rekey, (1, ((1, 0),), ())), (lkh.Rekey, (1, ((2, 0, 1),), ())),
    (lkh.Rekey, (1, (), ("wrap",))), (lkh.Wrap, (1, 2, "ct")), (lkh.Wrap, (1, 2, bytes(47))),
]


@pytest.mark.parametrize("kind,args", _HOSTILE_REKEYS)
def test_lkh_rekey_shape_is_checked(kind, args):
    with pytest.raises(DecodeError):
        kind(*args)


@pytest.mark.parametrize("value", [None, 5, 1.5, b"\x00" * 32, "abc"])
def test_merkle_builders_refuse_non_sequences(value):
    with pytest.raises(DecodeError):
        merkle.MerkleLog.from_entries(value)
    with pytest.raises(DecodeError):
        merkle.MerkleLog.from_leaf_hashes(value)


@pytest.mark.parametrize("d", [None, "s", float("nan"), b"\x00", True])
def test_rsa_load_private_key_refuses_non_integers(d):
    """load_private_key passed d to mpz() unchecked (TypeError / ValueError)."""
    with pytest.raises(ParameterError, match="must be an integer"):
        blind_rsa.load_private_key(2**2048 + 1, 65537, d)


def test_threshold_elgamal_sizes_are_bounded_before_parsing(monkeypatch):
    def never(buf: bytes) -> None:
        pytest.fail("an oversized sealed blob reached DeserializeElement")

    monkeypatch.setattr(te.G, "DeserializeElement", never)
    with pytest.raises(DecodeError, match="to"):
        te.check_sealed(bytes(te.SEALED_MAX_BYTES + 1), b"")
    with pytest.raises(ParameterError, match="longer than"):
        te.check_sealed(bytes(te.SEALED_MIN_BYTES), bytes(te.MAX_INPUT_BYTES + 1))
