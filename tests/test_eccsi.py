"""ECCSI per RFC 6507 on P-256 (protocols/schemes/eccsi.py, specs/sakke_eccsi.md section 4).

Known answers: every value of RFC 6507 Appendix A, transcribed below from the
RFC text (the hash inputs of HS and HE included), reproduced both from the
values the RFC chooses (KSAK, v, j) and from those values fed through the
injected randomness.  Properties (round trips for random identities and
messages; no signature verifies under another identity, key period, message
or KPAK) are hypothesis tests; every rejection names its typed error.
"""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError, VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.schemes import eccsi
from protocols.schemes.eccsi import (
    Identifier,
    Signature,
    ConstructSskPvt,
    KeyGen,
    Sign,
    ValidateSsk,
    Verify,
    compute_HS,
    construct_ssk_pvt_with_v,
    he_input,
    hs_input,
    kms_from_ksak,
    sign_with_j,
    verify_trace,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 6507 Appendix A, as printed (spaces as in the RFC).
A_P = int("FFFFFFFF 00000001 00000000 00000000 00000000 FFFFFFFF FFFFFFFF FFFFFFFF".replace(" ", ""), 16)
A_B = int("5AC635D8 AA3A93E7 B3EBBD55 769886BC 651D06B0 CC53B0F6 3BCE3C3E 27D2604B".replace(" ", ""), 16)
A_Q = int("FFFFFFFF 00000000 FFFFFFFF FFFFFFFF BCE6FAAD A7179E84 F3B9CAC2 FC632551".replace(" ", ""), 16)
A_G = h("04 6B17D1F2 E12C4247 F8BCE6E5 63A440F2 77037D81 2DEB33A0 F4A13945 D898C296"
        "4FE342E2 FE1A7F9B 8EE7EB4A 7C0F9E16 2BCE3357 6B315ECE CBB64068 37BF51F5")
A_KSAK = 0x12345
A_KPAK = h("04 50D4670B DE75244F 28D2838A 0D25558A 7A72686D 4522D4C8 273FB644 2AEBFA93"
           "DBDD3755 1AFD263B 5DFD617F 3960C65A 8C298850 FF99F203 66DCE7D4 367217F4")
A_ID = h("3230 31312D30 32007465 6C3A2B34 34373730 30393030 31323300")
A_V = 0x23456
A_PVT = h("04 758A1427 79BE89E8 29E71984 CB40EF75 8CC4AD77 5FC5B9A3 E1C8ED52 F6FA36D9"
          "A79D2476 92F4EDA3 A6BDAB77 D6AA6474 A464AE49 34663C52 65BA7018 BA091F79")
A_HS_INPUT = A_G + A_KPAK + h("32303131 2D303200 74656C3A 2B343437 37303039 30303132 3300") + A_PVT
A_HS = h("490F3FEB BC1C902F 6289723D 7F8CBF79 DB889308 49D19F38 F0295B5C 276C14D1")
A_SSK = h("23F374AE 1F4033F3 E9DBDDAA EF20F4CF 0B86BBD5 A138A5AE 9E7E006B 34489A0D")
A_M = h("6D657373 61676500")
A_J_SCALAR = 0x34567
A_J = h("04 269D4C8F DEB66A74 E4EF8C0D 5DCC597D DFE6029C 2AFFC493 6008CD2C C1045D81"
        "6DDA6A13 10F4B067 BD5DABDA D741B7CE F36457E1 96B1BFA9 7FD5F8FB B3926ADB")
A_R = h("269D4C8F DEB66A74 E4EF8C0D 5DCC597D DFE6029C 2AFFC493 6008CD2C C1045D81")
A_HE_INPUT = A_HS + A_R + A_M
A_HE = h("111F90EA E8271C96 DF9B3D67 26768D9E E9B18145 D7EC152C FA9C23D1 C4F02285")
A_S_PRIME = h("E09B528D 0EF8D6DF 1AA3ECBF 80110CFC EC9FC682 52CEBB67 9F413484 6940CCFD")
A_S = h("E09B528D 0EF8D6DF 1AA3ECBF 80110CFC EC9FC682 52CEBB67 9F413484 6940CCFD")
A_SIG = A_R + A_S + A_PVT
A_Y = h("04 833898D9 39C0013B B0502728 6F95CCE0 37C11BD2 5799423C 76E48362 A4959978"
        "95D0473A 1CD6186E E9F0C104 B472499E 1A24D6CE 3D85173F 02EBBD94 5C25F604")


def draw(value: int) -> bytes:
    """The 32 bytes that make random_range(rng, 1, q) return ``value``
    (specs/conventions.md section 3.2: 1 + random_below(q - 1), 256-bit draws)."""
    return (value - 1).to_bytes(32, "big")


@pytest.fixture(scope="module")
def key() -> eccsi.SigningKey:
    return ValidateSsk(A_KPAK, A_ID, A_SSK, A_PVT)


# --------------------------------------------------------------------------
# RFC 6507 Appendix A


def test_appendix_a_parameters():
    assert (eccsi.p, eccsi.B, eccsi.q, eccsi.N, eccsi.n) == (A_P, A_B, A_Q, 32, 256)
    assert eccsi.encode_point(eccsi.G()) == A_G


def test_appendix_a_identifier():
    identifier = Identifier("2011-02", "tel:+447700900123")
    assert identifier.encode() == A_ID == b"2011-02\0tel:+447700900123\0"
    assert Identifier.decode(A_ID) == identifier


def test_appendix_a_kpak():
    assert kms_from_ksak(A_KSAK).KPAK == A_KPAK
    assert KeyGen(ReplayRandom([draw(A_KSAK)])).KPAK == A_KPAK


def test_appendix_a_ssk_and_pvt():
    kms = kms_from_ksak(A_KSAK)
    assert hs_input(A_KPAK, A_ID, A_PVT) == A_HS_INPUT
    assert compute_HS(A_KPAK, A_ID, A_PVT) == A_HS
    issued = construct_ssk_pvt_with_v(kms, A_ID, A_V)
    assert (issued.PVT, issued.SSK) == (A_PVT, A_SSK)
    rng = ReplayRandom([draw(A_V)])
    assert ConstructSskPvt(kms, A_ID, rng) == issued and rng.exhausted


def test_appendix_a_validation_stores_hs(key):
    assert (key.HS, key.SSK, key.PVT, key.ID) == (A_HS, int.from_bytes(A_SSK, "big"), A_PVT, A_ID)


def test_appendix_a_signature(key):
    trace = sign_with_j(key, A_M, A_J_SCALAR)
    assert trace.J == A_J
    assert trace.r.to_bytes(32, "big") == A_R
    assert he_input(key.HS, trace.r, A_M) == A_HE_INPUT
    assert trace.HE == A_HE
    assert trace.s_prime.to_bytes(32, "big") == A_S_PRIME
    assert trace.s.to_bytes(32, "big") == A_S
    assert trace.signature == A_SIG
    rng = ReplayRandom([draw(A_J_SCALAR)])
    assert Sign(key, A_M, rng) == A_SIG and rng.exhausted


def test_appendix_a_verification():
    trace = verify_trace(A_KPAK, A_ID, A_M, A_SIG)
    assert (trace.HS, trace.HE, trace.Y, trace.J) == (A_HS, A_HE, A_Y, A_J)
    assert trace.J[1:33] == A_R     # Jx = r
    assert Verify(A_KPAK, A_ID, A_M, A_SIG) is None


# --------------------------------------------------------------------------
# Round trips and binding (hypothesis)

periods = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2000, 2099), st.integers(1, 12))
tel_uris = st.text("0123456789", min_size=4, max_size=15).map(lambda d: "tel:+" + d)
identities = st.builds(Identifier, periods, tel_uris)
messages = st.binary(max_size=200)


@pytest.fixture(scope="module")
def kms() -> eccsi.EccsiKms:
    return KeyGen(HmacDrbg.from_seed("test_eccsi/kms"))


def _key_for(kms: eccsi.EccsiKms, identity: Identifier) -> eccsi.SigningKey:
    issued = ConstructSskPvt(kms, identity.encode(), HmacDrbg.from_seed(b"v" + identity.encode()))
    return ValidateSsk(kms.KPAK, identity.encode(), issued.SSK, issued.PVT)


@settings(max_examples=15, deadline=None)
@given(identity=identities, message=messages)
def test_round_trip(kms, identity, message):
    key = _key_for(kms, identity)
    signature = Sign(key, message, HmacDrbg.from_seed(b"j" + message))
    assert len(signature) == eccsi.SIGNATURE_BYTES
    Verify(kms.KPAK, identity.encode(), message, signature)


@settings(max_examples=15, deadline=None)
@given(identity=identities, other=identities, message=messages, other_message=messages)
def test_never_verifies_under_another_identity_period_or_message(kms, identity, other, message, other_message):
    key = _key_for(kms, identity)
    signature = Sign(key, message, HmacDrbg.from_seed(b"j" + message))
    if other != identity:
        with pytest.raises(VerificationError):
            Verify(kms.KPAK, other.encode(), message, signature)
    same_number_next_period = Identifier(other.period, identity.uri)
    if same_number_next_period != identity:
        with pytest.raises(VerificationError):
            Verify(kms.KPAK, same_number_next_period.encode(), message, signature)
    if other_message != message:
        with pytest.raises(VerificationError):
            Verify(kms.KPAK, identity.encode(), other_message, signature)


def test_never_verifies_under_another_kms(kms):
    other = KeyGen(HmacDrbg.from_seed("test_eccsi/other-kms"))
    with pytest.raises(VerificationError):
        Verify(other.KPAK, A_ID, A_M, A_SIG)
    signature = Sign(_key_for(kms, Identifier("2011-02", "tel:+447700900123")), A_M, HmacDrbg.from_seed("j"))
    with pytest.raises(VerificationError):
        Verify(A_KPAK, A_ID, A_M, signature)


def test_the_pvt_of_another_identity_does_not_carry_its_key(kms):
    """A signer with an SSK for one identity cannot present it for another,
    nor pair it with another identity's PVT (5.1.2 step 3)."""
    alice, bob = Identifier("2026-01", "tel:+441000"), Identifier("2026-01", "tel:+442000")
    a = ConstructSskPvt(kms, alice.encode(), HmacDrbg.from_seed("a"))
    b = ConstructSskPvt(kms, bob.encode(), HmacDrbg.from_seed("b"))
    for ssk, pvt, ident in ((a.SSK, a.PVT, bob), (a.SSK, b.PVT, alice), (a.SSK, b.PVT, bob)):
        with pytest.raises(VerificationError):
            ValidateSsk(kms.KPAK, ident.encode(), ssk, pvt)


def test_the_rfc_malleability_q_minus_s_verifies():
    """RFC 6507 section 6: s may be replaced by q - s (J becomes -J, same Jx).
    The implementation follows the RFC and accepts both; specs/sakke_eccsi.md 6.3 says so."""
    s = int.from_bytes(A_S, "big")
    Verify(A_KPAK, A_ID, A_M, A_R + (A_Q - s).to_bytes(32, "big") + A_PVT)


# --------------------------------------------------------------------------
# Bad input: each check and its typed error


def _replace(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


OFF_CURVE = b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big")
BIG_X = b"\x04" + A_P.to_bytes(32, "big") + A_PVT[33:]
COMPRESSED = b"\x02" + A_PVT[1:]


@pytest.mark.parametrize("pvt", [OFF_CURVE, BIG_X, COMPRESSED, A_PVT[:-1] + b"\x00", b"\x00" * 65],
                         ids=["off-curve", "x-not-below-p", "compressed-prefix", "y-changed", "zero"])
def test_pvt_not_a_curve_point_is_refused(pvt):
    with pytest.raises(DecodeError):
        Verify(A_KPAK, A_ID, A_M, A_R + A_S + pvt)
    with pytest.raises(DecodeError):
        ValidateSsk(A_KPAK, A_ID, A_SSK, pvt)


@pytest.mark.parametrize("kpak", [OFF_CURVE, BIG_X, A_KPAK[:64], A_KPAK + b"\x00", b""])
def test_kpak_not_a_curve_point_is_refused(kpak):
    with pytest.raises(DecodeError):
        Verify(kpak, A_ID, A_M, A_SIG)
    with pytest.raises(DecodeError):
        ValidateSsk(kpak, A_ID, A_SSK, A_PVT)
    with pytest.raises(DecodeError):
        eccsi.check_kpak(kpak)


@pytest.mark.parametrize("length", [0, 128, 130, 64])
def test_signature_of_wrong_length_is_refused(length):
    signature = (A_SIG + b"\x00")[:length] if length <= 130 else A_SIG
    with pytest.raises(DecodeError):
        Verify(A_KPAK, A_ID, A_M, signature)
    with pytest.raises(DecodeError):
        Signature.decode(signature)


@pytest.mark.parametrize("r", [0, A_P, (1 << 256) - 1], ids=["zero", "p", "max"])
def test_r_out_of_range_is_refused(r):
    with pytest.raises(VerificationError, match="r is not"):
        Verify(A_KPAK, A_ID, A_M, _replace(A_SIG, 0, r.to_bytes(32, "big")))


@pytest.mark.parametrize("s", [0, A_Q, (1 << 256) - 1], ids=["zero", "q", "max"])
def test_s_out_of_range_is_refused(s):
    with pytest.raises(VerificationError, match="s is not"):
        Verify(A_KPAK, A_ID, A_M, _replace(A_SIG, 32, s.to_bytes(32, "big")))


@pytest.mark.parametrize("index", [0, 31, 32, 63])
def test_changed_r_or_s_does_not_verify(index):
    signature = _replace(A_SIG, index, bytes([A_SIG[index] ^ 1]))
    with pytest.raises(VerificationError):
        Verify(A_KPAK, A_ID, A_M, signature)


def test_another_valid_pvt_does_not_verify():
    other_pvt = construct_ssk_pvt_with_v(kms_from_ksak(A_KSAK), A_ID, A_V + 1).PVT
    with pytest.raises(VerificationError):
        Verify(A_KPAK, A_ID, A_M, A_R + A_S + other_pvt)


def test_ssk_failing_validation_is_refused():
    wrong = (int.from_bytes(A_SSK, "big") + 1).to_bytes(32, "big")
    with pytest.raises(VerificationError, match="5.1.2"):
        ValidateSsk(A_KPAK, A_ID, wrong, A_PVT)
    with pytest.raises(VerificationError, match="5.1.2"):
        ValidateSsk(A_KPAK, A_ID + b"x", A_SSK, A_PVT)
    with pytest.raises(VerificationError, match="5.1.2"):
        ValidateSsk(kms_from_ksak(A_KSAK + 1).KPAK, A_ID, A_SSK, A_PVT)


@pytest.mark.parametrize("ssk", [b"\x00" * 32, A_Q.to_bytes(32, "big"), b"\xff" * 32])
def test_ssk_out_of_range_is_refused(ssk):
    with pytest.raises(VerificationError, match="SSK is not"):
        ValidateSsk(A_KPAK, A_ID, ssk, A_PVT)


@pytest.mark.parametrize("ssk", [A_SSK[1:], A_SSK + b"\x00", b"", "23F3"])
def test_ssk_of_wrong_length_is_refused(ssk):
    with pytest.raises(DecodeError):
        ValidateSsk(A_KPAK, A_ID, ssk, A_PVT)


def test_local_arguments_out_of_range(key):
    kms = kms_from_ksak(A_KSAK)
    for bad in (0, A_Q, -1, True, 1.0):
        with pytest.raises(ParameterError):
            kms_from_ksak(bad)
        with pytest.raises(ParameterError):
            construct_ssk_pvt_with_v(kms, A_ID, bad)
        with pytest.raises(ParameterError):
            sign_with_j(key, A_M, bad)
    with pytest.raises(ParameterError):
        Sign(dataclasses.replace(key), "message", None)
    with pytest.raises(ParameterError):
        Sign(object(), A_M, None)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        construct_ssk_pvt_with_v(kms, b"", A_V)
    with pytest.raises(ParameterError):
        Verify(A_KPAK, b"x" * (eccsi.MAX_ID_BYTES + 1), A_M, A_SIG)
    with pytest.raises(ParameterError):
        Verify(A_KPAK, A_ID, b"x" * (eccsi.MAX_MESSAGE_BYTES + 1), A_SIG)


def test_secrets_stay_out_of_representations(key):
    kms = kms_from_ksak(A_KSAK)
    assert "12345" not in repr(kms) and str(A_KSAK) not in repr(kms)
    assert A_SSK.hex() not in repr(key).lower() and str(key.SSK) not in repr(key)
    issued = construct_ssk_pvt_with_v(kms, A_ID, A_V)
    assert A_SSK.hex() not in repr(issued).lower()


# --------------------------------------------------------------------------
# Identifiers (RFC 6509 section 3.2)


@pytest.mark.parametrize("period", ["2011-2", "2011-00", "2011-13", "11-02", "2011-02 ", "２０１１-02", "2011/02"])
def test_bad_key_period_is_refused(period):
    with pytest.raises(ParameterError):
        Identifier(period, "tel:+447700900123")


@pytest.mark.parametrize("uri", ["tel:447700900123", "tel:+44-7700-900123", "tel:+447700900123;ext=1",
                                 "tel:+44 7700", "tel:+", "", "no-scheme", "sip:a\0b", "sip:é@x",
                                 "sip:" + "a" * eccsi.MAX_URI_BYTES])
def test_bad_uri_is_refused(uri):
    with pytest.raises(ParameterError):
        Identifier("2026-03", uri)


def test_other_uri_schemes_are_accepted():
    identifier = Identifier("2026-03", "urn:usapp:meter:SM-0001")
    assert Identifier.decode(identifier.encode()) == identifier


@pytest.mark.parametrize("data", [b"2011-02\0tel:+447700900123", b"2011-02tel:+447700900123\0",
                                  b"2011-02\0tel:+447700900123\0\0", b"2011-13\0tel:+4477\0",
                                  b"2011-02\0tel:+44\xff\0", b"x" * (eccsi.MAX_ID_BYTES + 1), "2011-02"])
def test_bad_identifier_encoding_is_refused(data):
    with pytest.raises(DecodeError):
        Identifier.decode(data)


# --------------------------------------------------------------------------
# Restarts draw again, in order (RFC 6507 5.1.1 step 5, 5.2.1 step 4)


def test_sign_draws_j_again_after_a_restart(monkeypatch, key):
    """When step 4 (or r = 0) fails for the first j, Sign consumes a second
    32-octet draw and signs with it."""
    calls = []
    real = eccsi.sign_with_j

    def fail_first(k, m, j):
        calls.append(j)
        if len(calls) == 1:
            raise ParameterError("HE + r * SSK is zero modulo q")
        return real(k, m, j)

    monkeypatch.setattr(eccsi, "sign_with_j", fail_first)
    rng = ReplayRandom([draw(5), draw(A_J_SCALAR)])
    assert Sign(key, A_M, rng) == A_SIG and rng.exhausted and calls == [5, A_J_SCALAR]


def test_issuance_draws_v_again_after_a_restart(monkeypatch):
    calls = []
    real = eccsi.construct_ssk_pvt_with_v

    def fail_first(kms, ID, v):
        calls.append(v)
        if len(calls) == 1:
            raise ParameterError("SSK or HS is zero modulo q")
        return real(kms, ID, v)

    monkeypatch.setattr(eccsi, "construct_ssk_pvt_with_v", fail_first)
    rng = ReplayRandom([draw(7), draw(A_V)])
    issued = ConstructSskPvt(kms_from_ksak(A_KSAK), A_ID, rng)
    assert (issued.SSK, issued.PVT) == (A_SSK, A_PVT) and rng.exhausted and calls == [7, A_V]


@settings(max_examples=60, deadline=None)
@given(signature=st.binary(min_size=128, max_size=128).map(lambda b: b[:64] + b"\x04" + b[64:]),
       identifier=st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_typed_errors(signature, identifier):
    """Hostile signatures and identifiers: only DecodeError / VerificationError /
    ParameterError, never another exception (and never acceptance)."""
    with pytest.raises((DecodeError, VerificationError, ParameterError)):
        Verify(A_KPAK, A_ID, A_M, signature)
    with pytest.raises((DecodeError, VerificationError, ParameterError)):
        Verify(A_KPAK, identifier, A_M, A_SIG if identifier != A_ID else A_SIG[:-1])
    try:
        Identifier.decode(identifier)
    except DecodeError:
        pass


# --------------------------------------------------------------------------
# Key periods (RFC 6509 section 3.3)


def test_key_periods_follow_rfc_6509_section_3_3():
    date = datetime.date
    assert eccsi.period_of(date(2011, 2, 14)) == "2011-02"
    assert eccsi.next_period("2011-12") == "2012-01" and eccsi.previous_period("2012-01") == "2011-12"
    assert eccsi.accepted_periods(date(2011, 2, 14)) == ("2011-02",)
    assert eccsi.accepted_periods(date(2011, 2, 27)) == ("2011-02", "2011-03")   # second-to-last day
    assert eccsi.accepted_periods(date(2011, 2, 28)) == ("2011-02", "2011-03")
    assert eccsi.accepted_periods(date(2012, 2, 27)) == ("2012-02",)              # leap year: 28 is second-to-last
    assert eccsi.accepted_periods(date(2011, 3, 1)) == ("2011-02", "2011-03")
    assert eccsi.accepted_periods(date(2011, 3, 2)) == ("2011-02", "2011-03")
    assert eccsi.accepted_periods(date(2011, 3, 3)) == ("2011-03",)
    assert eccsi.accepted_periods(date(2011, 12, 31)) == ("2011-12", "2012-01")
    assert eccsi.accepted_periods(date(2012, 1, 1)) == ("2011-12", "2012-01")


@settings(max_examples=50, deadline=None)
@given(day=st.dates(min_value=datetime.date(1000, 1, 1), max_value=datetime.date(9998, 12, 31)))
def test_at_most_two_consecutive_periods_are_accepted(day):
    periods = eccsi.accepted_periods(day)
    assert eccsi.period_of(day) in periods and 1 <= len(periods) <= 2
    if len(periods) == 2:
        assert eccsi.next_period(periods[0]) == periods[1]
    for period in periods:
        Identifier(period, "tel:+447700900123")


@pytest.mark.parametrize("bad", ["2011-13", "11-02", 201102, None, "9999-12"])
def test_bad_periods_are_refused(bad):
    with pytest.raises(ParameterError):
        eccsi.next_period(bad)


# --------------------------------------------------------------------------
# An independent verifier: ECCSI verification is ECDSA's (RFC 6507 section 6)


def _ecdsa_check(Y: bytes, HE: bytes, r: int, s: int) -> None:
    """(r, s) is an ECCSI signature with public key Y and digest HE exactly when
    (r, s^-1 mod q) is an ECDSA P-256 signature of the prehashed digest HE under
    Y: ECCSI's s is the inverse of ECDSA's.  Checked by OpenSSL through
    ``cryptography`` (raises InvalidSignature otherwise)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), Y)
    der = utils.encode_dss_signature(r, pow(s, -1, A_Q))
    public.verify(der, HE, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_appendix_a_signature_verifies_as_ecdsa():
    _ecdsa_check(A_Y, A_HE, int.from_bytes(A_R, "big"), int.from_bytes(A_S, "big"))
    assert eccsi.encode_point(eccsi.G() * int.from_bytes(A_SSK, "big")) == A_Y   # Y = [SSK]G


@settings(max_examples=10, deadline=None)
@given(identity=identities, message=messages)
def test_signatures_verify_under_an_independent_ecdsa_verifier(kms, identity, message):
    key = _key_for(kms, identity)
    signature = Sign(key, message, HmacDrbg.from_seed(b"j" + message))
    trace = verify_trace(kms.KPAK, identity.encode(), message, signature)
    decoded = Signature.decode(signature)
    _ecdsa_check(trace.Y, trace.HE, decoded.r, decoded.s)
