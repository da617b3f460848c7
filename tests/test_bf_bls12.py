"""BF identity-based KEM on BLS12-381 and its threshold extraction (specs/ibe.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import (
    DecodeError,
    ParameterError,
    RecoveryError,
    UsappError,
    VerificationError,
)
from protocols.primitives.bls12_381 import G1, G2, R
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bf_bls12 as bf

identities = st.binary(min_size=1, max_size=64)


@pytest.fixture(scope="module")
def master():
    return bf.setup(HmacDrbg.from_seed("tests/bf-bls12/master"))


@pytest.fixture(scope="module")
def dkg():
    """A 3-of-5 distributed PKG from a joint-Feldman DKG."""
    rng = HmacDrbg.from_seed("tests/bf-bls12/dkg")
    nodes = [1, 2, 3, 4, 5]
    dealings = [bf.deal(i, 3, nodes, rng) for i in nodes]
    return nodes, dealings, bf.combine_dealings(dealings, 3, nodes)


@settings(max_examples=15, deadline=None)
@given(identity=identities, seed=st.binary(max_size=8))
def test_decapsulate_recovers_the_key_for_any_identity(master, identity, seed):
    key = bf.extract(master, identity)
    assert bf.verify_private_key(master.params, key)
    shared, enc = bf.encapsulate(master.params, identity, HmacDrbg.from_seed(seed))
    assert len(enc) == bf.ENC_BYTES and len(shared) == bf.KEY_BYTES
    assert bf.decapsulate(key, enc) == shared


@settings(max_examples=10, deadline=None)
@given(first=identities, second=identities)
def test_a_key_for_one_identity_never_opens_another(master, first, second):
    if first == second:
        return
    _, enc = bf.encapsulate(master.params, first, HmacDrbg.from_seed(first))
    with pytest.raises(VerificationError):
        bf.decapsulate(bf.extract(master, second), enc)
    assert not bf.verify_private_key(master.params, bf.PrivateKey(first, bf.extract(master, second).d))


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, bf.ENC_BYTES - 1), mask=st.integers(1, 255))
def test_any_change_to_an_encapsulation_is_refused(master, index, mask):
    identity = b"meter/42/epoch-7"
    key = bf.extract(master, identity)
    _, enc = bf.encapsulate(master.params, identity, HmacDrbg.from_seed("tamper"))
    changed = enc[:index] + bytes([enc[index] ^ mask]) + enc[index + 1:]
    with pytest.raises(UsappError):
        bf.decapsulate(key, changed)


def test_bad_encapsulations_raise_typed_errors(master):
    key = bf.extract(master, b"id")
    _, enc = bf.encapsulate(master.params, b"id", HmacDrbg.from_seed("bad"))
    with pytest.raises(DecodeError):
        bf.decapsulate(key, enc[:-1])
    with pytest.raises(DecodeError):
        bf.decapsulate(key, bytes([0xC0]) + bytes(95) + enc[96:])  # the identity: refused
    with pytest.raises(DecodeError):
        bf.decapsulate(key, bytes(96) + enc[96:])  # not a compressed point
    with pytest.raises(ParameterError):
        bf.encapsulate(master.params, b"", HmacDrbg.from_seed("x"))
    with pytest.raises(ParameterError):
        bf.MasterKey(0)
    with pytest.raises(ParameterError):
        bf.PublicParams(G2.identity())


def test_encapsulation_is_deterministic_for_a_seed(master):
    a = bf.encapsulate(master.params, b"id", HmacDrbg.from_seed("same"))
    b = bf.encapsulate(master.params, b"id", HmacDrbg.from_seed("same"))
    assert a == b


# ---------------------------------------------------------------------------
# Distributed PKG
# ---------------------------------------------------------------------------


def test_dealt_shares_verify_and_a_bad_one_names_its_dealer(dkg):
    nodes, dealings, _ = dkg
    for dealing in dealings:
        for node in nodes:
            bf.verify_dealt_share(dealing, node, dealing.shares[node])
    with pytest.raises(VerificationError, match="dealer 2: share for node 4"):
        bf.verify_dealt_share(dealings[1], 4, (dealings[1].shares[4] + 1) % R)


@settings(max_examples=10, deadline=None)
@given(subset=st.lists(st.sampled_from([1, 2, 3, 4, 5]), min_size=3, max_size=5, unique=True),
       identity=identities)
def test_any_t_of_n_shares_give_the_same_key(dkg, subset, identity):
    """Threshold issuance with any t of n shares equals single-PKG issuance
    with the (never assembled) master secret: same key, verified by pairing."""
    nodes, dealings, key = dkg
    shares = {i: bf.extract_share(bf.node_secret(dealings, i), identity) for i in subset}
    combined = bf.combine_key_shares(key, identity, shares)
    s = sum(_secret_of(d) for d in dealings) % R  # assembled here only, to compare
    assert combined.d == bf.extract(bf.MasterKey(s), identity).d
    shared, enc = bf.encapsulate(key.params, identity, HmacDrbg.from_seed(identity))
    assert bf.decapsulate(combined, enc) == shared


def _secret_of(dealing) -> int:
    """f_j(0) from t of the dealer's shares: only a test may assemble it."""
    from protocols.primitives import shamir

    points = sorted(dealing.shares)[:len(dealing.commitments)]
    return shamir.recover([shamir.Share(x, dealing.shares[x]) for x in points], len(points), prime=R)


def test_a_bad_key_share_is_detected_and_attributed(dkg):
    nodes, dealings, key = dkg
    identity = b"meter/7/epoch-1"
    shares = {i: bf.extract_share(bf.node_secret(dealings, i), identity) for i in (1, 2, 3)}
    shares[2] = shares[2] + G1.generator()
    with pytest.raises(VerificationError, match="node 2"):
        bf.combine_key_shares(key, identity, shares)
    with pytest.raises(VerificationError, match="node 9"):
        bf.verify_key_share(key, 9, identity, shares[1])
    with pytest.raises(RecoveryError):
        bf.combine_key_shares(key, identity, {i: shares[i] for i in (1, 3)})


def test_dkg_parameter_checks():
    with pytest.raises(ParameterError):
        bf.deal(1, 0, [1, 2])
    with pytest.raises(ParameterError):
        bf.deal(1, 3, [1, 2])
    with pytest.raises(ParameterError):
        bf.deal(1, 2, [1, 1])
    with pytest.raises(ParameterError):
        bf.combine_dealings([], 2, [1, 2])
