"""Spec 11.5: the privacy bound as a function of N, k, t, the committee and the corrupt fraction.

Three ways the utility, colluding with a set C of meters fixed before
setup (|C| = gamma N), can learn more than sums over large sets:

1. equivocation: at least 2 tau - kappa of the kappa committee members
   are corrupt, so two different sets can each gather tau signatures;
2. a target's own neighbourhood: at least t of its d neighbours are
   corrupt, so they hand over both of its secrets;
3. a small closed set: s honest meters each of which has at least t
   neighbours inside the set or in C -- the only sets whose sum the
   utility can separate from the rest (spec 11.2).

The seed makes the committee a uniform kappa-subset and places the meters
in a uniform random order, so each meter's d neighbours are a uniform
d-subset of the others; but the circulant's neighbour lists are translates
of one another, so neighbourhoods of different meters are not independent.
The small-set term below treats them as independent: it is an estimate
under that approximation, not a proof, and the spec says so.  Every figure is multiplied by the number of setups
a meter joins (MAX_SETUPS): each aborted setup is one more draw of the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _binomial_tail(trials: int, p: float, at_least: int) -> float:
    """P[Bin(trials, p) >= at_least]."""
    if at_least <= 0:
        return 1.0
    if at_least > trials:
        return 0.0
    return min(1.0, sum(math.comb(trials, j) * p ** j * (1 - p) ** (trials - j) for j in range(at_least, trials + 1)))


def _hypergeometric_tail(population: int, marked: int, draws: int, at_least: int) -> float:
    """P[at least ``at_least`` marked among ``draws`` drawn without replacement]."""
    total = math.comb(population, draws)
    hits = sum(math.comb(marked, j) * math.comb(population - marked, draws - j)
               for j in range(max(at_least, 0), min(marked, draws) + 1))
    return min(1.0, hits / total)


@dataclass(frozen=True)
class PrivacyBound:
    """Spec 11.5: the three terms and their sum, per setup and over MAX_SETUPS setups."""

    meters: int
    degree: int
    threshold: int
    committee: int
    committee_threshold: int
    corrupt_fraction: float
    setups: int
    equivocation: float
    target: float
    small_sets: float
    smallest_set: int

    @property
    def total(self) -> float:
        """Probability that some honest meter's input is learnt beyond sums over >= smallest_set meters."""
        return min(1.0, self.setups * (self.equivocation + self.small_sets))


def privacy_bound(meters: int, degree: int, threshold: int, committee: int, committee_threshold: int,
                  corrupt_fraction: float, *, smallest_set: int = 20, setups: int = 3) -> PrivacyBound:
    """Spec 11.5: the union bound for N = ``meters`` and the given parameters.

    ``target`` is the probability that one given honest meter has at least
    t corrupt neighbours; ``small_sets`` bounds the expected number of
    closed honest sets of 1 .. smallest_set - 1 meters (s = 1 is the target
    case over all honest meters).
    """
    corrupt = math.floor(corrupt_fraction * meters)
    honest = meters - corrupt
    d = min(degree, meters - 1)
    equivocation = _hypergeometric_tail(meters, corrupt, committee, 2 * committee_threshold - committee)
    target = _hypergeometric_tail(meters - 1, corrupt, d, threshold)
    small = 0.0
    for s in range(1, min(smallest_set, honest + 1)):
        inside = (s - 1 + corrupt) / (meters - 1)
        tail = _binomial_tail(d, inside, threshold)
        if tail == 0.0:
            continue
        log_term = (math.lgamma(honest + 1) - math.lgamma(s + 1) - math.lgamma(honest - s + 1)
                    + s * math.log(tail))
        small += math.exp(min(log_term, 0.0))
    return PrivacyBound(meters, degree, threshold, committee, committee_threshold, corrupt_fraction, setups,
                        equivocation, target, min(1.0, small), smallest_set)
