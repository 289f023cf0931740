"""The budget enforcer: a Lambda on the budget's SNS topic that scales the stack's endpoints down when spend crosses
the last threshold, records exactly what it changed, and can put it all back (`mlplat budget restore`).

Standard library and boto3 only: the file is the whole Lambda package. Its configuration comes from environment
variables set by `components.budget.BudgetAlerts`:

- `MLPLAT_ENVIRONMENT`: the stack's environment; `MLPLAT_ENFORCE`: `true` to act, anything else notifies only;
- `MLPLAT_LAST_THRESHOLD`: the percentage of the budget at which it acts (ACTUAL spend only: a forecast is not
  spend, and acting on it would stop dev on the first busy morning of the month);
- `MLPLAT_ENDPOINTS`: JSON list of `{"endpoint", "variant", "inferenceComponent", "minimum"}`, the stack's endpoints
  as planned (the role may touch exactly these, so the function never lists anything);
- `MLPLAT_RECORD_PARAMETER`: the SSM parameter the record lives in; `MLPLAT_TOPIC_ARN`: where it reports.

The record is written before anything changes and names each target's previous state; a second alert while a
record exists changes nothing, so the record always holds the state from before enforcement.
"""

import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3

SCALING_NAMESPACE = "sagemaker"
IC_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ENFORCED_TAG = "mlplat:budget-enforced"
MESSAGE_PREFIX = "mlplat budget enforcement"
RECORD_VERSION = 1

ClientFactory = Callable[[str], Any]
"""`service name -> boto3 client`; tests hand in clients bound to moto."""


class NothingRecorded(LookupError):
    """A restore found no record: nothing was enforced, or it was already restored."""


def _default_clients(service: str) -> Any:
    return boto3.client(service)


def parse_budget_alert(message: str) -> dict[str, Any] | None:
    """The fields of an AWS Budgets notification e-mail text, or None when `message` is not one.

    The text carries `Budget Name:`, `Budgeted Amount: $X`, `Alert Type: ACTUAL|FORECASTED` and
    `Alert Threshold: > $Y`; the threshold as a percentage is Y / X.
    """
    fields = dict(re.findall(r"^\s*([A-Za-z ]+):\s*(.+?)\s*$", message, flags=re.MULTILINE))
    try:
        budgeted = _money(fields["Budgeted Amount"])
        threshold = _money(fields["Alert Threshold"])
        kind = fields["Alert Type"].strip().upper()
        name = fields["Budget Name"].strip()
    except (KeyError, ValueError):
        return None
    if budgeted <= 0:
        return None
    return {"budget": name, "type": kind, "thresholdPercent": round(100 * threshold / budgeted, 2)}


def _money(text: str) -> float:
    match = re.search(r"([0-9][0-9,]*(?:\.[0-9]+)?)", text)
    if match is None:
        raise ValueError(text)
    return float(match.group(1).replace(",", ""))


class Settings:
    """The function's configuration, from its environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.environment = env["MLPLAT_ENVIRONMENT"]
        self.enforce = env.get("MLPLAT_ENFORCE", "false").lower() == "true"
        self.last_threshold = float(env["MLPLAT_LAST_THRESHOLD"])
        self.endpoints: list[dict[str, Any]] = json.loads(env.get("MLPLAT_ENDPOINTS", "[]"))
        self.record_parameter = env["MLPLAT_RECORD_PARAMETER"]
        self.topic_arn = env.get("MLPLAT_TOPIC_ARN", "")


def handler(event: Mapping[str, Any], context: Any = None, clients: ClientFactory | None = None) -> dict[str, Any]:
    """Lambda entry point: one SNS event with one or more budget notifications."""
    settings = Settings(os.environ)
    make = clients or _default_clients
    results = []
    for record in event.get("Records", []):
        message = str(record.get("Sns", {}).get("Message", ""))
        results.append(on_message(message, settings, make))
    return {"results": results}


def on_message(message: str, settings: Settings, clients: ClientFactory) -> dict[str, Any]:
    """Act on one notification: enforce, notify only, or ignore (anything that is not the last ACTUAL alert)."""
    alert = parse_budget_alert(message)
    if alert is None:
        # Includes the function's own reports, which arrive on the same topic.
        return {"action": "ignored", "reason": "not a budget notification"}
    if alert["type"] != "ACTUAL" or alert["thresholdPercent"] < settings.last_threshold:
        return {"action": "ignored", "reason": f"{alert['type']} alert at {alert['thresholdPercent']:g}%"}
    if not settings.enforce:
        _publish(
            clients,
            settings,
            f"{MESSAGE_PREFIX} ({settings.environment}): budget {alert['budget']} crossed "
            f"{alert['thresholdPercent']:g}%; this stack notifies only, nothing was changed.",
        )
        return {"action": "notified"}
    return enforce(settings, clients, alert)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_record(clients: ClientFactory, parameter: str) -> dict[str, Any] | None:
    """The enforcement record, or None when there is none."""
    ssm = clients("ssm")
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    record: dict[str, Any] = json.loads(value)
    return record


def _scaling_bounds(autoscaling: Any, resource_id: str, dimension: str) -> tuple[int, int] | None:
    found = autoscaling.describe_scalable_targets(
        ServiceNamespace=SCALING_NAMESPACE, ResourceIds=[resource_id], ScalableDimension=dimension
    )["ScalableTargets"]
    return (int(found[0]["MinCapacity"]), int(found[0]["MaxCapacity"])) if found else None


def _snapshot(clients: ClientFactory, endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """What one endpoint looks like now: the state a restore returns it to."""
    sagemaker, autoscaling = clients("sagemaker"), clients("application-autoscaling")
    minimum = int(endpoint.get("minimum", 0))
    ic = endpoint.get("inferenceComponent")
    if ic:
        described = sagemaker.describe_inference_component(InferenceComponentName=ic)
        runtime = described.get("RuntimeConfig", {})
        resource_id = f"inference-component/{ic}"
        return {
            "kind": "inference-component",
            "name": ic,
            "arn": described["InferenceComponentArn"],
            "copyCount": int(runtime.get("DesiredCopyCount", runtime.get("CurrentCopyCount", 0))),
            "resourceId": resource_id,
            "dimension": IC_DIMENSION,
            "scaling": _scaling_bounds(autoscaling, resource_id, IC_DIMENSION),
            "target": 0,
        }
    name, variant = endpoint["endpoint"], endpoint.get("variant", "primary")
    described = sagemaker.describe_endpoint(EndpointName=name)
    current = next(v for v in described["ProductionVariants"] if v["VariantName"] == variant)
    resource_id = f"endpoint/{name}/variant/{variant}"
    return {
        "kind": "variant",
        "name": name,
        "variant": variant,
        "arn": described["EndpointArn"],
        "instanceCount": int(current.get("DesiredInstanceCount", current.get("CurrentInstanceCount", 1))),
        "resourceId": resource_id,
        "dimension": VARIANT_DIMENSION,
        "scaling": _scaling_bounds(autoscaling, resource_id, VARIANT_DIMENSION),
        "target": max(minimum, 1),
    }


def _set_capacity(clients: ClientFactory, change: Mapping[str, Any], count: int) -> None:
    sagemaker = clients("sagemaker")
    if change["kind"] == "inference-component":
        sagemaker.update_inference_component_runtime_config(
            InferenceComponentName=change["name"], DesiredRuntimeConfig={"CopyCount": count}
        )
    else:
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=change["name"],
            DesiredWeightsAndCapacities=[{"VariantName": change["variant"], "DesiredInstanceCount": count}],
        )


def _set_bounds(clients: ClientFactory, change: Mapping[str, Any], low: int, high: int) -> None:
    clients("application-autoscaling").register_scalable_target(
        ServiceNamespace=SCALING_NAMESPACE,
        ResourceId=change["resourceId"],
        ScalableDimension=change["dimension"],
        MinCapacity=low,
        MaxCapacity=high,
    )


def enforce(settings: Settings, clients: ClientFactory, alert: Mapping[str, Any]) -> dict[str, Any]:
    """Scale every endpoint to its floor, pin its autoscaler there, tag it, record it, report it."""
    existing = read_record(clients, settings.record_parameter)
    if existing is not None:
        return {"action": "already-enforced", "at": existing["at"]}
    changes = [_snapshot(clients, endpoint) for endpoint in settings.endpoints]
    at = _now()
    record = {
        "version": RECORD_VERSION,
        "environment": settings.environment,
        "at": at,
        "budget": alert["budget"],
        "thresholdPercent": alert["thresholdPercent"],
        "changes": changes,
    }
    # Recorded first: if enforcement stops half-way, a restore still knows every previous state.
    clients("ssm").put_parameter(
        Name=settings.record_parameter, Value=json.dumps(record), Type="String", Overwrite=False
    )
    sagemaker = clients("sagemaker")
    for change in changes:
        floor = int(change["target"])
        # Pinned first, so neither target tracking nor the wake alarm undoes the change.
        if change["scaling"] is not None:
            _set_bounds(clients, change, floor, floor)
        _set_capacity(clients, change, floor)
        sagemaker.add_tags(ResourceArn=change["arn"], Tags=[{"Key": ENFORCED_TAG, "Value": at}])
    _publish(clients, settings, describe(record, "scaled down"))
    return {"action": "enforced", "record": record}


def restore(clients: ClientFactory, parameter: str, topic_arn: str = "") -> dict[str, Any]:
    """Undo exactly what the record says was changed, then delete the record; NothingRecorded when there is none."""
    record = read_record(clients, parameter)
    if record is None:
        raise NothingRecorded(parameter)
    sagemaker = clients("sagemaker")
    for change in record["changes"]:
        if change["scaling"] is not None:
            low, high = change["scaling"]
            _set_bounds(clients, change, int(low), int(high))
        previous = change["copyCount"] if change["kind"] == "inference-component" else change["instanceCount"]
        _set_capacity(clients, change, int(previous))
        sagemaker.delete_tags(ResourceArn=change["arn"], TagKeys=[ENFORCED_TAG])
    clients("ssm").delete_parameter(Name=parameter)
    if topic_arn:
        clients("sns").publish(TopicArn=topic_arn, Message=describe(record, "restored"))
    return record


def describe(record: Mapping[str, Any], verb: str) -> str:
    """One line per change, as posted to the topic and printed by `mlplat budget restore`."""
    lines = [
        f"{MESSAGE_PREFIX} ({record['environment']}): {verb} after budget {record['budget']} crossed "
        f"{record['thresholdPercent']:g}% at {record['at']}"
    ]
    for change in record["changes"]:
        if change["kind"] == "inference-component":
            before, unit = change["copyCount"], "copies"
        else:
            before, unit = change["instanceCount"], "instances"
        floor = change["target"]
        (a, b) = (before, floor) if verb == "scaled down" else (floor, before)
        lines.append(f"- {change['kind']} {change['name']}: {a} -> {b} {unit}")
    return "\n".join(lines)


def _publish(clients: ClientFactory, settings: Settings, message: str) -> None:
    if settings.topic_arn:
        clients("sns").publish(TopicArn=settings.topic_arn, Message=message, Subject=MESSAGE_PREFIX[:99])
