"""HMAC_DRBG of NIST SP 800-90A Rev. 1 (June 2015), section 10.1.2.

The project's deterministic random bit generator (DRBG): vectors are
generated from a seeded instance (:meth:`HmacDrbg.from_seed`), so
regenerating them is reproducible byte for byte, and any instance can be
passed wherever an ``rng`` is expected (it has ``random_bytes(n)``, see
:mod:`protocols.primitives.rand`).

Scope and intentional departures from SP 800-90A, labelled as such:

* Only the DRBG mechanism and the checks of its envelope functions
  (sections 9.1-9.4) that concern its inputs are implemented; there is no
  entropy source.  The caller supplies ``entropy_input`` and ``nonce``
  (as the CAVP tests do).
* Prediction resistance is not offered (``prediction_resistance_flag`` is
  always 0); a caller who wants fresh entropy calls :meth:`HmacDrbg.reseed`.
* SHA-1 is not offered, although Table 2 of section 10.1 allows it; the
  SHA-2 functions of Table 2 are (see :data:`HASH_SUITES`).
* Requests are counted in bytes, not bits (every CAVP request is a whole
  number of bytes); the maximum request is 2^19 bits = 65536 bytes.
* Python cannot reliably zeroize memory: :meth:`HmacDrbg.uninstantiate`
  drops the working state but cannot erase copies the runtime may hold.

The checked-in vectors ``vectors/hmac_drbg.json`` are a subset of NIST's CAVP
``HMAC_DRBG.rsp`` (no-reseed and prediction-resistance-false sets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from protocols.errors import ParameterError, RandomnessError, StateError, shown
from protocols.primitives import opcount

RESEED_INTERVAL = 1 << 48
"""SP 800-90A Table 2: maximum number of requests between reseeds."""

MAX_BYTES_PER_REQUEST = (1 << 19) // 8
"""SP 800-90A Table 2: max_number_of_bits_per_request = 2^19 bits = 65536 bytes."""

MAX_INPUT_BYTES = (1 << 35) // 8
"""SP 800-90A Table 2: maximum length of entropy input, personalization
string and additional input, 2^35 bits."""

FROM_SEED_ENTROPY_LABEL = b"usapp-drbg-entropy"
"""Domain-separation prefix of the entropy input derived by ``from_seed``."""

FROM_SEED_NONCE_LABEL = b"usapp-drbg-nonce"
"""Domain-separation prefix of the nonce derived by ``from_seed``."""


@dataclass(frozen=True)
class HashSuite:
    """One approved hash function for HMAC_DRBG (SP 800-90A section 10.1, Table 2)."""

    name: str
    """The name as NIST writes it (and CAVP section headers use it)."""
    outlen: int
    """Output block length of the hash, in bytes."""
    security_strength: int
    """Highest supported security strength, in bits (SP 800-57 Part 1)."""
    algorithm: type[hashes.HashAlgorithm]


HASH_SUITES = MappingProxyType(
    {
        suite.name: suite
        for suite in (
            HashSuite("SHA-224", 28, 192, hashes.SHA224),
            HashSuite("SHA-512/224", 28, 192, hashes.SHA512_224),
            HashSuite("SHA-256", 32, 256, hashes.SHA256),
            HashSuite("SHA-512/256", 32, 256, hashes.SHA512_256),
            HashSuite("SHA-384", 48, 256, hashes.SHA384),
            HashSuite("SHA-512", 64, 256, hashes.SHA512),
        )
    }
)
"""The supported hash functions by name (SHA-1 intentionally left out)."""


def _as_bytes(value: object, what: str) -> bytes:
    """Accept ``bytes`` or ``bytearray``; anything else is a ParameterError."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) > MAX_INPUT_BYTES:
            raise ParameterError(f"{what} is longer than 2^35 bits (SP 800-90A Table 2)")
        return bytes(value)
    raise ParameterError(f"{what} must be bytes, not {type(value).__name__}")


def _as_count(value: object, what: str) -> int:
    """Accept a non-negative ``int`` (not ``bool``); anything else is a ParameterError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ParameterError(f"{what} must be >= 0, got {shown(value)}")
    return value


@dataclass(eq=False)
class HmacDrbg:
    """An HMAC_DRBG instance (SP 800-90A section 10.1.2).

    The working state (section 10.1.2.1) is ``V``, ``Key`` and
    ``reseed_counter``; the administrative state is ``hash_name`` (which fixes
    outlen and the security strength) and ``reseed_interval``.  A fresh
    object is uninstantiated (``reseed_counter == 0``); call
    :meth:`instantiate`, or use :meth:`from_seed`.  ``Key`` and ``V`` are
    secret and never shown in ``repr``; equality is identity.

    The fields can be given to restore a stored state; they are validated.
    """

    hash_name: str = "SHA-256"
    reseed_interval: int = RESEED_INTERVAL
    """Section 10.1.2.5 step 1; at most 2^48 (Table 2).  Smaller values are allowed."""
    Key: bytes = field(default=b"", repr=False)
    V: bytes = field(default=b"", repr=False)
    reseed_counter: int = 0
    """Generate requests since the last (re)seed, plus one; 0 means uninstantiated."""

    def __post_init__(self) -> None:
        if not isinstance(self.hash_name, str) or self.hash_name not in HASH_SUITES:
            raise ParameterError(
                f"unsupported HMAC_DRBG hash {shown(self.hash_name)}; "
                f"supported: {', '.join(HASH_SUITES)}"
            )
        interval = _as_count(self.reseed_interval, "reseed_interval")
        if not 1 <= interval <= RESEED_INTERVAL:
            raise ParameterError("reseed_interval must be in [1, 2^48] (SP 800-90A Table 2)")
        counter = _as_count(self.reseed_counter, "reseed_counter")
        key = _as_bytes(self.Key, "Key")
        v = _as_bytes(self.V, "V")
        if counter == 0:
            if key or v:
                raise ParameterError("an uninstantiated state (reseed_counter 0) has no Key or V")
        elif len(key) != self.outlen or len(v) != self.outlen:
            raise ParameterError(f"Key and V must be outlen = {self.outlen} bytes")
        elif counter > interval + 1:
            raise ParameterError("reseed_counter exceeds reseed_interval + 1")
        self.Key, self.V = key, v

    # -- parameters --------------------------------------------------------

    @property
    def suite(self) -> HashSuite:
        return HASH_SUITES[self.hash_name]

    @property
    def outlen(self) -> int:
        """Output block length of the hash, in bytes (Table 2)."""
        return self.suite.outlen

    @property
    def security_strength(self) -> int:
        """Security strength in bits; also the minimum entropy input length."""
        return self.suite.security_strength

    @property
    def instantiated(self) -> bool:
        return self.reseed_counter > 0

    # -- the mechanism, SP 800-90A section 10.1.2 ---------------------------

    def _hmac(self, key: bytes, data: bytes) -> bytes:
        mac = crypto_hmac.HMAC(key, self.suite.algorithm())
        mac.update(data)
        return mac.finalize()

    def _update(self, provided_data: bytes) -> None:
        """HMAC_DRBG_Update, SP 800-90A section 10.1.2.2 (an empty string is Null)."""
        # 1. K = HMAC(K, V || 0x00 || provided_data).
        self.Key = self._hmac(self.Key, self.V + b"\x00" + provided_data)
        # 2. V = HMAC(K, V).
        self.V = self._hmac(self.Key, self.V)
        # 3. If provided_data = Null, then return K and V.
        if not provided_data:
            return
        # 4. K = HMAC(K, V || 0x01 || provided_data).
        self.Key = self._hmac(self.Key, self.V + b"\x01" + provided_data)
        # 5. V = HMAC(K, V).
        self.V = self._hmac(self.Key, self.V)

    def _check_entropy(self, entropy_input: bytes) -> None:
        """SP 800-90A sections 9.1 step 6 and 9.2 step 4: the entropy input holds
        at least security_strength bits (checked on its length)."""
        if len(entropy_input) * 8 < self.security_strength:
            raise ParameterError(
                f"entropy_input has {len(entropy_input) * 8} bits; {self.hash_name} "
                f"HMAC_DRBG needs at least {self.security_strength}"
            )

    def instantiate(
        self,
        entropy_input: bytes,
        nonce: bytes,
        personalization_string: bytes = b"",
    ) -> None:
        """HMAC_DRBG_Instantiate_algorithm, SP 800-90A section 10.1.2.3.

        Input validation (section 9.1): the object is not yet instantiated
        (``StateError``); inputs are bytes of at most 2^35 bits and
        ``entropy_input`` has at least ``security_strength`` bits
        (``ParameterError``).  The nonce length is not checked (section 8.6.7
        asks for security_strength/2 bits of entropy, which a length cannot show).
        """
        if self.instantiated:
            raise StateError("HMAC_DRBG is already instantiated; make a new instance")
        entropy_input = _as_bytes(entropy_input, "entropy_input")
        nonce = _as_bytes(nonce, "nonce")
        personalization_string = _as_bytes(personalization_string, "personalization_string")
        self._check_entropy(entropy_input)
        # 1. seed_material = entropy_input || nonce || personalization_string.
        seed_material = entropy_input + nonce + personalization_string
        # 2. Key = 0x00 00...00 (outlen bits).  3. V = 0x01 01...01 (outlen bits).
        self.Key = b"\x00" * self.outlen
        self.V = b"\x01" * self.outlen
        # 4. (Key, V) = HMAC_DRBG_Update(seed_material, Key, V).
        self._update(seed_material)
        # 5. reseed_counter = 1.
        self.reseed_counter = 1

    def reseed(self, entropy_input: bytes, additional_input: bytes = b"") -> None:
        """HMAC_DRBG_Reseed_algorithm, SP 800-90A section 10.1.2.4.

        Input validation (section 9.2): instantiated (``StateError``); inputs
        bytes of at most 2^35 bits, ``entropy_input`` of at least
        ``security_strength`` bits (``ParameterError``).
        """
        self._require_instantiated()
        entropy_input = _as_bytes(entropy_input, "entropy_input")
        additional_input = _as_bytes(additional_input, "additional_input")
        self._check_entropy(entropy_input)
        # 1. seed_material = entropy_input || additional_input.
        # 2. (Key, V) = HMAC_DRBG_Update(seed_material, Key, V).
        self._update(entropy_input + additional_input)
        # 3. reseed_counter = 1.
        self.reseed_counter = 1

    def generate(self, nbytes: int, additional_input: bytes = b"") -> bytes:
        """HMAC_DRBG_Generate_algorithm, SP 800-90A section 10.1.2.5; returns nbytes bytes.

        Input validation (section 9.3.1): instantiated (``StateError``);
        ``nbytes`` an int >= 0 and ``additional_input`` bytes of at most 2^35
        bits (``ParameterError``); ``nbytes`` at most
        max_number_of_bits_per_request / 8 = 65536 (``RandomnessError``).
        A request of 0 bytes is a request like any other: the state is
        updated and counted.
        """
        self._require_instantiated()
        nbytes = _as_count(nbytes, "nbytes")
        additional_input = _as_bytes(additional_input, "additional_input")
        if nbytes > MAX_BYTES_PER_REQUEST:
            raise RandomnessError(
                f"request of {shown(nbytes)} bytes exceeds max_number_of_bits_per_request "
                f"(2^19 bits = {MAX_BYTES_PER_REQUEST} bytes, SP 800-90A Table 2)"
            )
        # 1. If reseed_counter > reseed_interval, return "reseed required".
        if self.reseed_counter > self.reseed_interval:
            raise RandomnessError(
                f"HMAC_DRBG reseed required: {self.reseed_interval} requests since the last seed"
            )
        # 2. If additional_input != Null, (Key, V) = HMAC_DRBG_Update(additional_input, Key, V).
        if additional_input:
            self._update(additional_input)
        # 3. temp = Null.  4. While len(temp) < requested_number_of_bits:
        #    V = HMAC(Key, V); temp = temp || V.
        blocks = []
        produced = 0
        while produced < nbytes:
            self.V = self._hmac(self.Key, self.V)
            blocks.append(self.V)
            produced += self.outlen
        # 5. returned_bits = leftmost(temp, requested_number_of_bits).
        returned_bits = b"".join(blocks)[:nbytes]
        # 6. (Key, V) = HMAC_DRBG_Update(additional_input, Key, V).
        self._update(additional_input)
        # 7. reseed_counter = reseed_counter + 1.
        self.reseed_counter += 1
        # 8. Return SUCCESS, returned_bits.  Counted once here, as random bytes handed out; the
        # HMACs above are the generator's own cost, inside that unit (specs/costs.md 2.1).
        opcount.record("random_byte", nbytes)
        return returned_bits

    def uninstantiate(self) -> None:
        """Uninstantiate function, SP 800-90A section 9.4 (see the module note on zeroization)."""
        self.Key = b""
        self.V = b""
        self.reseed_counter = 0

    def _require_instantiated(self) -> None:
        if not self.instantiated:
            raise StateError("HMAC_DRBG is not instantiated")

    # -- the project's RNG interface (protocols.primitives.rand) -------------

    def random_bytes(self, n: int) -> bytes:
        """Return n bytes: the concatenation of ceil(n / 65536) generate calls.

        The calls are ``generate(65536)`` repeated while more than 65536 bytes
        remain, then ``generate(r)`` for the remaining 1 <= r <= 65536 bytes,
        all without additional input.  ``random_bytes(0)`` returns ``b""``
        and makes no call (the state is unchanged).  Consequences, both
        tested: one ``random_bytes(a)`` returns exactly the first a bytes that
        ``random_bytes(a + b)`` would have returned from the same state; but
        ``random_bytes(a) + random_bytes(b)`` differs from
        ``random_bytes(a + b)`` when a, b > 0, because every generate call
        ends with an HMAC_DRBG_Update (section 10.1.2.5 step 6).
        """
        n = _as_count(n, "n")
        chunks = []
        remaining = n
        while remaining > 0:
            size = min(remaining, MAX_BYTES_PER_REQUEST)
            chunks.append(self.generate(size))
            remaining -= size
        return b"".join(chunks)

    @classmethod
    def from_seed(
        cls,
        seed: bytes | str,
        personalization: bytes | str = b"",
    ) -> HmacDrbg:
        """A deterministic SHA-256 HMAC_DRBG for generating test vectors (not for keys).

        ``seed`` and ``personalization`` are bytes, or str encoded as UTF-8;
        any length, including empty.  The instance is exactly::

            entropy_input = SHA-256(b"usapp-drbg-entropy" || seed)          (32 bytes)
            nonce         = SHA-256(b"usapp-drbg-nonce" || seed)[0:16]      (16 bytes)
            HmacDrbg("SHA-256").instantiate(entropy_input, nonce, personalization)

        with ``||`` byte concatenation and no length prefix or separator (each
        hash input has one variable part, at its end).  No reseed follows;
        ``reseed_interval`` is the default 2^48.  Hashing the seed gives a
        256-bit entropy input (the minimum for security strength 256,
        SP 800-90A section 9.1) from a seed of any length; it adds no entropy:
        a vector is as guessable as its seed, which is the point.
        """
        seed_bytes = _utf8_or_bytes(seed, "seed")
        personalization_bytes = _utf8_or_bytes(personalization, "personalization")
        entropy_input = _sha256(FROM_SEED_ENTROPY_LABEL + seed_bytes)
        nonce = _sha256(FROM_SEED_NONCE_LABEL + seed_bytes)[:16]
        drbg = cls("SHA-256")
        drbg.instantiate(entropy_input, nonce, personalization_bytes)
        return drbg


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def _utf8_or_bytes(value: object, what: str) -> bytes:
    """bytes as they are; str encoded as UTF-8 (a lone surrogate is a ParameterError)."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParameterError(f"{what} is not encodable as UTF-8") from exc
    return _as_bytes(value, what)
