"""Inference components for tests: moto has none, so these calls go to a small store instead.

Every request the store answers is first validated against botocore's own service model (the shapes the real API
takes), and every answer against the operation's output shape, so the fake cannot drift from the real call.
"""

from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

IC_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
_session = botocore.session.get_session()


def _check(service: str, operation: str, params: dict[str, Any], output: dict[str, Any] | None = None) -> None:
    model = _session.get_service_model(service).operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    if output is not None:
        report = ParamValidator().validate(output, model.output_shape)
        assert not report.has_errors(), report.generate_report()


class InferenceComponents:
    """Inference components and their scaling targets, by name."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self.copies: dict[str, int] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.targets: dict[str, tuple[int, int]] = {}
        self.calls: list[str] = []

    def add(self, name: str, copies: int, scaling: tuple[int, int]) -> None:
        self.copies[name] = copies
        self.tags[name] = {}
        self.targets[f"inference-component/{name}"] = scaling

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:inference-component/{name}"

    def name_of(self, arn: str) -> str | None:
        prefix = self.arn("")
        return arn[len(prefix) :] if arn.startswith(prefix) and arn[len(prefix) :] in self.copies else None

    def describe_inference_component(self, **params: Any) -> dict[str, Any]:
        name = params["InferenceComponentName"]
        now = datetime.now(UTC)
        output = {
            "InferenceComponentName": name,
            "InferenceComponentArn": self.arn(name),
            "EndpointName": name.rsplit("-", 1)[0],
            "EndpointArn": f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{name.rsplit('-', 1)[0]}",
            "CreationTime": now,
            "LastModifiedTime": now,
            "InferenceComponentStatus": "InService",
            "RuntimeConfig": {"DesiredCopyCount": self.copies[name], "CurrentCopyCount": self.copies[name]},
        }
        _check("sagemaker", "DescribeInferenceComponent", params, output)
        self.calls.append("DescribeInferenceComponent")
        return output

    def update_inference_component_runtime_config(self, **params: Any) -> dict[str, Any]:
        name = params["InferenceComponentName"]
        output = {"InferenceComponentArn": self.arn(name)}
        _check("sagemaker", "UpdateInferenceComponentRuntimeConfig", params, output)
        self.copies[name] = params["DesiredRuntimeConfig"]["CopyCount"]
        self.calls.append("UpdateInferenceComponentRuntimeConfig")
        return output

    def describe_scalable_targets(self, **params: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        found = [
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": rid,
                "ScalableDimension": IC_DIMENSION,
                "MinCapacity": low,
                "MaxCapacity": high,
                "RoleARN": f"arn:aws:iam::{self.account}:role/aws-service-role/autoscaling",
                "CreationTime": now,
            }
            for rid, (low, high) in self.targets.items()
            if rid in params.get("ResourceIds", [rid])
        ]
        output = {"ScalableTargets": found}
        _check("application-autoscaling", "DescribeScalableTargets", params, output)
        return output

    def register_scalable_target(self, **params: Any) -> dict[str, Any]:
        _check("application-autoscaling", "RegisterScalableTarget", params)
        self.targets[params["ResourceId"]] = (params["MinCapacity"], params["MaxCapacity"])
        return {}


class SageMaker:
    """moto's SageMaker client, with inference-component calls (and their tags) answered by the store."""

    def __init__(self, moto_client: Any, store: InferenceComponents) -> None:
        self._moto, self._store = moto_client, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)

    def describe_inference_component(self, **params: Any) -> dict[str, Any]:
        return self._store.describe_inference_component(**params)

    def update_inference_component_runtime_config(self, **params: Any) -> dict[str, Any]:
        return self._store.update_inference_component_runtime_config(**params)

    def add_tags(self, **params: Any) -> dict[str, Any]:
        name = self._store.name_of(params["ResourceArn"])
        if name is None:
            return dict(self._moto.add_tags(**params))
        _check("sagemaker", "AddTags", params)
        self._store.tags[name].update({t["Key"]: t["Value"] for t in params["Tags"]})
        return {"Tags": params["Tags"]}

    def delete_tags(self, **params: Any) -> dict[str, Any]:
        name = self._store.name_of(params["ResourceArn"])
        if name is None:
            return dict(self._moto.delete_tags(**params))
        _check("sagemaker", "DeleteTags", params)
        for key in params["TagKeys"]:
            self._store.tags[name].pop(key, None)
        return {}


class AutoScaling:
    """moto's Application Auto Scaling client; inference-component targets (which moto rejects) go to the store."""

    def __init__(self, moto_client: Any, store: InferenceComponents) -> None:
        self._moto, self._store = moto_client, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)

    def describe_scalable_targets(self, **params: Any) -> dict[str, Any]:
        if params.get("ScalableDimension") == IC_DIMENSION:
            return self._store.describe_scalable_targets(**params)
        return dict(self._moto.describe_scalable_targets(**params))

    def register_scalable_target(self, **params: Any) -> dict[str, Any]:
        if params.get("ScalableDimension") == IC_DIMENSION:
            return self._store.register_scalable_target(**params)
        return dict(self._moto.register_scalable_target(**params))
