"""Benchmark `mlplat up --local`: seconds from the command's start to the first prediction, against the 60 s target.

    .venv/bin/python bench/local_up.py [--runs 1] [--epochs N] [--db sqlite|postgres] [--json] [--strict]

Each run starts the real command line (`mlplat up --local --json`) in a fresh home on a free serving port, so it
measures what a user waits for on a warm install: interpreter and imports, moto, `mlflow server` (its database
created), the upload, the training job, the serving server, the request. Then, in the same run, a second `up` on
the running platform (everything reused, nothing trained) gives the floor of the command itself; the ratio of the
two says how much of the wait is the platform's real work. Everything is brought down after each run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchkit

REPO = Path(__file__).resolve().parents[1]
MLPLAT = [sys.executable, "-m", "mlplat"]
TARGET_S = 60.0
STEPS = ("store", "tracking", "data", "train", "serve", "predict")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def up(home: Path, port: int, extra: list[str]) -> tuple[float, dict]:
    """Run `mlplat up --local --json`; returns (seconds from launch to the first prediction, the report)."""
    started = time.time()
    result = subprocess.run(
        [*MLPLAT, "up", "--local", "--json", "--home", str(home), "--port", str(port), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise RuntimeError(f"mlplat up failed with status {result.returncode}")
    report = json.loads(result.stdout)
    return report["first_prediction_at"] - started, report


def down(home: Path) -> None:
    subprocess.run([*MLPLAT, "down", "--local", "--home", str(home)], capture_output=True, cwd=REPO, check=False)


def measure(args: argparse.Namespace) -> benchkit.Report:
    """Cold and warm `up` per run; the target is the cold median."""
    extra = ["--db", args.db] + (["--epochs", str(args.epochs)] if args.epochs else [])
    cold: list[float] = []
    warm: list[float] = []
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} target={TARGET_S:.0f}s")
    print(f"{'run':>3} {'cold s':>7} {'warm s':>7}  " + " ".join(f"{s:>8}" for s in STEPS))
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="mlplat-bench-") as tmp:
            home = Path(tmp) / ".mlplat"
            port = free_port()
            try:
                first, report = up(home, port, extra)
                again, _ = up(home, port, extra)
            finally:
                down(home)
        cold.append(first)
        warm.append(again)
        steps = report["step_seconds"]
        print(f"{run:>3} {first:7.1f} {again:7.1f}  " + " ".join(f"{steps.get(s, 0.0):8.1f}" for s in STEPS))

    median_cold, median_warm = statistics.median(cold), statistics.median(warm)
    print(f"up -> first prediction (cold home): median {median_cold:.1f} s = {median_cold / TARGET_S:.2f} x target")
    print(f"up on a running platform (reuse):  median {median_warm:.1f} s = {median_cold / median_warm:.1f} x faster")
    result = benchkit.Report(
        results={"cold_seconds": cold, "warm_seconds": warm, "median_cold": median_cold, "median_warm": median_warm}
    )
    result.target("up to the first prediction (cold median)", median_cold, "<=", TARGET_S, " s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="cold + warm runs; the medians count")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the command's own)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="MLflow's backend store")
    return benchkit.run(parser, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
