"""A deployed stack's outputs, the contract between `pulumi up` and the cloud commands (`train`, `release`).

They come from the Pulumi Automation API (`pulumi stack output --json` of the stack) or, offline and in tests, from a
JSON file of the same shape passed with `--outputs`. Either way they are validated into `StackOutputs`, and a stack
that lacks a key is reported with every missing key named, before anything is created in the cloud.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from components.config import STACKS_DIR
from components.outputs import StackOutputs

PROJECT_DIR = STACKS_DIR.parent


class CloudError(RuntimeError):
    """A cloud command cannot go on; the message is the one line the user reads."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


class OutputsError(CloudError):
    """The stack's outputs cannot be read or do not hold what the command needs."""

    exit_status = 2  # in the command line's error path (mlplat.clikit)


class ExtraMissing(CloudError):
    """An optional dependency the command needs is not installed."""

    exit_status = 2  # in the command line's error path (mlplat.clikit)


def check_tracking_uri(uri: str) -> str:
    """The tracking URI; CloudError when it is a SageMaker MLflow ARN and the plugin that signs requests is missing."""
    import importlib.util

    if uri.startswith("arn:") and importlib.util.find_spec("sagemaker_mlflow") is None:
        raise ExtraMissing(
            f"the tracking server {uri} is a SageMaker MLflow ARN: pip install 'mlplat[sagemaker]' "
            "(the sagemaker-mlflow plugin signs its requests) or pass --tracking-uri URL"
        )
    return uri


def parse_outputs(raw: Mapping[str, Any], stack: str, source: str) -> StackOutputs:
    """Validate raw outputs (`{"bucketName": ..., ...}`) of `stack`; raise OutputsError naming every bad key."""
    missing = [key for key in StackOutputs.required_outputs() if raw.get(key) in (None, "", [])]
    if missing:
        raise OutputsError(f"stack {stack!r} outputs ({source}) are missing {', '.join(missing)}")
    try:
        outputs = StackOutputs.model_validate(dict(raw))
    except ValidationError as exc:
        bad = ", ".join(f"{'.'.join(str(p) for p in e['loc'])} ({e['msg']})" for e in exc.errors())
        raise OutputsError(f"stack {stack!r} outputs ({source}) have bad values: {bad}") from None
    if outputs.environment != stack:
        raise OutputsError(
            f"{source} holds the outputs of stack {outputs.environment!r}, not {stack!r}; pass the outputs of {stack!r}"
        )
    return outputs


def _from_file(path: Path, stack: str) -> StackOutputs:
    if not path.is_file():
        raise OutputsError(f"no outputs for stack {stack!r}: {path} does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise OutputsError(
            f"no outputs for stack {stack!r}: {path} is not JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(raw, dict):
        raise OutputsError(f"no outputs for stack {stack!r}: {path} must hold a JSON object of output names to values")
    return parse_outputs(raw, stack, str(path))


def _from_pulumi(stack: str, work_dir: Path) -> StackOutputs:
    # Imported here: the Automation API is only needed when no outputs file is given.
    from pulumi import automation

    hint = "pass --outputs FILE or install the Pulumi CLI"
    try:
        values = automation.select_stack(stack_name=stack, work_dir=str(work_dir)).outputs()
    except FileNotFoundError:  # the Automation API runs the `pulumi` binary; this is what its absence raises
        raise OutputsError(f"no outputs for stack {stack!r}: {hint}") from None
    except automation.StackNotFoundError:
        raise OutputsError(
            f"no outputs for stack {stack!r}: the stack does not exist (run `pulumi up` first)"
        ) from None
    except automation.CommandError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else "pulumi failed"
        raise OutputsError(f"no outputs for stack {stack!r}: {hint} ({reason})") from None
    if not values:
        raise OutputsError(f"no outputs for stack {stack!r}: the stack has no outputs (run `pulumi up` first)")
    return parse_outputs({key: out.value for key, out in values.items()}, stack, f"pulumi stack {stack!r}")


def load_outputs(stack: str, outputs_file: Path | None = None, work_dir: Path = PROJECT_DIR) -> StackOutputs:
    """The outputs of `stack`: from `outputs_file` when given, else from the Pulumi stack through the Automation API."""
    if outputs_file is not None:
        return _from_file(outputs_file, stack)
    return _from_pulumi(stack, work_dir)
