"""The registry: every fuzz target of every layer, in one list (adding a target is one entry).

Open findings (findings.py) are attached here: the target gets the finding's
id (its tests are strict xfails) and the finding's inputs as regressions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from .findings import findings
from .registry import Target
from .targets_extra import TARGETS as EXTRA
from .targets_primitives import TARGETS as PRIMITIVES
from .targets_protocols import TARGETS as PROTOCOLS
from .targets_system import TARGETS as SYSTEM

_ALL: list[Target] = [*PRIMITIVES, *PROTOCOLS, *EXTRA, *SYSTEM]
_BY_NAME = {t.name: t for t in _ALL}
assert len(_BY_NAME) == len(_ALL), "two targets share a name"


def _seeds_of(name: str) -> Callable[[], Sequence[bytes]]:
    return _BY_NAME[name].seeds


_OPEN = findings(_seeds_of)
assert set(_OPEN) <= set(_BY_NAME), f"findings name unknown targets: {set(_OPEN) - set(_BY_NAME)}"

TARGETS: list[Target] = [
    dataclasses.replace(t, finding=f"{_OPEN[t.name].id}: {_OPEN[t.name].what}", regressions=_OPEN[t.name].inputs)
    if t.name in _OPEN else t
    for t in _ALL
]
