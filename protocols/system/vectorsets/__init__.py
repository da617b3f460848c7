"""Vector families: how each file in ``vectors/`` is generated and recomputed.

A family ties one vectors file (specs/conventions.md section 4) to the code
that recomputes it.  ``usapp vectors verify`` finds the family of a file by
the envelope's ``protocol`` and ``suite``, then

1. recomputes every vector with ``verify_vector`` (raises
   ``VectorMismatchError`` naming the field on a mismatch), and
2. for the project's canonical file (same base name as ``family.file``), also
   checks the whole file: a generated family's file must equal ``build()``
   byte for byte; a transcribed family's file must match ``pinned_sha256``,
   the digest of its canonical JSON taken when it was transcribed.

So changing any single value in a canonical file fails, while a vendor's own
file (another name, other inputs) is checked by recomputation alone.

The machinery that runs these checks, the envelope every file shares and its
JSON Schema live in ``protocols.system.vectors`` and ``vectors/schema.json``;
``vectors/README.md`` describes them for vendors.  A family is either
*generated* (``build`` set: the file is the code's output from fixed DRBG
seeds) or *transcribed* (``pinned_sha256`` set: the values come from a
published source), never both.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.errors import ParameterError, VectorMismatchError

Vector = Mapping[str, Any]


@dataclass(frozen=True)
class VectorFamily:
    """One vectors file and the code that recomputes it."""

    file: str
    """Base name of the canonical file under ``vectors/``."""
    protocol: str
    """The envelope's ``protocol`` field."""
    suite: str
    """The envelope's ``suite`` field."""
    verify_vector: Callable[[Vector], None]
    """Recompute one vector; raise ``VectorMismatchError`` naming the field."""
    build: Callable[[], dict] | None = None
    """Regenerate the whole envelope from fixed DRBG seeds (generated files)."""
    pinned_sha256: str | None = None
    """Digest of the canonical JSON of a transcribed file (not generated)."""

    def __post_init__(self) -> None:
        if (self.build is None) == (self.pinned_sha256 is None):
            raise ParameterError(
                f"vector family {self.file!r} must set exactly one of build "
                "(generated file) and pinned_sha256 (transcribed file)"
            )
        if self.pinned_sha256 is not None and not _SHA256_HEX.fullmatch(self.pinned_sha256):
            raise ParameterError(
                f"vector family {self.file!r}: pinned_sha256 must be 64 lower-case hex digits"
            )

    @property
    def generated(self) -> bool:
        """True for a generated family, False for a transcribed one."""
        return self.build is not None


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def expect_field(vector: Vector, field: str, computed: Any) -> None:
    """Raise ``VectorMismatchError`` naming ``field`` unless the vector's stored
    value equals ``computed`` (both in their JSON form, e.g. hex strings).

    A helper for ``verify_vector`` implementations; a missing field is a
    mismatch too.  Stored and computed values are public test data, so the
    message may quote them (shortened).
    """
    if field not in vector:
        raise VectorMismatchError(f"field {field!r} is missing", field=field, expected=computed)
    stored = vector[field]
    if type(stored) is not type(computed) or stored != computed:
        raise VectorMismatchError(
            f"field {field!r}: stored {_short(stored)} but recomputed {_short(computed)}",
            field=field, expected=computed, actual=stored,
        )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


FAMILY_MODULES: tuple[str, ...] = (
    "aggregation",
    "bf_bls12",
    "dp",
    "escrow",
    "groupkeys",
    "hmac_drbg",
    "hpke_rfc9180",
    "ibe_hybrid",
    "integrity",
    "integrity_eccsi",
    "issuance",
    "issuance_eccsi",
    "issuance_eccsi_threshold",
    "paillier",
    "paillier_encoding",
    "paillier_external",
    "rfc5091",
    "rfc6507",
    "rfc6508",
    "rfc9162",
    "rfc9380",
    "rfc9474",
    "rfc9591",
    "sakke_eccsi",
    "threshold_elgamal",
)
"""Modules under ``protocols.system.vectorsets``, each defining ``FAMILY``."""


def families() -> tuple[VectorFamily, ...]:
    """All registered families, imported on demand."""
    found = []
    for name in FAMILY_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found.append(module.FAMILY)
    return tuple(found)
