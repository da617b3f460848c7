"""RSA blind signatures, RFC 9474 (protocols/schemes/blind_rsa.py, specs/blind_rsa.md).

The RFC's Appendix A vectors (all four variants); properties (round trip for
any message, the finalized signature verifies under ``cryptography``'s
RSASSA-PSS verifier; blindness as the checkable statement of specs/blind_rsa.md
7.1: for any message and any target blinded value there is exactly one r that
gives it; the signer's view differs under different r); the two PSS verifiers
agree; and every input check, each with its exact typed error.

Keys: the RFC's 4096-bit key from the vectors, and two 2048-bit keys generated
once per module.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import gmpy2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError, UsappError, VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom, random_range
from protocols.schemes import blind_rsa as B
from protocols.system.vectorsets import rfc9474

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc9474.json"
RFC_VECTORS = [v for v in json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"] if v["operation"] == "rsabssa"]
PROJECT = B.RSABSSA_SHA384_PSS_Randomized

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def cryptography_verify(pk: B.PublicKey, msg: bytes, sig: bytes, variant: B.Variant = PROJECT) -> None:
    """The independent RSASSA-PSS verifier (OpenSSL through ``cryptography``),
    called exactly as a relying party would; raises InvalidSignature."""
    pk.to_cryptography().verify(
        sig, msg, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=variant.salt_len),
        hashes.SHA384())


@pytest.fixture(scope="module")
def sk() -> B.PrivateKey:
    return B.generate_key(2048)


@pytest.fixture(scope="module")
def other_sk() -> B.PrivateKey:
    return B.generate_key(2048)


def rfc_key(v: dict) -> B.PrivateKey:
    i = lambda name: int(v[name], 16)  # noqa: E731
    return B.load_private_key(i("n"), i("e"), i("d"), i("p"), i("q"))


def run(sk: B.PrivateKey, msg: bytes, variant: B.Variant = PROJECT, rng=None):
    """One whole protocol run: (input_msg, blinded_msg, inv, blind_sig, sig)."""
    pk = sk.public
    input_msg = B.Prepare(msg, variant, rng)
    blinded_msg, inv = B.Blind(pk, input_msg, variant, rng)
    blind_sig = B.BlindSign(sk, blinded_msg)
    sig = B.Finalize(pk, input_msg, blind_sig, inv, variant)
    return input_msg, blinded_msg, inv, blind_sig, sig


# ---------------------------------------------------------------------------
# RFC 9474 Appendix A


@pytest.mark.parametrize("v", RFC_VECTORS, ids=[v["section"] for v in RFC_VECTORS])
def test_rfc9474_appendix_a_step_by_step(v):
    h = lambda name: bytes.fromhex(v[name])  # noqa: E731
    variant = B.variant(v["variant"])
    key = rfc_key(v)
    pk = key.public
    assert pk.modBits == 4096 and pk.modulus_len == 512
    prepared = B.Prepare_with_prefix(h("msg"), h("msg_prefix"), variant)
    assert prepared == h("prepared_msg")
    assert B.application_message(prepared, variant) == h("msg")
    assert B.encode_message(pk, prepared, variant, h("salt")) == h("encoded_msg")
    inv = int(v["inv"], 16)
    r = gmpy2.invert(inv, pk.n)
    blinded_msg, inv_out = B.Blind_with_randomness(pk, prepared, variant, h("salt"), r)
    assert blinded_msg == h("blinded_msg") and inv_out == inv
    assert B.BlindSign(key, blinded_msg) == h("blind_sig")
    sig = B.Finalize(pk, prepared, h("blind_sig"), inv, variant)
    assert sig == h("sig")
    B.Verify(pk, prepared, sig, variant)
    cryptography_verify(pk, prepared, sig, variant)


@pytest.mark.parametrize("v", RFC_VECTORS, ids=[v["section"] for v in RFC_VECTORS])
def test_rfc9474_vectors_through_the_family(v):
    rfc9474.verify_vector(v)


def test_vectors_cover_all_four_variants():
    assert sorted(v["variant"] for v in RFC_VECTORS) == sorted(B.VARIANTS)


def test_load_private_key_recovers_the_factors_from_n_e_d():
    v = RFC_VECTORS[0]
    key = rfc_key(v)
    bare = B.load_private_key(int(v["n"], 16), int(v["e"], 16), int(v["d"], 16))
    assert {bare.p, bare.q} == {key.p, key.q}
    assert B.BlindSign(bare, bytes.fromhex(v["blinded_msg"])) == bytes.fromhex(v["blind_sig"])


def test_variants_are_data_as_in_section_5():
    assert PROJECT is B.DEFAULT_VARIANT
    assert (PROJECT.hash_name, PROJECT.hLen, PROJECT.salt_len, PROJECT.prepare) == (
        "sha384", 48, 48, B.PrepareType.RANDOMIZE)
    assert B.RSABSSA_SHA384_PSSZERO_Randomized.salt_len == 0
    assert B.RSABSSA_SHA384_PSS_Deterministic.prepare is B.PrepareType.IDENTITY
    with pytest.raises(ParameterError):
        B.variant("RSABSSA-SHA256-PSS-Randomized")
    with pytest.raises(TypeError):
        B.VARIANTS["x"] = PROJECT  # type: ignore[index]


# ---------------------------------------------------------------------------
# Properties


@FAST
@given(msg=st.binary(max_size=300), variant=st.sampled_from(list(B.VARIANTS.values())))
def test_round_trip_any_message_verifies_under_cryptography(sk, msg, variant):
    input_msg, blinded_msg, inv, blind_sig, sig = run(sk, msg, variant)
    assert len(blinded_msg) == len(blind_sig) == len(sig) == sk.public.modulus_len
    assert B.application_message(input_msg, variant) == msg
    B.Verify(sk.public, input_msg, sig, variant)
    cryptography_verify(sk.public, input_msg, sig, variant)
    # The project's variant: the exact call a relying party makes.
    if variant is PROJECT:
        sk.public.to_cryptography().verify(
            sig, input_msg, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48),
            hashes.SHA384())


@FAST
@given(msg=st.binary(max_size=100), seed=st.binary(min_size=1, max_size=16),
       target=st.integers(min_value=1))
def test_blindness_exactly_one_r_gives_any_blinded_value(sk, msg, seed, target):
    """specs/blind_rsa.md 7.1: for a fixed key, message and salt, r -> blinded_msg
    is a bijection of Z_n^*, so a uniform r makes blinded_msg uniform whatever
    the message.  For any target b we compute the one r that gives it."""
    pk = sk.public
    rng = HmacDrbg.from_seed(b"tests/blind_rsa/blindness/" + seed)
    input_msg = B.Prepare(msg, PROJECT, rng)
    salt = rng.random_bytes(PROJECT.salt_len)
    m = B.OS2IP(B.encode_message(pk, input_msg, PROJECT, salt))
    b = gmpy2.mpz(target) % pk.n
    if b == 0 or gmpy2.gcd(b, pk.n) != 1:
        b = gmpy2.mpz(1)
    # r^e = b / m (mod n): r = (b m^-1)^d, computed with the signer's key.
    x = (b * gmpy2.invert(m, pk.n)) % pk.n
    r = B.RSASP1(sk, x)
    blinded_msg, inv = B.Blind_with_randomness(pk, input_msg, PROJECT, salt, r)
    assert B.OS2IP(blinded_msg) == b
    assert (inv * r) % pk.n == 1
    # Exactly one: any r' giving b has r'^e = x, and r' = (r'^e)^d = x^d = r
    # because RSAVP1 and RSASP1 are inverse permutations of Z_n.
    assert B.RSAVP1(pk, r) == x and B.RSASP1(sk, B.RSAVP1(pk, r)) == r
    other = (r + 1 + B.OS2IP(seed)) % pk.n or 1
    if other != r and gmpy2.gcd(other, pk.n) == 1:
        assert B.Blind_with_randomness(pk, input_msg, PROJECT, salt, other)[0] != blinded_msg


@FAST
@given(msg=st.binary(max_size=100), seed=st.binary(min_size=1, max_size=16))
def test_signers_view_differs_under_different_r(sk, msg, seed):
    pk = sk.public
    rng = HmacDrbg.from_seed(b"tests/blind_rsa/view/" + seed)
    input_msg = B.Prepare(msg, PROJECT, rng)
    salt = rng.random_bytes(PROJECT.salt_len)
    r1 = random_range(rng, 1, pk.n)
    r2 = random_range(rng, 1, pk.n)
    views = []
    for r in (r1, r2):
        blinded_msg, inv = B.Blind_with_randomness(pk, input_msg, PROJECT, salt, r)
        blind_sig = B.BlindSign(sk, blinded_msg)
        views.append((blinded_msg, blind_sig))
        # Both runs finalize to the same signature (same prepared message and salt).
        sig = B.Finalize(pk, input_msg, blind_sig, inv, PROJECT)
        cryptography_verify(pk, input_msg, sig)
    assert r1 != r2
    assert views[0][0] != views[1][0] and views[0][1] != views[1][1]


def test_same_message_twice_gives_unlinkable_runs(sk):
    """PrepareRandomize and a fresh r each run: two runs on one message share
    no value the signer sees, and the final signatures differ too."""
    a = run(sk, b"meter 42 reading", PROJECT)
    b = run(sk, b"meter 42 reading", PROJECT)
    assert a[0] != b[0] and a[1] != b[1] and a[3] != b[3] and a[4] != b[4]


def test_pss_zero_deterministic_is_the_only_deterministic_variant(sk):
    variant = B.RSABSSA_SHA384_PSSZERO_Deterministic
    assert run(sk, b"m", variant)[4] == run(sk, b"m", variant)[4]
    assert run(sk, b"m", B.RSABSSA_SHA384_PSS_Deterministic)[4] != run(sk, b"m", B.RSABSSA_SHA384_PSS_Deterministic)[4]


def test_randomness_is_injected_in_the_documented_order(sk):
    """Prepare draws the 32-byte prefix; Blind draws the salt, then r."""
    pk = sk.public
    prefix, salt = bytes(range(32)), bytes(range(100, 148))
    r = 0x1234567  # random_range(1, n) draws r - 1 as ceil(bit_len(n - 2) / 8) bytes
    r_bytes = (r - 1).to_bytes(((pk.n - 2).bit_length() + 7) // 8, "big")
    replay = ReplayRandom([prefix, salt, r_bytes])
    input_msg = B.Prepare(b"msg", PROJECT, replay)
    assert input_msg == prefix + b"msg"
    assert B.Blind(pk, input_msg, PROJECT, replay) == B.Blind_with_randomness(pk, input_msg, PROJECT, salt, r)
    assert replay.exhausted
    # Same seed, same run; PSSZERO draws no salt.
    assert run(sk, b"x", PROJECT, HmacDrbg.from_seed("s")) == run(sk, b"x", PROJECT, HmacDrbg.from_seed("s"))
    replay = ReplayRandom([r_bytes])
    B.Blind(pk, b"x", B.RSABSSA_SHA384_PSSZERO_Deterministic, replay)
    assert replay.exhausted


@FAST
@given(msg=st.binary(max_size=64), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_own_pss_verifier_agrees_with_cryptography(sk, msg, position, bit):
    """RFC 8017 8.1.2 as implemented here, against OpenSSL: both accept a
    signature made by cryptography's own RSASSA-PSS signer, both reject it
    with one bit flipped."""
    pk = sk.public
    sig = sk.to_cryptography().sign(
        msg, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())
    B.RSASSA_PSS_VERIFY(pk, msg, sig, PROJECT)
    B.Verify(pk, msg, sig, PROJECT)
    tampered = bytearray(sig)
    tampered[position % len(sig)] ^= 1 << bit
    with pytest.raises(VerificationError):
        B.RSASSA_PSS_VERIFY(pk, msg, bytes(tampered), PROJECT)
    with pytest.raises(InvalidSignature):
        cryptography_verify(pk, msg, bytes(tampered))


# ---------------------------------------------------------------------------
# Negative tests, each with its exact typed error


@pytest.fixture(scope="module")
def protocol_run(sk):
    return run(sk, b"tariff 7: 0.21 EUR/kWh", PROJECT, HmacDrbg.from_seed("tests/blind_rsa/run"))


def _flip_low_bit(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def test_tampered_blind_signature(sk, protocol_run):
    input_msg, _, inv, blind_sig, _ = protocol_run
    with pytest.raises(VerificationError):
        B.Finalize(sk.public, input_msg, _flip_low_bit(blind_sig), inv)


@pytest.mark.parametrize("length_change", [-1, +1, -256])
def test_blind_signature_of_the_wrong_length(sk, protocol_run, length_change):
    input_msg, _, inv, blind_sig, _ = protocol_run
    changed = blind_sig[:length_change] if length_change < 0 else blind_sig + b"\x00"
    with pytest.raises(DecodeError):
        B.Finalize(sk.public, input_msg, changed, inv)


@pytest.mark.parametrize("length_change", [-1, +1])
def test_blinded_message_of_the_wrong_length(sk, protocol_run, length_change):
    blinded_msg = protocol_run[1]
    changed = blinded_msg[:-1] if length_change < 0 else b"\x00" + blinded_msg
    with pytest.raises(DecodeError):
        B.BlindSign(sk, changed)


@pytest.mark.parametrize("offset", [0, 1])
def test_values_at_or_above_n(sk, protocol_run, offset):
    input_msg, _, inv, _, _ = protocol_run
    k = sk.public.modulus_len
    too_big = B.I2OSP(sk.public.n + offset, k)
    with pytest.raises(DecodeError):
        B.BlindSign(sk, too_big)
    with pytest.raises(DecodeError):
        B.Finalize(sk.public, input_msg, too_big, inv)
    with pytest.raises(VerificationError):  # RFC 8017 8.1.2 step 2b: "invalid signature"
        B.Verify(sk.public, input_msg, too_big)
    with pytest.raises(ParameterError):
        B.RSASP1(sk, sk.public.n + offset)
    with pytest.raises(ParameterError):
        B.RSAVP1(sk.public, sk.public.n + offset)


def test_wrong_key(sk, other_sk):
    small, large = sorted((sk, other_sk), key=lambda key: key.public.n)
    input_msg, blinded_msg, inv, blind_sig, sig = run(small, b"wrong key", PROJECT)
    # A final signature checked under another key.
    with pytest.raises(VerificationError):
        B.Verify(large.public, input_msg, sig)
    # A blind signature from another signer (value < n of the client's key).
    blinded_for_large, inv_large = B.Blind(large.public, input_msg, PROJECT)
    blind_sig_by_small = B.BlindSign(small, B.I2OSP(B.OS2IP(blinded_for_large) % small.public.n, 256))
    with pytest.raises(VerificationError):
        B.Finalize(large.public, input_msg, blind_sig_by_small, inv_large)


def test_finalize_with_the_wrong_inv(sk, protocol_run):
    input_msg, _, inv, blind_sig, _ = protocol_run
    with pytest.raises(VerificationError):
        B.Finalize(sk.public, input_msg, blind_sig, (inv * 2) % sk.public.n)
    for bad in (0, sk.public.n, sk.p):
        with pytest.raises(ParameterError):
            B.Finalize(sk.public, input_msg, blind_sig, bad)


def test_signature_on_another_message(sk, protocol_run):
    input_msg, _, _, _, sig = protocol_run
    other = input_msg[:32] + b"tariff 7: 0.01 EUR/kWh"
    with pytest.raises(VerificationError):
        B.Verify(sk.public, other, sig)
    with pytest.raises(VerificationError):
        B.Verify(sk.public, input_msg, sig, B.RSABSSA_SHA384_PSSZERO_Randomized)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_prepared_message_prefix_of_the_wrong_length(length):
    with pytest.raises(ParameterError):
        B.PrepareRandomize_with_prefix(b"msg", b"\x00" * length)
    with pytest.raises(ParameterError):
        B.Prepare_with_prefix(b"msg", b"\x00" * length, PROJECT)


def test_prefix_checks_of_the_identity_variants_and_application_message():
    with pytest.raises(ParameterError):
        B.Prepare_with_prefix(b"msg", b"\x00" * 32, B.RSABSSA_SHA384_PSS_Deterministic)
    with pytest.raises(DecodeError):
        B.application_message(b"\x00" * 31, PROJECT)
    assert B.application_message(b"\x00" * 31, B.RSABSSA_SHA384_PSS_Deterministic) == b"\x00" * 31


def test_blind_sign_output_failing_rsavp1_is_a_signing_failure(sk, protocol_run):
    """RFC 9474 4.3 steps 3-4 (the fault check of 7.1): a CRT fault in the
    private-key operation (a corrupted dP, as in the Bellcore attack) must not
    leak a faulty signature."""
    faulty = copy.copy(sk)
    object.__setattr__(faulty, "dP", sk.dP + 1)
    with pytest.raises(VerificationError):
        B.BlindSign(faulty, protocol_run[1])


def test_blinding_error_and_r_out_of_range(sk, protocol_run):
    pk, input_msg = sk.public, protocol_run[0]
    salt = bytes(48)
    with pytest.raises(ParameterError, match="blinding error"):
        B.Blind_with_randomness(pk, input_msg, PROJECT, salt, sk.q)
    for r in (0, pk.n):
        with pytest.raises(ParameterError):
            B.Blind_with_randomness(pk, input_msg, PROJECT, salt, r)
    with pytest.raises(ParameterError):
        B.Blind_with_randomness(pk, input_msg, PROJECT, bytes(47), 5)


def test_key_validation(sk):
    with pytest.raises(ParameterError):
        B.generate_key(1024)
    small = B.PrivateKey.from_factors(gmpy2.next_prime(2 ** 511), gmpy2.next_prime(2 ** 512), min_bits=1024)
    with pytest.raises(ParameterError):
        B.PublicKey(small.public.n, 65537)
    with pytest.raises(ParameterError):
        B.PrivateKey(sk.public, sk.d + 2, sk.p, sk.q)
    with pytest.raises(ParameterError):
        B.PrivateKey(sk.public, sk.d, sk.p + 2, sk.q)
    with pytest.raises(ParameterError):
        B.PublicKey(sk.public.n, 4)
    with pytest.raises(ParameterError):
        B.load_private_key(sk.public.n, sk.public.e, sk.d + 2)
    for secret in (sk.d, sk.p, sk.q):
        assert format(int(secret), "x")[:16] not in repr(sk)


def test_every_failure_is_a_usapp_error_never_an_assertion(sk, protocol_run):
    input_msg, blinded_msg, inv, blind_sig, sig = protocol_run
    for call in (
        lambda: B.BlindSign(sk, "not bytes"),
        lambda: B.Finalize(sk.public, input_msg, blind_sig, 1.5),
        lambda: B.Verify(sk.public, input_msg, sig[:-1]),
        lambda: B.Verify(sk.public, input_msg, b""),
    ):
        with pytest.raises(UsappError):
            call()
