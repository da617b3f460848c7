"""The registry: every fuzz target of every layer, in one list (adding a target is one entry)."""

from __future__ import annotations

from .registry import Target
from .targets_primitives import TARGETS as PRIMITIVES

TARGETS: list[Target] = [*PRIMITIVES]
