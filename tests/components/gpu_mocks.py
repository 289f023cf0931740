"""Pulumi mocks for the GPU compute tests: record every registered resource (URN, parent, inputs, options) and
answer with the outputs EKS, IAM, KMS and node groups would, so components that read them can be exercised.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

ACCOUNT = "123456789012"
REGION = "us-east-1"
OIDC_ID = "EXAMPLED539D4633E53DE1B71EXAMPLE"
OIDC_ISSUER = f"https://oidc.eks.{REGION}.amazonaws.com/id/{OIDC_ID}"
OIDC_HOST = OIDC_ISSUER.removeprefix("https://")
CLUSTER_ENDPOINT = "https://EXAMPLE0123.gr7.us-east-1.eks.amazonaws.com"


INVOKES: dict[str, dict[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {"accountId": ACCOUNT, "id": ACCOUNT},
    "aws:index/getPartition:getPartition": {"partition": "aws", "id": "aws", "dnsSuffix": "amazonaws.com"},
}


@dataclass(frozen=True)
class Recorded:
    """One registered resource as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    provider: str
    ignore_changes: list[str]
    dependencies: list[str]

    def policy(self, key: str = "policy") -> dict[str, Any]:
        """A JSON-document input parsed."""
        return json.loads(self.inputs[key])


def _outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    physical = inputs.get("name") or name
    state = dict(inputs)
    if typ == "aws:eks/cluster:Cluster":
        state |= {
            "name": physical,
            "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{physical}",
            "endpoint": CLUSTER_ENDPOINT,
            "certificateAuthority": {"data": "Q0VSVElGSUNBVEU="},
            "identities": [{"oidcs": [{"issuer": OIDC_ISSUER}]}],
        }
    elif typ == "aws:iam/role:Role":
        state |= {"name": physical, "arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}"}
    elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{str(inputs.get('url', '')).removeprefix('https://')}"
    elif typ == "aws:kms/key:Key":
        state["arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"
    elif typ == "aws:eks/nodeGroup:NodeGroup":
        state |= {
            "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/{inputs.get('clusterName')}/{name}/0",
            "resources": [{"autoscalingGroups": [{"name": f"eks-{name}-asg"}]}],
        }
    elif typ == "aws:sqs/queue:Queue":
        state |= {
            "name": physical,
            "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}",
            "url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}",
        }
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        state["latestVersion"] = 1
    elif typ.startswith("aws:"):
        state.setdefault("arn", f"arn:aws:mock:{REGION}:{ACCOUNT}:{name}")
    return state


class GpuMocks(pulumi.runtime.Mocks):
    """Outputs by type; every other call answers empty."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", _outputs(args.typ, args.name, args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return INVOKES.get(args.token, {}), []


class RecordingMonitor(MockMonitor):
    """The mock monitor, keeping what each registration asked for."""

    def __init__(self, mocks: GpuMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            # Registrations run on executor threads, so the inputs are read from this request, not shared state.
            inputs = rpc.deserialize_properties(request.object)
            self.recorded.append(
                Recorded(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=dict(inputs),
                    provider=request.provider,
                    ignore_changes=list(request.ignoreChanges),
                    dependencies=list(request.dependencies),
                )
            )
        return response


@dataclass
class Synthesis:
    """Everything one build registered, and the values its outputs resolved to."""

    resources: list[Recorded]
    values: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Recorded]:
        return iter(self.resources)

    def of_type(self, typ: str) -> list[Recorded]:
        """All resources of one type token."""
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Recorded:
        """The one resource with this logical name."""
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
        return matches[0]

    def types(self) -> list[str]:
        """Type tokens in registration order."""
        return [r.type for r in self.resources]


def synthesize(build: Callable[[], dict[str, Any] | None]) -> Synthesis:
    """Run `build` under fresh mocks; the Outputs in the dict it returns are resolved into `values`."""
    mocks = GpuMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="mlplat", stack="test", preview=False, monitor=monitor)
    values: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        outputs = build() or {}
        keys = list(outputs)
        resolved = pulumi.Output.all(*(outputs[k] for k in keys))
        return resolved.apply(lambda vs: values.update(zip(keys, vs, strict=True)))

    run()
    return Synthesis(resources=list(monitor.recorded), values=values)
