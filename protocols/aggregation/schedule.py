"""The key schedule of specs/aggregation.md section 5: every value both ends derive.

Nothing here keeps state; every function is a pure derivation from the
inputs the spec names, so a vendor can check each one against the vectors'
intermediates.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocols.errors import ParameterError
from protocols.primitives import hashing, opcount
from protocols.primitives.aead import ChaCha20Poly1305

VERSION = 2
DOMAIN = b"usapp-aggregation-v2"
TAG_PRIME = (1 << 127) - 1
"""q, the Mersenne prime 2^127 - 1: the field of the integrity tag (spec 4.2)."""
SHARE_BYTES = 32
BOX_PLAIN_BYTES = 2 * SHARE_BYTES
BOX_BYTES = BOX_PLAIN_BYTES + 16
MAC_BYTES = 32
KEY_BYTES = 32
SIGNATURE_BYTES = 64
CONFIRM_BYTES = 16
MAX_ROUND = (1 << 64) - 1


def lp(data: bytes) -> bytes:
    """Spec 5.1: a length-prefixed byte string (one length byte; inputs are < 256 bytes)."""
    return bytes([len(data)]) + data


def round_bytes(round_id: int) -> bytes:
    return round_id.to_bytes(8, "big")


def prf(key: bytes, label: bytes, round_id: int, nbytes: int) -> bytes:
    """Spec 5.1: SHAKE256(DOMAIN || lp(label) || key || I2OSP(r, 8)), nbytes long."""
    return hashing.shake_256(DOMAIN + lp(label) + key + round_bytes(round_id)).digest(nbytes)


def prf_mod(key: bytes, label: bytes, round_id: int, modulus: int) -> int:
    """Spec 5.1: prf output of bitlen(modulus) + 128 bits, reduced mod modulus."""
    nbytes = (modulus.bit_length() + 128 + 7) // 8
    return int.from_bytes(prf(key, label, round_id, nbytes), "big") % modulus


def mac_key(shared_key: bytes, direction: bytes) -> bytes:
    """Spec 5.2: mk_up = prf(K, "mac-up", 0, 32), mk_down = prf(K, "mac-down", 0, 32)."""
    return prf(shared_key, b"mac-" + direction, 0, KEY_BYTES)


def mac(key: bytes, kind: bytes, body: bytes) -> bytes:
    """Spec 5.2: HMAC-SHA256(mk, DOMAIN || lp(kind) || CBOR(body))."""
    return hashing.hmac_new(key, DOMAIN + lp(kind) + body, "sha256").digest()


def _x25519(private: bytes, public: bytes, what: str) -> bytes:
    opcount.record("x25519")
    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:  # wrong length or an all-zero (low-order) result
        raise ParameterError(f"X25519 with {what}: {exc}") from None


_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def is_low_order(public: bytes) -> bool:
    """Spec 3.1 and 6.2: a 32-byte X25519 public key whose agreement with any key is all zero.

    Every clamped scalar is a multiple of 8, so a point of order dividing
    8 gives zero with any private key; one agreement with a fixed key detects it.
    """
    opcount.record("x25519")  # the probe is a full DH
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        return True
    return False


def x25519_public(private: bytes) -> bytes:
    opcount.record("x25519")
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _ordered(a: str, b: str) -> bytes:
    lo, hi = sorted((a.encode(), b.encode()))
    return lp(lo) + lp(hi)


def static_secret(directory_digest: bytes, own_id: str, own_private: bytes, peer_id: str,
                  peer_public: bytes) -> bytes:
    """Spec 5.3: s_ij = SHA-256(DOMAIN || "pair" || digest || lp(lo) || lp(hi) || X25519(sk_i, pk_j)).

    From the meters' long-term X25519 keys and bound to the directory's
    digest, so two meters that revealed for different directories share no
    key: their boxes and confirmations never open across the two views.  It
    keys only the share boxes (5.6) and confirmations (5.7), never a mask.
    """
    shared = _x25519(own_private, peer_public, f"meter {peer_id}")
    return hashing.sha256(DOMAIN + b"pair" + directory_digest + _ordered(own_id, peer_id) + shared).digest()


def mask_private(epsilon: int) -> bytes:
    """Spec 5.4: the round's X25519 mask private key is I2OSP(epsilon, 32), epsilon in [0, p)."""
    return epsilon.to_bytes(SHARE_BYTES, "big")


def round_secret(group_id: bytes, round_id: int, own_id: str, epsilon: int, peer_id: str,
                 peer_mask_public: bytes) -> bytes:
    """Spec 5.4: a_ij(r) = SHA-256(DOMAIN || "mask-key" || lp(group) || I2OSP(r, 8) || lp(lo) || lp(hi)
    || X25519(I2OSP(epsilon_i, 32), E_j))."""
    shared = _x25519(mask_private(epsilon), peer_mask_public, f"the round mask key of meter {peer_id}")
    return hashing.sha256(DOMAIN + b"mask-key" + lp(group_id) + round_bytes(round_id) +
                          _ordered(own_id, peer_id) + shared).digest()


def pair_mask(secret: bytes, round_id: int, n: int) -> int:
    """Spec 5.4: m_ij(r) = prf_mod(a_ij(r), "mask", r, n)."""
    return prf_mod(secret, b"mask", round_id, n)


def self_mask(seed: int, round_id: int, n: int) -> int:
    """Spec 5.5: b_i(r) = prf_mod(I2OSP(sigma_i, 32), "self", r, n)."""
    return prf_mod(seed.to_bytes(SHARE_BYTES, "big"), b"self", round_id, n)


def box_cipher(secret: bytes) -> ChaCha20Poly1305:
    """Spec 5.6: ChaCha20-Poly1305 under prf(s_ij, "box", 0, 32)."""
    return ChaCha20Poly1305(prf(secret, b"box", 0, KEY_BYTES))


def box_nonce_aad(group_id: bytes, round_id: int, sender: str, recipient: str,
                  sender_mask_public: bytes) -> tuple[bytes, bytes]:
    """Spec 5.6: nonce = I2OSP(r, 8) || I2OSP(d, 4); the aad binds group, round, both ids and E_sender."""
    direction = 0 if sender.encode() < recipient.encode() else 1
    nonce = round_bytes(round_id) + direction.to_bytes(4, "big")
    aad = (DOMAIN + b"box" + lp(group_id) + round_bytes(round_id) + lp(sender.encode()) +
           lp(recipient.encode()) + sender_mask_public)
    return nonce, aad


def confirmation(secret: bytes, group_id: bytes, round_id: int, sender: str, recipient: str,
                 sender_mask_public: bytes, recipient_mask_public: bytes) -> bytes:
    """Spec 5.7: the sender's proof to one neighbour that it masked with it this round.

    The first 16 bytes of HMAC-SHA256(prf(s_ij, "confirm", 0, 32), DOMAIN || "confirm" || lp(group)
    || I2OSP(r, 8) || lp(sender) || lp(recipient) || E_sender || E_recipient).  Only the two
    meters hold s_ij, so the utility can neither forge one nor turn one around.
    """
    key = prf(secret, b"confirm", 0, KEY_BYTES)
    data = (DOMAIN + b"confirm" + lp(group_id) + round_bytes(round_id) + lp(sender.encode()) +
            lp(recipient.encode()) + sender_mask_public + recipient_mask_public)
    return hashing.hmac_new(key, data, "sha256").digest()[:CONFIRM_BYTES]


def tag_alphas(tag_key: bytes, round_id: int, slots: int) -> list[int]:
    """Spec 4.2: alpha_s(r), s = 0..S-1, from one prf call of 32 bytes per slot."""
    stream = prf(tag_key, b"alpha", round_id, 32 * slots)
    return [int.from_bytes(stream[32 * s:32 * s + 32], "big") % TAG_PRIME for s in range(slots)]


def tag_beta(meter_key: bytes, round_id: int) -> int:
    """Spec 4.2: beta_i(r) = prf_mod(K_i, "beta", r, q)."""
    return prf_mod(meter_key, b"beta", round_id, TAG_PRIME)


def graph_commitment(meter_id: str, nonce: bytes) -> bytes:
    """Spec 3.3: h_i = SHA-256(DOMAIN || "graph-commit" || lp(id) || nu_i)."""
    return hashing.sha256(DOMAIN + b"graph-commit" + lp(meter_id.encode()) + nonce).digest()


def graph_seed(directory_digest: bytes, nonces: list[bytes]) -> bytes:
    """Spec 3.3: SHA-256(DOMAIN || "graph-seed" || directory digest || nu_1 || ... || nu_N), directory order."""
    return hashing.sha256(DOMAIN + b"graph-seed" + directory_digest + b"".join(nonces)).digest()


def rank(seed: bytes, label: bytes, index: int, meter_id: str) -> bytes:
    """Spec 3.4: SHA-256(DOMAIN || lp(label) || seed || I2OSP(index, 1) || lp(id)), the sort key of one order."""
    return hashing.sha256(DOMAIN + lp(label) + seed + bytes([index]) + lp(meter_id.encode())).digest()


def commit_message(group_id: bytes, directory_digest: bytes, round_id: int, reporting: bytes,
                   missing: bytes) -> bytes:
    """Spec 8.2: what a committee member signs: DOMAIN || "round-commit" || lp(group) || digest || r || R || M."""
    return (DOMAIN + b"round-commit" + lp(group_id) + directory_digest + round_bytes(round_id) +
            lp_long(reporting) + lp_long(missing))


def lp_long(data: bytes) -> bytes:
    """A byte string with a 4-byte length prefix (the status bitmaps may exceed 255 bytes)."""
    return len(data).to_bytes(4, "big") + data
