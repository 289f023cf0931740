"""Plan wall time per shipped stack: how long `mlplat plan` takes to synthesize it, and resources per second.

    python bench/plan.py [--repeat N] [--json] [--strict] [--cli] [--no-scaling]

The first synthesis in a process also pays for importing pulumi-aws and the program; it is reported apart
(`coldSeconds`) from the best of the repeats (`seconds`). `--cli` also times the whole command,
`python -m mlplat plan --stack <stack>` in a fresh process (`cliSeconds`), imports of every command included.
Target: prod in 3 s or less.

The scaling rows plan copies of the prod stack with 1, 10 and 100 endpoints (stack files the bench writes to a
temporary directory) and print, for each, the wall seconds, the milliseconds per resource (wall and CPU, and as
a ratio to the 1-endpoint copy's), and the CPU milliseconds per resource added since the previous row.
Targets: 100 endpoints in 5 s or less (wall); and linear planning: a resource added between 10 and 100 endpoints
costs no more than 1.25x one added between 1 and 10. The linearity target is on added resources because the
copies share prod's ~175 other resources, which are cheaper to plan than an endpoint's 14 (fewer outputs each),
so the plain per-resource figure rises towards an endpoint resource's cost even when every endpoint costs the
same; and on CPU time because on a shared machine wall time also measures the neighbours' load, which changes
between rows (the load average is printed with the table).
"""

import argparse
import copy
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit

from components.config import stack_file
from mlplat import synth

STACKS = ("dev", "staging", "prod")
TARGET_SECONDS = {"prod": 3.0}
SCALING_ENDPOINTS = (1, 10, 100)
SCALING_TARGET_SECONDS = {100: 5.0}
SCALING_LINEAR_RATIO = 1.25


def measure(stack: str, repeat: int) -> dict[str, float | int | str | bool]:
    """Best-of-`repeat` wall time of one stack's synthesis."""
    times = []
    resources = 0
    for _ in range(repeat):
        start = time.perf_counter()
        record = synth.synthesize_stack(stack)
        times.append(time.perf_counter() - start)
        resources = len(record.resources)
    best = min(times)
    target = TARGET_SECONDS.get(stack)
    return {
        "stack": stack,
        "resources": resources,
        "seconds": round(best, 3),
        "medianSeconds": round(sorted(times)[len(times) // 2], 3),
        "resourcesPerSecond": round(resources / best, 1),
        "targetSeconds": target if target is not None else "",
        "withinTarget": target is None or best <= target,
    }


def cli_seconds(stack: str) -> float:
    """Wall time of `python -m mlplat plan --stack <stack>` in a new process."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mlplat", "plan", "--stack", stack, "--no-tree"],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    return round(time.perf_counter() - start, 3)


def scaled_stack_file(endpoints: int, directory: Path) -> Path:
    """The prod stack with `endpoints` copies of its first endpoint (distinct names), written under `directory`."""
    document = yaml.safe_load(stack_file("prod").read_text())
    config = document["config"]
    first = config["mlplat:endpoints"][0]
    config["mlplat:endpoints"] = [{**copy.deepcopy(first), "name": f"{first['name']}-{i}"} for i in range(endpoints)]
    path = directory / f"{endpoints}" / "Pulumi.prod.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def scaling(repeat: int) -> list[dict[str, float | int | str | bool]]:
    """Best-of-`repeat` plan time of prod copies with 1, 10 and 100 endpoints, per resource against the first."""
    rows: list[dict[str, float | int | str | bool]] = []
    with tempfile.TemporaryDirectory(prefix="mlplat-bench-plan-") as tmp:
        for endpoints in SCALING_ENDPOINTS:
            path = scaled_stack_file(endpoints, Path(tmp))
            times, cpu_times, resources = [], [], 0
            for _ in range(repeat):
                start, cpu_start = time.perf_counter(), time.process_time()
                resources = len(synth.synthesize(path, "prod").resources)
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
            best = min(times)
            target = SCALING_TARGET_SECONDS.get(endpoints)
            rows.append(
                {
                    "endpoints": endpoints,
                    "resources": resources,
                    "seconds": round(best, 3),
                    "msPerResource": round(1000 * best / resources, 2),
                    "cpuSeconds": round(min(cpu_times), 3),
                    "cpuMsPerResource": round(1000 * min(cpu_times) / resources, 2),
                    "targetSeconds": target if target is not None else "",
                    "withinTarget": target is None or best <= target,
                }
            )
    for key, ratio in (("msPerResource", "perResourceRatio"), ("cpuMsPerResource", "cpuPerResourceRatio")):
        baseline = float(rows[0][key])
        for row in rows:
            row[ratio] = round(float(row[key]) / baseline, 2)
    rows[0]["cpuMsPerAddedResource"] = ""
    for previous, row in itertools.pairwise(rows):
        added = int(row["resources"]) - int(previous["resources"])
        row["cpuMsPerAddedResource"] = round(
            1000 * (float(row["cpuSeconds"]) - float(previous["cpuSeconds"])) / added, 2
        )
    return rows


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` prints them."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def measure_all(args: argparse.Namespace) -> benchkit.Report:
    """Synthesize each stack `--repeat` times; the prod target is the best wall time."""
    start = time.perf_counter()
    synth.synthesize_stack("dev")
    cold = time.perf_counter() - start
    rows = [measure(stack, args.repeat) for stack in STACKS]
    if args.cli:
        for row in rows:
            row["cliSeconds"] = cli_seconds(str(row["stack"]))
    scaled = [] if args.no_scaling else scaling(args.repeat)
    results = {
        "coldSeconds": round(cold, 3),
        "repeat": args.repeat,
        "stacks": rows,
        "scaling": scaled,
        "loadAverage": load_average(),
    }
    report = benchkit.Report(results=results)
    for row in rows:
        if row["targetSeconds"] != "":
            report.target(
                f"{row['stack']} plan seconds", float(row["seconds"]), "<=", float(row["targetSeconds"]), " s"
            )
    for row in scaled:
        if row["targetSeconds"] != "":
            report.target(
                f"{row['endpoints']} endpoints plan seconds",
                float(row["seconds"]),
                "<=",
                float(row["targetSeconds"]),
                " s",
            )
    if len(scaled) == 3:
        first, second = float(scaled[1]["cpuMsPerAddedResource"]), float(scaled[2]["cpuMsPerAddedResource"])
        results["addedResourceCostRatio"] = round(second / first, 2)
        report.target(
            f"CPU per resource added {scaled[1]['endpoints']}->{scaled[2]['endpoints']} vs "
            f"{scaled[0]['endpoints']}->{scaled[1]['endpoints']} endpoints",
            second / first,
            "<=",
            SCALING_LINEAR_RATIO,
            "x",
        )
    if not args.json:
        table = Table(title=f"mlplat plan: best of {args.repeat} (first synthesis in the process: {cold:.2f} s)")
        columns = ["stack", "resources", "seconds", "median s", "resources/s", "target s"]
        columns += ["cli s"] if args.cli else []
        for column in columns:
            table.add_column(column, justify="left" if column == "stack" else "right")
        for row in rows:
            style = "" if row["withinTarget"] else "red"
            table.add_row(
                str(row["stack"]),
                str(row["resources"]),
                f"{row['seconds']:.2f}",
                f"{row['medianSeconds']:.2f}",
                f"{row['resourcesPerSecond']:.0f}",
                str(row["targetSeconds"]),
                *([f"{row['cliSeconds']:.2f}"] if args.cli else []),
                style=style,
            )
        Console().print(table)
        if scaled:
            Console(width=max(Console().width, 100)).print(_scaling_table(scaled))
        Console().print(f"load average (1, 5, 15 min): {results['loadAverage']}")
    return report


def _scaling_table(rows: list[dict[str, float | int | str | bool]]) -> Table:
    table = Table(title="scaling: prod copies by endpoint count (ms per resource as a ratio to 1 endpoint)")
    formats = {"endpoints": "{}", "resources": "{}", "seconds": "{:.2f}", "msPerResource": "{:.2f}"}
    formats |= {"perResourceRatio": "{:.2f}x", "cpuMsPerResource": "{:.2f}", "cpuPerResourceRatio": "{:.2f}x"}
    formats |= {"cpuMsPerAddedResource": "{:.2f}", "targetSeconds": "{}"}
    columns = ("endpoints", "resources", "s", "ms/res", "ratio", "CPU ms/res", "CPU ratio", "CPU ms/added", "target s")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        cells = [fmt.format(row[key]) if row[key] != "" else "" for key, fmt in formats.items()]
        table.add_row(*cells, style="" if row["withinTarget"] else "red")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs per stack; the best counts.")
    parser.add_argument("--cli", action="store_true", help="Also time the command in a fresh process per stack.")
    parser.add_argument("--no-scaling", action="store_true", help="Skip the 1/10/100-endpoint scaling rows.")
    return benchkit.run(parser, measure_all, argv)


if __name__ == "__main__":
    sys.exit(main())
