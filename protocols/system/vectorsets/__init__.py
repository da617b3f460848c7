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
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


FAMILY_MODULES: tuple[str, ...] = (
    "hmac_drbg",
    "paillier",
    "paillier_encoding",
    "paillier_milagro",
)
"""Modules under ``protocols.system.vectorsets``, each defining ``FAMILY``."""


def families() -> tuple[VectorFamily, ...]:
    """All registered families, imported on demand."""
    found = []
    for name in FAMILY_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        found.append(module.FAMILY)
    return tuple(found)
