"""The benchmark harness behind ``usapp bench``.

Benchmarks live in the top-level ``bench/`` folder, installed as the package
``usapp_bench``.  Every module of that package that defines ``BENCHMARK`` (a
:class:`Benchmark`) is found by :func:`discover`; in a source checkout that
was not installed, ``bench/`` beside the ``protocols`` package is loaded under
the same name.

A benchmark's ``run(config)`` returns a list of :class:`Comparison`: our
implementation timed against a baseline (for Paillier, python-paillier), with
the ratio ``baseline median / ours median`` (> 1 means ours is faster), the
spread of the per-repeat paired ratios and an optional target ratio.  Timings
are per call, in seconds; each repeat calls the function ``number`` times,
calibrated so that a repeat lasts at least :data:`MIN_REPEAT_SECONDS`.

A benchmark may also return :class:`Figures`: figures that are not timings
(bytes on the wire, a table of a parameter sweep, derived rates) and the
files it wrote, such as plots under :meth:`BenchConfig.output_path`.  When
one call of each side handles a different number of items (a packed
ciphertext carries many readings), :func:`per_item` restates a comparison
per item.

A benchmark module should import optional baselines inside ``run`` (with
:func:`require_module`), so that listing benchmarks never needs them, and
report progress through ``config.progress``.  Nothing here asserts anything
about time: the numbers are for people to read.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import pkgutil
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import protocols
from protocols.errors import ParameterError

BENCH_PACKAGE = "usapp_bench"
"""The import name of the benchmarks package (``bench/`` in the source tree)."""

MIN_REPEAT_SECONDS = 0.05
"""Calibration target: one repeat lasts at least this long (like timeit.autorange)."""

MAX_NUMBER = 10**8
"""Calibration never goes beyond this many calls per repeat."""

JSON_FORMAT = "usapp-bench/1"
"""The ``format`` field of :func:`to_json` output."""

RESULTS_DIR_NAME = "results"
"""Files a benchmark writes go to ``bench/results/`` in a source checkout."""

Timer = Callable[[], float]


# --------------------------------------------------------------------------
# Configuration and registry


@dataclass(frozen=True)
class BenchConfig:
    """What ``usapp bench`` passes to every benchmark."""

    repeats: int
    """Timed repeats per measurement (each repeat is ``number`` calls)."""
    quick: bool
    """Smaller parameters and fewer cases: a smoke run, not a measurement."""
    progress: Callable[[str], None]
    """Report one step of long work (the CLI prints it on stderr)."""
    results_dir: Path | None = None
    """Where benchmarks write files (plots); None: :func:`default_results_dir`."""
    scale: bool = False
    """``--scale``: run the scaling measurement of benchmarks that have one instead of their usual cases."""

    @property
    def min_time(self) -> float:
        """Calibration target to pass to :func:`compare` / :func:`measure`:
        :data:`MIN_REPEAT_SECONDS`, a fifth of it with ``quick``."""
        return MIN_REPEAT_SECONDS / 5 if self.quick else MIN_REPEAT_SECONDS

    def output_path(self, filename: str) -> Path:
        """The path for a file named ``filename`` in the results directory,
        which is created if needed."""
        if not filename or Path(filename).name != filename:
            raise ParameterError(f"an output file name must be a plain name, not {filename!r}")
        directory = self.results_dir if self.results_dir is not None else default_results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        return directory / filename


def default_results_dir() -> Path:
    """``bench/results`` of the source checkout when ``bench/`` sits beside the
    ``protocols`` package, else ``usapp-bench-results`` in the working directory
    (an installed package's folder is no place for output)."""
    source = Path(protocols.__file__).resolve().parent.parent / "bench"
    if (source / "__init__.py").is_file():
        return source / RESULTS_DIR_NAME
    return Path.cwd() / "usapp-bench-results"


@dataclass(frozen=True)
class Benchmark:
    """One named benchmark; a module of ``usapp_bench`` exports it as ``BENCHMARK``."""

    name: str
    description: str
    run: Callable[[BenchConfig], Sequence[Comparison | Figures]]
    aliases: tuple[str, ...] = ()
    """Other names that select this benchmark on the command line (``usapp bench sakke eccsi`` runs
    the one benchmark ``sakke_eccsi`` once)."""


def _load_bench_package() -> ModuleType:
    try:
        return importlib.import_module(BENCH_PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name != BENCH_PACKAGE:
            raise
    source = Path(protocols.__file__).resolve().parent.parent / "bench"
    init = source / "__init__.py"
    if not init.is_file():
        raise ParameterError(
            f"no benchmarks: {BENCH_PACKAGE} is not installed and there is no "
            "bench/ package beside the protocols package"
        )
    spec = importlib.util.spec_from_file_location(
        BENCH_PACKAGE, init, submodule_search_locations=[str(source)]
    )
    if spec is None or spec.loader is None:  # pragma: no cover - defensive
        raise ParameterError(f"cannot load benchmarks from {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[BENCH_PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[BENCH_PACKAGE]
        raise
    return module


def discover() -> dict[str, Benchmark]:
    """Every ``BENCHMARK`` defined by a module of ``usapp_bench``, by name (sorted).

    A ``BENCHMARK`` that is not a :class:`Benchmark`, or two with the same
    name, is a ``ParameterError``.
    """
    package = _load_bench_package()
    found: dict[str, Benchmark] = {}
    for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        bench = getattr(module, "BENCHMARK", None)
        if bench is None:
            continue
        if not isinstance(bench, Benchmark):
            raise ParameterError(f"{info.name}.BENCHMARK is not a Benchmark")
        if bench.name in found:
            raise ParameterError(f"two benchmarks are named {bench.name!r}")
        found[bench.name] = bench
    taken: set[str] = set(found)
    for bench in found.values():
        for alias in bench.aliases:
            if not isinstance(alias, str) or not alias or alias in taken:
                raise ParameterError(f"benchmark {bench.name!r}: alias {alias!r} is empty or names another benchmark")
            taken.add(alias)
    return dict(sorted(found.items()))


def resolve(names: Sequence[str], known: Mapping[str, Benchmark]) -> list[str]:
    """The benchmarks that ``names`` select, each once, in the order first named: a name is a
    benchmark's own or one of its aliases.  Unknown names are a ``ParameterError`` listing them."""
    by_alias = {alias: bench.name for bench in known.values() for alias in bench.aliases}
    unknown = [name for name in names if name not in known and name not in by_alias]
    if unknown:
        listed = ", ".join(f"{n} ({', '.join(b.aliases)})" if b.aliases else n for n, b in known.items())
        raise ParameterError(f"unknown benchmark(s): {', '.join(unknown)}; known: {listed or '(none)'}")
    selected: list[str] = []
    for name in names:
        canonical = name if name in known else by_alias[name]
        if canonical not in selected:
            selected.append(canonical)
    return selected


def require_module(name: str, extra: str = "bench") -> ModuleType:
    """Import an optional dependency of a benchmark, or raise ``ParameterError``
    naming the extra that provides it (``pip install '.[bench]'`` in the project
    folder: the project is installed from its source, not from a package index)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name.split(".")[0]:
            raise
        raise ParameterError(
            f"this benchmark needs {name}, from the project's {extra!r} extra: "
            f"pip install '.[{extra}]' in the project folder"
        ) from None


def pyplot_or_none(config: BenchConfig, bench_name: str) -> ModuleType | None:
    """matplotlib's pyplot on the Agg backend, or None (reported as progress) when
    matplotlib is not installed: a benchmark then writes no plot."""
    try:
        matplotlib = require_module("matplotlib")
    except ParameterError as exc:
        config.progress(f"{bench_name}: no plot: {exc}")
        return None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements, as the benchmarks' JSON rows record them."""
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def plot_spread(axis: Any, xs: Sequence[float], spreads: Sequence[Mapping[str, float]], **style: Any) -> None:
    """Plot medians with min..max error bars; each spread is a mapping with "median", "min", "max"."""
    medians = [s["median"] for s in spreads]
    errors = [[m - s["min"] for m, s in zip(medians, spreads)], [s["max"] - m for m, s in zip(medians, spreads)]]
    axis.errorbar(xs, medians, yerr=errors, capsize=3, **style)


def save_plot(config: BenchConfig, pyplot: ModuleType, figure: Any, filename: str) -> str:
    """Lay out, write (``config.output_path(filename)``, 120 dpi) and close a figure; return its path."""
    figure.tight_layout()
    path = config.output_path(filename)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
    return str(path)


def library_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of the named distributions (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# --------------------------------------------------------------------------
# Measurement


def _check_positive(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{what} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Timing:
    """Per-call seconds of each repeat of one measured function."""

    per_call: tuple[float, ...]
    """Seconds per call, one entry per repeat, in the order they ran."""
    number: int
    """Calls per repeat."""

    def __post_init__(self) -> None:
        if not self.per_call:
            raise ParameterError("a Timing needs at least one repeat")
        _check_positive(self.number, "number")

    @property
    def repeats(self) -> int:
        return len(self.per_call)

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)

    @property
    def min(self) -> float:
        return min(self.per_call)

    @property
    def max(self) -> float:
        return max(self.per_call)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartiles (linear interpolation between order
        statistics, ``statistics.quantiles(method="inclusive")``; both equal
        the single value for one repeat)."""
        if len(self.per_call) < 2:
            return (self.per_call[0], self.per_call[0])
        q1, _, q3 = statistics.quantiles(self.per_call, n=4, method="inclusive")
        return (q1, q3)

    @property
    def iqr(self) -> float:
        """Interquartile range, Q3 - Q1."""
        q1, q3 = self.quartiles
        return q3 - q1

    def scaled(self, factor: float) -> Timing:
        """The same repeats with every per-call time multiplied by ``factor``
        (per item: ``1 / items per call``)."""
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise ParameterError(f"a scale factor must be a positive number, not {factor!r}")
        return Timing(tuple(t * factor for t in self.per_call), self.number)

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "iqr": self.iqr,
            "repeats": self.repeats,
            "number": self.number,
            "per_call": list(self.per_call),
        }


def _time_repeat(fn: Callable[[], object], number: int, timer: Timer) -> float:
    """Total seconds of ``number`` calls of ``fn``."""
    calls = range(number)
    start = timer()
    for _ in calls:
        fn()
    return timer() - start


def calibrate(
    fn: Callable[[], object], *, timer: Timer = time.perf_counter, min_time: float = MIN_REPEAT_SECONDS
) -> int:
    """Smallest ``number`` in 1, 2, 5, 10, 20, 50, ... for which ``number``
    calls take at least ``min_time`` seconds (the calls also warm up)."""
    number = 1
    while True:
        for factor in (1, 2, 5):
            candidate = number * factor
            if candidate >= MAX_NUMBER or _time_repeat(fn, candidate, timer) >= min_time:
                return min(candidate, MAX_NUMBER)
        number *= 10


def measure(
    fn: Callable[[], object],
    *,
    repeats: int,
    number: int | None = None,
    timer: Timer = time.perf_counter,
    min_time: float = MIN_REPEAT_SECONDS,
) -> Timing:
    """Time ``repeats`` repeats of ``number`` calls of ``fn`` (``number``
    calibrated with :func:`calibrate` when None)."""
    _check_positive(repeats, "repeats")
    if number is None:
        number = calibrate(fn, timer=timer, min_time=min_time)
    _check_positive(number, "number")
    return Timing(
        tuple(_time_repeat(fn, number, timer) / number for _ in range(repeats)), number
    )


def _ratio(baseline: float, ours: float) -> float:
    if ours > 0:
        return baseline / ours
    return math.inf if baseline > 0 else math.nan


@dataclass(frozen=True)
class Comparison:
    """Our implementation against a baseline, or alone (``baseline`` None).

    ``details`` carries extra, JSON-serialisable facts of the case (bytes on
    the wire, operation counts, parameter sizes).
    """

    name: str
    ours: Timing
    baseline: Timing | None = None
    baseline_name: str = ""
    paired_ratios: tuple[float, ...] = ()
    """``baseline[i] / ours[i]`` of repeats that ran back to back."""
    target: float | None = None
    """The minimum acceptable ratio (for example 1.0: at least as fast)."""
    unit: str = "op"
    """What one call does ("encrypt", "1000 additions")."""
    setup_note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """``baseline median / ours median``: > 1 means ours is faster."""
        if self.baseline is None:
            return None
        return _ratio(self.baseline.median, self.ours.median)

    @property
    def ratio_spread(self) -> tuple[float, float] | None:
        """Min and max of the paired per-repeat ratios."""
        if not self.paired_ratios:
            return None
        return (min(self.paired_ratios), max(self.paired_ratios))

    @property
    def meets_target(self) -> bool | None:
        """Whether the median ratio reaches ``target``; None without a target."""
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target


def compare(
    name: str,
    ours_fn: Callable[[], object],
    baseline_fn: Callable[[], object],
    *,
    baseline_name: str,
    repeats: int,
    target: float | None = None,
    unit: str = "op",
    setup_note: str = "",
    details: Mapping[str, Any] | None = None,
    number: int | None = None,
    timer: Timer = time.perf_counter,
    min_time: float = MIN_REPEAT_SECONDS,
) -> Comparison:
    """Time ``ours_fn`` against ``baseline_fn``.

    Each side's ``number`` is calibrated separately (unless ``number`` is
    given, then both use it); the repeats are interleaved, ours then baseline
    (ABAB...), so both share the machine's drifts, and each pair gives one
    paired ratio.
    """
    _check_positive(repeats, "repeats")
    if target is not None and not (isinstance(target, (int, float)) and target > 0):
        raise ParameterError(f"target must be a positive ratio, not {target!r}")
    if number is None:
        n_ours = calibrate(ours_fn, timer=timer, min_time=min_time)
        n_base = calibrate(baseline_fn, timer=timer, min_time=min_time)
    else:
        _check_positive(number, "number")
        n_ours = n_base = number
    ours: list[float] = []
    base: list[float] = []
    for _ in range(repeats):
        ours.append(_time_repeat(ours_fn, n_ours, timer) / n_ours)
        base.append(_time_repeat(baseline_fn, n_base, timer) / n_base)
    return Comparison(
        name=name,
        ours=Timing(tuple(ours), n_ours),
        baseline=Timing(tuple(base), n_base),
        baseline_name=baseline_name,
        paired_ratios=tuple(_ratio(b, o) for o, b in zip(ours, base)),
        target=target,
        unit=unit,
        setup_note=setup_note,
        details=dict(details or {}),
    )


def per_item(
    result: Comparison, ours_items: int, baseline_items: int | None = None, *, unit: str = "item",
    name: str | None = None,
) -> Comparison:
    """``result`` restated per item, when one call of ours handles ``ours_items``
    items and one call of the baseline ``baseline_items`` (default: as many).

    Each side's times are divided by its count, so the paired ratios (and the
    median ratio) are multiplied by ``ours_items / baseline_items``.  The
    number of items per call goes into ``details``.
    """
    _check_positive(ours_items, "ours_items")
    if baseline_items is None:
        baseline_items = ours_items
    _check_positive(baseline_items, "baseline_items")
    details = {**result.details, "items_per_call": ours_items}
    baseline = None
    if result.baseline is not None:
        baseline = result.baseline.scaled(1 / baseline_items)
        details["baseline_items_per_call"] = baseline_items
    factor = ours_items / baseline_items
    return Comparison(
        name=result.name if name is None else name,
        ours=result.ours.scaled(1 / ours_items),
        baseline=baseline,
        baseline_name=result.baseline_name,
        paired_ratios=tuple(r * factor for r in result.paired_ratios),
        target=result.target,
        unit=unit,
        setup_note=result.setup_note,
        details=details,
    )


def single(
    name: str,
    fn: Callable[[], object],
    *,
    repeats: int,
    unit: str = "op",
    setup_note: str = "",
    details: Mapping[str, Any] | None = None,
    number: int | None = None,
    timer: Timer = time.perf_counter,
    min_time: float = MIN_REPEAT_SECONDS,
) -> Comparison:
    """Time ``fn`` alone (no baseline exists): a Comparison without ratio."""
    return Comparison(
        name=name,
        ours=measure(fn, repeats=repeats, number=number, timer=timer, min_time=min_time),
        unit=unit,
        setup_note=setup_note,
        details=dict(details or {}),
    )


@dataclass(frozen=True)
class Figures:
    """Results of a benchmark that are not timings of one case.

    ``values`` is JSON-serialisable (bytes on the wire, a sweep's table,
    derived rates, targets that are not ratios); ``text`` is how the text
    output shows them (for example a table from :func:`format_columns`);
    ``files`` names the files the benchmark wrote (``{"plot": path}``).
    """

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""
    files: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------
# Rendering


def format_seconds(seconds: float) -> str:
    """``1.23 ms``-style rendering with three significant digits."""
    if not math.isfinite(seconds):
        return str(seconds)
    for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {suffix}"
    return f"{seconds / 1e-9:.3g} ns"


def _format_ratio(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else str(value)


def format_columns(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns two spaces apart, the header underlined with dashes."""
    table = [tuple(header)] + [tuple(row) for row in rows]
    if any(len(row) != len(header) for row in table):
        raise ParameterError("every row needs one cell per column")
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _render_figures(figures: Figures) -> list[str]:
    lines = [f"== {figures.name} =="]
    if figures.text:
        lines.extend(figures.text.rstrip("\n").splitlines())
    lines.extend(f"{what} written to {path}" for what, path in figures.files.items())
    return lines


def render_table(results: Iterable[Comparison | Figures]) -> str:
    """A plain-text table, one row per comparison, then details and notes,
    then each :class:`Figures`' text and files.

    Columns: case, ours (median per call [min..max]), baseline median,
    ratio = baseline/ours median [paired min..max] (> 1: ours faster),
    target ratio, and whether it is met.
    """
    everything = list(results)
    figures = [result for result in everything if isinstance(result, Figures)]
    comparisons = [result for result in everything if isinstance(result, Comparison)]
    if not comparisons and not figures:
        return "(no results)\n"
    blocks = [] if not comparisons else [_render_comparisons(comparisons)]
    blocks.extend("\n".join(_render_figures(item)) + "\n" for item in figures)
    return "\n".join(blocks)


def _render_comparisons(results: list[Comparison]) -> str:
    header = ("case", "ours median [min..max]", "baseline median", "ratio [min..max]", "target", "met")
    rows = []
    notes: list[str] = []
    for result in results:
        ours = result.ours
        ours_cell = (
            f"{format_seconds(ours.median)}/{result.unit} "
            f"[{format_seconds(ours.min)}..{format_seconds(ours.max)}]"
        )
        if result.baseline is None:
            base_cell = ratio_cell = "-"
        else:
            base_cell = f"{format_seconds(result.baseline.median)} ({result.baseline_name})"
            ratio = result.ratio
            ratio_cell = "-" if ratio is None else _format_ratio(ratio)
            spread = result.ratio_spread
            if spread is not None:
                ratio_cell += f" [{_format_ratio(spread[0])}..{_format_ratio(spread[1])}]"
        target_cell = "-" if result.target is None else f">= {result.target:g}"
        met_cell = {None: "-", True: "yes", False: "NO"}[result.meets_target]
        rows.append((result.name, ours_cell, base_cell, ratio_cell, target_cell, met_cell))
        if result.details:
            facts = ", ".join(f"{key}={value}" for key, value in result.details.items())
            notes.append(f"{result.name}: {facts}")
        if result.setup_note:
            notes.append(f"{result.name}: {result.setup_note}")
    lines = format_columns(header, rows)
    if notes:
        lines.append("")
        lines.extend(notes)
    lines.append("")
    lines.append("ratio = baseline median / ours median; > 1 means ours is faster.")
    return "\n".join(lines) + "\n"


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def save_json(name: str, results: Iterable[Comparison | Figures], meta: Mapping[str, Any],
              directory: Path | None = None) -> Path:
    """Write one benchmark's :func:`to_json` to ``NAME.json`` in the results directory (where
    ``usapp bench --html`` finds it, specs/costs.md section 6.4); returns the path."""
    path = BenchConfig(1, False, lambda line: None, directory).output_path(f"{name}.json")
    path.write_text(json.dumps(to_json(results, meta), indent=2, sort_keys=True) + "\n")
    return path


def machine_info() -> dict[str, Any]:
    """Python version and implementation, platform, processor and CPU count."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
    }


def to_json(results: Iterable[Comparison | Figures], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Machine-readable results: ``format``, ``machine`` (see :func:`machine_info`),
    ``libraries`` (``meta["libraries"]``: distribution -> version), the rest of
    ``meta`` under ``meta``, one entry per comparison with both timings
    (seconds per call), ratio, ratio spread, target, meets_target and details
    (non-finite ratios become null), and under ``figures`` each
    :class:`Figures`' name, values and files."""
    meta = dict(meta)
    libraries = dict(meta.pop("libraries", {}))
    comparisons = []
    figures = []
    for result in results:
        if isinstance(result, Figures):
            figures.append({"name": result.name, "values": dict(result.values), "files": dict(result.files)})
            continue
        spread = result.ratio_spread
        comparisons.append(
            {
                "name": result.name,
                "unit": result.unit,
                "setup_note": result.setup_note,
                "ours": result.ours.to_json(),
                "baseline_name": result.baseline_name or None,
                "baseline": None if result.baseline is None else result.baseline.to_json(),
                "ratio": _finite_or_none(result.ratio),
                "ratio_spread": (
                    None if spread is None
                    else {"min": _finite_or_none(spread[0]), "max": _finite_or_none(spread[1])}
                ),
                "target": result.target,
                "meets_target": result.meets_target,
                "details": dict(result.details),
            }
        )
    return {
        "format": JSON_FORMAT,
        "machine": machine_info(),
        "libraries": libraries,
        "meta": meta,
        "comparisons": comparisons,
        "figures": figures,
    }
