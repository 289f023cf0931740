"""`python -m training.replay FILE`: send metrics that a job could not deliver (see `training/tracking.py`).

FILE holds one JSON object per line: run_id, key, value, timestamp (ms), step. The tracking server is taken from
MLFLOW_TRACKING_URI. Sending a file twice is harmless: the server ignores exact duplicates.
"""

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from training.tracking import MAX_BATCH


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.replay", description=__doc__)
    parser.add_argument("file", type=Path, help="the unsent-metrics.jsonl file named by the job's final message")
    args = parser.parse_args(argv)

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    by_run: dict[str, list[Metric]] = defaultdict(list)
    for line in args.file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            metric = Metric(record["key"], float(record["value"]), int(record["timestamp"]), int(record["step"]))
            by_run[record["run_id"]].append(metric)
    client = MlflowClient()
    for run_id, metrics in by_run.items():
        for start in range(0, len(metrics), MAX_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MAX_BATCH])
        print(f"sent {len(metrics)} metrics to run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
