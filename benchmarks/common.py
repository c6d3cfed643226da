"""Shared pieces of the benchmark scripts: thread pinning, machine description, result tables.

Import this module before NumPy: it pins the BLAS thread count from --threads so that every peer in a
run uses the same number of threads.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Sequence


def pin_threads(threads: int) -> None:
    """Must run before NumPy (and its BLAS) is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(threads: int) -> dict:
    import numpy as np

    import convkit

    cfg = convkit.config()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "numpy": np.__version__,
        "convkit": cfg["version"],
        "compiler": cfg["compiler"],
        "kernels": cfg["kernels"],
        "python": sys.version.split()[0],
    }


def settle() -> None:
    """Let the other library's worker threads stop spinning before timing the next peer."""
    time.sleep(0.2)


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(
    rows: Sequence[dict], columns: Sequence[str], as_json: bool, header: dict, summary: Sequence[dict] = ()
) -> None:
    """Markdown table (None reads "n/a"), or JSON {"machine", "rows"[, "summary"]}.

    summary: rows such as geomeans, printed under the table (a column they lack stays blank).
    """
    if as_json:
        report = {"machine": header, "rows": list(rows)}
        if summary:
            report["summary"] = list(summary)
        print(json.dumps(report, indent=2))
        return
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in [*rows, *summary]:
        print("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def select(spec, items: Sequence, option: str, parser, *, by_index: bool = False) -> list:
    """The items named in a comma-separated option value (every item when spec is empty), each item having a
    .name; with by_index, 1-based positions are accepted too. An unknown entry is a parser error listing the
    choices."""
    if not spec:
        return list(items)
    by_name = {item.name: item for item in items}
    chosen = []
    for token in (t.strip() for t in spec.split(",")):
        if by_index and token.isdigit() and 1 <= int(token) <= len(items):
            chosen.append(items[int(token) - 1])
        elif token in by_name:
            chosen.append(by_name[token])
        else:
            positions = f"1..{len(items)} or " if by_index else ""
            parser.error(f"{option}: unknown {token!r}; choose among {positions}{', '.join(by_name)}")
    return chosen


def geomean(values: Sequence[float]) -> float:
    return statistics.geometric_mean(values) if values else float("nan")
