"""Hybrid encryption to an identity: IBE as a KEM plus ChaCha20-Poly1305 (specs/ibe.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ParameterError, StateError, UsappError, VerificationError
from protocols.primitives import cbor
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import bf, bf_bls12
from protocols.schemes import ibe_hybrid as hy


@pytest.fixture(scope="module")
def bls():
    master = bf_bls12.setup(HmacDrbg.from_seed("tests/hybrid/bls"))
    return hy.Bls12Sender(master.params), master


@pytest.fixture(scope="module")
def rfc5091():
    params, master = bf.BFsetup(2048, HmacDrbg.from_seed("tests/hybrid/rfc5091"))
    return hy.Rfc5091Sender(params), params, master


def _bls_recipient(master, identity):
    return hy.Bls12Recipient(bf_bls12.extract(master, identity))


@settings(max_examples=15, deadline=None)
@given(plaintext=st.binary(max_size=300), aad=st.binary(max_size=20), identity=st.binary(min_size=1, max_size=40),
       epoch=st.integers(0, 2**32 - 1))
def test_bls_round_trip(bls, plaintext, aad, identity, epoch):
    sender, master = bls
    envelope = hy.seal(sender, identity, epoch, plaintext, aad, HmacDrbg.from_seed(identity))
    assert hy.open_envelope(_bls_recipient(master, identity), envelope, epoch, aad) == plaintext


@settings(max_examples=5, deadline=None)
@given(plaintext=st.binary(max_size=100), identity=st.binary(min_size=1, max_size=20))
def test_rfc5091_round_trip(rfc5091, plaintext, identity):
    sender, params, master = rfc5091
    recipient = hy.Rfc5091Recipient(params, identity, bf.BFextractPriv(params, master, identity))
    envelope = hy.seal(sender, identity, 3, plaintext, b"", HmacDrbg.from_seed(identity))
    assert hy.open_envelope(recipient, envelope, 3) == plaintext


def test_envelope_is_bound_to_suite_identity_epoch_and_aad(bls, rfc5091):
    sender, master = bls
    identity = b"meter/1/epoch-4"
    envelope = hy.seal(sender, identity, 4, b"tariff update", b"hdr", HmacDrbg.from_seed("bind"))
    recipient = _bls_recipient(master, identity)
    with pytest.raises(StateError):
        hy.open_envelope(recipient, envelope, 5, b"hdr")
    with pytest.raises(VerificationError):
        hy.open_envelope(_bls_recipient(master, b"meter/2/epoch-4"), envelope, 4, b"hdr")
    with pytest.raises(VerificationError):
        hy.open_envelope(recipient, envelope, 4, b"other")
    _, params, rfc_master = rfc5091
    with pytest.raises(ParameterError, match="suite"):
        hy.open_envelope(hy.Rfc5091Recipient(params, identity, bf.BFextractPriv(params, rfc_master, identity)),
                         envelope, 4, b"hdr")
    # rewriting the header's epoch (and the caller's expectation) still fails: the AEAD binds it
    message = cbor.decode(envelope)
    message[4] = 5
    with pytest.raises(VerificationError):
        hy.open_envelope(recipient, cbor.encode(message), 5, b"hdr")


@settings(max_examples=40, deadline=None)
@given(index=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_any_single_byte_change_is_refused(bls, index, mask):
    sender, master = bls
    identity = b"meter/9/epoch-0"
    envelope = hy.seal(sender, identity, 0, b"disconnect at 12:00", b"", HmacDrbg.from_seed("flip"))
    index %= len(envelope)
    changed = envelope[:index] + bytes([envelope[index] ^ mask]) + envelope[index + 1:]
    with pytest.raises(UsappError):
        hy.open_envelope(_bls_recipient(master, identity), changed, 0)


def test_malformed_envelopes(bls):
    sender, master = bls
    recipient = _bls_recipient(master, b"x")
    envelope = hy.seal(sender, b"x", 0, b"m", b"", HmacDrbg.from_seed("m"))
    with pytest.raises(DecodeError):
        hy.open_envelope(recipient, envelope[:-1], 0)
    with pytest.raises(DecodeError):
        hy.open_envelope(recipient, "text", 0)
    message = cbor.decode(envelope)
    message[1] = 2
    with pytest.raises(DecodeError, match="version"):
        hy.open_envelope(recipient, cbor.encode(message), 0)
    with pytest.raises(ParameterError):
        hy.seal(sender, b"", 0, b"m")
    with pytest.raises(ParameterError):
        hy.seal(sender, b"x", -1, b"m")
