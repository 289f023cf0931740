"""`python -m mlplat.monitor`: the scheduled drift job's entrypoint, with the flags `components/drift.py` passes it.

It runs in the training image with the standard library's argparse, so the image carries no command-line framework;
people run `mlplat monitor` (`mlplat.monitor_cmd`), which takes the same flags and more (--local, --stack, --retrain).
Exit status: 0 no drift (or too little data to judge), 3 drift, 2 bad input.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from mlplat.monitor.capture import parse_duration
from mlplat.monitor.drift import Thresholds
from mlplat.monitor.report import REPORT_FILE, not_enough_data
from mlplat.monitor.run import MonitorInputError, MonitorResult, explicit_target, monitor

EXIT_OK, EXIT_BAD_INPUT, EXIT_DRIFT = 0, 2, 3


def _parser() -> argparse.ArgumentParser:
    defaults = Thresholds()
    parser = argparse.ArgumentParser(prog="python -m mlplat.monitor", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--capture", required=True, help="capture location: a directory or s3://bucket/data-capture/<ep>/"
    )
    parser.add_argument("--endpoint", help="endpoint name [default: the capture prefix's last part]")
    parser.add_argument("--since", default="24h", help="capture window, e.g. 30m, 24h, 7d")
    parser.add_argument("--profile", type=Path, help="reference profile JSON instead of the model version's")
    parser.add_argument("--model", help="registered model, when the capture does not say")
    parser.add_argument("--model-version", help="model version, when the capture does not say")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"), help="MLflow URL or ARN")
    parser.add_argument("--psi-threshold", type=float, default=defaults.psi, help="PSI at or over this is a shift")
    parser.add_argument("--p-value", type=float, default=defaults.p_value, help="a p-value under this is significant")
    parser.add_argument("--min-records", type=int, default=defaults.min_records, help="fewer rows give no verdict")
    parser.add_argument(
        "--output-dir", type=Path, default=os.environ.get("MLPLAT_MONITOR_OUTPUT"), help="where report.json goes"
    )
    parser.add_argument("--log", action=argparse.BooleanOptionalAction, default=True, help="log the run to MLflow")
    parser.add_argument("--alarm-topic", default=os.environ.get("MLPLAT_DRIFT_TOPIC"), help="SNS topic ARN for drift")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _summary(result: MonitorResult) -> list[str]:
    report = result.report
    lines = [f"{result.target.endpoint}: {result.model_name} v{result.model_version}, {result.records} capture records"]
    lines += [f"note: {note}" for note in [*report.notes, *result.notes]]
    if not report.enough_data:
        lines.append(not_enough_data(report))
    elif report.drifted:
        names = report.drifted_features + (["prediction"] if report.prediction and report.prediction.drifted else [])
        lines.append(f"drift over threshold: {', '.join(names)}")
    else:
        lines.append("no drift")
    return [*lines, f"report: {result.output_dir / REPORT_FILE}"]


def _bad_input(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run one pass and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        window = parse_duration(args.since)
    except ValueError as error:
        return _bad_input(f"--since {error}")
    if args.output_dir is None:
        return _bad_input("--output-dir (or MLPLAT_MONITOR_OUTPUT) is required")
    try:
        thresholds = Thresholds(psi=args.psi_threshold, p_value=args.p_value, min_records=args.min_records)
        target = replace(
            explicit_target(args.capture, args.endpoint, args.tracking_uri, thresholds),
            model_name=args.model,
            model_version=args.model_version,
            alarm_topic_arn=args.alarm_topic,
        )
        result = monitor(target, window, args.since, args.output_dir, args.profile, args.log)
    except MonitorInputError as error:
        return _bad_input(str(error))
    print(json.dumps(result.to_dict(), indent=2) if args.json else "\n".join(_summary(result)))
    return EXIT_DRIFT if result.report.drifted else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
