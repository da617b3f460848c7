"""Operation counters (specs/costs.md section 2): the counting API, the counted primitives, the kernels."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError
from protocols.primitives import bls12_381 as bls
from protocols.primitives import cbor, ed25519, hashing, opcount, opkernels
from protocols.primitives.aead import ChaCha20Poly1305
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.numtheory import invert, mulmod, powmod
from protocols.primitives.rand import ReplayRandom, random_below
from protocols.schemes import hpke, paillier


@pytest.fixture(scope="module")
def paillier_2048() -> paillier.PrivateKey:
    return paillier.generate_keypair(2048, HmacDrbg.from_seed("test_opcount paillier"))


# -- the counting API (section 2.3) -------------------------------------------------------------


def test_size_class_rounds_up_to_64():
    assert [opcount.size_class(b) for b in (0, 1, 64, 65, 253, 256, 2047, 2048, 4095)] == \
        [64, 64, 64, 128, 256, 256, 2048, 2048, 4096]


def test_nothing_is_recorded_without_an_open_counter():
    assert not opcount.active()
    with opcount.counting() as closed:
        pass
    opcount.record("x25519")
    hashing.sha256(b"abc").digest()
    assert not closed and not opcount.active()
    # the off path hands out hashlib's own object: nothing wraps it
    assert type(hashing.sha256(b"")) is type(hashlib.sha256(b""))


def test_counters_nest_and_an_inner_one_sees_only_its_block():
    with opcount.counting() as outer:
        opcount.record("x25519")
        with opcount.counting() as inner:
            opcount.record("x25519", 2)
            opcount.record("random_byte", 5)
        opcount.record("random_byte", 1)
    assert inner == {"x25519": 2, "random_byte": 5}
    assert outer == {"x25519": 3, "random_byte": 6}


def test_suspended_hides_work_from_every_open_counter():
    with opcount.counting() as counts:
        with opcount.suspended():
            assert not opcount.active()
            opcount.record("x25519")
        opcount.record("ed25519_sign")
    assert counts == {"ed25519_sign": 1}


def test_a_thread_does_not_see_the_callers_counters():
    seen = []

    def work() -> None:
        seen.append(opcount.active())
        opcount.record("x25519")

    with opcount.counting() as counts:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert seen == [False] and not counts


def test_negative_count_is_refused_when_counting():
    with opcount.counting(), pytest.raises(ParameterError):
        opcount.record("x25519", -1)


# -- hash blocks (FIPS 180-4 section 5.1, FIPS 202 section 5.1, RFC 2104) -----------------------


def _counted(f) -> opcount.Counts:
    with opcount.counting() as counts:
        f()
    return counts


def test_sha256_block_boundary_is_at_56_bytes():
    assert _counted(lambda: hashing.sha256(bytes(55)).digest()) == {"hash_block:sha256": 1}
    assert _counted(lambda: hashing.sha256(bytes(56)).digest()) == {"hash_block:sha256": 2}
    assert _counted(lambda: hashing.sha512(bytes(111)).digest()) == {"hash_block:sha512": 1}
    assert _counted(lambda: hashing.sha512(bytes(112)).digest()) == {"hash_block:sha512": 2}


def test_hmac_sha256_short_key_32_byte_message_is_4_blocks():
    assert _counted(lambda: hashing.hmac_new(b"k" * 16, bytes(32), "sha256").digest()) == {"hash_block:sha256": 4}
    assert _counted(lambda: hashing.hmac_digest(b"k" * 16, bytes(32), "sha256")) == {"hash_block:sha256": 4}
    # a key longer than the block is hashed first: 100 bytes = 2 blocks
    assert _counted(lambda: hashing.hmac_digest(b"k" * 100, bytes(32), "sha256")) == {"hash_block:sha256": 6}


def _reference_blocks(name: str, length: int, out: int) -> int:
    """Pad a message of ``length`` bytes by the standard's rule and count the blocks of the result."""
    if name in ("sha1", "sha224", "sha256", "sha384", "sha512"):
        block, length_field = (64, 8) if name in ("sha1", "sha224", "sha256") else (128, 16)
        k = 0  # FIPS 180-4 5.1.1/5.1.2: 1 bit, k zero bits, the length; a multiple of the block
        while (length + 1 + k + length_field) % block:
            k += 1
        return (length + 1 + k + length_field) // block
    rate = 136  # FIPS 202: M || 1111 then pad10*1 to a multiple of the rate (at least one byte)
    padded = length + 1
    while padded % rate:
        padded += 1
    squeezed = rate
    extra = 0
    while squeezed < out:
        squeezed += rate
        extra += 1
    return padded // rate + extra


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["sha1", "sha224", "sha256", "sha384", "sha512", "shake_256"]),
       length=st.integers(0, 1200), out=st.integers(1, 700))
def test_block_formula_matches_the_padding_rule(name, length, out):
    assert hashing.blocks(name, length, out) == _reference_blocks(name, length, out)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["sha256", "sha512", "shake_256", "sha1", "sha384"]),
       chunks=st.lists(st.binary(max_size=300), max_size=5))
def test_counted_objects_match_hashlib_and_count_the_total_length(name, chunks):
    data = b"".join(chunks)
    with opcount.counting() as counts:
        h = hashing.new(name)
        for chunk in chunks:
            h.update(chunk)
        out = h.digest(40) if name == "shake_256" else h.digest()
    reference = hashlib.new(name, data)
    assert out == (reference.digest(40) if name == "shake_256" else reference.digest())
    alg = hashing.ALGORITHMS[name]
    assert counts == {alg.key: hashing.blocks(name, len(data), len(out))}


@settings(max_examples=40, deadline=None)
@given(key=st.binary(max_size=150), msg=st.binary(max_size=300))
def test_hmac_is_hmac_and_counts_inner_outer_and_key_blocks(key, msg):
    with opcount.counting() as counts:
        out = hashing.hmac_new(key, msg, "sha256").digest()
    assert out == hmac.new(key, msg, hashlib.sha256).digest()
    expected = hashing.blocks("sha256", 64 + len(msg)) + 2 + (hashing.blocks("sha256", len(key)) if len(key) > 64 else 0)
    assert counts == {"hash_block:sha256": expected}


@settings(max_examples=40, deadline=None)
@given(ikm=st.binary(max_size=80), salt=st.one_of(st.none(), st.binary(max_size=80)),
       info=st.binary(max_size=80), length=st.integers(1, 200))
def test_hkdf_sha256_is_rfc5869(ikm, salt, info, length):
    with opcount.counting() as counts:
        out = hashing.hkdf_sha256(ikm, length, salt, info)
    assert out == HKDF(SHA256(), length, salt, info).derive(ikm)
    salt_length = 32 if salt is None else len(salt)
    expand = sum(hashing.hmac_blocks("sha256", 32, (32 if i else 0) + len(info) + 1) for i in range(-(-length // 32)))
    assert counts["hash_block:sha256"] == hashing.hmac_blocks("sha256", salt_length, len(ikm)) + expand


def test_hashing_refuses_unknown_algorithms_and_hmac_over_shake():
    with pytest.raises(ParameterError):
        hashing.new("md5", b"")
    with pytest.raises(ParameterError):
        hashing.hmac_digest(b"k", b"m", "shake_256")
    with pytest.raises(ParameterError):
        hashing.hkdf_sha256(b"k", 255 * 32 + 1)


# -- big numbers (modexp at the modulus' size class, bits of the exponent) ---------------------


def test_paillier_encryption_is_one_modexp_at_n_squared(paillier_2048):
    pk = paillier_2048.public_key
    with opcount.counting() as counts:
        c = pk.encrypt(12345, HmacDrbg.from_seed("enc"))
    assert counts["modexp:4096"] == 1
    assert counts["modexp_bit:4096"] == pk.n.bit_length() == 2048
    assert counts["modmul:4096"] == 1
    assert counts["random_byte"] >= 256
    assert set(counts) == {"modexp:4096", "modexp_bit:4096", "modmul:4096", "random_byte"}
    with opcount.counting() as counts:
        assert paillier_2048.decrypt(c) == 12345
    p, q = paillier_2048.p, paillier_2048.q
    assert counts["modexp:2048"] == 2
    assert counts["modexp_bit:2048"] == (p - 1).bit_length() + (q - 1).bit_length()
    assert counts["modmul:1024"] == 3


def test_paillier_homomorphic_operations(paillier_2048):
    pk = paillier_2048.public_key
    a, b = pk.encrypt(1, HmacDrbg.from_seed("a")), pk.encrypt(2, HmacDrbg.from_seed("b"))
    assert _counted(lambda: a + b) == {"modmul:4096": 1}
    assert _counted(lambda: a * 1000) == {"modexp:4096": 1, "modexp_bit:4096": (1000).bit_length()}
    assert _counted(lambda: paillier.product_mod([a.c, b.c, a.c], pk.nsquare)) == {"modmul:4096": 2}


def test_small_moduli_are_not_counted_and_inverses_are():
    assert _counted(lambda: powmod(3, 5, 2**127 - 1)) == {}
    assert _counted(lambda: mulmod(3, 5, 2**255 - 19)) == {"modmul:256": 1}
    assert _counted(lambda: invert(3, 2**255 - 19)) == {"modinv:256": 1}
    assert _counted(lambda: powmod(3, -5, 2**521 - 1)) == {"modexp:576": 1, "modexp_bit:576": 3}


# -- curves, pairings, AEAD, signatures, randomness, CBOR ----------------------------------------


def test_bls12_381_pairing_is_one_pairing_and_base_mults_are_told_apart():
    P = bls.G1.generator() * 5
    Q = bls.G2.generator() * 7
    assert _counted(lambda: bls.pairing(P, Q)) == {"pairing:bls12_381": 1}
    assert _counted(lambda: bls.G1.generator() * 3) == {"point_mul_base:bls12_381_g1": 1}
    assert _counted(lambda: P * 3) == {"point_mul:bls12_381_g1": 1}
    assert _counted(lambda: bls.pairing(P, Q) ** 9) == {"pairing:bls12_381": 1, "gt_exp:bls12_381": 1}


def test_hash_to_curve_counts_the_xmd_blocks_our_expand_message_would_do():
    msg, dst = b"meter-7", b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"
    counts = _counted(lambda: bls.hash_to_g1(msg, dst))
    reference = _counted(lambda: bls.expand_message_xmd(msg, dst, 128))
    assert counts == {"hash_to_curve:bls12_381_g1": 1, "hash_block:sha256": reference["hash_block:sha256"]}


def test_ed25519_group_scalar_mults():
    A = ed25519.ScalarBaseMult(9)
    assert _counted(lambda: ed25519.ScalarMult(A, 5)) == {"point_mul:ed25519": 1}
    assert _counted(lambda: ed25519.ScalarBaseMult(5)) == {"point_mul_base:ed25519": 1}


def test_aead_counts_plaintext_bytes_on_seal_and_open():
    aead = ChaCha20Poly1305(bytes(32))
    with opcount.counting() as sealed:
        ct = aead.encrypt(bytes(12), b"x" * 100, b"ad")
    with opcount.counting() as opened:
        assert aead.decrypt(bytes(12), ct, b"ad") == b"x" * 100
    assert sealed == opened == {"aead_call:chacha20poly1305": 1, "aead_byte:chacha20poly1305": 100}


def test_hpke_single_shot_counts_its_x25519_and_aead():
    sk, pk = hpke.DeriveKeyPair(bytes(range(32)))
    with opcount.counting() as counts:
        enc, ct = hpke.SealBase(pk, b"info", b"", b"p" * 50, HmacDrbg.from_seed("hpke"))
    # two public-key checks (SealBase and SetupBaseS), pk(skE) and DH
    assert counts["x25519"] == 4 and counts["aead_byte:chacha20poly1305"] == 50
    with opcount.counting() as counts:
        assert hpke.OpenBase(enc, sk, b"info", b"", ct) == b"p" * 50
    assert counts["x25519"] == 2 and counts["aead_call:chacha20poly1305"] == 1


def test_hpke_key_schedule_blocks_match_the_hmacs_pyhpke_computes(monkeypatch):
    import types

    import pyhpke.kdf
    from cryptography.hazmat.primitives import hmac as crypto_hmac
    done = []

    class Recording:
        def __init__(self, key, algorithm, backend=None):
            self._mac, self._key_length, self._length = crypto_hmac.HMAC(key, algorithm), len(key), 0

        def update(self, data):
            self._mac.update(data)
            self._length += len(data)

        def finalize(self):
            done.append(hashing.hmac_blocks("sha256", self._key_length, self._length))
            return self._mac.finalize()

    monkeypatch.setattr(pyhpke.kdf, "hmac", types.SimpleNamespace(HMAC=Recording))
    sk, pk = hpke.DeriveKeyPair(bytes(range(40)))
    for info in (b"", b"i" * 100):
        done.clear()
        with opcount.counting() as counts:
            enc, ct = hpke.SealBase(pk, info, b"", b"m", HmacDrbg.from_seed("hpke-kdf"))
        assert counts["hash_block:sha256"] == sum(done) > 0
        done.clear()
        with opcount.counting() as counts:
            hpke.OpenBase(enc, sk, info, b"", ct)
        assert counts["hash_block:sha256"] == sum(done) > 0


def test_random_bytes_from_a_drbg_are_counted_once():
    drbg = HmacDrbg.from_seed("rand")
    with opcount.counting() as counts:
        random_below(drbg, 1 << 2040)  # 255 bytes
        drbg.random_bytes(70000)  # two generate calls
    assert counts == {"random_byte": 255 + 70000}
    assert _counted(lambda: ReplayRandom([b"abc"]).random_bytes(3)) == {"random_byte": 3}


def test_cbor_is_counted_once_per_top_level_call():
    item = {1: [1, 2, {3: b"xyz"}], 2: "text"}
    encoded = cbor.encode(item)
    assert _counted(lambda: cbor.encode(item)) == {"cbor_encode_byte": len(encoded)}
    assert _counted(lambda: cbor.decode(encoded)) == {"cbor_decode_byte": len(encoded)}


# -- kernels (specs/costs.md section 2.4) -----------------------------------------------------

KERNEL_KEYS = [
    "hash_block:sha256", "hash_block:sha512", "hash_block:shake256", "hash_block:sha1",
    "modexp:2048", "modexp_bit:1024", "modexp_bit:4096", "modmul:4096", "modinv:2048",
    "point_mul:ed25519", "point_mul_base:ed25519",
    "point_mul:bls12_381_g1", "point_mul_base:bls12_381_g1", "point_mul:bls12_381_g2",
    "point_mul_base:bls12_381_g2", "pairing:bls12_381", "gt_exp:bls12_381",
    "hash_to_curve:bls12_381_g1", "hash_to_curve:bls12_381_g2",
    "point_mul:ss1024", "pairing:ss1024", "gt_exp:ss1024", "hash_to_curve:ss1024",
    "aead_byte:chacha20poly1305", "aead_call:chacha20poly1305", "x25519",
    "ed25519_sign", "ed25519_verify", "ed25519_keygen", "ecdsa_p256_sign", "ecdsa_p256_verify",
    "random_byte", "cbor_encode_byte", "cbor_decode_byte",
    "point_mul:p256", "point_mul_base:p256", "point_mul:sakke1024", "pairing:sakke1024", "gt_exp:sakke1024",
    "point_decode:ed25519", "point_decode:bls12_381_g1", "point_decode:bls12_381_g2", "prime_test:1024",
    "der_decode_byte",
]


@pytest.mark.parametrize("key", KERNEL_KEYS)
def test_kernel_performs_units_of_its_key(key):
    run = opkernels.kernel(key)
    with opcount.counting() as counts:
        run()
    assert counts[key] == opkernels.units(key) >= 1
    assert not opcount.active()


def test_kernel_building_records_nothing_into_open_counters():
    with opcount.counting() as counts:
        opkernels.kernel("modexp_bit:2048")
        opkernels.units("cbor_encode_byte")
    assert not counts


def test_side_counts_name_what_else_a_kernel_records():
    assert opkernels.side_counts("modexp_bit:1024") == {"modexp:1024": 1}
    assert opkernels.side_counts("aead_byte:chacha20poly1305") == {"aead_call:chacha20poly1305": 1}


@pytest.mark.parametrize("key", ["", "nonsense", "modexp:100", "modexp:2000", "modexp_bit:x",
                                 "hash_block:md5", "point_mul:p384", "pairing:ss768",
                                 "point_mul_base:ss1024", "aead_byte:aes128gcm", "modexp:65536",
                                 "x25519:255", "random_byte:8", "modexp", "point_mul", "aead_call"])
def test_kernel_refuses_keys_it_cannot_benchmark(key):
    with pytest.raises(ParameterError):
        opkernels.kernel(key)


# -- decodings, prime tests and certificates (section 2.1) ---------------------------------------


def test_point_decodings_are_counted_once_each_and_refusals_after_the_length_check_too():
    element = ed25519.SerializeElement(ed25519.ScalarBaseMult(7))
    g1, g2 = (bls.G1.generator() * 5).to_bytes(), (bls.G2.generator() * 5).to_bytes()
    with opcount.counting() as counts:
        ed25519.DeserializeElement(element)
        bls.G1.from_bytes(g1)
        bls.G2.from_bytes(g2)
        bls.G2.from_bytes(g2)
    assert dict(counts) == {"point_decode:ed25519": 1, "point_decode:bls12_381_g1": 1,
                            "point_decode:bls12_381_g2": 2}
    with opcount.counting() as refused:
        with pytest.raises(DecodeError):
            ed25519.DeserializeElement(element[:-1])          # wrong length: refused before any work
        with pytest.raises(DecodeError):
            ed25519.DeserializeElement(ed25519.IDENTITY_ENCODING)   # decoded, then refused
    assert dict(refused) == {"point_decode:ed25519": 1}


def test_bpsw_is_one_prime_test_at_the_size_class_and_small_numbers_are_free():
    from protocols.primitives import numtheory
    prime = numtheory.random_prime(512, HmacDrbg.from_seed("test_opcount bpsw"))
    with opcount.counting() as counts:
        assert numtheory.bpsw(prime)
        assert not numtheory.bpsw(prime * 3)
        assert numtheory.bpsw(101)
    assert dict(counts) == {"prime_test:512": 1, "prime_test:576": 1}   # 3p has 514 bits


def test_certificate_parsing_counts_its_bytes():
    from protocols.schemes import certificates
    der = opkernels._sample_certificate()
    with opcount.counting() as counts:
        certificates.load_certificate(der, "a test certificate")
    assert counts["der_decode_byte"] == len(der)
