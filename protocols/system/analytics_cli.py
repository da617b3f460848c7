"""``usapp analytics``: generate, attack, detect, evaluate and the privacy study (specs/analytics.md section 9).

    usapp analytics generate --households N --days D [--interval 30min] [--seed S] --out FILE.csv
    usapp analytics attack IN.csv [--fraction F] [--meters-fraction P] [--kinds h1,...] [--seed S]
                           --out OUT.csv --labels LABELS.csv [--plots DIR]
    usapp analytics detect IN.csv [--method gmm|rpca|ensemble] [--seed S] --out SCORES.csv
    usapp analytics evaluate SCORES.csv [SCORES2.csv ...] LABELS.csv [--fpr P] [--precision P] [--k N]
                             [--plots DIR]
    usapp analytics privacy IN.csv LABELS.csv [--method M] [--levels L,...] [--sizes N,...] [--plots DIR]
    usapp analytics hide IN.csv --policy best-effort|nill|stepping|lookahead --capacity-kwh C --power-kw P
                         [--efficiency E] [--soc-start F] --out METERED.csv
    usapp analytics leakage IN.csv METERED.csv [--events EVENTS.csv] [--plots DIR]
    usapp analytics hiding-study [--households N] [--days D] [--seed S] [--capacities C,...] [--power-kw P]
                                 [--policies P,...] [--plots DIR]
    usapp analytics hiding-together [--households N] [--days D] [--seed S] [--capacity-kwh C] [--power-kw P]

``generate --events EVENTS.csv`` also writes the true appliance switching events; hide, leakage and
hiding-study are the battery load hiding of specs/battery.md section 6.

This module imports no numpy, scipy or scikit-learn: the handlers import the
analytics modules when they run, so the rest of the command line stays light.
Errors and exit codes are those of protocols/system/cli.py (a refused input
is one ``usapp: error: ...`` line, exit 2).
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from protocols.system.cli_types import positive_int

PROG = "usapp"
INTERVAL_PATTERN = re.compile(r"^\s*(\d{1,4})\s*(min|m|h)\s*$", re.IGNORECASE)
DEFAULT_FRACTION = 0.15
LINE_INTERVAL_SECONDS = 5.0
"""Off a terminal, a progress line at most this often (and at the end)."""
BAR_WIDTH = 30


class ProgressBar:
    """A progress callback ``(done, total)``: a redrawn bar on a terminal, else a line now and then.

    Writes to ``stream`` (default stderr) and nothing at all when ``enabled`` is False.
    """

    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.clock = clock
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._last = -float("inf")
        self._open = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        finished = done >= total
        now = self.clock()
        if self.tty:
            if not finished and now - self._last < 0.1:
                return
            filled = int(BAR_WIDTH * min(done, total) / total)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(f"\r{PROG}: {self.label} [{bar}] {done / total:4.0%} ({done}/{total})")
            self._open = not finished
            if finished:
                self.stream.write("\n")
        else:
            if not finished and now - self._last < LINE_INTERVAL_SECONDS:
                return
            self.stream.write(f"{PROG}: {self.label}: {done}/{total} ({done / total:.0%})\n")
        self._last = now
        self.stream.flush()

    def close(self) -> None:
        """End an unfinished bar's line (after an error, so the error starts a line of its own)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def parse_interval(text: str) -> int:
    """``30min``, ``30m``, ``1h`` ... as minutes; one of 1, 5, 10, 15, 30, 60 (spec section 2.1)."""
    from protocols.errors import ParameterError

    match = INTERVAL_PATTERN.match(text)
    if not match:
        raise ParameterError(f"--interval: {text!r} is not an interval such as 30min or 1h")
    minutes = int(match.group(1)) * (60 if match.group(2).lower() == "h" else 1)
    if minutes not in (1, 5, 10, 15, 30, 60):
        raise ParameterError(f"--interval: {text!r} is {minutes} minutes; supported: 1, 5, 10, 15, 30, 60 minutes")
    return minutes


def parse_seed(text: str) -> int | str:
    """A decimal integer seed as an int, anything else as a text seed (hashed by the generators)."""
    return int(text) if text.isdigit() else text


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive): {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1]: {text}")
    return value


def _need_file(path: str) -> None:
    """A missing input is reported as the OS would (``PATH: No such file or directory``, exit 2)
    before any analytics module loads."""
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _kinds(text: str) -> tuple[int, ...]:
    from protocols.analytics.data import LABEL_NAMES
    from protocols.errors import ParameterError

    kinds = []
    for name in (part.strip() for part in text.split(",")):
        if name not in LABEL_NAMES[1:]:
            raise ParameterError(f"--kinds: unknown kind {name!r}; known: {', '.join(LABEL_NAMES[1:])}")
        kinds.append(LABEL_NAMES.index(name))
    return tuple(dict.fromkeys(kinds))


# --------------------------------------------------------------------------
# Handlers


def cmd_generate(args: argparse.Namespace) -> int:
    interval = parse_interval(args.interval)
    from protocols.analytics import dataset, loadgen

    bar = ProgressBar("generating households")
    try:
        data = loadgen.generate(args.households, args.days, interval_minutes=interval, seed=parse_seed(args.seed),
                                progress=bar, with_events=args.events is not None)
    finally:
        bar.close()
    events = None
    if isinstance(data, tuple):  # (data, events) when a generator returns its events record too
        data, events = data
    dataset.write_long_csv(data, args.out)
    _say(f"wrote {args.households} households x {args.days} days at {interval} min to {args.out}")
    if args.events is not None and events is not None:
        from protocols.analytics import hiding_study

        hiding_study.write_events(args.events, data, events, loadgen.APPLIANCES)
        _say(f"wrote {len(events)} appliance switching events to {args.events}")
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    _need_file(args.input)
    from protocols.analytics import attacks, dataset

    options: dict[str, Any] = {"fraction": args.fraction, "seed": parse_seed(args.seed)}
    if args.kinds:
        options["kinds"] = _kinds(args.kinds)
    if args.meters_fraction is not None:
        options["meters_fraction"] = args.meters_fraction
    data = dataset.read_long_csv(args.input, repair=args.repair)
    attacked, labels = attacks.inject(data, **options)
    dataset.write_long_csv(attacked, args.out)
    dataset.write_labels(labels, args.labels)
    count = int(labels.anomalous.sum())
    _say(f"attacked {count} of {labels.codes.size} meter-days; data to {args.out}, labels to {args.labels}")
    if args.plots and count:
        from protocols.analytics import plots

        _say(f"plot written to {plots.attack_examples_plot(data, attacked, labels.codes, args.plots)}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    _need_file(args.input)
    from protocols.analytics import dataset, detect

    data = dataset.read_long_csv(args.input, repair=args.repair)
    bar = ProgressBar(f"detecting ({args.method})")
    try:
        scores = detect.detect(data, args.method, seed=parse_seed(args.seed), progress=bar)
    finally:
        bar.close()
    detect.write_scores(args.out, data, scores)
    _say(f"wrote {scores.size} meter-day scores ({args.method}) to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from protocols.errors import ParameterError

    if len(args.files) < 2:
        raise ParameterError("evaluate needs SCORES.csv [SCORES.csv ...] LABELS.csv")
    *score_paths, labels_path = args.files
    for path in args.files:
        _need_file(path)
    from protocols.analytics import dataset, detect, evaluate

    labels = dataset.read_labels(labels_path)
    names = _names(score_paths)
    grids, reports = {}, {}
    for name, path in zip(names, score_paths):
        meters, start, scores = detect.read_scores(path)
        grids[name] = detect.align(meters, start, scores, labels)
        reports[name] = evaluate.report(grids[name], labels, fpr=args.fpr, k=args.k, precision=args.precision)
        sys.stdout.write(evaluate.format_report(reports[name], f"== {name} ({path}) =="))
        sys.stdout.write("\n")
    if args.plots:
        from protocols.analytics import plots

        truth = labels.anomalous
        curves = {name: (grid.ravel(), truth.ravel()) for name, grid in grids.items()}
        for path in plots.evaluation_plots(curves, reports, grids, truth, args.plots):
            _say(f"plot written to {path}")
    return 0


def _names(paths: list[str]) -> list[str]:
    """Each scores file's stem, made unique with its position when stems repeat."""
    stems = [os.path.splitext(os.path.basename(p))[0] or "scores" for p in paths]
    return stems if len(set(stems)) == len(stems) else [f"{i + 1}:{s}" for i, s in enumerate(stems)]


def cmd_privacy(args: argparse.Namespace) -> int:
    from protocols.errors import ParameterError

    _need_file(args.input)
    _need_file(args.labels)
    levels = [part.strip() for part in args.levels.split(",") if part.strip()] if args.levels else None
    try:
        sizes = [int(part) for part in args.sizes.split(",") if part.strip()] if args.sizes else None
    except ValueError:
        raise ParameterError(f"--sizes: {args.sizes!r} is not a comma-separated list of integers") from None
    from protocols.analytics import dataset, detect, privacy_study

    for level in levels or ():
        privacy_study.epsilon_of(level)  # refuse a bad level before any work
    if sizes is not None and any(size < 1 for size in sizes):
        raise ParameterError(f"--sizes: every size must be at least 1: {args.sizes}")
    data = dataset.read_long_csv(args.input, repair=args.repair)
    labels = dataset.read_labels(args.labels)
    seed = parse_seed(args.seed)
    options: dict[str, Any] = {"seed": seed, "clip_kw": args.clip_kw}
    if levels is not None:
        options["levels"] = levels
    if sizes is not None:
        options["sizes"] = sizes
    bar = ProgressBar(f"privacy study ({args.method})")
    try:
        rows = privacy_study.study(data, labels, lambda view: detect.detect(view, args.method, seed=seed),
                                   progress=bar, **options)
    finally:
        bar.close()
    sys.stdout.write(privacy_study.format_table(rows))
    if args.plots:
        from protocols.analytics import plots

        _say(f"plot written to {plots.privacy_plot(rows, args.plots)}")
    return 0


_BATTERY_OPTIONS = (("capacity_kwh", "--capacity-kwh"), ("max_charge_kw", "--power-kw"),
                    ("max_discharge_kw", "--power-kw"), ("charge_efficiency", "--efficiency"),
                    ("discharge_efficiency", "--efficiency"), ("initial_soc", "--soc-start"))


def _option_error(exc: Exception, options: tuple[tuple[str, str], ...]) -> Exception:
    """``exc`` (a ParameterError) prefixed with the option that carries its refused field, the first of
    ``options`` (field, option) whose field starts the message; ``exc`` itself when none does."""
    from protocols.errors import ParameterError

    text = str(exc)
    for field, option in options:
        if text.startswith(field):
            return ParameterError(f"{option}: {text}")
    return exc


def _battery(capacity_kwh: float, power_kw: float, efficiency: float, soc_start: float) -> Any:
    """The battery of ``hide``: ``BatteryConfig`` with the same power and efficiency both ways (specs/battery.md
    section 2.2); its ``ParameterError`` is prefixed with the option that carries the refused field."""
    from protocols.analytics.battery import BatteryConfig
    from protocols.errors import ParameterError

    try:
        return BatteryConfig(capacity_kwh, power_kw, power_kw, efficiency, efficiency, initial_soc=soc_start)
    except ParameterError as exc:
        raise _option_error(exc, _BATTERY_OPTIONS) from None


def cmd_hide(args: argparse.Namespace) -> int:
    _need_file(args.input)
    battery = _battery(args.capacity_kwh, args.power_kw, args.efficiency, args.soc_start)
    from protocols.analytics import dataset, hiding, hiding_study
    from protocols.errors import ParameterError

    policy = hiding.POLICY_NAMES[args.policy]()
    if isinstance(policy, hiding.Stepping) and args.power_kw < policy.step_kw:
        raise ParameterError(f"--power-kw: {args.power_kw:g} kW is below the stepping policy's {policy.step_kw:g} kW "
                             "step (no step could be held)")
    data = dataset.read_long_csv(args.input, repair=args.repair)
    bar = ProgressBar(f"hiding ({args.policy})")
    traces = []
    try:
        for m in range(len(data.meters)):
            traces.append(hiding.hide(data.kwh[m].reshape(-1), data.interval_minutes, battery, policy))
            bar(m + 1, len(data.meters))
    finally:
        bar.close()
    hiding_study.write_metered(args.out, data, traces)
    costs = [hiding.cost(t, battery) for t in traces]
    load = sum(c.load_kwh for c in costs)
    loss = sum(c.loss_kwh for c in costs)
    cycles = sum(c.equivalent_full_cycles for c in costs) / (len(costs) * data.days)
    _say(f"wrote {len(data.meters)} meters x {data.days} days ({args.policy}, {battery.capacity_kwh:g} kWh / "
         f"{battery.max_discharge_kw:g} kW) to {args.out}: loss {loss:.3f} kWh ({100 * loss / load if load else 0:.2f} "
         f"% of the load), {cycles:.2f} equivalent full cycles per meter-day, peak "
         f"{max(c.peak_load_kw for c in costs):.2f} kW -> {max(c.peak_grid_kw for c in costs):.2f} kW")
    return 0


def cmd_leakage(args: argparse.Namespace) -> int:
    for path in (args.input, args.metered) + ((args.events,) if args.events else ()):
        _need_file(path)
    from protocols.analytics import dataset, hiding_study, loadgen, nilm

    data = dataset.read_long_csv(args.input, repair=args.repair)
    metered = hiding_study.read_metered(args.metered)
    hiding_study.check_metered_load(data, metered)
    if args.events:
        events, names = hiding_study.read_events(args.events, data, loadgen.APPLIANCES)
        source = f"true events from {args.events} ({len(events)} events)"
    else:
        events, names = None, None
        source = ("no --events: the load's own on-edges stand in for the true events (specs/battery.md section 5); "
                  "recall is the share of the load's steps still visible in the metered trace")
    load_kw = nilm.kw_from_data(data)
    grid_kw = nilm.kw_from_data(metered.grid_data())
    reports = {"fast": nilm.leakage(load_kw, grid_kw, events, data.interval_minutes, appliance_names=names),
               "slow": nilm.leakage(load_kw, grid_kw, events, data.interval_minutes, nilm.slow_attacker(),
                                    appliance_names=names)}
    sys.stdout.write(hiding_study.format_leakage(reports, source))
    if args.plots:
        from protocols.analytics import battery_plots

        _say(f"plot written to {battery_plots.metered_day_plot(metered, args.plots)}")
    return 0


def _floats(option: str, text: str) -> tuple[float, ...]:
    from protocols.errors import ParameterError

    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ParameterError(f"{option}: {text!r} is not a comma-separated list of numbers") from None
    if not values:
        raise ParameterError(f"{option}: no value given")
    return values


def cmd_hiding_study(args: argparse.Namespace) -> int:
    from protocols.analytics import hiding_study
    from protocols.errors import ParameterError

    options: dict[str, Any] = {"households": args.households, "days": args.days, "seed": parse_seed(args.seed),
                               "power_kw": args.power_kw, "efficiency": args.efficiency}
    if args.capacities:
        options["capacities_kwh"] = _floats("--capacities", args.capacities)
    if args.policies:
        options["policies"] = tuple(part.strip() for part in args.policies.split(",") if part.strip())
    try:
        config = hiding_study.StudyConfig(**options)
    except ParameterError as exc:
        raise _option_error(exc, (("capacity_kwh", "--capacities"),) + _BATTERY_OPTIONS + (
            ("households", "--households"), ("policies", "--policies"), ("power_kw", "--power-kw"))) from None
    bar = ProgressBar("hiding study")
    try:
        rows = hiding_study.study(config, progress=bar)
    finally:
        bar.close()
    sys.stdout.write(hiding_study.format_study(config, rows))
    if args.plots:
        from protocols.analytics import battery_plots

        _say(f"plot written to {battery_plots.study_plot(rows, args.plots)}")
    return 0


def cmd_hiding_together(args: argparse.Namespace) -> int:
    from protocols.analytics import hiding_together
    from protocols.errors import ParameterError

    options: dict[str, Any] = {"households": args.households, "days": args.days, "seed": parse_seed(args.seed),
                               "capacity_kwh": args.capacity_kwh, "power_kw": args.power_kw}
    if args.policies:
        options["policies"] = tuple(part.strip() for part in args.policies.split(",") if part.strip())
    try:
        config = hiding_together.TogetherConfig(**options)
    except ParameterError as exc:
        raise _option_error(exc, _BATTERY_OPTIONS + (
            ("households", "--households"), ("days", "--days"), ("policies", "--policies"),
            ("power_kw", "--power-kw"), ("hood_meters", "--households"))) from None
    bar = ProgressBar("hiding together")
    try:
        rows = hiding_together.run(config, progress=bar)
    finally:
        bar.close()
    sys.stdout.write(hiding_together.format_table(config, rows))
    return 0


# --------------------------------------------------------------------------
# Parser


def add_parser(commands: Any, epilog: str = "") -> None:
    """Register ``analytics`` and its actions on the top-level subparsers ``commands``."""
    group = commands.add_parser(
        "analytics", help="anomaly and theft detection on meter data (specs/analytics.md)",
        description="Generate load data, inject theft attacks, run the GMM / RPCA detectors, evaluate them, "
                    "and measure what privacy costs them (specs/analytics.md section 9); hide a household's load "
                    "behind a battery and measure what a NILM attacker still finds (specs/battery.md section 6).",
        epilog=epilog)
    actions = group.add_subparsers(dest="analytics_command", metavar="ACTION")
    methods = ("gmm", "rpca", "ensemble")

    gen = actions.add_parser("generate", help="write simulated household readings as a long CSV", epilog=epilog)
    gen.add_argument("--households", type=positive_int, required=True, help="number of households (meters)")
    gen.add_argument("--days", type=positive_int, required=True, help="number of days from 2025-01-01")
    gen.add_argument("--interval", default="30min", help="reading interval: 1min, 5min, 10min, 15min, 30min "
                                                         "or 1h (default 30min)")
    gen.add_argument("--seed", default="0", help="seed: an integer or any text (default 0)")
    gen.add_argument("--out", required=True, help="the long CSV to write (meter,timestamp,kwh)")
    gen.add_argument("--events", default=None, metavar="EVENTS.csv",
                     help="also write the true appliance switching events (meter,start,duration_minutes,"
                          "appliance,power_kw; specs/battery.md section 6.3)")
    gen.set_defaults(handler=cmd_generate)

    att = actions.add_parser("attack", help="inject theft attacks h1..h6 (and faults) into meter-days",
                             epilog=epilog)
    att.add_argument("input", metavar="IN.csv", help="a long CSV (meter,timestamp,kwh)")
    att.add_argument("--fraction", type=_fraction, default=DEFAULT_FRACTION,
                     help=f"share of meter-days attacked, in (0, 1) (default {DEFAULT_FRACTION})")
    att.add_argument("--meters-fraction", type=_fraction, default=None,
                     help="attack this share of the meters instead, each on one run of days (--fraction of "
                          "its days) with one kind (specs/analytics.md section 4.3)")
    att.add_argument("--kinds", default=None, help="comma-separated kinds to inject: h1..h6, stuck-at, zeros, "
                                                   "spikes (default h1..h6)")
    att.add_argument("--seed", default="0", help="seed: an integer or any text (default 0)")
    att.add_argument("--repair", default="none", help="repair of the input (specs/analytics.md section 2.4)")
    att.add_argument("--out", required=True, help="the attacked long CSV to write")
    att.add_argument("--labels", required=True, help="the labels CSV to write (meter,day,label)")
    att.add_argument("--plots", default=None, metavar="DIR", help="write attack_examples.png into DIR: one "
                                                                  "meter-day of each kind, attack over clean")
    att.set_defaults(handler=cmd_attack)

    det = actions.add_parser("detect", help="score every meter-day (higher = more anomalous)", epilog=epilog)
    det.add_argument("input", metavar="IN.csv", help="a long CSV (meter,timestamp,kwh)")
    det.add_argument("--method", choices=methods, default="ensemble", help="detector (default ensemble)")
    det.add_argument("--seed", default="0", help="seed of the detectors' randomness (default 0)")
    det.add_argument("--repair", default="none", help="repair of the input (specs/analytics.md section 2.4)")
    det.add_argument("--out", required=True, help="the scores CSV to write (meter,day,score)")
    det.set_defaults(handler=cmd_detect)

    ev = actions.add_parser("evaluate", help="ROC AUC, per-kind AUC, AP, MAP@N and thresholds of scores files",
                            epilog=epilog)
    ev.add_argument("files", nargs="+", metavar="FILE", help="SCORES.csv [SCORES.csv ...] LABELS.csv")
    ev.add_argument("--fpr", type=_probability, default=0.01, help="false-positive rate of the reported "
                                                                   "threshold (default 0.01)")
    ev.add_argument("--precision", type=_probability, default=None,
                    help="also report the lowest threshold reaching this precision (PR curve)")
    ev.add_argument("--k", type=positive_int, default=50, help="N of MAP@N (default 50)")
    ev.add_argument("--plots", default=None, metavar="DIR", help="write ROC, PR, per-kind, histogram and heat "
                                                                 "map PNGs into DIR")
    ev.set_defaults(handler=cmd_evaluate)

    pv = actions.add_parser("privacy", help="detection AUC under DP noise and in neighbourhood sums",
                            epilog=epilog)
    pv.add_argument("input", metavar="IN.csv", help="the attacked long CSV")
    pv.add_argument("labels", metavar="LABELS.csv", help="its labels")
    pv.add_argument("--method", choices=methods, default="ensemble", help="detector (default ensemble)")
    pv.add_argument("--levels", default=None, help="comma-separated privacy levels (none, low, medium, high) or "
                                                   "epsilons per household-day (default none,low,medium,high,"
                                                   "1000,100,10)")
    pv.add_argument("--sizes", default=None, help="comma-separated neighbourhood sizes N (default 1,5,20,50)")
    pv.add_argument("--clip-kw", type=float, default=7.0, help="clip bound of a reading, mean kW over its "
                                                               "interval (default 7)")
    pv.add_argument("--seed", default="0", help="seed of the noise and the neighbourhoods (default 0)")
    pv.add_argument("--repair", default="none", help="repair of the input (specs/analytics.md section 2.4)")
    pv.add_argument("--plots", default=None, metavar="DIR", help="write the AUC-against-privacy PNG into DIR")
    pv.set_defaults(handler=cmd_privacy)


    policies = ("best-effort", "nill", "stepping", "lookahead")
    hd = actions.add_parser("hide", help="run a battery policy on each meter's load; write METERED.csv "
                                         "(specs/battery.md section 6.1)", epilog=epilog)
    hd.add_argument("input", metavar="IN.csv", help="a long CSV (meter,timestamp,kwh); 1-minute readings for NILM")
    hd.add_argument("--policy", choices=policies, required=True, help="battery policy (specs/battery.md section 3)")
    hd.add_argument("--capacity-kwh", type=float, required=True, help="battery capacity C in kWh, in (0, 10000]")
    hd.add_argument("--power-kw", type=float, required=True, help="charge and discharge power limit in kW, "
                                                                   "in (0, 100]")
    hd.add_argument("--efficiency", type=float, default=0.95, help="one-way efficiency, the same both ways, in "
                                                                   "(0, 1] (default 0.95)")
    hd.add_argument("--soc-start", type=float, default=0.5, help="stored energy at the start of each meter's "
                                                                 "series, a fraction of C (default 0.5)")
    hd.add_argument("--repair", default="none", help="repair of the input (specs/analytics.md section 2.4)")
    hd.add_argument("--out", required=True, metavar="METERED.csv", help="the metered CSV to write (meter,timestamp,"
                                                                        "kwh_load,kwh_grid,kwh_battery,kwh_loss,"
                                                                        "soc_kwh)")
    hd.set_defaults(handler=cmd_hide)

    lk = actions.add_parser("leakage", help="what a NILM attacker finds in the metered trace (specs/battery.md "
                                            "section 6.4)", epilog=epilog)
    lk.add_argument("input", metavar="IN.csv", help="the long CSV given to hide")
    lk.add_argument("metered", metavar="METERED.csv", help="hide's output")
    lk.add_argument("--events", default=None, metavar="EVENTS.csv", help="the true switching events (generate "
                                                                         "--events); without it the load's own "
                                                                         "edges stand in for them")
    lk.add_argument("--repair", default="none", help="repair of IN.csv (specs/analytics.md section 2.4)")
    lk.add_argument("--plots", default=None, metavar="DIR", help="write hiding_day.png into DIR: the load and "
                                                                 "the metered trace over one day, detected "
                                                                 "edges marked, and the SoC")
    lk.set_defaults(handler=cmd_leakage)

    st = actions.add_parser("hiding-study", help="recall and MI against battery size for each policy, on "
                                                 "generated 1-minute households (specs/battery.md section 6.5)",
                            epilog=epilog)
    st.add_argument("--households", type=positive_int, default=4, help="generated households (default 4)")
    st.add_argument("--days", type=positive_int, default=3, help="days per household (default 3)")
    st.add_argument("--seed", default="1", help="generator seed: an integer or any text (default 1)")
    st.add_argument("--capacities", default=None, help="comma-separated capacities in kWh (default 0.5,1,2,5,10)")
    st.add_argument("--power-kw", type=float, default=3.0, help="power limit of every battery (default 3)")
    st.add_argument("--efficiency", type=float, default=0.95, help="one-way efficiency (default 0.95)")
    st.add_argument("--policies", default=None, help="comma-separated policies (default all four; also lookahead-variation-level, lookahead-variation, lookahead-level: the look-ahead with another objective)")
    st.add_argument("--plots", default=None, metavar="DIR", help="write hiding_study.png into DIR: recall and "
                                                                 "MI against capacity, one line per policy")
    st.set_defaults(handler=cmd_hiding_study)

    tg = actions.add_parser("hiding-together", help="battery policies against NILM, theft detection and a real "
                                                    "aggregation round, in one table (specs/battery.md section 8)",
                            epilog=epilog)
    tg.add_argument("--households", type=positive_int, default=40, help="generated households (default 40; >= 8)")
    tg.add_argument("--days", type=positive_int, default=28, help="days per household (default 28)")
    tg.add_argument("--seed", default="1", help="generator seed: an integer or any text (default 1)")
    tg.add_argument("--capacity-kwh", type=float, default=5.0, help="battery capacity (default 5)")
    tg.add_argument("--power-kw", type=float, default=3.0, help="battery power limit (default 3)")
    tg.add_argument("--policies", default=None, help="comma-separated among none,best-effort,nill,stepping,"
                                                     "lookahead (default all five)")
    tg.set_defaults(handler=cmd_hiding_together)

    group.set_defaults(handler=None, subparser=group, choices=", ".join(actions.choices))
