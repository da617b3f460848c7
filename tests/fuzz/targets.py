"""The registry: every fuzz target of every layer, in one list (adding a target is one entry)."""

from __future__ import annotations

from .registry import Target
from .targets_extra import TARGETS as EXTRA
from .targets_primitives import TARGETS as PRIMITIVES
from .targets_protocols import TARGETS as PROTOCOLS
from .targets_system import TARGETS as SYSTEM

TARGETS: list[Target] = [*PRIMITIVES, *PROTOCOLS, *EXTRA, *SYSTEM]
