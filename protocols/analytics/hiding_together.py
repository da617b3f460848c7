"""Battery hiding together with theft detection and aggregation (specs/battery.md section 8).

One table, a row per policy: what hiding costs (energy lost), what it hides (NILM event recall, MI),
what it costs theft detection (AUC of the anomaly detectors on the metered trace, attacks injected
after the battery) and what the aggregation protocol releases (a real Paillier round over the
metered readings of a small neighbourhood, checked against the true sums, and how far the battery
moved the neighbourhood's hourly sums).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocols.analytics.battery import BatteryConfig
from protocols.analytics.data import ATTACKS, LABEL_NAMES, MAX_DAYS, LoadData
from protocols.errors import ParameterError

POLICIES = ("none", "best-effort", "nill", "stepping", "lookahead")
DEFAULT_POLICIES = POLICIES
"""Every policy; the look-ahead's default objective, hold (section 3.4.1), costs about 0.05 s per household-day."""
MAX_HOUSEHOLD_DAYS = 4000
"""At most this many generated 1-minute household-days (each policy hides and analyses them all)."""
DETECTED_INTERVAL = 30
"""The utility's readings: the metered 1-minute trace summed to 30 minutes."""
HOOD_MIN, HOOD_MAX = 6, 64
VALUE_BITS = 18
"""Hourly readings in Wh below 2^18 = 262 144: a 100 kW load plus a 100 kW charge for an hour."""
SLOTS = 24

Progress = Callable[[int, int], None]


def available_detectors() -> tuple[str, ...]:
    """``rpca``, and ``gmm`` and ``ensemble`` when protocols/analytics/gmm.py is present."""
    if importlib.util.find_spec("protocols.analytics.gmm") is not None:
        return ("rpca", "gmm", "ensemble")
    return ("rpca",)


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise ParameterError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    return int(value)


@dataclass(frozen=True)
class TogetherConfig:
    """Parameters of the section 8 run (defaults there)."""

    households: int = 40
    days: int = 28
    seed: int | str = 1
    capacity_kwh: float = 5.0
    power_kw: float = 3.0
    efficiency: float = 0.95
    policies: tuple[str, ...] = DEFAULT_POLICIES
    attack_fraction: float = 0.15
    hood_meters: int = 8
    hood_day: int = 0

    def __post_init__(self) -> None:
        h = _int("households", self.households, 1, MAX_HOUSEHOLD_DAYS)
        d = _int("days", self.days, 1, min(MAX_DAYS, MAX_HOUSEHOLD_DAYS))
        if h * d > MAX_HOUSEHOLD_DAYS:
            raise ParameterError(f"households x days = {h * d}; at most {MAX_HOUSEHOLD_DAYS}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, str)) or (
                isinstance(self.seed, int) and self.seed < 0):
            raise ParameterError(f"seed must be an int >= 0 or a str, not {self.seed!r}")
        self.battery()  # capacity_kwh, power_kw, efficiency refused as the battery refuses them
        if not self.policies or len(set(self.policies)) != len(self.policies) or any(
                p not in POLICIES for p in self.policies):
            raise ParameterError(f"policies must be distinct names among {', '.join(POLICIES)}, not {self.policies}")
        if "stepping" in self.policies and self.power_kw < 0.5:
            raise ParameterError(f"power_kw {self.power_kw} is below stepping's 0.5 kW step")
        f = self.attack_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise ParameterError(f"attack_fraction must be in (0, 1), not {f!r}")
        _int("hood_meters", self.hood_meters, HOOD_MIN, HOOD_MAX)
        if self.hood_meters > h:
            raise ParameterError(f"hood_meters {self.hood_meters} exceeds the {h} households")
        _int("hood_day", self.hood_day, 0, d - 1)

    def battery(self) -> BatteryConfig:
        return BatteryConfig.simple(self.capacity_kwh, self.power_kw, self.efficiency)


@dataclass(frozen=True)
class Aggregation:
    """One policy's aggregation rounds: released hourly sums (Wh) of the metered and of the load."""

    metered_sums: tuple[int, ...]
    load_sums: tuple[int, ...]
    exact: bool
    max_change_wh: int
    mean_change_wh: float
    peak_hour: int
    peak_change_wh: int


@dataclass(frozen=True)
class TogetherRow:
    """One policy (section 8.2)."""

    policy: str
    loss_kwh: float
    loss_pct: float
    recall: float
    mi_bits: float
    auc: dict[str, float]
    auc_by_attack: dict[str, dict[str, float]]
    aggregation: Aggregation
    seconds: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Metered:
    """A policy's 1-minute metered trace (meters x days x 1440 kWh) and its total loss (kWh)."""

    grid: np.ndarray
    loss_kwh: float


def hide_households(load: LoadData, policy: str, battery: BatteryConfig) -> Metered:
    """Each meter's days as one continuous series through ``policy`` (``none``: the load itself)."""
    if policy == "none":
        return Metered(load.kwh.copy(), 0.0)
    from protocols.analytics import hiding

    traces = hiding.hide_all(load, battery, hiding.POLICY_NAMES[policy]())
    grid = np.stack([t.grid_kwh for t in traces]).reshape(load.kwh.shape)
    return Metered(grid, float(sum(t.loss_kwh.sum() for t in traces)))


def to_readings(load: LoadData, kwh: np.ndarray, interval: int = DETECTED_INTERVAL) -> LoadData:
    """Sum 1-minute kWh (meters x days x 1440) to ``interval``-minute readings (what the utility sees)."""
    m, d, _ = kwh.shape
    return LoadData(load.meters, load.start, interval, kwh.reshape(m, d, 1440 // interval, interval).sum(axis=3))


def detection(readings: LoadData, seed: int | str, fraction: float,
              detectors: Sequence[str]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Inject h1..h6 into ``fraction`` of the meter-days of ``readings``; AUC and per-attack AUC per detector."""
    from protocols.analytics import attacks, detect, evaluate

    attacked, labels = attacks.inject(readings, fraction=fraction, kinds=ATTACKS, seed=seed)
    codes = labels.codes.ravel().astype(np.int64)
    auc: dict[str, float] = {}
    by_attack: dict[str, dict[str, float]] = {}
    for method in detectors:
        scores = detect.detect(attacked, method, seed=seed).ravel()
        auc[method] = evaluate.roc_auc(scores, codes != 0)
        by_attack[method] = {LABEL_NAMES[k]: a for k, (_, a) in evaluate.per_kind_auc(scores, codes).items()}
    return auc, by_attack


def hourly_wh(kwh_day: np.ndarray) -> list[int]:
    """One day's 1-minute kWh as 24 hourly Wh readings, rounded half up to whole Wh."""
    wh = kwh_day.reshape(SLOTS, 60).sum(axis=1) * 1000.0
    out = [int(np.floor(v + 0.5)) for v in wh]
    if any(not 0 <= v < 1 << VALUE_BITS for v in out):
        raise ParameterError(f"an hourly reading {max(out)} Wh is outside [0, 2^{VALUE_BITS})")
    return out


class Neighbourhood:
    """A provisioned neighbourhood of ``ids`` and the rounds run on it (protocols/system/neighbourhood)."""

    def __init__(self, ids: Sequence[str], seed: int | str, key: Any = None) -> None:
        from protocols import aggregation as agg
        from protocols.primitives.drbg import HmacDrbg
        from protocols.schemes.paillier import generate_keypair

        self.rng = HmacDrbg.from_seed(f"usapp-hiding-together/{seed}")
        if key is None:
            key = generate_keypair(2048, self.rng)
        tree, root = agg.balanced_tree(list(ids), 8, prefix="concentrator")
        self.p = agg.provision(key, list(ids), tree, root, self.rng, group_id=b"hiding-together",
                               slots=SLOTS, value_bits=VALUE_BITS)
        self.round = 0

    def released(self, readings: Mapping[str, list[int]]) -> tuple[int, ...]:
        """Run one round (every meter reports) and return the sums the utility released."""
        from protocols.system import neighbourhood as nb

        self.round += 1
        transcript = nb.run_round(self.p, self.round, readings, self.rng)
        if transcript.result is None:
            raise ParameterError(f"aggregation round {self.round} released nothing")
        return tuple(int(v) for v in transcript.result.sums)


def true_sums(readings: Mapping[str, list[int]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*readings.values()))


def aggregate(hood: Neighbourhood, ids: Sequence[str], load_day: np.ndarray, metered_day: np.ndarray,
              load_sums: tuple[int, ...] | None = None) -> Aggregation:
    """Rounds over the metered day (and the load's, unless ``load_sums`` are given); compare with true sums.

    ``load_day`` and ``metered_day``: meters x 1440 kWh of the neighbourhood's meters, in ``ids`` order.
    """
    metered = {m: hourly_wh(metered_day[i]) for i, m in enumerate(ids)}
    got_metered = hood.released(metered)
    exact = got_metered == true_sums(metered)
    if load_sums is None:
        loads = {m: hourly_wh(load_day[i]) for i, m in enumerate(ids)}
        load_sums = hood.released(loads)
        exact = exact and load_sums == true_sums(loads)
    change = np.array(got_metered, dtype=np.int64) - np.array(load_sums, dtype=np.int64)
    peak = int(np.argmax(load_sums))
    return Aggregation(got_metered, load_sums, bool(exact), int(np.abs(change).max()),
                       float(np.abs(change).mean()), peak, int(change[peak]))


def run(config: TogetherConfig = TogetherConfig(), *, progress: Progress | None = None, key: Any = None,
        detectors: Sequence[str] | None = None) -> list[TogetherRow]:
    """Section 8.1: generate, then per policy hide, analyse, detect and aggregate.

    ``key``: a Paillier private key for the neighbourhood (None: one is generated from the seed);
    ``detectors``: None = :func:`available_detectors`.
    """
    import time

    from protocols.analytics import loadgen, nilm

    if not isinstance(config, TogetherConfig):
        raise ParameterError("config must be a TogetherConfig")
    chosen = available_detectors() if detectors is None else tuple(detectors)
    if not chosen or any(d not in ("rpca", "gmm", "ensemble") for d in chosen):
        raise ParameterError(f"detectors must be among rpca, gmm, ensemble, not {chosen}")
    steps = 2 + 4 * len(config.policies)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    load, events = loadgen.generate_with_events(config.households, config.days, interval_minutes=1,
                                                seed=config.seed)
    battery = config.battery()
    ids = load.meters[:config.hood_meters]
    hood = Neighbourhood(ids, config.seed, key)
    day = config.hood_day
    load_day = load.kwh[:config.hood_meters, day]
    base = aggregate(hood, ids, load_day, load_day)  # the load's own round (and the "none" policy's check)
    tick()
    load_kw = load.kwh.reshape(len(load.meters), -1) * 60.0
    total_load = float(load.kwh.sum())
    tick()
    rows: list[TogetherRow] = []
    for policy in config.policies:
        t0 = time.perf_counter()
        metered = hide_households(load, policy, battery)
        tick()
        report = nilm.leakage(load_kw, metered.grid.reshape(len(load.meters), -1) * 60.0, events, 1)
        tick()
        auc, by_attack = detection(to_readings(load, metered.grid), config.seed, config.attack_fraction, chosen)
        tick()
        agg_row = aggregate(hood, ids, load_day, metered.grid[:config.hood_meters, day], base.load_sums)
        agg_row = Aggregation(agg_row.metered_sums, agg_row.load_sums, agg_row.exact and base.exact,
                              agg_row.max_change_wh, agg_row.mean_change_wh, agg_row.peak_hour,
                              agg_row.peak_change_wh)
        tick()
        rows.append(TogetherRow(policy, metered.loss_kwh, 100.0 * metered.loss_kwh / total_load if total_load else 0.0,
                                float(report.recall), float(report.mi_bits), auc, by_attack, agg_row,
                                time.perf_counter() - t0))
    return rows


def format_table(config: TogetherConfig, rows: Sequence[TogetherRow]) -> str:
    """The section 8.2 table (one line per policy), then AUC per attack for each detector."""
    if not rows:
        return ""
    detectors = list(rows[0].auc)
    head = ["policy", "loss %", "recall", "MI bits"] + [f"AUC {d}" for d in detectors] + [
        "sums exact", "max |dWh|", "mean |dWh|", "peak-hour dWh"]
    lines = [head]
    for r in rows:
        a = r.aggregation
        lines.append([r.policy, f"{r.loss_pct:.2f}", f"{r.recall:.3f}", f"{r.mi_bits:.3f}"] +
                     [f"{r.auc[d]:.3f}" for d in detectors] +
                     ["yes" if a.exact else "no", str(a.max_change_wh), f"{a.mean_change_wh:.1f}",
                      f"{a.peak_change_wh:+d}"])
    out = [f"# {config.households} generated households x {config.days} days at 1 minute (seed {config.seed}); "
           f"battery {config.capacity_kwh:g} kWh / {config.power_kw:g} kW, one-way efficiency "
           f"{config.efficiency:g}, starting half full",
           f"# detection: h1..h6 in {config.attack_fraction:.0%} of the meter-days of the metered 30-minute "
           f"readings (after the battery); aggregation: {config.hood_meters} meters, day {config.hood_day}, "
           f"hourly Wh, dWh = released metered sum - released load sum"]
    out += _columns(lines)
    for d in detectors:
        kinds = [LABEL_NAMES[k] for k in ATTACKS]
        t = [["policy"] + [f"{d} {k}" for k in kinds]]
        t += [[r.policy] + [f"{r.auc_by_attack[d].get(k, float('nan')):.3f}" for k in kinds] for r in rows]
        out += ["", f"# AUC per attack ({d})"] + _columns(t)
    return "\n".join(out) + "\n"


def _columns(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    fmt = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return [fmt[0], "  ".join("-" * w for w in widths)] + fmt[1:]
