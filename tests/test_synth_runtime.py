"""How synthesis drives Pulumi's SDK (`mlplat.synth_runtime`): the same answers as the SDK's paths it replaces."""

from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import _callbacks, rpc
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime.proto import source_pb2

from mlplat import synth, synth_runtime

SHARED = [1, 2]


class _Tagged(pulumi.ComponentResource):
    """A component whose transform tags the bucket inside it, as components/tagging.py does."""

    def __init__(self, name: str) -> None:
        def tag(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
            return pulumi.ResourceTransformResult(props={**args.props, "tags": {"owner": name}}, opts=args.opts)

        super().__init__("test:runtime:Tagged", name, None, pulumi.ResourceOptions(transforms=[tag]))
        aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self))


def test_a_program_with_many_transformed_components_starts_one_callback_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[Any] = []
    real_init = _callbacks._CallbackServicer.__init__

    def counting_init(self: Any, monitor: Any) -> None:
        started.append(self)
        real_init(self, monitor)

    monkeypatch.setattr(_callbacks._CallbackServicer, "__init__", counting_init)

    def program() -> None:
        for i in range(12):
            _Tagged(f"part-{i}")

    record = synth.run(program)

    assert len(started) == 1
    buckets = record.of_type("aws:s3/bucket:Bucket")
    assert sorted(b.inputs["tags"]["owner"] for b in buckets) == sorted(f"part-{i}" for i in range(12))


def test_a_program_without_transforms_starts_no_callback_server_and_none_outlives_a_synthesis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # mutmut runs each mutant in a forked process, where gRPC cannot start again while a parent's servers serve.
    started: list[Any] = []
    real_init = _callbacks._CallbackServicer.__init__

    def counting_init(self: Any, monitor: Any) -> None:
        started.append(self)
        real_init(self, monitor)

    monkeypatch.setattr(_callbacks._CallbackServicer, "__init__", counting_init)
    serving_before = list(_callbacks._CallbackServicer._servicers)

    synth.run(lambda: aws.s3.Bucket("plain"))
    assert started == []

    synth.run(lambda: _Tagged("one"))
    assert len(started) == 1
    assert _callbacks._CallbackServicer._servicers == serving_before


@pytest.mark.parametrize(
    "value",
    [
        "text",
        pulumi.UNKNOWN,
        [],
        {},
        {"a": [1, {"b": "c"}]},
        {"a": [1, {"b": pulumi.UNKNOWN}]},
        [[[pulumi.UNKNOWN]]],
        {"first": SHARED, "second": SHARED},
        ("tuple", pulumi.UNKNOWN),
    ],
)
def test_the_unknowns_check_answers_as_the_sdks(value: Any) -> None:
    assert synth_runtime.contains_unknowns(value) is synth_runtime._sdk_contains_unknowns(value)


def test_outside_a_synthesis_the_sdk_checks_unknowns_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(synth_runtime, "_sdk_contains_unknowns", lambda value: calls.append(value) or False)

    assert rpc.contains_unknowns({"a": 1}) is False
    assert calls == [{"a": 1}]


def test_outside_a_synthesis_resources_keep_the_sdks_source_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = source_pb2.StackTrace(frames=[source_pb2.StackFrame(pc=source_pb2.SourcePosition(uri="file:///p.py"))])
    monkeypatch.setattr(synth_runtime, "_sdk_get_stack_trace", lambda: trace)

    assert runtime_resource._get_stack_trace() is trace


def test_under_a_synthesis_resources_carry_no_source_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    traces: list[Any] = []
    real = runtime_resource._get_stack_trace
    monkeypatch.setattr(runtime_resource, "_get_stack_trace", lambda: traces.append(real()) or traces[-1])

    synth.run(lambda: aws.s3.Bucket("bucket") and None)

    # The stack's registration and the bucket's.
    assert [len(trace.frames) for trace in traces] == [0, 0]
