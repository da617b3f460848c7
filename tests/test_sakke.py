"""SAKKE per RFC 6508 on RFC 6509 parameter set 1 (protocols/schemes/sakke.py,
protocols/primitives/sakke_curve.py, specs/sakke_eccsi.md sections 2 and 3).

Known answers: every value of RFC 6508 Appendix A and of RFC 6509 Appendix A
(parameter set 1), transcribed below from the RFC texts: z, Z, r with its hash
input, R_(b,S), g^r, the mask, H, the RSK K_b, w, the SSV, TEST and the
HashToIntegerRange example with every h_i and v_i.  They are reproduced from
the values the RFC chooses (z, SSV) and through the injected randomness.  The
pairing is also checked algebraically (bilinearity, <P, P> = g), and each
optimised computation against its plain reference.  The 1024-bit pairing
costs about 20 ms, so hypothesis examples are few; the broader runs are slow.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, InvalidCiphertextError, ParameterError, VerificationError
from protocols.primitives import sakke_curve as curve
from protocols.primitives.drbg import HmacDrbg
from protocols.primitives.rand import ReplayRandom
from protocols.primitives.sakke_curve import PARAMETER_SET_1 as PS1
from protocols.primitives.supersingular import INFINITY, Point
from protocols.schemes import sakke
from protocols.schemes.sakke import (
    Decapsulate,
    Encapsulate,
    ExtractRSK,
    HashToIntegerRange,
    Identifier,
    KeyGen,
    ValidateRSK,
    decapsulate_trace,
    encapsulate_with_ssv,
    hash_to_integer_range_trace,
    kms_from_z,
    split_encapsulated_data,
)

# RFC 6509 Appendix A, Parameter Set 1
PS1_P = int("997ABB1F0A563FDA65C61198DAD0657A416C0CE19CB48261BE9AE358B3E01A2E"
            "F40AAB27E2FC0F1B228730D531A59CB0E791B39FF7C88A19356D27F4A666A6D0"
            "E26C6487326B4CD4512AC5CD65681CE1B6AFF4A831852A82A7CF3C521C3C09AA"
            "9F94D6AF56971F1FFCE3E82389857DB080C5DF10AC7ACE87666D807AFEA85FEB", 16)
PS1_Q = int("265EAEC7C2958FF69971846636B4195E905B0338672D20986FA6B8D62CF8068B"
            "BD02AAC9F8BF03C6C8A1CC354C69672C39E46CE7FDF222864D5B49FD2999A9B4"
            "389B1921CC9AD335144AB173595A07386DABFD2A0C614AA0A9F3CF14870F026A"
            "A7E535ABD5A5C7C7FF38FA08E2615F6C203177C42B1EB3A1D99B601EBFAA17FB", 16)
PS1_PX = int("53FC09EE332C29AD0A7990053ED9B52A2B1A2FD60AEC69C698B2F204B6FF7CBF"
             "B5EDB6C0F6CE2308AB10DB9030B09E1043D5F22CDB9DFA55718BD9E7406CE890"
             "9760AF765DD5BCCB337C86548B72F2E1A702C3397A60DE74A7C1514DBA66910D"
             "D5CFB4CC80728D87EE9163A5B63F73EC80EC46C4967E0979880DC8ABEAE63895", 16)
PS1_PY = int("0A8249063F6009F1F9F1F0533634A135D3E82016029906963D778D821E141178"
             "F5EA69F4654EC2B9E7F7F5E5F0DE55F66B598CCF9A140B2E416CFF0CA9E032B9"
             "70DAE117AD547C6CCAD696B5B7652FE0AC6F1E80164AA989492D979FC5A4D5F2"
             "13515AD7E9CB99A980BDAD5AD5BB4636ADB9B5706A67DCDE75573FD71BEF16D7", 16)
PS1_G = int("66FC2A432B6EA392148F15867D623068C6A87BD1FB94C41E27FABE658E015A87"
            "371E94744C96FEDA449AE9563F8BC446CBFDA85D5D00EF577072DA8F541721BE"
            "EE0FAED1828EAB90B99DFB0138C7843355DF0460B4A9FD74B4F1A32BCAFA1FFA"
            "D682C033A7942BCCE3720F20B9B7B0403C8CAE87B7A0042ACDE0FAB36461EA46", 16)

# RFC 6508 Appendix A
A_Z_SECRET = 0xAFF429D35F84B110D094803B3595A6E2998BC99F
A_ZX = int("5958EF1B1679BF099B3A030DF255AA6A23C1D8F143D4D23F753E69BD27A832F3"
           "8CB4AD53DDEF4260B0FE8BB45C4C1FF510EFFE300367A37B61F701D914AEF097"
           "24825FA0707D61A6DFF4FBD7273566CDDE352A0B04B7C16A78309BE640697DE7"
           "47613A5FC195E8B9F328852A579DB8F99B1D0034479EA9C5595F47C4B2F54FF2", 16)
A_ZY = int("1508D37514DCF7A8E143A6058C09A6BF2C9858CA37C258065AE6BF7532BC8B5B"
           "63383866E0753C5AC0E72709F8445F2E6178E065857E0EDA10F68206B63505ED"
           "87E534FB2831FF957FB7DC619DAE61301EEACC2FDA3680EA4999258A833CEA8F"
           "C67C6D19487FB449059F26CC8AAB655AB58B7CC796E24E9A394095754F5F8BAE", 16)
A_B = bytes.fromhex("323031312D30320074656C3A2B34343737303039303031323300")
A_SSV = 0x123456789ABCDEF0123456789ABCDEF0
A_R_INPUT = bytes.fromhex("123456789ABCDEF0123456789ABCDEF0323031312D30320074656C3A2B34343737303039303031323300")
A_R = int("13EE3E1B8DAC5DB168B1CEB32F0566A4C273693F78BAFFA2A2EE6A686E6BD90F"
          "8206CCAB84E7F42ED39BD4FB131012ECCA2ECD2119414560C17CAB46B956A80F"
          "58A3302EB3E2C9A228FBA7ED34D8ACA2392DA1FFB0B17B2320AE09AAEDFD0235"
          "F6FE0EB65337A63F9CC97728B8E5AD0460FADE144369AA5B2166213247712096", 16)
A_RBX = int("44E8AD44AB8592A6A5A3DDCA5CF896C718043606A01D650DEF37A01F37C228C3"
            "32FC317354E2C274D4DAF8AD001054C76CE57971C6F4486D5723043261C506EB"
            "F5BE438F53DE04F067C776E0DD3B71A6290133283725A532F21AF145126DC1D7"
            "77ECC27BE50835BD28098B8A73D9F801D893793A41FF5C49B87E79F2BE4D56CE", 16)
A_RBY = int("557E134AD85BB1D4B9CE4F8BE4B08A12BABF55B1D6F1D7A638019EA28E15AB1C"
            "9F76375FDD1210D4F4351B9A009486B7F3ED46C965DED2D80DADE4F38C6721D5"
            "2C3AD103A10EBD2959248B4EF006836BF097448E6107C9EDEE9FB704823DF199"
            "F832C905AE45F8A247A072D8EF729EABC5E27574B07739B34BE74A532F747B86", 16)
A_G_R = int("7D2A8438E6291C649B6579EB3B79EAE948B1DE9E5F7D1F4070A08F8DB6B3C515"
            "6F2201AFFBB5CB9D82AA3EC0D0398B89ABC78A13A760C0BF3F77E63D0DF3F1A3"
            "41A41B8811DF197FD6CD0F003125606F4F109F400F7292A10D255E3C0EBCCB42"
            "53FB182C68F09CF6CD9C4A53DA6C74AD007AF36B8BCA979D5895E282F483FCD6", 16)
A_MASK = 0x9BD4EA1E801D37E62AD2FAB0D4F5BBF7
A_H = 0x89E0BC661AA1E91638E6ACC84E496507
A_KBX = int("93AF67E5007BA6E6A80DA793DA300FA4B52D0A74E25E6E7B2B3D6EE9D18A9B5C"
            "5023597BD82D8062D34019563BA1D25C0DC56B7B979D74AA50F29FBF11CC2C93"
            "F5DFCA615E609279F6175CEADB00B58C6BEE1E7A2A47C4F0C456F05259A6FA94"
            "A634A40DAE1DF593D4FECF688D5FC678BE7EFC6DF3D6835325B83B2C6E69036B", 16)
A_KBY = int("155F0A27241094B04BFB0BDFAC6C670A65C325D39A069F03659D44CA27D3BE8D"
            "F311172B554160181CBE94A2A783320CED590BC42644702CF371271E496BF20F"
            "588B78A1BC01ECBB6559934BDD2FB65D2884318A33D1A42ADF5E33CC5800280B"
            "28356497F87135BAB9612A17260424409AC15FEE996B744C332151235DECB0F5", 16)
A_W = int("7D2A8438E6291C649B6579EB3B79EAE948B1DE9E5F7D1F4070A08F8DB6B3C515"
          "6F2201AFFBB5CB9D82AA3EC0D0398B89ABC78A13A760C0BF3F77E63D0DF3F1A3"
          "41A41B8811DF197FD6CD0F003125606F4F109F400F7292A10D255E3C0EBCCB42"
          "53FB182C68F09CF6CD9C4A53DA6C74AD007AF36B8BCA979D5895E282F483FCD6", 16)
A_TESTX = int("44E8AD44AB8592A6A5A3DDCA5CF896C718043606A01D650DEF37A01F37C228C3"
              "32FC317354E2C274D4DAF8AD001054C76CE57971C6F4486D5723043261C506EB"
              "F5BE438F53DE04F067C776E0DD3B71A6290133283725A532F21AF145126DC1D7"
              "77ECC27BE50835BD28098B8A73D9F801D893793A41FF5C49B87E79F2BE4D56CE", 16)
A_TESTY = int("557E134AD85BB1D4B9CE4F8BE4B08A12BABF55B1D6F1D7A638019EA28E15AB1C"
              "9F76375FDD1210D4F4351B9A009486B7F3ED46C965DED2D80DADE4F38C6721D5"
              "2C3AD103A10EBD2959248B4EF006836BF097448E6107C9EDEE9FB704823DF199"
              "F832C905AE45F8A247A072D8EF729EABC5E27574B07739B34BE74A532F747B86", 16)
A_HTIR_M = bytes.fromhex("123456789ABCDEF0123456789ABCDEF0323031312D30320074656C3A2B34343737303039303031323300")
A_HTIR_A = 0xE04D4EF69DF8689322B39AE3802846174A93BEDB1E3D2A2C5F2C7EA005513EBA
A_HTIR_H = [  # h_0 .. h_4
    0x0000000000000000000000000000000000000000000000000000000000000000,
    0x66687AADF862BD776C8FC18B8E9F8E20089714856EE233B3902A591D0D5F2925,
    0x2B32DB6C2C0A6235FB1397E8225EA85E0F0E6E8C7B126D0016CCBDE0E667151E,
    0x12771355E46CD47C71ED1721FD5319B383CCA3A1F9FCE3AA1C8CD3BD37AF20D7,
    0xFE15C0D3EBE314FAD720A08B839A004C2E6386F5AECC19EC74807D1920CB6AEB,
]
A_HTIR_V = [  # v_1 .. v_4
    0xFA2656CA1D2DBD79015AE918773DFEDC24957C91E3C9C33540D6BF6D7C3C0055,
    0xF016CD6759620AD787669E3ADD887DF625895A910CEE148691A06735B2F0A248,
    0xAC45C6F97F83BCE0A2BBD0A14CF4D7F4CB3590FBFAF93AE71C64E426185710B5,
    0xE65D50BD551A54EF981F535E072DE98D2223ACAD4621E0263B0A61EAC56DB078,
]
A_HTIR_V_MOD_Q = int("13EE3E1B8DAC5DB168B1CEB32F0566A4C273693F78BAFFA2A2EE6A686E6BD90F"
                     "8206CCAB84E7F42ED39BD4FB131012ECCA2ECD2119414560C17CAB46B956A80F"
                     "58A3302EB3E2C9A228FBA7ED34D8ACA2392DA1FFB0B17B2320AE09AAEDFD0235"
                     "F6FE0EB65337A63F9CC97728B8E5AD0460FADE144369AA5B2166213247712096", 16)


def point_bytes(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(128, "big") + y.to_bytes(128, "big")


A_Z = point_bytes(A_ZX, A_ZY)
A_RB = point_bytes(A_RBX, A_RBY)
A_KB = point_bytes(A_KBX, A_KBY)
A_TEST = point_bytes(A_TESTX, A_TESTY)
A_ENCAPSULATED = A_RB + A_H.to_bytes(16, "big")


@pytest.fixture(scope="module")
def kms() -> sakke.SakkeKms:
    return kms_from_z(PS1, A_Z_SECRET)


@pytest.fixture(scope="module")
def receiver() -> sakke.ReceiverKey:
    return ValidateRSK(PS1, A_Z, A_B, A_KB)


def order_two_point() -> Point:
    """(0, 0): on E (0 = 0 - 0), of order 2, outside E(F_p)[q]."""
    return Point(0, 0)


def off_subgroup_point() -> Point:
    """P + (0, 0): on E, of order 2q, not in E(F_p)[q]."""
    return curve.point_add(PS1.p, PS1.P, order_two_point())


# --------------------------------------------------------------------------
# RFC 6509 Appendix A, parameter set 1


def test_parameter_set_1_is_the_rfc_values():
    assert (PS1.p, PS1.q, PS1.Px, PS1.Py, PS1.g, PS1.n) == (PS1_P, PS1_Q, PS1_PX, PS1_PY, PS1_G, 128)
    assert PS1.p + 1 == 4 * PS1.q and PS1.c == 4
    assert (PS1.L, PS1.point_bytes, PS1.ssv_bytes, PS1.p.bit_length(), PS1.q.bit_length()) == (128, 257, 16, 1024, 1022)


def test_parameter_set_1_validates():
    """p, q prime, [q]P = 0 and g = <P, P> (RFC 6508 2.3, 3.2)."""
    PS1.validate()


def test_g_is_the_pairing_of_p_with_itself_by_both_loops():
    assert curve.pairing(PS1.p, PS1.q, PS1.P, PS1.P) == PS1_G
    assert curve.pairing_affine(PS1.p, PS1.q, PS1.P, PS1.P) == PS1_G


# --------------------------------------------------------------------------
# RFC 6508 Appendix A


def test_appendix_a_hash_to_integer_range_example():
    trace = hash_to_integer_range_trace(A_HTIR_M, PS1.q)
    assert trace.A == A_HTIR_A.to_bytes(32, "big")
    assert trace.h == tuple(h.to_bytes(32, "big") for h in A_HTIR_H)
    assert trace.v_parts == tuple(v.to_bytes(32, "big") for v in A_HTIR_V)
    assert trace.v == A_HTIR_V_MOD_Q == A_R
    assert HashToIntegerRange(A_HTIR_M, PS1.q) == A_R


def test_appendix_a_kms():
    kms = kms_from_z(PS1, A_Z_SECRET)
    assert kms.public_key == A_Z
    # z = random_range(rng, 2, q) = 2 + random_below(q - 2): 128 octets, low 1022 bits.
    assert KeyGen(PS1, ReplayRandom([(A_Z_SECRET - 2).to_bytes(128, "big")])).public_key == A_Z


def test_appendix_a_rsk(kms):
    assert ExtractRSK(kms, A_B) == A_KB
    key = ValidateRSK(PS1, A_Z, A_B, A_KB)
    assert PS1.encode_point(key.K) == A_KB and key.b == A_B


def test_appendix_a_encapsulation():
    assert A_SSV.to_bytes(16, "big") + A_B == A_R_INPUT
    trace = encapsulate_with_ssv(PS1, A_Z, A_B, A_SSV)
    assert trace.SSV == A_SSV.to_bytes(16, "big")
    assert trace.r == A_R
    assert trace.R == A_RB
    assert trace.g_r == A_G_R
    assert trace.mask == A_MASK == HashToIntegerRange(A_G_R.to_bytes(128, "big"), 1 << 128)
    assert trace.H == A_H == A_SSV ^ A_MASK
    assert trace.encapsulated == A_ENCAPSULATED and len(A_ENCAPSULATED) == 273


def test_appendix_a_encapsulation_through_the_rng():
    rng = ReplayRandom([A_SSV.to_bytes(16, "big")])
    assert Encapsulate(PS1, A_Z, A_B, rng) == (A_SSV.to_bytes(16, "big"), A_ENCAPSULATED)
    assert rng.exhausted


def test_appendix_a_decapsulation(receiver):
    trace = decapsulate_trace(receiver, A_ENCAPSULATED)
    assert trace.w == A_W == A_G_R
    assert trace.SSV == A_SSV.to_bytes(16, "big")
    assert trace.r == A_R
    assert trace.TEST == A_TEST == A_RB
    assert Decapsulate(receiver, A_ENCAPSULATED) == A_SSV.to_bytes(16, "big")


def test_appendix_a_identifier_is_rfc_6509_form():
    assert Identifier.decode(A_B) == Identifier("2011-02", "tel:+447700900123")


# --------------------------------------------------------------------------
# The pairing and its optimisations


@settings(max_examples=5, deadline=None)
@given(a=st.integers(2, PS1_Q - 1), b=st.integers(2, PS1_Q - 1))
def test_pairing_is_bilinear(a, b):
    p, q = PS1.p, PS1.q
    aP = curve.point_multiply(p, a, PS1.P)
    bP = curve.point_multiply(p, b, PS1.P)
    value = curve.pairing(p, q, aP, bP)
    assert value == curve.PFp_pow(p, PS1.g, a * b % q)
    assert value == curve.pairing(p, q, bP, aP)


def test_affine_and_jacobian_miller_loops_agree():
    Q = curve.point_multiply(PS1.p, 0x1234567, PS1.P)
    R = curve.point_multiply(PS1.p, A_R, PS1.P)
    assert curve.pairing(PS1.p, PS1.q, R, Q) == curve.pairing_affine(PS1.p, PS1.q, R, Q)


@settings(max_examples=10, deadline=None)
@given(k=st.integers(-(1 << 300), 1 << 300))
def test_jacobian_multiply_matches_affine(k):
    assert curve.point_multiply(PS1.p, k, PS1.P) == curve.point_multiply_affine(PS1.p, k, PS1.P)


def test_multiply_edge_cases():
    p, q = PS1.p, PS1.q
    assert curve.point_multiply(p, 0, PS1.P) is INFINITY
    assert curve.point_multiply(p, q, PS1.P).infinity
    assert curve.point_multiply(p, q + 1, PS1.P) == PS1.P
    assert curve.point_multiply(p, -1, PS1.P) == curve.point_negate(p, PS1.P)
    assert curve.point_multiply(p, 2, order_two_point()).infinity
    with pytest.raises(ParameterError):
        curve.point_multiply(p, 1.5, PS1.P)  # type: ignore[arg-type]


@settings(max_examples=5, deadline=None)
@given(r=st.integers(0, PS1_Q))
def test_pf_p_power_by_f_p2_matches_the_rfc_product(r):
    assert curve.PFp_pow(PS1.p, PS1.g, r) == curve.PFp_pow_by_product(PS1.p, PS1.g, r)


def test_pf_p_arithmetic():
    p, g = PS1.p, PS1.g
    assert curve.PFp_mul(p, 0, g) == g                         # 0 represents the identity
    assert curve.PFp_pow(p, g, PS1.q) == 0                      # g has order q
    assert curve.PFp_mul(p, g, curve.PFp_pow(p, g, PS1.q - 1)) == 0
    with pytest.raises(ParameterError):
        curve.representative(p, (0, 5))                         # i: the element of order 2
    with pytest.raises(ParameterError):
        curve.PFp_mul(p, 2, pow(2, -1, p))                      # 1 - a*b = 0
    with pytest.raises(ParameterError):
        curve.PFp_pow(p, g, -1)


def test_pairing_refuses_degenerate_inputs():
    for R in (INFINITY, order_two_point()):
        with pytest.raises(ParameterError):
            curve.pairing(PS1.p, PS1.q, R, PS1.P)
    with pytest.raises(ParameterError):
        curve.pairing_affine(PS1.p, PS1.q, order_two_point(), PS1.P)
    with pytest.raises(ParameterError):
        curve.distortion_map(PS1.p, INFINITY)


# --------------------------------------------------------------------------
# Round trips and binding (hypothesis)

periods = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(2000, 2099), st.integers(1, 12))
identities = st.builds(Identifier, periods, st.text("0123456789", min_size=4, max_size=15).map(lambda d: "tel:+" + d))


@pytest.fixture(scope="module")
def random_kms() -> sakke.SakkeKms:
    return KeyGen(PS1, HmacDrbg.from_seed("test_sakke/kms"))


@settings(max_examples=8, deadline=None)
@given(identity=identities, ssv=st.integers(0, (1 << 128) - 1))
def test_round_trip_for_random_identities_and_ssvs(random_kms, identity, ssv):
    b = identity.encode()
    key = ValidateRSK(PS1, random_kms.public_key, b, ExtractRSK(random_kms, b))
    data = encapsulate_with_ssv(PS1, random_kms.public_key, b, ssv).encapsulated
    assert len(data) == 273
    assert Decapsulate(key, data) == ssv.to_bytes(16, "big")


@settings(max_examples=3, deadline=None)
@given(seed=st.binary(min_size=1, max_size=16))
def test_round_trip_with_the_ssv_drawn_from_the_rng(random_kms, seed):
    b = Identifier("2026-03", "tel:+447700900123").encode()
    key = ValidateRSK(PS1, random_kms.public_key, b, ExtractRSK(random_kms, b))
    ssv, data = Encapsulate(PS1, random_kms.public_key, b, HmacDrbg.from_seed(seed))
    assert ssv == HmacDrbg.from_seed(seed).random_bytes(16)     # one 16-octet draw, used as is
    assert Decapsulate(key, data) == ssv


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(identity=identities, other=identities, seed=st.binary(min_size=1, max_size=16))
def test_round_trip_and_binding_many(random_kms, identity, other, seed):
    b = identity.encode()
    key = ValidateRSK(PS1, random_kms.public_key, b, ExtractRSK(random_kms, b))
    ssv, data = Encapsulate(PS1, random_kms.public_key, b, HmacDrbg.from_seed(seed))
    assert Decapsulate(key, data) == ssv
    if other != identity:
        other_key = ValidateRSK(PS1, random_kms.public_key, other.encode(),
                                ExtractRSK(random_kms, other.encode()))
        with pytest.raises(VerificationError):
            Decapsulate(other_key, data)


def test_data_for_one_identity_fail_the_check_under_another(random_kms):
    """Encapsulated to the same number in the next key period, or to another number."""
    alice = Identifier("2026-01", "tel:+441000")
    _, data = Encapsulate(PS1, random_kms.public_key, alice.encode(), HmacDrbg.from_seed("enc"))
    for other in (Identifier("2026-02", "tel:+441000"), Identifier("2026-01", "tel:+442000")):
        b = other.encode()
        key = ValidateRSK(PS1, random_kms.public_key, b, ExtractRSK(random_kms, b))
        with pytest.raises(VerificationError, match="6.2.2"):
            Decapsulate(key, data)


# --------------------------------------------------------------------------
# Bad input: each check and its typed error


def _encoded(A: Point) -> bytes:
    return point_bytes(int(A.x), int(A.y))


NOT_ON_CURVE = point_bytes(A_ZX, A_ZY ^ 1)
X_NOT_BELOW_P = point_bytes(PS1_P, A_ZY)
POINT_CASES = {
    "off-curve": NOT_ON_CURVE,
    "x-not-below-p": X_NOT_BELOW_P,
    "order-2": _encoded(order_two_point()),
    "order-2q": _encoded(off_subgroup_point()),
    "compressed-prefix": b"\x02" + A_Z[1:],
    "short": A_Z[:-1],
    "long": A_Z + b"\x00",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(POINT_CASES))
def test_bad_kms_public_key_is_refused(name):
    Z = POINT_CASES[name]
    with pytest.raises(DecodeError):
        ValidateRSK(PS1, Z, A_B, A_KB)
    with pytest.raises(DecodeError):
        encapsulate_with_ssv(PS1, Z, A_B, A_SSV)


@pytest.mark.parametrize("name", sorted(POINT_CASES))
def test_bad_rsk_encoding_is_refused(name):
    with pytest.raises(DecodeError):
        ValidateRSK(PS1, A_Z, A_B, POINT_CASES[name])


@pytest.mark.parametrize("name", sorted(POINT_CASES))
def test_bad_r_in_encapsulated_data_is_refused(receiver, name):
    R = POINT_CASES[name]
    with pytest.raises(InvalidCiphertextError):
        Decapsulate(receiver, R + A_ENCAPSULATED[257:])


def test_rsk_failing_validation_is_refused(kms, random_kms):
    other = Identifier("2011-03", "tel:+447700900123").encode()
    with pytest.raises(VerificationError, match="6.1.2"):
        ValidateRSK(PS1, A_Z, other, A_KB)                              # the RSK of another identifier
    with pytest.raises(VerificationError, match="6.1.2"):
        ValidateRSK(PS1, random_kms.public_key, A_B, A_KB)             # under another KMS
    with pytest.raises(VerificationError, match="6.1.2"):
        ValidateRSK(PS1, A_Z, A_B, A_Z)                                 # a valid point, not the RSK


@pytest.mark.parametrize("where", [257, 272, 1, 128, 256])
def test_changed_encapsulated_data_fail_the_check(receiver, where):
    """A bit flipped in H changes the SSV, so TEST != R; a bit flipped in R's
    coordinates leaves E (InvalidCiphertextError)."""
    data = bytearray(A_ENCAPSULATED)
    data[where] ^= 1
    expected = VerificationError if where >= 257 else InvalidCiphertextError
    with pytest.raises(expected):
        Decapsulate(receiver, bytes(data))


def test_another_subgroup_point_as_r_fails_the_check(receiver):
    R = PS1.encode_point(curve.point_multiply(PS1.p, A_R + 1, PS1.P))
    with pytest.raises(VerificationError, match="TEST"):
        Decapsulate(receiver, R + A_ENCAPSULATED[257:])


@pytest.mark.parametrize("length", [0, 272, 274, 257])
def test_encapsulated_data_of_wrong_length_is_refused(receiver, length):
    data = (A_ENCAPSULATED + b"\x00")[:length]
    with pytest.raises(InvalidCiphertextError):
        Decapsulate(receiver, data)
    with pytest.raises(InvalidCiphertextError):
        split_encapsulated_data(PS1, data)


@pytest.mark.parametrize("b", [b"", b"\x00", b"\x01", b"\x00\x01", PS1_Q.to_bytes(128, "big"),
                               b"\xff" * 128, b"x" * (sakke.MAX_ID_BYTES + 1)])
def test_identifier_outside_2_to_q_minus_1_is_refused(kms, b):
    with pytest.raises(ParameterError):
        ExtractRSK(kms, b)
    with pytest.raises(ParameterError):
        encapsulate_with_ssv(PS1, A_Z, b, A_SSV)
    with pytest.raises(ParameterError):
        ValidateRSK(PS1, A_Z, b, A_KB)


def test_an_identifier_equal_to_minus_z_has_no_rsk():
    b_int = int.from_bytes(A_B, "big")
    kms = kms_from_z(PS1, PS1_Q - b_int)
    with pytest.raises(ParameterError, match="a \\+ z = 0"):
        ExtractRSK(kms, A_B)
    with pytest.raises(ParameterError):
        encapsulate_with_ssv(PS1, kms.public_key, A_B, A_SSV)


def test_local_arguments_out_of_range(receiver):
    for z in (0, 1, PS1_Q, -5, True):
        with pytest.raises(ParameterError):
            kms_from_z(PS1, z)
    for ssv in (-1, 1 << 128, True, 1.0):
        with pytest.raises(ParameterError):
            encapsulate_with_ssv(PS1, A_Z, A_B, ssv)
    for n in (0, 1, -3, 1.0, (1 << 8192) + 1):
        with pytest.raises(ParameterError):
            HashToIntegerRange(b"x", n)
    with pytest.raises(ParameterError):
        HashToIntegerRange("text", 5)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        Decapsulate(object(), A_ENCAPSULATED)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        ExtractRSK(object(), A_B)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        Encapsulate("params", A_Z, A_B, None)  # type: ignore[arg-type]


def test_parameters_are_checked_on_construction():
    good = dict(name="x", n=128, p=PS1_P, q=PS1_Q, Px=PS1_PX, Py=PS1_PY, g=PS1_G)
    for change in ({"p": PS1_P + 2}, {"q": PS1_Q * 2}, {"q": 4}, {"n": 1000}, {"n": 100},
                   {"Py": PS1_PY ^ 1}, {"g": 0}, {"g": PS1_P}, {"n": 128.0}):
        with pytest.raises(ParameterError):
            curve.SakkeParameters(**{**good, **change})
    wrong_g = curve.SakkeParameters(**{**good, "g": PS1_G ^ 2})
    with pytest.raises(ParameterError, match="g != <P, P>"):
        wrong_g.validate()


def test_hash_to_integer_range_lengths():
    """l = Ceiling(lg(n)/hashlen): one block for n <= 2^256, two for 2^256 < n <= 2^512."""
    assert len(hash_to_integer_range_trace(b"s", 1 << 128).v_parts) == 1
    assert len(hash_to_integer_range_trace(b"s", 1 << 256).v_parts) == 1
    assert len(hash_to_integer_range_trace(b"s", (1 << 256) + 1).v_parts) == 2
    assert 0 <= HashToIntegerRange(b"s", 3) < 3


def test_secrets_stay_out_of_representations(kms, receiver):
    assert format(A_Z_SECRET, "x") not in repr(kms).lower() and str(A_Z_SECRET) not in repr(kms)
    assert format(A_KBX, "x")[:16] not in repr(receiver).lower()


def test_distortion_map_lands_on_the_curve_over_f_p2():
    """[i]Q = (-Q_x, i Q_y) satisfies y^2 = x^3 - 3x in F_p^2 (RFC 6508 3.1)."""
    p = PS1.p
    (x0, x1), (y0, y1) = curve.distortion_map(p, PS1.P)
    assert (x1, y0) == (0, 0)
    assert (-(y1 * y1)) % p == (x0 ** 3 - 3 * x0) % p


def test_kms_public_key_checked_once_gives_the_same_data():
    Z = sakke.KmsPublicKey.decode(PS1, A_Z)
    assert Z.encode() == A_Z
    assert encapsulate_with_ssv(PS1, Z, A_B, A_SSV).encapsulated == A_ENCAPSULATED
    assert ValidateRSK(PS1, Z, A_B, A_KB).b == A_B
    with pytest.raises(DecodeError):
        sakke.KmsPublicKey.decode(PS1, NOT_ON_CURVE)


def _toy_parameters() -> curve.SakkeParameters:
    """A parameter set with a 42-bit p (p = 4q - 1, both prime), built here to
    show that nothing depends on parameter set 1; n = 16 bits (lg(q) > 2n)."""
    from protocols.primitives.numtheory import is_probable_prime
    q = (1 << 40) + 1
    while not (is_probable_prime(q) and is_probable_prime(4 * q - 1)):
        q += 2
    p = 4 * q - 1
    x = 5
    while True:
        rhs = (x ** 3 - 3 * x) % p
        y = pow(rhs, (p + 1) // 4, p)
        if y * y % p == rhs:
            P = curve.point_multiply(p, 4, Point(x, y))
            if not P.infinity:
                break
        x += 1
    g = curve.pairing(p, q, P, P)
    return curve.SakkeParameters(name="toy", n=16, p=p, q=q, Px=P.x, Py=P.y, g=g)


def test_a_second_parameter_set_round_trips_and_is_not_mixed_up():
    toy = _toy_parameters()
    toy.validate()
    assert toy.L == 6 and toy.point_bytes == 13 and toy.ssv_bytes == 2
    kms = KeyGen(toy, HmacDrbg.from_seed("toy-kms"))
    b = b"\x01\x02\x03"
    key = ValidateRSK(toy, kms.public_key, b, ExtractRSK(kms, b))
    for seed in ("a", "b", "c"):
        ssv, data = Encapsulate(toy, kms.public_key, b, HmacDrbg.from_seed(seed))
        assert len(data) == 15 and Decapsulate(key, data) == ssv
    with pytest.raises(ParameterError):
        Encapsulate(toy, sakke.KmsPublicKey.decode(PS1, A_Z), b, None)
    with pytest.raises(InvalidCiphertextError):
        Decapsulate(key, A_ENCAPSULATED)


def test_encapsulate_draws_a_new_ssv_when_r_is_zero(monkeypatch):
    """RFC 6508 6.2.1 leaves r = 0 undefined; the sender draws another SSV
    (specs/sakke_eccsi.md 5.3), consuming a second 16-octet draw."""
    real = sakke._encapsulate
    seen = []

    def zero_first(params, Z, b, b_int, SSV):
        seen.append(SSV)
        return None if len(seen) == 1 else real(params, Z, b, b_int, SSV)

    monkeypatch.setattr(sakke, "_encapsulate", zero_first)
    rng = ReplayRandom([bytes(16), A_SSV.to_bytes(16, "big")])
    assert Encapsulate(PS1, A_Z, A_B, rng) == (A_SSV.to_bytes(16, "big"), A_ENCAPSULATED)
    assert rng.exhausted and seen == [0, A_SSV]
    monkeypatch.setattr(sakke, "_encapsulate", lambda *args: None)
    with pytest.raises(ParameterError, match="r = 0"):
        encapsulate_with_ssv(PS1, A_Z, A_B, 0)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=272, max_size=272).map(lambda rest: b"\x04" + rest))
def test_arbitrary_encapsulated_data_raise_only_typed_errors(receiver, data):
    with pytest.raises((InvalidCiphertextError, VerificationError)):
        Decapsulate(receiver, data)


@settings(max_examples=30, deadline=None)
@given(point=st.binary(min_size=256, max_size=256).map(lambda rest: b"\x04" + rest))
def test_arbitrary_points_raise_only_decode_errors(point):
    with pytest.raises(DecodeError):
        sakke.KmsPublicKey.decode(PS1, point)
