"""``usapp bench --html DIR``: one static page gathering every benchmark's tables and plots and the device
tables (specs/costs.md section 6.4).

No script, no style sheet or font from elsewhere: the page and its images sit in DIR and open from a file.
Benchmarks' results are read from the results directory: each ``*.json`` of format ``usapp-bench/1``
(written by ``usapp bench``) gives a table of its comparisons and the text of its figures, each ``*.png``
an image (copied into ``DIR/bench/``).  A JSON file that is not such a result is listed as skipped.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocols.errors import ParameterError
from protocols.system import benchmark
from protocols.system.costs_report import CostRow, by_protocol, table_rows

PAGE = "index.html"
MAX_RESULT_BYTES = 16 * 1024 * 1024
"""A results JSON file larger than this is skipped, not read."""

STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:right}th{background:#eee}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2) -> str:
    """An HTML table; the first ``left`` columns aligned left."""
    def cell(tag: str, i: int, text: str) -> str:
        align = ' class="l"' if i < left else ""
        return f"<{tag}{align}>{html.escape(text)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _comparison_rows(comparisons: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for c in comparisons:
        ours = c.get("ours") or {}
        base = c.get("baseline") or {}
        ratio = c.get("ratio")
        rows.append((str(c.get("name", "")), f"{benchmark.format_seconds(float(ours.get('median', 0)))}/"
                     f"{c.get('unit', 'op')}",
                     "-" if not base else f"{benchmark.format_seconds(float(base.get('median', 0)))} "
                     f"({c.get('baseline_name')})",
                     "-" if ratio is None else f"{float(ratio):.2f}",
                     "-" if c.get("target") is None else f">= {c.get('target')}",
                     {None: "-", True: "yes", False: "NO"}.get(c.get("meets_target"), "-")))
    return rows


def _bench_section(results_dir: Path, out: Path) -> tuple[list[str], list[str]]:
    """HTML of every benchmark result and image in ``results_dir``; and the files skipped."""
    parts: list[str] = []
    skipped: list[str] = []
    if not results_dir.is_dir():
        return [f"<p>No benchmark results directory ({html.escape(str(results_dir))}).</p>"], skipped
    for path in sorted(results_dir.glob("*.json")):
        try:
            if path.stat().st_size > MAX_RESULT_BYTES:
                raise ValueError("too large")
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or doc.get("format") != benchmark.JSON_FORMAT:
                raise ValueError("not a usapp-bench/1 result")
            comparisons = [c for c in doc.get("comparisons", []) if isinstance(c, dict)]
            figures = [f for f in doc.get("figures", []) if isinstance(f, dict)]
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        parts.append(f"<h3>{html.escape(path.stem)}</h3>")
        if comparisons:
            parts.append(_table(("case", "ours median", "baseline median", "ratio", "target", "met"),
                                _comparison_rows(comparisons), left=1))
        for figure in figures:
            values = figure.get("values", {})
            parts.append(f"<h4>{html.escape(str(figure.get('name', '')))}</h4>")
            parts.append(f"<pre>{html.escape(json.dumps(values, indent=1, sort_keys=True)[:20000])}</pre>")
    images = sorted(results_dir.glob("*.png"))
    if images:
        (out / "bench").mkdir(parents=True, exist_ok=True)
    for image in images:
        shutil.copyfile(image, out / "bench" / image.name)
        parts.append(f"<figure><img src=\"bench/{html.escape(image.name)}\" alt=\"{html.escape(image.stem)}\">"
                     f"<figcaption>{html.escape(image.name)}</figcaption></figure>")
    if not parts:
        parts.append("<p>No benchmark results yet: run <code>usapp bench</code> first.</p>")
    return parts, skipped


def write(directory: str | Path, rows: Sequence[CostRow], plots: Mapping[str, str], results_dir: Path,
          meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``DIR/index.html`` (and copies of the images); returns its path."""
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--html needs a directory, {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<title>USaPP benchmarks and device costs</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>USaPP benchmarks and device costs</h1>"]
    if meta:
        parts.append(f"<pre>{html.escape(json.dumps(dict(meta), indent=1, sort_keys=True))}</pre>")
    parts.append("<h2>Cost of each protocol step by device</h2>")
    parts.append("<p>Per invocation; role marked * is a meter-side step; &gt;= marks a row that leaves out keys "
                 "the profile has no figure for (specs/costs.md section 6).</p>")
    for protocol, group in by_protocol(rows).items():
        header, cells = table_rows(sorted(group, key=lambda r: (r.role, r.step, r.device)))
        parts.append(f"<h3>{html.escape(protocol)}</h3>")
        parts.append(_table(header, cells, left=2))
        if protocol in plots:
            image = Path(plots[protocol])
            if image.parent.resolve() != out.resolve():
                shutil.copyfile(image, out / image.name)
            parts.append(f"<figure><img src=\"{html.escape(image.name)}\" alt=\"{html.escape(protocol)} costs\">"
                         f"<figcaption>{html.escape(image.name)}</figcaption></figure>")
    parts.append("<h2>Server benchmarks</h2>")
    bench_parts, skipped = _bench_section(results_dir, out)
    parts += bench_parts
    if skipped:
        parts.append("<p>Skipped: " + html.escape("; ".join(skipped)) + "</p>")
    parts.append("</body></html>")
    page = out / PAGE
    page.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return page
