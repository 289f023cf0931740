"""The budget enforcer: a Lambda on the budget's SNS topic that scales the stack's endpoints down when spend crosses
the last threshold, records exactly what it changed, and can put it all back (`mlplat budget restore`).

Standard library and boto3 only: the file is the whole Lambda package. Its configuration comes from environment
variables set by `components.budget.BudgetAlerts`:

- `MLPLAT_ENVIRONMENT`: the stack's environment; `MLPLAT_ENFORCE`: `true` to act, anything else notifies only;
- `MLPLAT_LAST_THRESHOLD`: the percentage of the budget at which it acts (ACTUAL spend only: a forecast is not
  spend, and acting on it would stop dev on the first busy morning of the month);
- `MLPLAT_ENDPOINTS`: JSON list of `{"endpoint", "variant", "inferenceComponent", "minimum"}`, the stack's endpoints
  as planned (the role may touch exactly these, so the function never lists anything);
- `MLPLAT_RECORD_PARAMETER`: the SSM parameter the record lives in; `MLPLAT_TOPIC_ARN`: where it reports;
- `MLPLAT_NODEPOOLS`: JSON list of the cluster's GPU NodePool names, whose `spec.limits` go to zero so Karpenter
  launches no new GPU node; `MLPLAT_CLUSTER_NAME`, `MLPLAT_CLUSTER_ENDPOINT` and `MLPLAT_CLUSTER_CA` (base64 PEM, as
  EKS gives it) say where the Kubernetes API is. The function authenticates the way `aws eks get-token` does
  (a presigned STS GetCallerIdentity URL), as its own role, which the cluster maps to a group that may only get and
  patch those NodePools.

The record is written before anything changes and names each target's previous state; a second alert while a
record exists changes nothing, so the record always holds the state from before enforcement.
"""

import base64
import json
import os
import re
import ssl
import urllib.error
import urllib.request
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
NODEPOOLS_PATH = "/apis/karpenter.sh/v1/nodepools"
GPU_RESOURCE = "nvidia.com/gpu"
# Kubernetes annotation keys admit no colon: the tag's name under the platform's label domain.
ENFORCED_ANNOTATION = "mlplat.io/budget-enforced"
TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 (the token format's version tag, not a secret)
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_URL_SECONDS = 60
MERGE_PATCH = "application/merge-patch+json"

ClientFactory = Callable[[str], Any]
"""`service name -> boto3 client`; tests hand in clients bound to moto."""


class NothingRecorded(LookupError):
    """A restore found no record: nothing was enforced, or it was already restored."""


class KubeError(RuntimeError):
    """The Kubernetes API refused a request or could not be reached."""


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
        self.node_pools: list[str] = json.loads(env.get("MLPLAT_NODEPOOLS", "[]"))
        self.cluster = env.get("MLPLAT_CLUSTER_NAME", "")
        self.cluster_endpoint = env.get("MLPLAT_CLUSTER_ENDPOINT", "")
        self.cluster_ca = env.get("MLPLAT_CLUSTER_CA", "")


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


def eks_token(sts: Any, cluster: str) -> str:
    """A bearer token for the EKS cluster `cluster`, as `aws eks get-token` makes it.

    The token is a presigned STS GetCallerIdentity URL whose signature covers the `x-k8s-aws-id: <cluster>` header,
    base64url-encoded without padding behind `k8s-aws-v1.`; EKS calls the URL to learn who the caller is, and the
    signed header stops the token from being replayed against another cluster. Signing is local: no request is made.
    """

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster

    event = "before-sign.sts.GetCallerIdentity"
    sts.meta.events.register(event, add_cluster_header, unique_id=f"mlplat-eks-token-{cluster}")
    try:
        url: str = sts.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=TOKEN_URL_SECONDS, HttpMethod="GET"
        )
    finally:
        sts.meta.events.unregister(event, unique_id=f"mlplat-eks-token-{cluster}")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class KubeApi:
    """The few Kubernetes API calls the enforcer makes: get and merge-patch a Karpenter NodePool."""

    def __init__(self, endpoint: str, token: Callable[[], str], ca_data: str = "", timeout: float = 10.0) -> None:
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"the cluster endpoint must be an http(s) URL (got {endpoint!r})")
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self._timeout = timeout
        self.ca_data = ca_data

    def get_node_pool(self, name: str) -> dict[str, Any]:
        """The NodePool `name` as the API server holds it."""
        return self._call("GET", f"{NODEPOOLS_PATH}/{name}", None)

    def patch_node_pool(self, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386: null deletes a key) to the NodePool `name`."""
        return self._call("PATCH", f"{NODEPOOLS_PATH}/{name}", patch)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = MERGE_PATCH
            data = json.dumps(body).encode()
        # The scheme was checked in __init__: http(s) only.
        request = urllib.request.Request(self.endpoint + path, data=data, method=method, headers=headers)  # noqa: S310
        # Trust the cluster's own CA only, never the system store.
        tls = ssl.create_default_context(cadata=base64.b64decode(self.ca_data).decode()) if self.ca_data else None
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=tls) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise KubeError(f"{method} {path}: HTTP {exc.code} {exc.read().decode(errors='replace')[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise KubeError(f"{method} {path}: {exc}") from None
        return answer


KubeFactory = Callable[[str], KubeApi]
"""`cluster name -> KubeApi`; tests hand in one bound to a loopback fake API server."""


def cluster_api(clients: ClientFactory, cluster: str, endpoint: str = "", ca_data: str = "") -> KubeApi:
    """The cluster's API as the caller's AWS identity; endpoint and CA from EKS DescribeCluster unless given."""
    if not endpoint:
        described = clients("eks").describe_cluster(name=cluster)["cluster"]
        endpoint, ca_data = described["endpoint"], described["certificateAuthority"]["data"]
    sts = clients("sts")
    return KubeApi(endpoint, lambda: eks_token(sts, cluster), ca_data)


def zero_limits_patch(limits: Mapping[str, str] | None, at: str) -> dict[str, Any]:
    """The merge patch that stops a NodePool launching nodes: every recorded limit, and the GPU limit, at zero."""
    zeroed = {key: "0" for key in (limits or {})}
    zeroed[GPU_RESOURCE] = "0"
    return {"metadata": {"annotations": {ENFORCED_ANNOTATION: at}}, "spec": {"limits": zeroed}}


def restore_limits_patch(limits: Mapping[str, str] | None) -> dict[str, Any]:
    """The merge patch that puts back exactly the recorded limits: keys enforcement added are deleted (null)."""
    restored: dict[str, Any] | None = None
    if limits is not None:
        restored = {key: None for key in zero_limits_patch(limits, "")["spec"]["limits"]}
        restored.update(limits)
    return {"metadata": {"annotations": {ENFORCED_ANNOTATION: None}}, "spec": {"limits": restored}}


def _pool_snapshot(kube: KubeApi, cluster: str, name: str) -> dict[str, Any]:
    limits = kube.get_node_pool(name).get("spec", {}).get("limits")
    return {"kind": "nodepool", "name": name, "cluster": cluster, "limits": limits, "target": "0"}


def enforce(settings: Settings, clients: ClientFactory, alert: Mapping[str, Any]) -> dict[str, Any]:
    """Record every target, then scale each endpoint to its floor (its autoscaler pinned there, tagged) and zero each
    GPU NodePool's limits (annotated); report what was done and what failed."""
    existing = read_record(clients, settings.record_parameter)
    if existing is not None:
        return {"action": "already-enforced", "at": existing["at"]}
    changes = [_snapshot(clients, endpoint) for endpoint in settings.endpoints]
    kube = None
    if settings.node_pools:
        kube = cluster_api(clients, settings.cluster, settings.cluster_endpoint, settings.cluster_ca)
        changes += [_pool_snapshot(kube, settings.cluster, pool) for pool in settings.node_pools]
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
    failed: list[str] = []
    for change in changes:
        # One target that cannot be changed must not spare the others: a retried alert finds the record and stops.
        try:
            _scale_down(clients, kube, change, at)
        except Exception as exc:  # botocore's ClientError, KubeError: reported, and a restore still covers it
            failed.append(f"- FAILED {change['kind']} {change['name']}: {exc}")
    _publish(clients, settings, "\n".join([describe(record, "scaled down"), *failed]))
    return {"action": "enforced", "record": record, "failed": failed}


def _scale_down(clients: ClientFactory, kube: KubeApi | None, change: Mapping[str, Any], at: str) -> None:
    if change["kind"] == "nodepool":
        assert kube is not None
        kube.patch_node_pool(change["name"], zero_limits_patch(change["limits"], at))
        return
    floor = int(change["target"])
    # Pinned first, so neither target tracking nor the wake alarm undoes the change.
    if change["scaling"] is not None:
        _set_bounds(clients, change, floor, floor)
    _set_capacity(clients, change, floor)
    clients("sagemaker").add_tags(ResourceArn=change["arn"], Tags=[{"Key": ENFORCED_TAG, "Value": at}])


def restore(
    clients: ClientFactory, parameter: str, topic_arn: str = "", kube: KubeFactory | None = None
) -> dict[str, Any]:
    """Undo exactly what the record says was changed, then delete the record; NothingRecorded when there is none.

    NodePools are reached through `kube` (default: the cluster named in the record, found with DescribeCluster, as
    the caller's AWS identity).
    """
    record = read_record(clients, parameter)
    if record is None:
        raise NothingRecorded(parameter)
    sagemaker = clients("sagemaker")
    apis: dict[str, KubeApi] = {}
    for change in record["changes"]:
        if change["kind"] == "nodepool":
            cluster = change["cluster"]
            if cluster not in apis:
                apis[cluster] = kube(cluster) if kube is not None else cluster_api(clients, cluster)
            apis[cluster].patch_node_pool(change["name"], restore_limits_patch(change["limits"]))
            continue
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
        if change["kind"] == "nodepool":
            limits = dict(change["limits"] or {GPU_RESOURCE: "unlimited"})
            for key in zero_limits_patch(change["limits"], "")["spec"]["limits"]:
                before = limits.get(key, "unlimited")
                (a, b) = (before, "0") if verb == "scaled down" else ("0", before)
                lines.append(f"- nodepool {change['name']}: {key} limit {a} -> {b}")
            continue
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
