"""Shared pieces of the benchmark scripts: thread pinning, machine description, result tables.

Import this module before NumPy: it pins the BLAS thread count from --threads so that every peer in a
run uses the same number of threads.
"""
from __future__ import annotations

import argparse
import csv
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


def machine_lines(machine: dict) -> list[str]:
    """The machine description and the thread pinning, as the '#' lines every script prints first."""
    threads = machine["threads"]
    return [f"# machine: {machine['cpu']}, {machine['cores']} cores; python {machine['python']}, numpy {machine['numpy']}, "
            f"convkit {machine['convkit']} ({machine['compiler']})",
            f"# threads: {threads} for every library (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS={threads}, "
            f"convkit.set_num_threads, torch.set_num_threads)",
            f"# kernels: {', '.join(machine['kernels'].values()) if isinstance(machine['kernels'], dict) else machine['kernels']}"]


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--json and --csv (one or neither: the default is a Markdown table)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="JSON {machine, rows, summary, notes} on stdout")
    group.add_argument("--csv", action="store_true", help="CSV table on stdout (the description to stderr)")


def print_header(lines: Sequence[str], args: argparse.Namespace) -> None:
    """Description lines: above a Markdown table, to stderr with --csv (stdout stays one CSV table), not with --json
    (the JSON carries the machine). A script without those options just prints them."""
    if getattr(args, "json", False):
        return
    print("\n".join(lines), file=sys.stderr if getattr(args, "csv", False) else sys.stdout, flush=True)


def settle() -> None:
    """Let the other library's worker threads stop spinning before timing the next peer."""
    time.sleep(0.2)


def median_seconds(call: Callable[[], object], repeats: int, *, warm_up: bool = True) -> float:
    """Median of `repeats` timed calls, after one untimed call unless warm_up is False (for a slow reference
    whose correctness check has just run it)."""
    if warm_up:
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(
    rows: Sequence[dict], columns: Sequence[str], as_json: bool, header: dict, summary: Sequence[dict] = (),
    *, as_csv: bool = False, notes: Sequence[str] = ()
) -> None:
    """Markdown table (None reads "n/a"), CSV (None is an empty field), or JSON {"machine", "rows"[, "summary"]
    [, "notes"]}.

    summary: rows such as geomeans, printed under the table (a column they lack stays blank).
    notes: lines such as a target check, printed under a Markdown table (to stderr with CSV).
    """
    if as_json:
        report = {"machine": header, "rows": list(rows)}
        if summary:
            report["summary"] = list(summary)
        if notes:
            report["notes"] = list(notes)
        print(json.dumps(report, indent=2))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in [*rows, *summary]:
            writer.writerow(["" if row.get(c) is None else f"{row[c]:.6g}" if isinstance(row[c], float) else row[c]
                             for c in columns])
        for line in notes:
            print(line, file=sys.stderr)
        return
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in [*rows, *summary]:
        print("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    for line in notes:
        print(line)


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
