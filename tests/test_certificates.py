"""Device certificates (protocols/schemes/certificates.py, specs/issuance.md section 6).

The profile and chain checks are exercised through issuance and escrow in
tests/test_issuance.py and tests/test_escrow.py; here the strict DER reading
of a certificate's outer layer.
"""

from __future__ import annotations

import pytest

from protocols.errors import DecodeError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import certificates
from protocols.system import escrow_fleet


@pytest.fixture(scope="module")
def der() -> bytes:
    rng = HmacDrbg.from_seed("certificates")
    ca = escrow_fleet.ed25519_key(rng)
    return escrow_fleet.device_certificate("SM-1", escrow_fleet.ed25519_key(rng), "root", ca, 7)


def test_a_valid_certificate_loads(der):
    assert certificates.load_certificate(der, "c").serial_number == 7


def test_signature_with_unused_bits_is_refused(der):
    """X.690 11.2: a signature value is whole octets, so its BIT STRING has 0 unused bits."""
    i = len(der) - 67
    assert der[i:i + 3] == bytes([0x03, 0x41, 0x00])       # BIT STRING, 65 octets, 0 unused bits
    # one unused bit whose padding is zero (BER-valid): cryptography alone would accept it
    lenient = der[:i + 2] + b"\x01" + der[i + 3:-1] + bytes([der[-1] & 0xFE])
    with pytest.raises(DecodeError, match="unused bits"):
        certificates.load_certificate(lenient, "c")
    for unused in range(2, 8):
        with pytest.raises(DecodeError):
            certificates.load_certificate(der[:i + 2] + bytes([unused]) + der[i + 3:], "c")


@pytest.mark.parametrize("change", ["truncated", "trailing", "long-form length"])
def test_non_der_outer_layers_are_refused(der, change):
    if change == "truncated":
        bad = der[:-1]
    elif change == "trailing":
        bad = der + b"\x00"
    else:  # the outer length in a longer form than needed
        assert der[1] == 0x82
        bad = der[:1] + b"\x83\x00" + der[2:]
    with pytest.raises(DecodeError):
        certificates.load_certificate(bad, "c")
