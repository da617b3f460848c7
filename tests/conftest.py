"""Shared fixtures: deterministic keys from the project's HMAC-DRBG, made once per session."""

from __future__ import annotations

import pytest

from protocols.primitives.drbg import HmacDrbg
from protocols.schemes.paillier import generate_keypair


@pytest.fixture(scope="session")
def paillier_key():
    """A 2048-bit Paillier private key from a fixed DRBG seed."""
    return generate_keypair(2048, HmacDrbg.from_seed("usapp-tests/paillier-2048"))


@pytest.fixture(scope="session")
def other_paillier_key():
    """A second, unrelated 2048-bit key, for wrong-key tests."""
    return generate_keypair(2048, HmacDrbg.from_seed("usapp-tests/paillier-2048-other"))
