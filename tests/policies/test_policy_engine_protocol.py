"""The pack as the Pulumi engine meets it: started from its directory, spoken to over the analyzer gRPC protocol."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies import registry

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
URN = "urn:pulumi:prod::mlplat::aws:cloudwatch/logGroup:LogGroup::logs"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack served by `runpy.run_path(<pack dir>)` (what `python -m pulumi.policy` does), from a foreign cwd."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-c",
            "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')",
            str(PACK_DIR),
        ],
        cwd=tmp_path_factory.mktemp("elsewhere"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.stderr else port
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def test_the_served_pack_names_every_policy_with_its_level(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlplat-guard"
    assert [p.name for p in info.policies] == [s.name for s in registry.POLICIES]
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels["gpu-pool-scales-to-zero"] == analyzer_pb2.ADVISORY
    assert levels["s3-tls-only"] == analyzer_pb2.MANDATORY


def test_the_engine_gets_the_check_message_under_the_configured_threshold(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.MANDATORY, properties=struct({"minRetentionDays": 90})
    )
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"log-group-retention": config}))
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="aws:cloudwatch/logGroup:LogGroup",
            properties=struct({"retentionInDays": 30, "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}),
            urn=URN,
            name="logs",
        )
    )
    assert [(d.policyName, d.message, d.enforcementLevel) for d in response.diagnostics] == [
        (
            "log-group-retention",
            "CloudWatch log groups expire their events within the configured bounds.\n"
            "retentionInDays is 30, below 90; keep logs at least 90 days.",
            analyzer_pb2.MANDATORY,
        )
    ]


def test_a_value_unknown_during_preview_becomes_an_advisory_note(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="aws:s3/bucket:Bucket", properties=struct({"forceDestroy": UNKNOWN}), urn=URN, name="bucket"
        )
    )
    notes = [(d.policyName, d.enforcementLevel) for d in response.diagnostics]
    assert notes == [("s3-no-force-destroy", analyzer_pb2.ADVISORY)]
    assert "can't be known during preview" in response.diagnostics[0].message


def test_stack_policies_see_the_whole_stack(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    bucket = analyzer_pb2.AnalyzerResource(
        type="aws:s3/bucket:Bucket",
        properties=struct({"tags": {"mlplat:environment": "prod", "mlplat:team": "t", "mlplat:cost-center": "c"}}),
        urn="urn:pulumi:prod::mlplat::aws:s3/bucket:Bucket::b",
        name="b",
    )
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[bucket]))
    tripped = {d.policyName for d in response.diagnostics}
    assert {"s3-public-access-blocked", "s3-sse-kms", "s3-tls-only", "s3-versioning", "budget-alerts"} <= tripped
    assert "aws-stack-tags" not in tripped
