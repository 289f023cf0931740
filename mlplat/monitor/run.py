"""One monitor pass: capture window -> the serving model version's profile -> drift report -> files and MLflow.

`monitor()` is what `mlplat monitor` and the scheduled job (`python -m mlplat.monitor`) both run; where the capture
and the tracking server are comes in a `Target`: `explicit_target` here for the job's flags, and
`mlplat.monitor_cmd.targets` for the local platform or a deployed stack.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from mlplat.monitor import report as render
from mlplat.monitor import tracking
from mlplat.monitor.capture import CaptureError, CaptureSet, read_captures, split_s3_uri, to_table
from mlplat.monitor.drift import DriftReport, Profile, Thresholds, compare


class MonitorInputError(ValueError):
    """Input the monitor cannot work with (no capture, no profile, unknown endpoint); exit status 2."""

    exit_status = 2  # bad input, in the job's entrypoint and in the command line's error path (mlplat.clikit)


@dataclass(frozen=True)
class Target:
    """Where one endpoint's capture and tracking server are, and the thresholds its environment sets."""

    endpoint: str
    capture_uri: str
    tracking_uri: str | None
    thresholds: Thresholds
    label: str
    # Used when capture records do not name the model (SageMaker's own capture does not).
    model_name: str | None = None
    model_version: str | None = None
    # Extra environment for boto3 and MLflow while the pass runs (the local platform's S3 endpoint).
    env: Mapping[str, str] = field(default_factory=dict)
    bucket: str | None = None
    stack: str | None = None
    alarm_topic_arn: str | None = None


@dataclass
class MonitorResult:
    """What one pass found and where it put it."""

    target: Target
    report: DriftReport
    window: str
    model_name: str | None
    model_version: str | None
    profile_source: str
    records: int
    other_versions: dict[str, int]
    unreadable: int
    output_dir: Path
    plots: list[Path]
    mlflow_run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    alarm_message_id: str | None = None
    retrain: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.target.endpoint,
            "target": self.target.label,
            "capture": self.target.capture_uri,
            "window": self.window,
            "model": {"name": self.model_name, "version": self.model_version, "profile": self.profile_source},
            "records": self.records,
            "records_of_other_versions": self.other_versions,
            "unreadable_lines": self.unreadable,
            **self.report.to_dict(),
            "output_dir": str(self.output_dir),
            "plots": [str(p) for p in self.plots],
            "mlflow_run_id": self.mlflow_run_id,
            "alarm_message_id": self.alarm_message_id,
            "retrain": self.retrain,
            "notes": [*self.report.notes, *self.notes],
        }


@contextmanager
def environment(extra: Mapping[str, str]) -> Iterator[None]:
    """Set `extra` in os.environ for the block (boto3 and MLflow read their endpoints from there)."""
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _serving_version(found: CaptureSet, target: Target) -> tuple[str | None, str | None, list[Any], dict[str, int]]:
    """The model that served the newest record, that model's records, and how many records other versions served."""
    newest = found.records[-1]
    name = newest.model_name or target.model_name
    version = newest.model_version or target.model_version
    mine = [r for r in found.records if (r.model_name, r.model_version) == (newest.model_name, newest.model_version)]
    others: dict[str, int] = {}
    for record in found.records:
        if (record.model_name, record.model_version) != (newest.model_name, newest.model_version):
            key = f"{record.model_name or '?'}/{record.model_version or '?'}"
            others[key] = others.get(key, 0) + 1
    return name, version, mine, others


def _profile(target: Target, name: str | None, version: str | None, path: Path | None) -> tuple[Profile, str]:
    try:
        if path is not None:
            return tracking.read_profile(path), str(path)
        if not name or not version:
            raise MonitorInputError(
                "the capture records do not name the model version that served them; "
                "pass --model and --model-version, or --profile"
            )
        if not target.tracking_uri:
            raise MonitorInputError("no tracking server to load the reference profile from; pass --profile")
        profile, run_id = tracking.registered_profile(target.tracking_uri, name, version)
    except tracking.ProfileNotFound as error:
        raise MonitorInputError(str(error)) from None
    return profile, f"models:/{name}/{version} (run {run_id})"


def monitor(
    target: Target,
    since: timedelta,
    window: str,
    output_dir: Path,
    profile_path: Path | None = None,
    log_to_mlflow: bool = True,
) -> MonitorResult:
    """Run one pass; raises MonitorInputError for bad input, anything else is a bug or an outage."""
    with environment(target.env):
        try:
            found = read_captures(target.capture_uri, since=since)
        except CaptureError as error:
            raise MonitorInputError(str(error)) from None
        if not found.records:
            detail = f" ({found.unreadable} unreadable lines)" if found.unreadable else ""
            raise MonitorInputError(f"no capture records under {target.capture_uri} in the last {window}{detail}")
        name, version, records, others = _serving_version(found, target)
        profile, source = _profile(target, name, version, profile_path)
        captured = to_table(records, profile.feature_names)
        if captured.rows == 0:
            raise MonitorInputError(
                f"none of the {len(records)} capture records under {target.capture_uri} has a request body that parses"
            )
        result_report = compare(profile, captured.columns, captured.predictions, target.thresholds)
        notes: list[str] = []
        if others:
            served = ", ".join(f"{k} ({v})" for k, v in others.items())
            notes.append(f"left out records served by other model versions: {served}")
        if captured.unparsed:
            notes.append(f"{captured.unparsed} capture records had a request body that did not parse")
        if found.unreadable:
            notes.append(f"{found.unreadable} capture lines were not capture records")
        result_report = replace(result_report, notes=tuple(notes))
        plots = render.plot_drifted(result_report, output_dir)
        result = MonitorResult(
            target=target,
            report=result_report,
            window=window,
            model_name=name,
            model_version=version,
            profile_source=source,
            records=len(records),
            other_versions=others,
            unreadable=found.unreadable,
            output_dir=output_dir,
            plots=plots,
        )
        render.write_json(output_dir / render.REPORT_FILE, result.to_dict())
        if log_to_mlflow and target.tracking_uri:
            result.mlflow_run_id = tracking.log_report(
                target.tracking_uri, result_report, target.endpoint, name, version, window, output_dir
            )
            render.write_json(output_dir / render.REPORT_FILE, result.to_dict())
        if result_report.drifted and target.alarm_topic_arn:
            result.alarm_message_id = publish_alarm(target.alarm_topic_arn, result)
    return result


def alarm_text(result: MonitorResult) -> tuple[str, str]:
    """The SNS subject and body of a drift alarm."""
    report = result.report
    names = report.drifted_features + (["prediction"] if report.prediction and report.prediction.drifted else [])
    subject = f"mlplat drift on {result.target.endpoint}: {', '.join(names)}"[:100]
    lines = [
        f"Endpoint {result.target.endpoint} ({result.target.label}), model {result.model_name} "
        f"version {result.model_version}, last {result.window}, {report.rows} rows.",
        f"Thresholds: PSI >= {report.thresholds.psi:g} and p < {report.thresholds.p_value:g}.",
        *(
            f"- {f.feature}: PSI {f.psi:.3f}, {f.test} p {f.p_value if f.p_value is not None else '-'}"
            + (f", new categories {', '.join(f.new_categories)}" if f.new_categories else "")
            for f in [*report.features, *([report.prediction] if report.prediction else [])]
            if f.drifted
        ),
    ]
    if result.mlflow_run_id:
        lines.append(f"MLflow run: {result.mlflow_run_id} (experiment {tracking.EXPERIMENT}).")
    return subject, "\n".join(lines)


def publish_alarm(topic_arn: str, result: MonitorResult) -> str:
    """Publish the drift alarm to the endpoint's SNS topic; returns the message id."""
    import boto3

    subject, body = alarm_text(result)
    response = boto3.client("sns", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None).publish(
        TopicArn=topic_arn, Subject=subject, Message=body
    )
    return str(response["MessageId"])


def explicit_target(capture: str, endpoint: str | None, tracking_uri: str | None, thresholds: Thresholds) -> Target:
    """A capture location given outright (a directory or s3:// prefix), as the scheduled monitor job runs."""
    bucket = None
    if capture.startswith("s3://"):
        try:
            bucket, _ = split_s3_uri(capture)
        except ValueError as error:
            raise MonitorInputError(str(error)) from None
    name = endpoint or capture.rstrip("/").rsplit("/", 1)[-1] or "endpoint"
    return Target(
        endpoint=name,
        capture_uri=capture,
        tracking_uri=tracking_uri,
        thresholds=thresholds,
        label="capture",
        bucket=bucket,
    )
