"""The monitor's side of MLflow: the reference profile of a registered model version, and the drift run it logs.

The profile is found the way the serving model was: registered model name and version -> the version's run ->
`reference_profile.json` at the run's artifact root. Each monitor pass is one run in the `mlplat-monitoring`
experiment, tagged with the model and endpoint, with per-feature PSI, test statistic, p-value and verdict as metrics.
"""

import contextlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlplat.monitor.drift import DriftReport, FeatureDrift, Profile, ProfileError

PROFILE_ARTIFACT = "reference_profile.json"
EXPERIMENT = "mlplat-monitoring"


class ProfileNotFound(LookupError):
    """No usable reference profile for a model version; the message says what was looked up."""


def read_profile(path: Path) -> Profile:
    """A profile from a local file (`--profile`)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileNotFound(f"profile file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProfileNotFound(f"profile file {path} is not JSON ({error})") from None
    try:
        return Profile.from_dict(document)
    except ProfileError as error:
        raise ProfileNotFound(f"profile file {path}: {error}") from None


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def registered_profile(tracking_uri: str, name: str, version: str) -> tuple[Profile, str]:
    """The profile logged by the run that produced `name` version `version`, and that run's id."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        found = client.get_model_version(name, version)
    except MlflowException:
        raise ProfileNotFound(f"model {name!r} version {version} is not registered at {tracking_uri}") from None
    if not found.run_id:
        raise ProfileNotFound(f"model {name!r} version {version} has no training run to take a profile from")
    with tempfile.TemporaryDirectory(prefix="mlplat-profile-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=found.run_id, artifact_path=PROFILE_ARTIFACT, dst_path=tmp, tracking_uri=tracking_uri
            )
        except (MlflowException, OSError):
            raise ProfileNotFound(
                f"run {found.run_id} of model {name!r} version {version} has no {PROFILE_ARTIFACT}"
            ) from None
        try:
            profile = Profile.from_dict(json.loads(Path(local).read_text()))
        except (json.JSONDecodeError, ProfileError) as error:
            raise ProfileNotFound(f"{PROFILE_ARTIFACT} of run {found.run_id}: {error}") from None
    return profile, str(found.run_id)


def _metric_key(*parts: str) -> str:
    # MLflow keys allow letters, digits, _ - . space and /; anything else in a feature name becomes _.
    return ".".join(re.sub(r"[^A-Za-z0-9_\-. /]", "_", p) for p in parts)


def _feature_metrics(result: FeatureDrift) -> dict[str, float]:
    metrics = {
        _metric_key("psi", result.feature): result.psi,
        _metric_key("drifted", result.feature): float(result.drifted),
        _metric_key("rows", result.feature): float(result.rows),
    }
    if result.statistic is not None:
        metrics[_metric_key(result.test, "statistic", result.feature)] = result.statistic
    if result.p_value is not None:
        metrics[_metric_key(result.test, "pvalue", result.feature)] = result.p_value
    if result.new_categories:
        metrics[_metric_key("new_categories", result.feature)] = float(len(result.new_categories))
    return metrics


def report_metrics(report: DriftReport) -> dict[str, float]:
    """Every metric a drift run logs: per feature, the prediction's, and the totals."""
    metrics: dict[str, float] = {
        "rows": float(report.rows),
        "drifted_features": float(len(report.drifted_features)),
        "drift": float(report.drifted),
    }
    for result in report.features:
        metrics.update(_feature_metrics(result))
    if report.prediction is not None:
        metrics.update(_feature_metrics(report.prediction))
    return metrics


def log_report(
    tracking_uri: str,
    report: DriftReport,
    endpoint: str,
    model_name: str | None,
    model_version: str | None,
    window: str,
    artifacts: Path | None,
) -> str:
    """One run in `mlplat-monitoring` holding the report's metrics, tags and files; returns the run id."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    tags = {
        "mlplat.endpoint": endpoint,
        "mlplat.model.name": model_name or "",
        "mlplat.model.version": model_version or "",
        "mlplat.drift": str(report.drifted).lower(),
        "mlplat.drifted_features": ",".join(report.drifted_features),
    }
    run = client.create_run(
        experiment_id, run_name=f"drift-{endpoint}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    )
    run_id = str(run.info.run_id)
    try:
        now = int(time.time() * 1000)
        params = {
            "window": window,
            "psi_threshold": str(report.thresholds.psi),
            "p_value_threshold": str(report.thresholds.p_value),
        }
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in report_metrics(report).items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if artifacts is not None and artifacts.is_dir():
            client.log_artifacts(run_id, str(artifacts))
    except Exception:
        _terminate(client, run_id, "FAILED")
        raise
    _terminate(client, run_id, "FINISHED")
    return run_id


def _terminate(client: Any, run_id: str, status: str) -> None:
    # MLflow prints a "View run" link on stdout when a run ends; stdout is the report's (`--json`).
    with contextlib.redirect_stdout(sys.stderr):
        client.set_terminated(run_id, status)
