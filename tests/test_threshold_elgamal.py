"""Threshold ElGamal over edwards25519 (protocols/schemes/threshold_elgamal.py,
specs/threshold_elgamal.md).

Keys come from the FROST distributed key generation (specs/frost.md section 7)
run in one process.  Properties: any t of n shares open, and agree with the
whole secret; t - 1 do not; the byte layout of the KDF, AEAD and DLEQ inputs
recomputed independently from the spec's text; soundness of the share proof
(tampered D, c or z, another context, another ciphertext, another
participant's or group's share, each named); the AEAD's integrity (wrong aad,
every single-byte change, truncation); invalid R; duplicates; every bad input
with its exact typed error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from itertools import combinations

import nacl.bindings as nacl
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import groupkeys
from protocols.errors import DecodeError, ParameterError, RecoveryError, UsappError, VerificationError
from protocols.primitives import ed25519 as G
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import frost
from protocols.schemes import threshold_elgamal as te

AAD = b"usapp-escrow link fingerprint"
CONTEXT = b"reid-request #1"
MESSAGE = b"link: LFID serial 1234, epoch 7"

# Points of small order on edwards25519 (the torsion subgroup, identity excluded),
# in their canonical RFC 8032 encodings.
SMALL_ORDER = [
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # order 2
    bytes(32),  # order 4
    bytes(31) + b"\x80",  # order 4
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),  # order 8
]


def mixed_order_point() -> bytes:
    """B + T for an order-8 point T: on the curve, not in the prime-order subgroup."""
    return nacl.crypto_core_ed25519_add(G.BASE_ENCODING, SMALL_ORDER[3])


BAD_R = ([("identity", G.IDENTITY_ENCODING)]
         + [(f"small-order-{k}", enc) for k, enc in enumerate(SMALL_ORDER)]
         + [("mixed-order", mixed_order_point()),
            ("non-canonical y >= p", (G.P + 1).to_bytes(32, "little")),
            ("not on the curve", (2).to_bytes(32, "little"))])


def dkg(n: int, t: int, seed: str):
    """The authorities' key: the FROST DKG (specs/frost.md section 7) in one process."""
    operators, group_info = groupkeys.operator_ceremony(n, t, b"authorities", HmacDrbg.from_seed(seed))
    return [op.state.signer.key_package for op in operators], group_info


@pytest.fixture(scope="module")
def groups():
    return {(2, 3): dkg(3, 2, "tests/threshold_elgamal/2-of-3"),
            (3, 5): dkg(5, 3, "tests/threshold_elgamal/3-of-5")}


@pytest.fixture(scope="module")
def g35(groups):
    return groups[(3, 5)]


@pytest.fixture(scope="module")
def sealed35(g35):
    _, info = g35
    return te.seal(info.group_public_key, AAD, MESSAGE, HmacDrbg.from_seed("tests/threshold_elgamal/seal"))


@pytest.fixture(scope="module")
def shares35(g35, sealed35):
    packages, _ = g35
    rng = HmacDrbg.from_seed("tests/threshold_elgamal/shares")
    return [te.decryption_share(kp, sealed35, AAD, CONTEXT, rng) for kp in packages]


def group_secret(packages, identifiers) -> int:
    """Lagrange-combine the secret shares of ``identifiers`` (test only: no authority does this)."""
    return frost.polynomial_interpolate_constant(
        [(kp.identifier, kp.secret_share) for kp in packages if kp.identifier in identifiers])


# ---------------------------------------------------------------------------
# Correctness (spec section 7): any t of n open, and agree with the secret
# ---------------------------------------------------------------------------


def test_round_trip_through_the_dkg(g35, sealed35, shares35):
    packages, info = g35
    for kp in packages:
        assert G.ScalarBaseMult(kp.secret_share) == info.public_key(kp.identifier)
    assert te.combine(info, sealed35, AAD, CONTEXT, shares35[:3]) == MESSAGE
    assert te.combine(info, sealed35, AAD, CONTEXT, shares35) == MESSAGE  # all n also work


def test_round_trip_with_frost_dkg_directly():
    """The same key made by calling frost.dkg_part1/2/3 by hand."""
    rng = HmacDrbg.from_seed("tests/threshold_elgamal/manual-dkg")
    n, t, ctx = 4, 3, b"authorities/manual"
    parts = {i: frost.dkg_part1(i, n, t, ctx, rng) for i in range(1, n + 1)}
    round1 = {i: pkg for i, (_, pkg) in parts.items()}
    sent = {i: frost.dkg_part2(sec, round1) for i, (sec, _) in parts.items()}
    keys = []
    for i in range(1, n + 1):
        kp, info = frost.dkg_part3(parts[i][0], round1, {j: sent[j][i] for j in sent if j != i})
        keys.append(kp)
    sealed = te.seal(info.group_public_key, b"", b"", rng)
    assert len(sealed) == te.SEALED_MIN_BYTES
    shares = [te.decryption_share(kp, sealed, b"", b"", rng) for kp in (keys[3], keys[0], keys[2])]
    assert te.combine(info, sealed, b"", b"", shares) == b""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), plaintext=st.binary(max_size=200), aad=st.binary(max_size=300),
       context=st.binary(max_size=64), shape=st.sampled_from([(2, 3), (3, 5)]))
def test_any_t_of_n_open_and_agree_with_the_secret(groups, data, plaintext, aad, context, shape):
    packages, info = groups[shape]
    t, n = shape
    seed = data.draw(st.binary(min_size=1, max_size=16), label="seed")
    rng = HmacDrbg.from_seed(b"tests/threshold_elgamal/prop/" + seed)
    size = data.draw(st.integers(t, n), label="size")
    chosen = data.draw(st.permutations(range(1, n + 1)), label="order")[:size]
    sealed = te.seal(info.group_public_key, aad, plaintext, rng)
    assert len(sealed) == 128 + len(plaintext) + 16
    shares = [te.decryption_share(packages[i - 1], sealed, aad, context, rng) for i in chosen]
    for share in shares:
        te.verify_decryption_share(info, sealed, context, share)
    opened = te.combine(info, sealed, aad, context, shares)
    assert opened == plaintext
    secret = group_secret(packages, set(chosen))
    assert G.ScalarBaseMult(secret) == info.group_public_key
    assert te.open_with_secret(secret, sealed, aad) == opened


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), shape=st.sampled_from([(2, 3), (3, 5)]))
def test_fewer_than_t_shares_is_a_recovery_error(groups, data, shape):
    packages, info = groups[shape]
    t, n = shape
    rng = HmacDrbg.from_seed(b"tests/threshold_elgamal/few/" + data.draw(st.binary(max_size=8), label="seed"))
    sealed = te.seal(info.group_public_key, AAD, MESSAGE, rng)
    size = data.draw(st.integers(0, t - 1), label="size")
    chosen = data.draw(st.permutations(range(1, n + 1)), label="order")[:size]
    shares = [te.decryption_share(packages[i - 1], sealed, AAD, CONTEXT, rng) for i in chosen]
    with pytest.raises(RecoveryError):
        te.combine(info, sealed, AAD, CONTEXT, shares)


def test_every_t_subset_of_3_of_5(g35, sealed35, shares35):
    packages, info = g35
    for subset in combinations(shares35, 3):
        assert te.combine(info, sealed35, AAD, CONTEXT, list(subset)) == MESSAGE


def test_single_holder_key():
    rng = HmacDrbg.from_seed("tests/threshold_elgamal/single")
    x = G.RandomScalar(rng)
    sealed = te.seal(G.ScalarBaseMult(x), AAD, MESSAGE, rng)
    assert te.open_with_secret(x, sealed, AAD) == MESSAGE
    with pytest.raises(VerificationError):
        te.open_with_secret((x + 1) % G.L, sealed, AAD)


# ---------------------------------------------------------------------------
# Encodings and determinism (spec sections 3-5), recomputed from the spec's text
# ---------------------------------------------------------------------------


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out with hmac (an independent check of the KDF inputs)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def lp(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def edwards_double_with_libsodium(encoding: bytes) -> bytes:
    """[2]P through libsodium's point addition (which accepts any point of the curve)."""
    return nacl.crypto_core_ed25519_add(encoding, encoding)


def test_second_generator_matches_the_spec():
    """Section 3.4, recomputed with hashlib and libsodium's addition instead of the module's arithmetic."""
    domain = b"usapp-threshold-elgamal-edwards25519-v1"
    tried = []
    for ctr in range(256):
        h = hashlib.sha512(domain + b"generator" + bytes([ctr])).digest()[:32]
        try:
            G._decode_rfc8032(h)
        except DecodeError:
            tried.append(ctr)
            continue
        point = h
        for _ in range(3):
            point = edwards_double_with_libsodium(point)
        break
    assert tried == [0, 1]
    assert te.B2 == G.DeserializeElement(point) == te.derive_second_generator()
    assert te.B2.encoding.hex() == "c8861da2c9e41559b6c67d338a3a05423eba8b3cc4603fe0e7a841c609f41a52"
    assert te.B2 != G.Generator()


def seal_challenge_by_hand(aad: bytes, ct: bytes, R: bytes, W: bytes, R2: bytes, W2: bytes) -> int:
    digest = hashlib.sha512(b"usapp-threshold-elgamal-edwards25519-v1" + b"seal" + lp(aad) + lp(ct) + R + W + R2
                            + W2).digest()
    return int.from_bytes(digest, "little") % G.L


def test_seal_layout_matches_the_spec():
    domain = b"usapp-threshold-elgamal-edwards25519-v1"
    assert te.SUITE == domain.decode() and te.DOMAIN == domain
    rng = HmacDrbg.from_seed("tests/threshold_elgamal/layout")
    x, r, s = G.RandomScalar(rng), G.RandomScalar(rng), G.RandomScalar(rng)
    X = G.ScalarBaseMult(x)
    sealed = te.seal_with_randomness(X, AAD, MESSAGE, r, s)
    R_enc = G.SerializeElement(G.ScalarBaseMult(r))
    S_enc = G.SerializeElement(G.ScalarMult(X, r))
    key = hkdf_sha256(S_enc, R_enc, domain + lp(AAD), 32)
    ct = ChaCha20Poly1305(key).encrypt(bytes(12), MESSAGE, domain + lp(AAD) + R_enc)
    R2_enc = G.SerializeElement(G.ScalarMult(te.B2, r))
    e = seal_challenge_by_hand(AAD, ct, R_enc, G.SerializeElement(G.ScalarBaseMult(s)), R2_enc,
                               G.SerializeElement(G.ScalarMult(te.B2, s)))
    f = (s + r * e) % G.L
    assert sealed == R_enc + R2_enc + e.to_bytes(32, "little") + f.to_bytes(32, "little") + ct
    assert len(sealed) == te.HEADER_BYTES + len(MESSAGE) + 16 == 128 + len(MESSAGE) + 16
    assert te.seal_with_randomness(X, AAD, MESSAGE, r, s) == sealed  # deterministic in r and s
    assert te.open_with_secret(x, sealed, AAD) == MESSAGE
    # the verification equations of section 4.4, checked directly
    R, R2 = G.DeserializeElement(R_enc), G.DeserializeElement(R2_enc)
    assert G.ScalarBaseMult(f) - G.ScalarMult(R, e) == G.ScalarBaseMult(s)
    assert G.ScalarMult(te.B2, f) - G.ScalarMult(R2, e) == G.ScalarMult(te.B2, s)
    te.check_sealed(sealed, AAD)


def test_seal_draws_r_then_s_from_the_rng():
    rng_a, rng_b = HmacDrbg.from_seed("tests/threshold_elgamal/r"), HmacDrbg.from_seed("tests/threshold_elgamal/r")
    X = G.ScalarBaseMult(12345)
    sealed = te.seal(X, AAD, MESSAGE, rng_a)
    r = G.RandomScalar(rng_b)
    assert sealed == te.seal_with_randomness(X, AAD, MESSAGE, r, G.RandomScalar(rng_b))
    assert te.seal(X, AAD, MESSAGE) != te.seal(X, AAD, MESSAGE)  # OS CSPRNG: fresh R each time


def test_share_layout_matches_the_spec(g35, sealed35):
    packages, info = g35
    kp = packages[1]
    k = 0x1234567890ABCDEF
    share = te.decryption_share_with_nonce(kp, sealed35, AAD, CONTEXT, k)
    R = G.DeserializeElement(sealed35[:32])
    D = G.ScalarMult(R, kp.secret_share)
    A1, A2 = G.ScalarBaseMult(k), G.ScalarMult(R, k)
    digest = hashlib.sha512(b"usapp-threshold-elgamal-edwards25519-v1" + b"dleq" + G.SerializeScalar(2)
                            + G.SerializeElement(info.public_key(2)) + sealed35[:32] + G.SerializeElement(D)
                            + G.SerializeElement(A1) + G.SerializeElement(A2) + lp(CONTEXT)).digest()
    c = int.from_bytes(digest, "little") % G.L
    z = (k + c * kp.secret_share) % G.L
    assert share == te.DecryptionShare(2, D, c, z)
    assert share.to_bytes() == G.SerializeElement(D) + G.SerializeScalar(c) + G.SerializeScalar(z)
    assert len(share.to_bytes()) == te.SHARE_BYTES == 96
    assert te.DecryptionShare.from_bytes(2, share.to_bytes()) == share
    # the verification equations of spec section 6, checked directly
    assert G.ScalarBaseMult(z) == A1 + G.ScalarMult(info.public_key(2), c)
    assert G.ScalarMult(R, z) == A2 + G.ScalarMult(D, c)
    te.verify_decryption_share(info, sealed35, CONTEXT, share)


def test_share_nonce_is_hedged_and_reproducible(g35, sealed35):
    packages, _ = g35
    kp = packages[0]
    a = te.decryption_share(kp, sealed35, AAD, CONTEXT, HmacDrbg.from_seed("n"))
    b = te.decryption_share(kp, sealed35, AAD, CONTEXT, HmacDrbg.from_seed("n"))
    assert a == b
    rb = HmacDrbg.from_seed("n").random_bytes(32)
    k = int.from_bytes(hashlib.sha512(te.DOMAIN + b"nonce" + rb + G.SerializeScalar(kp.secret_share)).digest(),
                       "little") % G.L
    assert a == te.decryption_share_with_nonce(kp, sealed35, AAD, CONTEXT, k)
    assert te.decryption_share(kp, sealed35, AAD, CONTEXT) != a  # fresh randomness, fresh proof, same D
    assert te.decryption_share(kp, sealed35, AAD, CONTEXT).D == a.D


# ---------------------------------------------------------------------------
# Soundness of the DLEQ proof and robustness (spec sections 6, 7, 8.2, 8.3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["D", "c", "z"])
def test_tampered_share_is_named(g35, sealed35, shares35, field):
    _, info = g35
    good = shares35[1]
    value = getattr(good, field)
    bad_value = value + G.Generator() if field == "D" else (value + 1) % G.L
    bad = dataclasses.replace(good, **{field: bad_value})
    with pytest.raises(VerificationError, match="participant 2"):
        te.verify_decryption_share(info, sealed35, CONTEXT, bad)
    with pytest.raises(VerificationError, match="participant 2"):
        te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], bad, shares35[2]])
    # a bad share is named even when enough good ones are present
    with pytest.raises(VerificationError, match="participant 2"):
        te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], shares35[2], shares35[3], bad])


def test_every_bit_flip_of_a_wire_share_is_rejected(g35, sealed35, shares35):
    _, info = g35
    wire = shares35[3].to_bytes()
    for pos in range(len(wire)):
        for bit in range(8):
            mutated = bytearray(wire)
            mutated[pos] ^= 1 << bit
            with pytest.raises((DecodeError, VerificationError)):
                share = te.DecryptionShare.from_bytes(4, bytes(mutated))
                te.verify_decryption_share(info, sealed35, CONTEXT, share)


def test_share_for_another_context_or_ciphertext(g35, sealed35, shares35):
    packages, info = g35
    rng = HmacDrbg.from_seed("tests/threshold_elgamal/other")
    other_context = [te.decryption_share(kp, sealed35, AAD, b"reid-request #2", rng) for kp in packages]
    other_sealed = te.seal(info.group_public_key, AAD, MESSAGE, rng)
    other_ct = [te.decryption_share(kp, other_sealed, AAD, CONTEXT, rng) for kp in packages]
    for share in (other_context[2], other_ct[2]):
        with pytest.raises(VerificationError, match="participant 3"):
            te.verify_decryption_share(info, sealed35, CONTEXT, share)
        with pytest.raises(VerificationError, match="participant 3"):
            te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], shares35[1], share])
    # and a whole set for another request opens nothing for this one
    with pytest.raises(VerificationError, match="participant 1"):
        te.combine(info, sealed35, AAD, CONTEXT, other_context[:3])
    assert te.combine(info, sealed35, AAD, b"reid-request #2", other_context[:3]) == MESSAGE


def test_share_relabelled_or_from_another_group(groups, g35, sealed35, shares35):
    packages, info = g35
    relabelled = dataclasses.replace(shares35[0], identifier=2)  # participant 1's share claimed as 2's
    with pytest.raises(VerificationError, match="participant 2"):
        te.verify_decryption_share(info, sealed35, CONTEXT, relabelled)
    # a holder of a different secret (another DKG's participant 3) cannot pass as participant 3
    other_packages, _ = dkg(5, 3, "tests/threshold_elgamal/3-of-5-other")
    foreign = te.decryption_share(other_packages[2], sealed35, AAD, CONTEXT, HmacDrbg.from_seed("f"))
    with pytest.raises(VerificationError, match="participant 3"):
        te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], shares35[1], foreign])


def test_correct_D_with_a_proof_from_another_secret(g35, sealed35, shares35):
    """D_i is right but (c, z) prove knowledge of another log: rejected."""
    _, info = g35
    forged = dataclasses.replace(shares35[4], c=shares35[3].c, z=shares35[3].z)
    with pytest.raises(VerificationError, match="participant 5"):
        te.verify_decryption_share(info, sealed35, CONTEXT, forged)


def test_duplicates_are_a_verification_error(g35, sealed35, shares35):
    packages, info = g35
    with pytest.raises(VerificationError, match="participant 1"):
        te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], shares35[1], shares35[0]])
    # two different valid shares of the same participant are still a duplicate
    again = te.decryption_share(packages[0], sealed35, AAD, CONTEXT, HmacDrbg.from_seed("again"))
    assert again != shares35[0]
    with pytest.raises(VerificationError, match="participant 1"):
        te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], again, shares35[1], shares35[2]])
    # duplicates do not count towards t
    with pytest.raises(VerificationError):
        te.combine(info, sealed35, AAD, CONTEXT, [shares35[0], shares35[0], shares35[0]])


# ---------------------------------------------------------------------------
# Confidentiality and integrity of the sealed blob (spec sections 4, 8.1)
# ---------------------------------------------------------------------------


def test_wrong_aad_is_a_verification_error(g35, sealed35, shares35):
    packages, info = g35
    for aad in (b"", AAD + b"x", AAD[:-1], b"usapp-escrow link fingerprinT"):
        with pytest.raises(VerificationError):
            te.combine(info, sealed35, aad, CONTEXT, shares35[:3])
        with pytest.raises(VerificationError):
            te.open_with_secret(group_secret(packages, {1, 2, 3}), sealed35, aad)


@pytest.mark.slow
def test_every_single_byte_change_of_the_sealed_blob(g35):
    """Each of the 255 other values at each position: DecodeError (R no longer
    valid) or VerificationError (the AEAD does not open); never a wrong
    plaintext, never an untyped exception."""
    packages, info = g35
    secret = group_secret(packages, {1, 2, 3})
    sealed = te.seal(info.group_public_key, AAD, b"0123456789abcdef", HmacDrbg.from_seed("bytes"))
    kinds = {DecodeError: 0, VerificationError: 0}
    for pos in range(len(sealed)):
        for delta in range(1, 256):
            mutated = bytearray(sealed)
            mutated[pos] ^= delta
            with pytest.raises((DecodeError, VerificationError)) as info_exc:
                te.open_with_secret(secret, bytes(mutated), AAD)
            kinds[type(info_exc.value)] += 1
    assert kinds[DecodeError] > 0 and kinds[VerificationError] > 0


def test_single_byte_changes_through_combine(g35, sealed35, shares35):
    """Through the authorities' path: a changed R invalidates every share's
    proof (or is not an element); a changed ct does not open."""
    _, info = g35
    for pos in range(0, len(sealed35), 3):
        mutated = bytearray(sealed35)
        mutated[pos] ^= 0x41
        with pytest.raises((DecodeError, VerificationError)):
            te.combine(info, bytes(mutated), AAD, CONTEXT, shares35[:3])


def test_truncated_and_extended_blobs(g35, sealed35, shares35):
    packages, info = g35
    secret = group_secret(packages, {1, 2, 3})
    for n in range(len(sealed35)):
        expected = DecodeError if n < te.SEALED_MIN_BYTES else VerificationError
        with pytest.raises(expected):
            te.open_with_secret(secret, sealed35[:n], AAD)
        if n < te.SEALED_MIN_BYTES:
            with pytest.raises(DecodeError):
                te.combine(info, sealed35[:n], AAD, CONTEXT, shares35[:3])
    with pytest.raises(VerificationError):
        te.open_with_secret(secret, sealed35 + b"\x00", AAD)


@pytest.mark.parametrize("where", ["R", "R2"])
@pytest.mark.parametrize("name,R", BAD_R, ids=[name for name, _ in BAD_R])
def test_invalid_R_is_a_decode_error(g35, sealed35, shares35, name, R, where):
    """Section 4.3: an invalid R or R2 is a DecodeError on every entry point, before any computation."""
    packages, info = g35
    if name.startswith("small-order") or name == "mixed-order":
        G._decode_rfc8032(R)  # a point of the curve: rejected for its order, not its encoding
    sealed = R + sealed35[32:] if where == "R" else sealed35[:32] + R + sealed35[64:]
    with pytest.raises(DecodeError):
        te.open_with_secret(group_secret(packages, {1, 2, 3}), sealed, AAD)
    with pytest.raises(DecodeError):
        te.decryption_share(packages[0], sealed, AAD, CONTEXT)
    with pytest.raises(DecodeError):
        te.verify_decryption_share(info, sealed, CONTEXT, shares35[0])
    with pytest.raises(DecodeError):
        te.combine(info, sealed, AAD, CONTEXT, shares35[:3])
    with pytest.raises(DecodeError):
        te.check_sealed(sealed, AAD)


@pytest.mark.parametrize("offset", [64, 96], ids=["e", "f"])
def test_unreduced_proof_scalars_are_a_decode_error(g35, sealed35, offset):
    packages, _ = g35
    for value in (G.L, 2**256 - 1):
        sealed = sealed35[:offset] + value.to_bytes(32, "little") + sealed35[offset + 32:]
        with pytest.raises(DecodeError):
            te.check_sealed(sealed, AAD)
        with pytest.raises(DecodeError):
            te.decryption_share(packages[0], sealed, AAD, CONTEXT)


# ---------------------------------------------------------------------------
# The label (spec sections 4.2, 4.4, 8.2): TDH2's proof of well-formedness
# ---------------------------------------------------------------------------


def test_no_share_for_a_blob_under_another_label(g35, sealed35):
    """Section 8.2.  Adversary: whoever hands the authorities a blob (a compromised escrow, a
    requester); it sees every sealed blob, controls the blob it submits and the label it claims;
    it knows no r and no x_i.  A blob checked under any label but its own yields no share, and
    combine refuses it before looking at shares."""
    packages, info = g35
    for label in (b"", AAD + b"x", AAD[:-1], b"another credential"):
        with pytest.raises(VerificationError, match="not well formed"):
            te.decryption_share(packages[0], sealed35, label, CONTEXT)
        with pytest.raises(VerificationError, match="not well formed"):
            te.check_sealed(sealed35, label)
        with pytest.raises(VerificationError, match="not well formed"):
            te.combine(info, sealed35, label, CONTEXT, [])
    te.check_sealed(sealed35, AAD)


def test_a_target_R_spliced_into_a_blob_of_the_adversary_gets_no_share(g35, sealed35):
    """Section 8.2, the decryption oracle on R that the proof closes.  Adversary as above: it
    copies the target's R (and R2, e, f) into a blob it made for its own label, or keeps the
    target's header with its own ciphertext; without r it cannot make a proof, so no authority
    gives a share and [x]R is never formed."""
    packages, info = g35
    rng = HmacDrbg.from_seed("tests/threshold_elgamal/splice")
    own = te.seal(info.group_public_key, b"adversary's label", b"anything", rng)
    spliced = [sealed35[:32] + own[32:],            # the target's R, the rest the adversary's
               sealed35[:64] + own[64:],            # the target's R and R2
               sealed35[:128] + own[128:]]          # the target's whole header, another ciphertext
    for blob in spliced:
        for label in (b"adversary's label", AAD):
            with pytest.raises(VerificationError, match="not well formed"):
                te.decryption_share(packages[1], blob, label, CONTEXT, rng)
    # the honest path still works for the adversary's own blob, which holds only what it sealed
    shares = [te.decryption_share(kp, own, b"adversary's label", CONTEXT, rng) for kp in packages[:3]]
    assert te.combine(info, own, b"adversary's label", CONTEXT, shares) == b"anything"


def test_single_byte_changes_anywhere_break_the_proof(g35, sealed35):
    """Three values at every position (the exhaustive 255 are the slow test above): a change of R,
    R2, e or f fails the proof (VerificationError) or is not an element / not reduced (DecodeError);
    a changed ciphertext fails the proof too (ct is hashed into e)."""
    for pos in range(len(sealed35)):
        for delta in (0x01, 0x80, 0xFF):
            mutated = bytearray(sealed35)
            mutated[pos] ^= delta
            with pytest.raises((DecodeError, VerificationError)):
                te.check_sealed(bytes(mutated), AAD)


# ---------------------------------------------------------------------------
# Input validation (spec sections 4.2-7): every bad input, its typed error
# ---------------------------------------------------------------------------


def test_identifier_outside_the_group_is_a_parameter_error(g35, sealed35, shares35):
    _, info = g35
    for identifier in (6, 100):
        share = dataclasses.replace(shares35[0], identifier=identifier)
        with pytest.raises(ParameterError):
            te.verify_decryption_share(info, sealed35, CONTEXT, share)
        with pytest.raises(ParameterError):
            te.combine(info, sealed35, AAD, CONTEXT, [shares35[1], shares35[2], share])
    for identifier in (0, -1, G.L, True, "1", None):
        with pytest.raises(ParameterError):
            dataclasses.replace(shares35[0], identifier=identifier)
        with pytest.raises(ParameterError):
            te.DecryptionShare.from_bytes(identifier, shares35[0].to_bytes())


def test_share_fields_are_checked(shares35):
    good = shares35[0]
    for field, value in [("D", G.Identity()), ("D", G.Element(SMALL_ORDER[3])), ("D", good.D.encoding),
                         ("c", G.L), ("c", -1), ("c", True), ("z", G.L), ("z", 1.0)]:
        with pytest.raises(ParameterError):
            dataclasses.replace(good, **{field: value})
    for data in (b"", good.to_bytes()[:95], good.to_bytes() + b"\x00", "00" * 96, None):
        with pytest.raises(DecodeError):
            te.DecryptionShare.from_bytes(1, data)
    wire = good.to_bytes()
    with pytest.raises(DecodeError):  # c not reduced
        te.DecryptionShare.from_bytes(1, wire[:32] + G.L.to_bytes(32, "little") + wire[64:])
    with pytest.raises(DecodeError):  # z not reduced
        te.DecryptionShare.from_bytes(1, wire[:64] + (2**256 - 1).to_bytes(32, "little"))
    with pytest.raises(DecodeError):  # D small order
        te.DecryptionShare.from_bytes(1, SMALL_ORDER[5] + wire[32:])


def test_seal_inputs():
    X = G.ScalarBaseMult(7)
    for r in (0, G.L, -1, True, 1.5, None):
        with pytest.raises(ParameterError):
            te.seal_with_randomness(X, AAD, MESSAGE, r, 1)
        with pytest.raises(ParameterError):
            te.seal_with_randomness(X, AAD, MESSAGE, 1, r)
    for key in (None, 7, G.Identity(), G.Element(SMALL_ORDER[0]), G.Element(mixed_order_point())):
        with pytest.raises(ParameterError):
            te.seal(key, AAD, MESSAGE)
    with pytest.raises(DecodeError):
        te.seal(G.IDENTITY_ENCODING, AAD, MESSAGE)  # bytes are decoded
    assert te.open_with_secret(7, te.seal(G.SerializeElement(X), AAD, MESSAGE), AAD) == MESSAGE
    for aad, pt in ((None, MESSAGE), ("aad", MESSAGE), (AAD, "text"), (AAD, None)):
        with pytest.raises(ParameterError):
            te.seal(X, aad, pt)


def test_open_inputs(sealed35):
    for secret in (0, G.L, True, None):
        with pytest.raises(ParameterError):
            te.open_with_secret(secret, sealed35, AAD)
    with pytest.raises(ParameterError):
        te.open_with_secret(1, sealed35, "aad")
    for sealed in (None, sealed35.hex(), 12):
        with pytest.raises(DecodeError):
            te.open_with_secret(1, sealed, AAD)


def test_share_and_combine_inputs(g35, sealed35, shares35):
    packages, info = g35
    with pytest.raises(ParameterError):
        te.decryption_share(info, sealed35, AAD, CONTEXT)
    with pytest.raises(ParameterError):
        te.decryption_share(packages[0], sealed35, AAD, "ctx")
    for k in (0, G.L, True):
        with pytest.raises(ParameterError):
            te.decryption_share_with_nonce(packages[0], sealed35, AAD, CONTEXT, k)
    with pytest.raises(DecodeError):
        te.decryption_share(packages[0], sealed35.hex(), AAD, CONTEXT)
    with pytest.raises(ParameterError):
        te.verify_decryption_share(packages[0], sealed35, CONTEXT, shares35[0])
    with pytest.raises(ParameterError):
        te.verify_decryption_share(info, sealed35, CONTEXT, shares35[0].to_bytes())
    with pytest.raises(ParameterError):
        te.verify_decryption_share(info, sealed35, None, shares35[0])
    for shares in (None, b"\x00" * 96, "abc", iter(shares35), shares35[0], [shares35[0], shares35[1], "x"]):
        with pytest.raises(ParameterError):
            te.combine(info, sealed35, AAD, CONTEXT, shares)
    with pytest.raises(ParameterError):
        te.combine(None, sealed35, AAD, CONTEXT, shares35)
    with pytest.raises(ParameterError):
        te.combine(info, sealed35, None, CONTEXT, shares35)
    assert te.combine(info, sealed35, AAD, CONTEXT, tuple(shares35[2:])) == MESSAGE


def test_errors_are_all_typed(g35, sealed35, shares35):
    """Garbage anywhere raises a UsappError, never something else."""
    packages, info = g35
    rng = HmacDrbg.from_seed("garbage")
    for _ in range(200):
        blob = rng.random_bytes(int.from_bytes(rng.random_bytes(1), "big") % 80)
        for call in (lambda: te.open_with_secret(5, blob, AAD),
                     lambda: te.combine(info, blob, AAD, CONTEXT, shares35[:3]),
                     lambda: te.DecryptionShare.from_bytes(1, blob + bytes(max(0, 96 - len(blob))))):
            try:
                call()
            except UsappError:
                pass
