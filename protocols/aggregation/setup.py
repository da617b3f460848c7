"""Spec 3: setting a neighbourhood up -- keys, the directory, the graph commit-reveal."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


from protocols.aggregation.aggregator import AggregatorState
from protocols.aggregation.hood import Neighbourhood, check_id
from protocols.aggregation.meter import MeterState, commit_to_graph, reveal_graph_nonce
from protocols.aggregation.schedule import KEY_BYTES
from protocols.aggregation.utility import UtilityState
from protocols.errors import ParameterError
from protocols.primitives.rand import RandomSource, resolve
from protocols.schemes.paillier import PrivateKey


def balanced_tree(meters: Sequence[str], fanout: int, prefix: str = "agg") -> tuple[dict, str]:
    """A tree of aggregators with at most ``fanout`` children each over ``meters``.

    Returns (tree, root).  Aggregator ids are ``{prefix}-{level}-{index}``;
    level 1 sits just above the meters.  :class:`Neighbourhood` accepts any
    rooted tree, so a tree of another shape can be written by hand.
    """
    if type(fanout) is not int or fanout < 2:
        raise ParameterError("fanout must be an integer >= 2")
    if not meters:
        raise ParameterError("a tree needs at least one meter")
    tree: dict[str, tuple[str, ...]] = {}
    level, nodes = 1, list(meters)
    while True:
        groups = [tuple(nodes[i:i + fanout]) for i in range(0, len(nodes), fanout)]
        parents = [f"{prefix}-{level}-{i}" for i in range(len(groups))]
        tree.update(zip(parents, groups))
        if len(parents) == 1:
            return tree, parents[0]
        level, nodes = level + 1, parents


@dataclass
class Provisioned:
    """Everything :func:`provision` creates: the public neighbourhood and each role's state."""

    hood: Neighbourhood
    meters: dict[str, MeterState]
    aggregators: dict[str, AggregatorState]
    utility: UtilityState


def draft_directory(private_key: PrivateKey, meters: Mapping[str, MeterState], commitments: Mapping[str, bytes],
                    tree: Mapping[str, tuple[str, ...]], root: str, group_id: bytes, **options) -> Neighbourhood:
    """Spec 3.3 step 2: the directory the utility fixes once every meter has committed."""
    return Neighbourhood(group_id, private_key.public_key,
                         {m: s.x25519_public for m, s in meters.items()},
                         {m: s.verify_key for m, s in meters.items()},
                         dict(commitments), None, dict(tree), root, **options)


def run_setup(private_key: PrivateKey, meters: Mapping[str, MeterState], tree: Mapping[str, tuple[str, ...]],
              root: str, rng: RandomSource | None = None, *, group_id: bytes = b"neighbourhood",
              **options) -> Neighbourhood:
    """Spec 3.3: commitments (meters in directory order), the directory, the reveals, the graph."""
    source = resolve(rng)
    order = sorted(meters, key=str.encode)
    commitments = {m: commit_to_graph(meters[m], source) for m in order}
    draft = draft_directory(private_key, meters, commitments, tree, root, group_id, **options)
    reveals = {m: reveal_graph_nonce(meters[m], draft) for m in order}
    return dataclasses.replace(draft, reveals=reveals)


POLICY_FIELDS = ("min_reporting_floor", "degree_floor", "committee_floor", "require_noise")


def _policy(floors: Mapping[str, object] | None) -> dict[str, Any]:
    """The meters' policy fields (spec 3.3); any other name is a ParameterError."""
    policy = dict(floors or {})
    unknown = sorted(set(policy) - set(POLICY_FIELDS))
    if unknown:
        raise ParameterError(f"unknown meter policy field {unknown[0]!r}")
    return policy


def provision(private_key: PrivateKey, meter_ids: Sequence[str], tree: Mapping[str, tuple[str, ...]], root: str,
              rng: RandomSource | None = None, *, group_id: bytes = b"neighbourhood",
              floors: Mapping[str, object] | None = None, **options) -> Provisioned:
    """Spec 3.1 and 3.3: draw every key of a neighbourhood from ``rng`` in a fixed order, then run the setup.

    Order: the tag key K_alpha; per meter, in the order given: K_i, the
    X25519 private key, the Ed25519 seed; per aggregator, sorted by id: K_a;
    then the graph nonces nu_i, meters in directory order.  ``options`` are
    :class:`Neighbourhood`'s parameters.  In a deployment each meter makes
    its own key pairs and nonce, and the utility learns only the public halves.
    ``floors`` sets every meter's policy fields (min_reporting_floor,
    degree_floor, committee_floor, require_noise; spec 3.3).
    """
    policy = _policy(floors)
    source = resolve(rng)
    tag_key = source.random_bytes(KEY_BYTES)
    states: dict[str, MeterState] = {}
    for meter in meter_ids:
        check_id(meter, "meter id")
        if meter in states:
            raise ParameterError(f"meter id {meter} given twice")
        key = source.random_bytes(KEY_BYTES)
        x_private = source.random_bytes(KEY_BYTES)
        signing = source.random_bytes(KEY_BYTES)
        states[meter] = MeterState(meter, key, tag_key, x_private, signing, **policy)
    aggregator_keys = {node: source.random_bytes(KEY_BYTES) for node in sorted(tree)}
    hood = run_setup(private_key, states, tree, root, source, group_id=group_id, **options)
    return Provisioned(
        hood,
        states,
        {a: AggregatorState(a, k) for a, k in aggregator_keys.items()},
        UtilityState(private_key, {m: s.key for m, s in states.items()}, aggregator_keys, tag_key),
    )


