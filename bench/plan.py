"""Plan wall time per shipped stack: how long `mlplat plan` takes to synthesize it, and resources per second.

    python bench/plan.py [--repeat N] [--json] [--strict] [--cli]

The first synthesis in a process also pays for importing pulumi-aws and the program; it is reported apart
(`coldSeconds`) from the best of the repeats (`seconds`). `--cli` also times the whole command,
`python -m mlplat plan --stack <stack>` in a fresh process (`cliSeconds`), imports of every command included.
Target: prod in 3 s or less.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchkit

from mlplat import synth

STACKS = ("dev", "staging", "prod")
TARGET_SECONDS = {"prod": 3.0}


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


def measure_all(args: argparse.Namespace) -> benchkit.Report:
    """Synthesize each stack `--repeat` times; the prod target is the best wall time."""
    start = time.perf_counter()
    synth.synthesize_stack("dev")
    cold = time.perf_counter() - start
    rows = [measure(stack, args.repeat) for stack in STACKS]
    if args.cli:
        for row in rows:
            row["cliSeconds"] = cli_seconds(str(row["stack"]))
    report = benchkit.Report(results={"coldSeconds": round(cold, 3), "repeat": args.repeat, "stacks": rows})
    for row in rows:
        if row["targetSeconds"] != "":
            report.target(
                f"{row['stack']} plan seconds", float(row["seconds"]), "<=", float(row["targetSeconds"]), " s"
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
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs per stack; the best counts.")
    parser.add_argument("--cli", action="store_true", help="Also time the command in a fresh process per stack.")
    return benchkit.run(parser, measure_all, argv)


if __name__ == "__main__":
    sys.exit(main())
