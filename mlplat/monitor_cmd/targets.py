"""Where to monitor: the running local platform or a deployed stack (explicit flags, the scheduled job's way, are
`mlplat.monitor.run.explicit_target`).

The local platform is found through `mlplat.local.state.discover()`; a stack through its stack file (thresholds,
endpoints, which model version each serves) and its outputs (`mlplat.outputs.load_outputs`: bucket, tracking
server). Every failure to find something becomes a `MonitorInputError` naming what is missing.
"""

from pathlib import Path

from contracts import bucket as layout
from mlplat.monitor.drift import Thresholds
from mlplat.monitor.run import MonitorInputError, Target


def capture_uri(bucket: str, endpoint: str) -> str:
    """`s3://<bucket>/data-capture/<endpoint>/`: the artifact bucket's capture prefix of one endpoint."""
    return layout.s3_uri(bucket, layout.capture_prefix(endpoint))


def stack_thresholds(stack: str) -> Thresholds:
    """The `mlplat:monitoring` thresholds of a stack file."""
    from components.config import ConfigError, load_stack

    try:
        monitoring = load_stack(stack).monitoring
    except ConfigError as error:
        raise MonitorInputError(error.problems[0]) from None
    return Thresholds(psi=monitoring.psi_threshold, p_value=monitoring.p_value, min_records=monitoring.min_records)


def override(
    thresholds: Thresholds, psi: float | None, p_value: float | None, min_records: int | None = None
) -> Thresholds:
    return Thresholds(
        psi=thresholds.psi if psi is None else psi,
        p_value=thresholds.p_value if p_value is None else p_value,
        min_records=thresholds.min_records if min_records is None else min_records,
    )


def local_target(endpoint: str | None, home: Path | None = None) -> Target:
    """The local platform's capture prefix, tracking server and S3 endpoint, with its mirrored stack's thresholds."""
    from mlplat.local.state import StateError, discover

    try:
        found = discover(home)
    except StateError as error:
        raise MonitorInputError(str(error)) from None
    if endpoint is None:
        if found.data_capture_uri is None:
            raise MonitorInputError("the local platform has no serving endpoint yet; pass --endpoint")
        endpoint = found.data_capture_uri.rstrip("/").rsplit("/", 1)[-1]
    return Target(
        endpoint=endpoint,
        capture_uri=capture_uri(found.bucket, endpoint),
        tracking_uri=found.mlflow_url,
        thresholds=stack_thresholds(found.stack),
        label=f"local (mirrors {found.stack})",
        model_name=found.model_name,
        env=dict(found.aws_env),
        bucket=found.bucket,
        stack=found.stack,
    )


def stack_target(stack: str, endpoint: str | None, outputs_file: Path | None, stack_file: Path | None = None) -> Target:
    """A deployed stack's endpoint: its capture prefix in the stack's bucket, its tracking server, its thresholds."""
    from components.config import ConfigError, load_stack, load_stack_file
    from mlplat.outputs import CloudError, load_outputs

    try:
        cfg = load_stack_file(stack_file) if stack_file else load_stack(stack)
    except ConfigError as error:
        raise MonitorInputError(error.problems[0]) from None
    names = [ep.name for ep in cfg.endpoints]
    if not names:
        raise MonitorInputError(f"stack {stack} has no endpoints (mlplat:endpoints) to monitor")
    chosen = next((ep for ep in cfg.endpoints if ep.name == (endpoint or names[0])), None)
    if chosen is None:
        raise MonitorInputError(f"stack {stack} has no endpoint {endpoint!r} (it has {', '.join(names)})")
    try:
        outputs = load_outputs(stack, outputs_file)
    except CloudError as error:
        raise MonitorInputError(str(error)) from None
    return Target(
        endpoint=chosen.name,
        capture_uri=capture_uri(outputs.bucket_name, chosen.name),
        tracking_uri=outputs.tracking_server_arn,
        thresholds=Thresholds(
            psi=cfg.monitoring.psi_threshold, p_value=cfg.monitoring.p_value, min_records=cfg.monitoring.min_records
        ),
        label=f"stack {stack}",
        model_name=chosen.model,
        model_version=str(chosen.model_version),
        bucket=outputs.bucket_name,
        stack=stack,
    )
