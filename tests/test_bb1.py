"""Boneh-Boyen BB1 per RFC 5091 section 6 (protocols/schemes/bb1.py,
specs/ibe.md sections 3.6, 3.7 and 3.9).

Known answers: RFC 5091 7.7 (BBextractPriv: P_1, P_2, P_3, v, D_0, D_1) and
7.8 (BBencrypt: u, C_0, C_1, y), and the decryption of 7.8 with the 7.7 key
(7.8's note names BFdecrypt; BBdecrypt is meant).  Properties (correctness for
any identity and message, keys bound to their identity) are hypothesis tests;
every rejection raises the typed error named.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError,
    InvalidCiphertextError,
    KeyMismatchError,
    ParameterError,
    RandomnessError,
    VerificationError,
)
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.supersingular import (
    INFINITY,
    Canonical,
    Point,
    PointMultiply,
    Type1Curve,
    der_fp_point,
    der_integer,
    der_octet_string,
    der_sequence,
)
from protocols.schemes.bb1 import (
    BB1Ciphertext,
    BB1MasterSecret,
    BB1PrivateKey,
    BB1PublicParameters,
    BBdecrypt,
    BBderivePubl,
    BBencrypt,
    BBencrypt_with_s,
    BBextractPriv,
    BBextractPriv_with_r,
    BBsetup,
)
from protocols.schemes.bf import SHA1, SHA224, SHA256, HashToRange

TOY = {"min_p_bits": 128, "min_q_bits": 128}
"""RFC 5091 section 7's 192-bit p and 140-bit q are below the default minimum."""

# RFC 5091 sections 7.7 and 7.8 (as in vectors/rfc5091.json)
PRIME_77 = 0x91BBE2BE1C8950750784BEFFFFFFFFFFFFF6E441D41E12FB
ORDER_77 = 0xFFFFFFFFFBFFFFFFFFFFFFFFFFFFFFFFFFF
ALPHA_77 = 0xA60C395285DED4D70202C8283D894BAD4F0
BETA_77 = 0x48BF012DA19F170B13124E5301561F45053
GAMMA_77 = 0x226FBA82BC38E2CE4E28E56472CCF94A499
R_77 = 0x695024C25812112187162C08AA5F65C7A2C
G_77 = (0x13CC538FE950411218D7F5C17AE58A15E58F0877B29F2FE1,
        0x8CF7BAB1A748D323CC601FABD8B479F54A60BE11E28E18CF)
P1_77 = (0x0F809A992ED2467A138D72BC1D8931C6CCDD781BEDC74627,
         0x11C933027BEAAF73AA9022DB366374B1C68D6BF7D7A888C2)
P2_77 = (0x0F8AC99A55E575BF595308CFEA13EDB8EC673983919121B0,
         0x3FEBB7C6369F5D5F18EE3EA6CA0181448A4F3C4F3385019C)
P3_77 = (0x2C10B43991052E78FAC44FDCE639C45824F5A3A2550B2A45,
         0x6D7C12D8A0681426A5BBC369C9EF54624356E2F6036A064F)
V_77 = (0x38F91032DE6847A89FC3C83E663ED0C21C8F30CE65C0D7D3,
        0x44B9AA10849CC8D8987EF2421770A340056745DA8B99FBA2)
D0_77 = (0x3264E13FEEB7C506493888132964E79AD657A952334B9E53,
         0x3EEAEFC14BA1277A1CD6FDEA83C7C882FE6D85D957055C7B)
D1_77 = (0x8D7A72AD06909BB3BB29B67676D935018183A905E7E8CB18,
         0x2B346C6801C1DB638F270AF915A21054F16044AB67F6C40E)
M_78 = b"Hi there!"
S_78 = 0x62759E95CE1AF248040E220263FB41B965E
U_78 = 0xAD1EBFA82EDF0BCB5111E9DC08FF0737C68
C0_78 = (0x79F8F35904579F1AAF51897B1E8F1D84E1C927B8994E81F9,
         0x1CF77BB2516606681ABA2E2DC14764AA1B55A45836014C62)
C1_78 = (0x410CFEB0BCCF1FA4AFC607316C8B12FE464097B20250D684,
         0x8BB76E7195A7B1980531B0A5852CE710CAB5D288B2404E90)
Y_78 = bytes.fromhex("82a642b9bbe982c457")

BOB = b"Bob"
"""RFC 5091 section 7 prints id = 6f:42:62 ("Bob"); the values follow from the ASCII 42 6f 62."""


@pytest.fixture(scope="module")
def E() -> Type1Curve:
    return Type1Curve(PRIME_77, ORDER_77, **TOY)


@pytest.fixture(scope="module")
def params(E) -> BB1PublicParameters:
    return BB1PublicParameters(E, E.point(*G_77), E.point(*P1_77), E.point(*P2_77),
                               E.point(*P3_77), E.fp2(*V_77), SHA1)


@pytest.fixture(scope="module")
def msk() -> BB1MasterSecret:
    return BB1MasterSecret(ALPHA_77, BETA_77, GAMMA_77)


@pytest.fixture(scope="module")
def bob_key(params, msk) -> BB1PrivateKey:
    return BBextractPriv_with_r(params, msk, BOB, R_77)


@pytest.fixture(scope="module")
def bob_ciphertext(params) -> BB1Ciphertext:
    return BBencrypt_with_s(params, BOB, M_78, S_78)


identities = st.binary(min_size=0, max_size=40)
messages = st.binary(min_size=0, max_size=100)


# ---------------------------------------------------------------------------
# RFC 5091 section 7 known answers


def test_bb1_public_parameters_rfc5091_7_7(params, E):
    G = E.point(*G_77)
    for secret, X in ((ALPHA_77, P1_77), (BETA_77, P2_77), (GAMMA_77, P3_77)):
        assert PointMultiply(E, secret, G) == Point(*X)
    assert params.v == E.fp2(*V_77)                  # validated as e'(P_1, P_2) on construction
    assert params.k == 2


def test_bb1_extract_private_rfc5091_7_7(bob_key):
    assert bob_key.D_0 == Point(*D0_77)
    assert bob_key.D_1 == Point(*D1_77)


def test_bb_derive_public(params):
    """h_id = HashToRange(id, q, hashfcn) (RFC 5091 6.2.1)."""
    assert BBderivePubl(params, BOB) == HashToRange(BOB, ORDER_77, SHA1)
    assert 0 <= BBderivePubl(params, b"") < ORDER_77


def test_bb1_extract_private_with_identity_as_printed_differs(params, msk):
    assert BBextractPriv_with_r(params, msk, bytes.fromhex("6f4262"), R_77).D_0 != Point(*D0_77)


def test_bb1_encrypt_rfc5091_7_8(bob_ciphertext):
    assert bob_ciphertext.u == U_78
    assert bob_ciphertext.C_0 == Point(*C0_78)
    assert bob_ciphertext.C_1 == Point(*C1_78)
    assert bob_ciphertext.y == Y_78


def test_bb1_decrypt_rfc5091_7_8_with_the_7_7_key(params, bob_key):
    printed = BB1Ciphertext(U_78, Point(*C0_78), Point(*C1_78), Y_78)
    assert BBdecrypt(params, bob_key, printed) == M_78


# ---------------------------------------------------------------------------
# Correctness and key separation (hypothesis)


@settings(max_examples=25, deadline=None)
@given(id=identities, m=messages, seed=st.binary(min_size=1, max_size=16))
def test_decrypt_of_encrypt_is_identity(params, msk, id, m, seed):
    rng = HmacDrbg.from_seed(seed)
    key = BBextractPriv(params, msk, id, rng)
    ciphertext = BBencrypt(params, id, m, rng)
    assert len(ciphertext.y) == len(m)
    assert BBdecrypt(params, key, ciphertext) == m


@settings(max_examples=8, deadline=None)
@given(secrets=st.tuples(*[st.integers(1, ORDER_77 - 1)] * 3), id=identities, m=messages)
def test_round_trip_under_any_master_secret(E, secrets, id, m):
    G = E.point(*G_77)
    P_1, P_2, P_3 = (PointMultiply(E, x, G) for x in secrets)
    from protocols.primitives.supersingular import Pairing
    params = BB1PublicParameters(E, G, P_1, P_2, P_3, Pairing(E, P_1, P_2), SHA256)
    key = BBextractPriv(params, BB1MasterSecret(*secrets), id)
    assert BBdecrypt(params, key, BBencrypt(params, id, m)) == m


@settings(max_examples=15, deadline=None)
@given(id1=identities, id2=identities, m=messages)
def test_key_for_one_identity_never_decrypts_another(params, msk, id1, id2, m):
    assume(HashToRange(id1, ORDER_77, SHA1) != HashToRange(id2, ORDER_77, SHA1))
    ciphertext = BBencrypt(params, id1, m)
    with pytest.raises(VerificationError, match="rejected"):
        BBdecrypt(params, BBextractPriv(params, msk, id2), ciphertext)


def test_keys_are_randomised_but_equivalent(params, msk, bob_ciphertext):
    other = BBextractPriv_with_r(params, msk, BOB, R_77 + 1)
    assert other != BBextractPriv_with_r(params, msk, BOB, R_77)
    assert BBdecrypt(params, other, bob_ciphertext) == M_78


def test_random_values_come_from_the_injected_rng(params, msk, bob_key, bob_ciphertext):
    q_bytes = (ORDER_77 - 1).bit_length() + 7 >> 3
    def replay(value):
        return ReplayRandom([(value - 1).to_bytes(q_bytes, "big")])   # RandomRange(1, q) = 1 + draw
    assert BBextractPriv(params, msk, BOB, replay(R_77)) == bob_key
    assert BBencrypt(params, BOB, M_78, replay(S_78)) == bob_ciphertext
    with pytest.raises(RandomnessError):
        BBencrypt(params, BOB, M_78, ReplayRandom([]))


# ---------------------------------------------------------------------------
# Tampered, truncated, malformed ciphertexts: exact errors


def flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


@pytest.mark.parametrize("delta", [1, ORDER_77 - 1])
def test_tampered_u(params, bob_key, bob_ciphertext, delta):
    tampered = dataclasses.replace(bob_ciphertext, u=(bob_ciphertext.u + delta) % ORDER_77)
    with pytest.raises(VerificationError):
        BBdecrypt(params, bob_key, tampered)


@pytest.mark.parametrize("component", ["C_0", "C_1"])
def test_tampered_points_on_the_curve(params, bob_key, bob_ciphertext, E, component):
    moved = PointMultiply(E, 2, getattr(bob_ciphertext, component))
    with pytest.raises(VerificationError):
        BBdecrypt(params, bob_key, dataclasses.replace(bob_ciphertext, **{component: moved}))


@pytest.mark.parametrize("component", ["C_0", "C_1"])
def test_invalid_points(params, bob_key, bob_ciphertext, E, component):
    X = getattr(bob_ciphertext, component)
    y = 2
    full = Point(E.cube_root(y * y - 1), y)
    for bad, message in ((Point(X.x, (X.y + 1) % E.p), "not on the curve"),
                         (full, "not in the subgroup"),
                         (INFINITY, "point at infinity"),
                         (Point(X.x, X.y + E.p), r"outside \[0, p\)")):
        with pytest.raises(InvalidCiphertextError, match=message):
            BBdecrypt(params, bob_key, dataclasses.replace(bob_ciphertext, **{component: bad}))


@pytest.mark.parametrize("index", [0, 4, 8])
def test_tampered_y(params, bob_key, bob_ciphertext, index):
    with pytest.raises(VerificationError):
        BBdecrypt(params, bob_key, dataclasses.replace(bob_ciphertext, y=flip(bob_ciphertext.y, index)))


def test_truncated_or_extended_y(params, bob_key, bob_ciphertext):
    for y in (bob_ciphertext.y[:-1], bob_ciphertext.y + b"\0", b""):
        with pytest.raises(VerificationError):
            BBdecrypt(params, bob_key, dataclasses.replace(bob_ciphertext, y=y))


def test_u_out_of_range(params, bob_key, bob_ciphertext):
    for u in (ORDER_77, bob_ciphertext.u + ORDER_77, -1):
        with pytest.raises(InvalidCiphertextError, match=r"\[0, q\)"):
            BBdecrypt(params, bob_key, dataclasses.replace(bob_ciphertext, u=u))
    with pytest.raises(InvalidCiphertextError, match=r"\[0, q\)"):
        BBdecrypt(params, bob_key, dataclasses.replace(bob_ciphertext, u=True))
    with pytest.raises(InvalidCiphertextError, match="BB1Ciphertext"):
        BBdecrypt(params, bob_key, (bob_ciphertext.u, bob_ciphertext.C_0))


def test_der_ciphertext_round_trip_and_truncation(params, bob_key, bob_ciphertext):
    data = bob_ciphertext.to_der()
    assert BB1Ciphertext.from_der(data, params) == bob_ciphertext
    assert BBdecrypt(params, bob_key, BB1Ciphertext.from_der(data, params)) == M_78
    for cut in (1, 7, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError):
            BB1Ciphertext.from_der(data[:cut], params)
    with pytest.raises(DecodeError, match="trailing"):
        BB1Ciphertext.from_der(data + b"\0", params)


def test_der_ciphertext_rejections(params, bob_ciphertext, E):
    c = bob_ciphertext
    def block(version=2, C_0=(c.C_0.x, c.C_0.y), u=c.u):
        return der_sequence(der_integer(version), der_fp_point(*C_0), der_fp_point(c.C_1.x, c.C_1.y),
                            der_integer(u), der_octet_string(c.y))
    assert BB1Ciphertext.from_der(block(), params) == c
    with pytest.raises(DecodeError, match="unknown version"):
        BB1Ciphertext.from_der(block(version=1), params)
    with pytest.raises(InvalidCiphertextError, match="not on the curve"):
        BB1Ciphertext.from_der(block(C_0=(c.C_0.x, (c.C_0.y + 1) % E.p)), params)
    with pytest.raises(InvalidCiphertextError, match=r"\[0, q\)"):
        BB1Ciphertext.from_der(block(u=ORDER_77), params)


# ---------------------------------------------------------------------------
# Parameters, keys and their encodings


def test_encodings_round_trip(params, msk, bob_key):
    assert BB1PublicParameters.from_der(params.to_der(), **TOY) == params
    assert BB1MasterSecret.from_der(msk.to_der()) == msk
    assert BB1PrivateKey.from_der(bob_key.to_der(), params) == bob_key
    for secret in (ALPHA_77, BETA_77, GAMMA_77):
        assert str(secret) not in repr(msk) and format(secret, "x")[:8] not in repr(msk)
    assert format(D0_77[0], "x")[:8] not in repr(bob_key)


def test_parameter_validation(params, E):
    with pytest.raises(ParameterError, match="v is not e'\\(P_1, P_2\\)"):
        dataclasses.replace(params, v=params.v * params.v)
    with pytest.raises(ParameterError, match="v is not e'\\(P_1, P_2\\)"):
        dataclasses.replace(params, P_2=params.P_3)
    with pytest.raises(ParameterError, match="P_3"):
        dataclasses.replace(params, P_3=Point(0, 1))
    with pytest.raises(ParameterError, match="point at infinity"):
        dataclasses.replace(params, P=INFINITY)
    with pytest.raises(ParameterError, match="F_p\\^2"):
        dataclasses.replace(params, v=(V_77[0], V_77[1]))
    with pytest.raises(ParameterError, match="below the minimum"):
        BB1PublicParameters.from_der(params.to_der())
    with pytest.raises(ParameterError, match="integer >= 1"):
        BB1MasterSecret(0, 1, 1)
    with pytest.raises(ParameterError, match="must be bytes"):
        BBencrypt(params, "Bob", M_78)
    with pytest.raises(ParameterError, match="must be bytes"):
        BBencrypt(params, BOB, "Hi there!")
    for bad_s in (0, ORDER_77, -5):
        with pytest.raises(ParameterError, match=r"\[1, q - 1\]"):
            BBencrypt_with_s(params, BOB, M_78, bad_s)


def test_master_secret_must_belong_to_the_parameters(params):
    with pytest.raises(KeyMismatchError, match="does not belong"):
        BBextractPriv(params, BB1MasterSecret(ALPHA_77, BETA_77, GAMMA_77 + 1), BOB)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        BBextractPriv(params, BB1MasterSecret(ALPHA_77 + ORDER_77, BETA_77, GAMMA_77), BOB)
    with pytest.raises(ParameterError, match=r"\[1, q - 1\]"):
        BBextractPriv_with_r(params, BB1MasterSecret(ALPHA_77, BETA_77, GAMMA_77), BOB, 0)


def test_decrypt_validates_the_key(params, bob_key, bob_ciphertext):
    with pytest.raises(ParameterError, match="D_1"):
        BBdecrypt(params, dataclasses.replace(bob_key, D_1=Point(0, 1)), bob_ciphertext)
    with pytest.raises(ParameterError, match="D_0"):
        BBdecrypt(params, dataclasses.replace(bob_key, D_0=INFINITY), bob_ciphertext)
    with pytest.raises(ParameterError, match="BB1PrivateKey"):
        BBdecrypt(params, (bob_key.D_0, bob_key.D_1), bob_ciphertext)
    bad = der_sequence(der_integer(2), der_fp_point(0, 1), der_fp_point(bob_key.D_1.x, bob_key.D_1.y))
    with pytest.raises(ParameterError, match="not in the subgroup"):
        BB1PrivateKey.from_der(bad, params)


def test_wrong_key_from_other_parameters(params, bob_ciphertext, E):
    """A key whose D_0 is off by a factor fails the consistency check."""
    key = BB1PrivateKey(PointMultiply(E, 2, Point(*D0_77)), Point(*D1_77))
    with pytest.raises(VerificationError):
        BBdecrypt(params, key, bob_ciphertext)


def test_bb1_ciphertext_reveals_its_recipient_to_a_guess(params, bob_ciphertext, E):
    """specs/ibe.md 3.10.2: e'(C_0, [h_id]P_1 + P_3) = e'(C_1, P) holds exactly
    for the recipient's identity; only public values are used."""
    from protocols.primitives.supersingular import Pairing, PointAdd1

    def matches(identity: bytes) -> bool:
        h_id = BBderivePubl(params, identity)
        Q = PointAdd1(E, PointMultiply(E, h_id, params.P_1), params.P_3)
        return Pairing(E, bob_ciphertext.C_0, Q) == Pairing(E, bob_ciphertext.C_1, params.P)

    assert matches(BOB)
    assert not matches(b"Alice")


def test_psi_is_canonical_order_1(params, E):
    """BB1 hashes w with Canonical ordering o = 1 (b || a), BF with o = 0."""
    w = params.v ** S_78
    assert Canonical(E, 1, w) == Canonical(E, 0, w)[24:] + Canonical(E, 0, w)[:24]


# ---------------------------------------------------------------------------
# Setup (sections 6.1.1, 6.1.2)


def test_setup_at_the_112_bit_level():
    params, msk = BBsetup(2048, HmacDrbg.from_seed("usapp-tests/bb1-setup-2048"))
    E = params.curve
    assert E.p.bit_length() == 1024 and E.q.bit_length() == 224 and params.hashfcn is SHA224
    assert all(1 <= x < E.q for x in (msk.alpha, msk.beta, msk.gamma))
    identity = b"meter-0042|2026-11"
    key = BBextractPriv(params, msk, identity)
    assert BBdecrypt(params, key, BBencrypt(params, identity, b"session key")) == b"session key"
    assert BB1PublicParameters.from_der(params.to_der()) == params
    again = BBsetup(2048, HmacDrbg.from_seed("usapp-tests/bb1-setup-2048"))
    assert again == (params, msk)


def test_setup_refuses_other_levels():
    with pytest.raises(ParameterError, match="SHOULD NOT"):
        BBsetup(1024)
    with pytest.raises(ParameterError):
        BBsetup(2047)


def test_setup_at_the_128_bit_level():
    params, msk = BBsetup(3072, HmacDrbg.from_seed("usapp-tests/bb1-setup-3072"))
    assert params.curve.p.bit_length() == 1536 and params.hashfcn is SHA256
    key = BBextractPriv(params, msk, BOB)
    assert BBdecrypt(params, key, BBencrypt(params, BOB, M_78)) == M_78
