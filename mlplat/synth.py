"""Synthesis: run the real Pulumi program of a stack under Pulumi's mocks and record every resource it registers.

No Pulumi CLI, no credentials, no network beyond loopback. The stack file is validated first (a ConfigError
means nothing runs and nothing is recorded); then `__main__.py` runs with the stack's config, invokes are
answered offline (`_INVOKES`), every registration gets realistic IDs, ARNs and URLs (`_mock_state`), and
resource transforms run the way the engine runs them (the resource's own, then each parent's, then the stack's),
so the recorded inputs are what `pulumi up` would send to the provider.

Each synthesis runs on its own thread with its own event loop and a fresh `contextvars` context, which is where
the Pulumi runtime keeps its global state; so `synthesize` can be called for several stacks in one process.

The record (`PlanRecord.to_json()`, schema in `mlplat/plan.schema.json`), schemaVersion 1:

    {
      "schemaVersion": 1,
      "project": "mlplat",
      "stack": "prod",
      "stackFile": "stacks/Pulumi.prod.yaml",
      "config": {...},                # the validated StackConfig, camelCase keys, defaults filled in
      "resources": [                  # parents before children, siblings by name; components and custom alike
        {
          "urn": "urn:pulumi:prod::mlplat::...$mlplat:artifacts:ArtifactStore$aws:s3/bucket:Bucket::<name>",
          "type": "aws:s3/bucket:Bucket",
          "name": "<logical name>",
          "parent": "<parent URN>",   # the stack's URN for top-level resources
          "custom": true,             # false for component resources
          "inputs": {...},            # the engine's camelCase keys, Outputs resolved, after transforms
          "options": {...}            # optional; only the options that are set: dependsOn (every URN this
                                      # resource waits for), propertyDependencies {input: [URN]}, customTimeouts
                                      # {create, update, delete}, protect, retainOnDelete, deleteBeforeReplace,
                                      # ignoreChanges, replaceOnChanges, provider
        }
      ],
      "outputs": {...},               # the stack's exports, resolved
      "counts": {"<type>": n}         # resources per type, sorted by type
    }
"""

import asyncio
import contextlib
import hashlib
import json
import runpy
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import stack as runtime_stack
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from components import config as stack_config

SCHEMA_VERSION = 1
PROJECT = "mlplat"
REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = REPO_ROOT / "__main__.py"
SCHEMA_FILE = Path(__file__).with_name("plan.schema.json")

# The account the mocks pretend to deploy into (the documentation example account).
ACCOUNT_ID = "123456789012"
PARTITION = "aws"


class SynthesisError(RuntimeError):
    """The program failed under the mocks for a reason other than its config."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


@dataclass(frozen=True)
class ResourceRecord:
    """One registered resource, as the engine saw it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record's JSON form (see the module docstring)."""
        data = {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "inputs": self.inputs,
        }
        if self.options:
            data["options"] = self.options
        return data


@dataclass(frozen=True)
class PlanRecord:
    """Everything one stack's program registered and exported."""

    stack: str
    stack_file: str
    config: dict[str, Any]
    resources: list[ResourceRecord]
    outputs: dict[str, Any]
    stack_urn: str = ""
    project: str = PROJECT
    _by_urn: dict[str, ResourceRecord] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_urn.update({r.urn: r for r in self.resources})

    @property
    def counts(self) -> dict[str, int]:
        """Resources per type, sorted by type."""
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        """Every resource of one type, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def get(self, type_token: str, name: str) -> ResourceRecord:
        """The one resource of this type and logical name; KeyError if there is none."""
        for resource in self.resources:
            if resource.type == type_token and resource.name == name:
                return resource
        raise KeyError(f"{type_token}::{name}")

    def by_urn(self, urn: str) -> ResourceRecord | None:
        """The resource with this URN, or None (the stack itself is not recorded)."""
        return self._by_urn.get(urn)

    def children(self, urn: str) -> list[ResourceRecord]:
        """Direct children of the resource with this URN (the stack's URN gives the top level)."""
        return [r for r in self.resources if r.parent == urn]

    def descendants(self, urn: str) -> list[ResourceRecord]:
        """Every resource beneath the resource with this URN."""
        found: list[ResourceRecord] = []
        for child in self.children(urn):
            found.append(child)
            found.extend(self.descendants(child.urn))
        return found

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (see the module docstring and `mlplat/plan.schema.json`)."""
        return {
            "schemaVersion": SCHEMA_VERSION,
            "project": self.project,
            "stack": self.stack,
            "stackFile": self.stack_file,
            "config": self.config,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
            "counts": self.counts,
        }


def synthesize(stack_file: Path, stack: str) -> PlanRecord:
    """Validate `stack_file`, then run the program as stack `stack` under mocks and return what it registered.

    Raises `components.config.ConfigError` (nothing ran) or `SynthesisError` (the program failed).
    """
    cfg = stack_config.load_stack_file(stack_file)
    record = _in_fresh_thread(stack, _engine_config(stack_file), cfg.region, lambda: _execute(PROGRAM))
    return PlanRecord(
        stack=stack,
        stack_file=stack_config.display_path(stack_file),
        config=cfg.model_dump(mode="json", by_alias=True),
        resources=record.resources,
        outputs=record.outputs,
        stack_urn=record.stack_urn,
    )


def run(
    program: Callable[[], None],
    *,
    stack: str = "test",
    region: str = "us-east-1",
    config: Mapping[str, str] | None = None,
) -> PlanRecord:
    """Run any Pulumi program function under the same mocks (a component on its own, in a test).

    `config` is the engine's config (`{"mlplat:environment": "dev"}`); the program's exports are the outputs.
    """
    return _in_fresh_thread(stack, dict(config or {}), region, program)


def _in_fresh_thread(stack: str, engine_config: dict[str, str], region: str, program: Callable[[], None]) -> PlanRecord:
    """Run `program` on a new thread: a fresh contextvars context, so a fresh Pulumi runtime, every time."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["record"] = _run_program(stack, engine_config, region, program)
        except BaseException as exc:  # handed to the calling thread
            result["error"] = exc

    thread = threading.Thread(target=target, name=f"mlplat-synth-{stack}")
    thread.start()
    thread.join()
    if "error" in result:
        error = result["error"]
        if isinstance(error, stack_config.ConfigError | SynthesisError):
            raise error
        raise SynthesisError(f"{stack}: the program failed under mocks: {_first_line(error)}") from error
    record: PlanRecord = result["record"]
    return PlanRecord(
        stack=stack,
        stack_file="",
        config={},
        resources=_tree_order(record.resources, record.stack_urn),
        outputs=record.outputs,
        stack_urn=record.stack_urn,
    )


def synthesize_stack(stack: str) -> PlanRecord:
    """Synthesize a shipped stack by name (`stacks/Pulumi.<stack>.yaml`)."""
    return synthesize(stack_config.stack_file(stack), stack)


def _tree_order(resources: list[ResourceRecord], root: str) -> list[ResourceRecord]:
    """Parents before children, siblings by name: registration order varies from run to run, this does not."""
    children: dict[str, list[ResourceRecord]] = {}
    for resource in resources:
        children.setdefault(resource.parent, []).append(resource)
    ordered: list[ResourceRecord] = []

    def visit(urn: str) -> None:
        for child in sorted(children.get(urn, []), key=lambda r: (r.name, r.type)):
            ordered.append(child)
            visit(child.urn)

    visit(root)
    # Anything parented outside the tree (there should be nothing) still appears, at the end.
    seen = {r.urn for r in ordered}
    return ordered + [r for r in resources if r.urn not in seen]


def _engine_config(stack_file: Path) -> dict[str, str]:
    """The stack file's config as the engine hands it to a program: strings, objects as JSON."""
    document = yaml.safe_load(stack_file.read_text()) or {}
    values = document.get("config") or {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def _run_program(stack: str, engine_config: dict[str, str], region: str, program: Callable[[], None]) -> PlanRecord:
    """Run a program once, on this (fresh) thread; the runtime's state lives in this thread's context."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # One worker: the mock monitor's calls are quick, and CPython 3.11 can fail with "AST constructor recursion
    # depth mismatch" when several threads compile at once (pulumi resolves type hints with eval on these threads).
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mlplat-synth-{stack}"))
    try:
        # A fresh thread starts from an empty context, where these two have no value yet.
        settings.SETTINGS.outputs = set()
        settings.SETTINGS.lock = threading.Lock()
        pulumi.runtime.set_all_config(engine_config)
        monitor = _RecordingMonitor(_Mocks(region=region))
        mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        loop.run_until_complete(runtime_stack.run_pulumi_func(program))
        root = settings.get_root_resource()
        exports = getattr(root, "outputs", {}) or {}
        outputs = loop.run_until_complete(pulumi.Output.from_input(dict(exports)).future()) or {}
        stack_urn = f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"
        return PlanRecord(
            stack=stack,
            stack_file="",
            config={},
            resources=monitor.records,
            outputs=_plain(outputs),
            stack_urn=stack_urn,
        )
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(None)


def _execute(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


class _RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, plus what the engine would do that the mocks leave out: run transforms, record inputs."""

    mocks: "_Mocks"

    def __init__(self, mock: "_Mocks") -> None:
        super().__init__(mock)
        self.records: list[ResourceRecord] = []
        self._lock = threading.Lock()
        self._transforms: dict[str, list[pulumi.ResourceTransform]] = {}
        self._parents: dict[str, str] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the parent's full qualified type chain, the stack left out."""
        if parent:
            qualified_parent = parent.split("::")[2]
            if qualified_parent != "pulumi:pulumi:Stack":
                type_ = f"{qualified_parent}${type_}"
        return f"urn:pulumi:{settings.get_stack()}::{settings.get_project()}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = rpc.deserialize_properties(request.object)
        # Resolving callbacks to functions is what the mock monitor itself does; it is not public API.
        own = mocks._resolve_callbacks(request.transforms)
        with self._lock:
            self._transforms[urn] = own
            self._parents[urn] = request.parent
            chain = list(own)
            parent = request.parent
            while parent in self._transforms:
                chain.extend(self._transforms[parent])
                parent = self._parents[parent]
        chain.extend(self._stack_transforms)
        for transform in chain:
            result = transform(
                pulumi.ResourceTransformArgs(
                    custom=bool(request.custom),
                    type_=request.type,
                    name=request.name,
                    props=inputs,
                    opts=pulumi.ResourceOptions(),
                )
            )
            if result is not None:
                inputs = dict(result.props)
        plain_inputs = _plain(inputs)
        with self._lock:
            self.records.append(
                ResourceRecord(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    inputs=plain_inputs,
                    options=_options(request),
                )
            )
        resource_id, state = self.mocks.state(request.type, request.name, urn, plain_inputs, bool(request.custom))
        wire_state = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=wire_state)


def _options(request: Any) -> dict[str, Any]:
    """The resource options the engine would act on, only those that are set."""
    options: dict[str, Any] = {}
    if request.dependencies:
        options["dependsOn"] = sorted(set(request.dependencies))
    property_dependencies = {
        key: sorted(set(deps.urns)) for key, deps in request.propertyDependencies.items() if deps.urns
    }
    if property_dependencies:
        options["propertyDependencies"] = dict(sorted(property_dependencies.items()))
    timeouts = {k: getattr(request.customTimeouts, k) for k in ("create", "update", "delete")}
    if any(timeouts.values()):
        options["customTimeouts"] = {k: v for k, v in timeouts.items() if v}
    if request.protect:
        options["protect"] = True
    if request.retainOnDelete:
        options["retainOnDelete"] = True
    if request.deleteBeforeReplace:
        options["deleteBeforeReplace"] = True
    for key in ("ignoreChanges", "replaceOnChanges"):
        if getattr(request, key):
            options[key] = list(getattr(request, key))
    if request.provider:
        options["provider"] = request.provider
    return options


Invoke = Callable[[Mapping[str, Any], str], dict[str, Any]]


class _Mocks(mocks.Mocks):
    """Offline answers: invokes from `_INVOKES`, resource state from `_mock_state`."""

    def __init__(self, region: str) -> None:
        self.region = region

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        answer = _INVOKES.get(args.token)
        if answer is None:
            raise SynthesisError(f"no offline answer for the invoke {args.token}; add one to mlplat/synth.py")
        return answer(args.args, self.region), []

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        urn = f"{args.typ}::{args.name}"
        return self.state(args.typ, args.name, urn, _plain(args.inputs), bool(args.custom))

    def state(
        self, type_token: str, name: str, urn: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str, dict[str, Any]]:
        """(ID, output state) of a registration: the inputs plus what the provider would compute."""
        if not custom:
            return "", {}
        return _mock_state(type_token, name, urn, inputs, self.region)


def _digest(urn: str, length: int) -> str:
    return hashlib.sha256(urn.encode()).hexdigest()[:length]


def _mock_state(typ: str, name: str, urn: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """Realistic computed outputs per type; deterministic (hashed from the URN) so records are reproducible."""
    h = _digest(urn, 17)
    physical = str(inputs.get("name") or f"{name}-{h[:7]}")
    module, _, kind = typ.split(":")[1].partition("/") if typ.count(":") == 2 else ("", "", "")
    arn_prefix = f"arn:{PARTITION}:{module}:{region}:{ACCOUNT_ID}"
    state: dict[str, Any] = {**inputs}
    rid = physical

    ec2_ids = {
        "vpc": "vpc",
        "subnet": "subnet",
        "routeTable": "rtb",
        "routeTableAssociation": "rtbassoc",
        "route": "r",
        "internetGateway": "igw",
        "eip": "eipalloc",
        "natGateway": "nat",
        "securityGroup": "sg",
        "vpcEndpoint": "vpce",
        "flowLog": "fl",
        "launchTemplate": "lt",
    }
    if module == "ec2" and kind in ec2_ids:
        rid = f"{ec2_ids[kind]}-{h}"
        state["arn"] = f"{arn_prefix}:{kind.lower()}/{rid}"
        if kind == "securityGroup":
            state["name"] = physical
        if kind == "eip":
            state |= {"allocationId": rid, "publicIp": f"203.0.113.{int(h[:2], 16) % 250 + 1}"}
        if kind == "vpc":
            state |= {"defaultSecurityGroupId": f"sg-{h[::-1]}", "mainRouteTableId": f"rtb-{h[::-1]}"}
        if kind == "vpcEndpoint":
            if inputs.get("vpcEndpointType") == "Gateway":
                state["prefixListId"] = f"pl-{h[:8]}"
            else:
                state["dnsEntries"] = [{"dnsName": f"{rid}.{inputs.get('serviceName', '')}", "hostedZoneId": "Z1"}]
        if kind == "launchTemplate":
            state["latestVersion"] = 1
    elif typ == "aws:s3/bucket:Bucket":
        bucket = str(inputs.get("bucket") or f"{name}-{h[:7]}").lower()[:63]
        rid = bucket
        state |= {
            "bucket": bucket,
            "arn": f"arn:{PARTITION}:s3:::{bucket}",
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
            "region": region,
        }
    elif module == "s3":
        rid = str(inputs.get("bucket") or physical)
    elif typ == "aws:kms/key:Key":
        rid = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-a{h[15:17]}{h[:1]}-{_digest(urn + 'k', 12)}"
        state |= {"keyId": rid, "arn": f"{arn_prefix}:key/{rid}"}
    elif typ == "aws:kms/alias:Alias":
        state |= {"arn": f"{arn_prefix}:{physical}", "targetKeyArn": f"{arn_prefix}:key/{inputs.get('targetKeyId')}"}
    elif module == "iam":
        iam_prefix = f"arn:{PARTITION}:iam::{ACCOUNT_ID}"
        physical = physical[:64]
        state["name"] = physical
        if kind == "role":
            state |= {"arn": f"{iam_prefix}:role/{physical}", "uniqueId": f"AROA{h.upper()}"}
        elif kind == "policy":
            state |= {"arn": f"{iam_prefix}:policy/{physical}", "policyId": f"ANPA{h.upper()}"}
        elif kind == "instanceProfile":
            state |= {"arn": f"{iam_prefix}:instance-profile/{physical}"}
        elif kind == "openIdConnectProvider":
            issuer = str(inputs.get("url", "")).removeprefix("https://")
            state["arn"] = f"{iam_prefix}:oidc-provider/{issuer}"
            rid = state["arn"]
        elif kind == "rolePolicy":
            rid = f"{inputs.get('role')}:{physical}"
        elif kind == "rolePolicyAttachment":
            rid = f"{inputs.get('role')}-{h[:8]}"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        state |= {"name": physical, "arn": f"arn:{PARTITION}:logs:{region}:{ACCOUNT_ID}:log-group:{physical}"}
    elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        state |= {"name": physical, "arn": f"{arn_prefix}:alarm:{physical}"}
    elif typ == "aws:sagemaker/mlflowApp:MlflowApp":
        app_id = f"app-{h[:12].upper()}"
        state |= {"name": physical, "arn": f"{arn_prefix}:mlflow-app/{app_id}"}
        rid = state["arn"]
    elif typ == "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer":
        server = str(inputs.get("trackingServerName") or physical)
        rid = server
        state |= {
            "arn": f"{arn_prefix}:mlflow-tracking-server/{server}",
            "trackingServerUrl": f"https://t-{h[:12]}.{region}.experiments.sagemaker.aws",
        }
    elif module == "sagemaker":
        sagemaker_kinds = {"endpointConfiguration": "endpoint-config", "endpoint": "endpoint", "model": "model"}
        state |= {"name": physical, "arn": f"{arn_prefix}:{sagemaker_kinds.get(kind, kind)}/{physical.lower()}"}
    elif typ == "aws:sns/topic:Topic":
        state |= {"name": physical, "arn": f"{arn_prefix}:{physical}"}
        rid = state["arn"]
    elif module == "sns":
        state["arn"] = f"{arn_prefix}:{h[:12]}:{_digest(urn + 's', 8)}"
        rid = state["arn"]
    elif typ == "aws:budgets/budget:Budget":
        state |= {"name": physical, "arn": f"arn:{PARTITION}:budgets::{ACCOUNT_ID}:budget/{physical}"}
        rid = f"{ACCOUNT_ID}:{physical}"
    elif typ == "aws:appautoscaling/target:Target":
        rid = str(inputs.get("resourceId", physical))
        state["arn"] = f"arn:{PARTITION}:application-autoscaling:{region}:{ACCOUNT_ID}:scalable-target/{h[:24]}"
    elif typ == "aws:appautoscaling/policy:Policy":
        state |= {
            "name": physical,
            "arn": f"arn:{PARTITION}:autoscaling:{region}:{ACCOUNT_ID}:scalingPolicy:{h}:resource/{physical}",
        }
    elif typ == "aws:eks/cluster:Cluster":
        state |= {
            "name": physical,
            "arn": f"{arn_prefix}:cluster/{physical}",
            "endpoint": f"https://{h.upper()}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthority": {
                "data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm1vY2sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
            },
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{h.upper()}"}]}],
            "clusterSecurityGroupId": f"sg-{h[::-1]}",
            "vpcConfig": {**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{h[::-1]}"},
            "version": inputs.get("version", "1.33"),
            "status": "ACTIVE",
        }
    elif typ.startswith("aws:"):
        state |= {"name": physical, "arn": f"{arn_prefix}:{kind.lower()}/{physical}"}
    else:
        # Kubernetes objects and providers: the inputs are the state; the ID is the object's name.
        metadata = inputs.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("name"):
            rid = str(metadata["name"])
    return rid, state


def _availability_zones(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    letters = "abcdef"
    return {
        "id": region,
        "names": [f"{region}{x}" for x in letters],
        "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
        "groupNames": [region] * len(letters),
        "state": args.get("state"),
    }


def _policy_document(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    """`aws.iam.get_policy_document`, rendered the way AWS would read it."""
    statements = []
    for s in args.get("statements") or []:
        statement: dict[str, Any] = {"Effect": s.get("effect", "Allow")}
        for key, target in (("sid", "Sid"), ("actions", "Action"), ("resources", "Resource")):
            if s.get(key):
                statement[target] = s[key]
        for principal in s.get("principals") or []:
            statement.setdefault("Principal", {})[principal["type"]] = principal["identifiers"]
        for condition in s.get("conditions") or []:
            statement.setdefault("Condition", {}).setdefault(condition["test"], {})[condition["variable"]] = condition[
                "values"
            ]
        statements.append(statement)
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return {"id": _digest(document, 10), "json": document, "minifiedJson": document}


_INVOKES: dict[str, Invoke] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda args, region: {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/mlplat-offline",
        "userId": "AIDAOFFLINEMLPLAT",
    },
    "aws:index/getPartition:getPartition": lambda args, region: {
        "id": PARTITION,
        "partition": PARTITION,
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    },
    "aws:index/getRegion:getRegion": lambda args, region: {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:ssm/getParameter:getParameter": lambda args, region: {
        "id": args.get("name"),
        "name": args.get("name"),
        "arn": f"arn:{PARTITION}:ssm:{region}::parameter{args.get('name')}",
        "type": "String",
        "value": "ami-0123456789abcdef0",
        "insecureValue": "ami-0123456789abcdef0",
        "version": 1,
        "withDecryption": True,
    },
}


def _plain(value: Any) -> Any:
    """JSON-ready data: secrets unwrapped, resource references as URNs, anything else exotic as text."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The wire carries every number as a double; whole numbers read better (and compare exactly) as ints.
        return int(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, pulumi.Resource):
        return f"<resource {value.pulumi_resource_name}>"
    return str(value)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def walk(record: PlanRecord) -> Iterator[tuple[int, ResourceRecord]]:
    """(depth, resource) in tree order, from the stack's top-level resources down."""

    def visit(urn: str, depth: int) -> Iterator[tuple[int, ResourceRecord]]:
        for child in record.children(urn):
            yield depth, child
            yield from visit(child.urn, depth + 1)

    yield from visit(record.stack_urn, 0)
