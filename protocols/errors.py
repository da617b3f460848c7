"""The typed exceptions every layer raises (docs/architecture.md section 3.1; specs/conventions.md section 5).

Every error a caller can provoke with bad input is a subclass of
:class:`UsappError`, so a caller can catch the family and a test can name the
exact kind.  Messages say what was wrong; they never carry a secret value.
"""

from __future__ import annotations


class UsappError(Exception):
    """Base class of every error the project raises on purpose."""


class DecodeError(UsappError):
    """A message or encoding is malformed: wrong type, length, trailing bytes,
    non-canonical form, unknown version or suite."""


class ParameterError(UsappError):
    """A key, parameter or argument is outside its allowed range (key too
    small, plaintext out of range, non-prime factor, bad packing layout)."""


class KeyMismatchError(ParameterError):
    """Two operands belong to different keys (for example, adding ciphertexts
    under different Paillier public keys)."""


class InvalidCiphertextError(DecodeError):
    """A ciphertext is not an element of the ciphertext group (for Paillier:
    not 0 < c < n^2 or not coprime to n)."""


class EncodingOverflowError(ParameterError):
    """A computation would leave the range in which its result is exact (a
    packed slot or an encoded number overflowing)."""


class VerificationError(UsappError):
    """A signature, MAC, proof or consistency check failed."""


class StateError(UsappError):
    """An operation is not allowed in the current protocol state (wrong epoch,
    exhausted precomputation, out-of-order message)."""


class StateFileError(StateError):
    """A role's state file (specs/roles.md section 3) is missing, not a state file, corrupt, of another
    protocol, role or schema version, or in use by another process; never silently reset."""


class ReplayError(StateError):
    """A message, nonce or challenge was seen before."""


class RandomnessError(UsappError):
    """A randomness source failed: a replayed source is exhausted or asked
    for a length it does not hold, or a DRBG needs reseeding."""


class VectorMismatchError(VerificationError):
    """A test vector does not recompute to its stored value.

    ``field`` (the field's path inside the vector, e.g. ``round_one.3.sig``),
    ``expected`` (what the implementation recomputed) and ``actual`` (what the
    file stores) are set when the raiser knows them; they are public test data.
    """

    def __init__(self, message: str = "", *, field: str | None = None,
                 expected: object = None, actual: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.expected = expected
        self.actual = actual


class RecoveryError(StateError):
    """Too few shares or responses arrived to finish a step that needs a
    threshold of them (secret reconstruction, the unmasking of a round)."""


class AggregateMismatchError(VerificationError):
    """An aggregate's content does not match the set of contributions it
    claims to cover (its integrity tag does not check)."""


class ConsistencyError(VerificationError):
    """A party was shown a view of a round it must refuse: reporting and
    missing sets that disagree with what it saw, a reporting set below the
    minimum fixed at setup, or too few committee signatures on the sets
    (specs/aggregation.md section 8)."""


class DuplicateContributionError(VerificationError):
    """One sender's contribution is counted more than once in an aggregate."""


class DroppedContributionError(VerificationError):
    """An aggregate claims a contribution that its sender made but the
    aggregate does not contain."""


class InjectedContributionError(VerificationError):
    """An aggregate contains a contribution that no legitimate sender made
    for this round (unknown sender, forged message, or an extra term)."""


class ResyncRequiredError(StateError):
    """A group member's keys are behind a rekey message it was sent (it
    missed an earlier one) and the message does not carry it forward: the
    member needs a unicast resync (specs/groupkeys.md section 7)."""


class PolicyError(UsappError):
    """A message would leave its sphere of control: a data category sent
    under the wrong profile or to a recipient outside the category's sphere
    (specs/escrow.md section 6)."""


def shown(value: object) -> str:
    """``value`` as an error message may show it: an int of more than 64 bits
    by its size only, anything else by a repr cut to 64 characters.

    Error messages about untrusted input must not format the input itself: a
    big enough int cannot be turned into text at all (Python refuses more than
    4300 digits with ValueError), and a long one floods the log.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        sign = "negative " if value < 0 else ""
        return f"<{sign}{value.bit_length()}-bit integer>"
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."
