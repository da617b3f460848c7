"""Privacy-preserving aggregation over the aggregator tree (specs/aggregation.md).

Meters encrypt a masked, tagged, packed vector of readings under the
utility's Paillier key; aggregators multiply ciphertexts up a tree of any
shape; the utility removes the masks with shares the meters release and
decrypts only the sum over a reporting set that a committee of meters
signed and that is at least the minimum fixed at setup.

The masking is the double masking of Bonawitz et al. (CCS 2017) over a
sparse graph (Bell et al., CCS 2020): each round a meter draws a fresh
mask key and self-mask seed and Shamir-shares both among its neighbours;
a surviving meter never reveals anything about its own masks, and every
honest meter releases, per neighbour and round, a share of one of the two
secrets only.

Spec sections and the modules that implement them:

- 3    neighbourhood, directory, graph, committee .. :mod:`.hood`, :mod:`.setup`
- 4    plaintext layout and tag ..................... :mod:`.layout`, :mod:`.schedule`
- 5    key schedule ................................. :mod:`.schedule`
- 6    the meter .................................... :mod:`.meter`
- 7    the aggregator ............................... :mod:`.aggregator`
- 8-9  the utility and the audit .................... :mod:`.utility`
- 6-8  message layouts and limits ................... :mod:`.messages`
- 11.5 the privacy bound ............................ :mod:`.bound`
- 13.1 executors and the failure rule ............... :mod:`.executor`
- 13.2 the tree as the partition .................... :mod:`.partition`
- 13.2 a neighbourhood's round at the utility ....... :mod:`.city`
"""

from protocols.aggregation.aggregator import Aggregator, AggregatorState
from protocols.aggregation.bound import PrivacyBound, privacy_bound
from protocols.aggregation.hood import Neighbourhood
from protocols.aggregation.layout import Layout
from protocols.aggregation.messages import MAX_MESSAGE_BYTES, AggregateReport, MeterReport
from protocols.aggregation.meter import MAX_SETUPS, Meter, MeterState, commit_to_graph, reveal_graph_nonce
from protocols.aggregation.schedule import (
    BOX_BYTES,
    DOMAIN,
    TAG_PRIME,
    VERSION,
    graph_commitment,
    graph_seed,
    pair_mask,
    prf,
    prf_mod,
    round_secret,
    self_mask,
    static_secret,
    tag_alphas,
    tag_beta,
)
from protocols.aggregation.setup import Provisioned, balanced_tree, draft_directory, provision, run_setup
from protocols.aggregation.utility import RoundResult, RoundState, Utility, UtilityState

__all__ = [
    "Aggregator", "AggregatorState", "PrivacyBound", "privacy_bound", "Neighbourhood", "Layout",
    "MAX_MESSAGE_BYTES", "AggregateReport", "MeterReport", "MAX_SETUPS", "Meter", "MeterState",
    "commit_to_graph", "reveal_graph_nonce", "BOX_BYTES", "DOMAIN", "TAG_PRIME", "VERSION",
    "graph_commitment", "graph_seed", "pair_mask", "prf", "prf_mod", "round_secret", "self_mask",
    "static_secret", "tag_alphas", "tag_beta", "Provisioned", "balanced_tree", "draft_directory",
    "provision", "run_setup", "RoundResult", "RoundState", "Utility", "UtilityState",
]
