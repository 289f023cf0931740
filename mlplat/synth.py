"""Synthesis: run the real Pulumi program of a stack under Pulumi's mocks and record every resource it registers.

No Pulumi CLI, no credentials, no network beyond loopback. The stack file is validated first (a ConfigError
means nothing runs and nothing is recorded); then `__main__.py` runs with the stack's config, invokes are
answered offline and every registration gets realistic IDs, ARNs and URLs (`mlplat.fake_provider`), and
resource transforms run the way the engine runs them (the resource's own, then each parent's, then the stack's),
so the recorded inputs are what `pulumi up` would send to the provider.

Each synthesis runs on its own thread with its own event loop and a fresh `contextvars` context, which is where
the Pulumi runtime keeps its global state; so `synthesize` can be called for several stacks in one process.

The record's fields and JSON form are in `mlplat.plan_record`; the SDK paths that synthesis avoids (and why: plan
time per resource stays flat from 1 to 100 endpoints) are in `mlplat.synth_runtime`.
"""

import asyncio
import contextlib
import gc
import json
import runpy
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import stack as runtime_stack
from pulumi.runtime.proto import resource_pb2

from components import config as stack_config
from mlplat import fake_provider, synth_runtime
from mlplat.plan_record import PROJECT, PlanRecord, ResourceRecord, load_plan

try:
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]

REPO_ROOT = Path(__file__).resolve().parents[1]
PROGRAM = REPO_ROOT / "__main__.py"
SCHEMA_FILE = Path(__file__).with_name("plan.schema.json")


class SynthesisError(RuntimeError):
    """The program failed under the mocks for a reason other than its config."""

    exit_status = 1  # in the command line's error path (mlplat.clikit)


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


def plan_or_load(stack: str, stack_file_path: Path | None = None, plan_path: Path | None = None) -> PlanRecord:
    """The plan of a stack: read from `plan_path` (refused when it is another stack's), or synthesized."""
    if plan_path is not None:
        return load_plan(plan_path, stack)
    return synthesize(stack_file_path or stack_config.stack_file(stack), stack)


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
    # libyaml's parser when PyYAML has it (its wheels do): the same documents, and on a stack file with a hundred
    # endpoints 0.013 s instead of the pure-Python parser's 0.09 s, paid per endpoint (bench/plan.py).
    document = yaml.load(stack_file.read_text(), Loader=SafeLoader) or {}
    values = document.get("config") or {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def _run_program(stack: str, engine_config: dict[str, str], region: str, program: Callable[[], None]) -> PlanRecord:
    """Run a program once, on this (fresh) thread; the runtime's state lives in this thread's context."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # The mock monitor answers at once: its calls run on this thread (see mlplat.synth_runtime).
    loop.set_default_executor(synth_runtime.InlineExecutor())
    # The cyclic collector walks every live object on each full pass; a program holds thousands of Outputs and
    # futures until it ends, so with it on, plan time grew with the square of the resources (bench/plan.py).
    collecting = gc.isenabled()
    gc.disable()
    try:
        synth_runtime.mark_synthesis()
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
            loop.run_until_complete(synth_runtime.shutdown_callbacks())
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(None)
        if collecting:
            gc.enable()


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
        self._callbacks = synth_runtime.CallbackIndex()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the parent's full qualified type chain, the stack left out."""
        if parent:
            qualified_parent = parent.split("::")[2]
            if qualified_parent != "pulumi:pulumi:Stack":
                type_ = f"{qualified_parent}${type_}"
        return f"urn:pulumi:{settings.get_stack()}::{settings.get_project()}::{type_}::{name}"

    def Invoke(self, request: Any) -> Any:
        """The mock monitor's Invoke, without re-entering the running loop (see `synth_runtime.completed`)."""
        if request.tok == "pulumi:pulumi:getResource":
            return super().Invoke(request)
        call = mocks.MockCallArgs(
            token=request.tok, args=rpc.deserialize_properties(request.args), provider=request.provider
        )
        answer, _ = self.mocks.call(call)
        wire_answer = synth_runtime.completed(rpc.serialize_properties(answer, {}))
        return resource_pb2.ResourceInvokeResponse(failures=None, **{"return": wire_answer})

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = rpc.deserialize_properties(request.object)
        # Resolving callbacks to functions is what the mock monitor itself does; it is not public API.
        own = self._callbacks.resolve(request.transforms)
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
        wire_state = synth_runtime.completed(rpc.serialize_properties(state, {}))
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


class _Mocks(mocks.Mocks):
    """Offline answers from the fake provider: invokes and resource state."""

    def __init__(self, region: str) -> None:
        self.region = region

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        answer = fake_provider.INVOKES.get(args.token)
        if answer is None:
            raise SynthesisError(f"no offline answer for the invoke {args.token}; add one to mlplat/fake_provider.py")
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
        return fake_provider.mock_state(type_token, name, urn, inputs, self.region)


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
    # Assets and archives (a Lambda's code) as text naming what they hold, so that a record is the same every time.
    if isinstance(value, pulumi.AssetArchive):
        members = ", ".join(f"{k}={_plain(v)}" for k, v in sorted(value.assets.items()))
        return f"<archive {members}>"
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return stack_config.display_path(Path(value.path))
    return str(value)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
