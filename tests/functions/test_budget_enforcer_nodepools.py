"""The budget enforcer's GPU NodePools: moto for STS, SSM, SNS and EKS, a loopback fake Kubernetes API server for
the NodePools. Enforcement records each pool's limits, then merge-patches them to zero; a restore puts back exactly
the recorded limits."""

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from kube_fake import FakeKubeApi, node_pool
from moto import mock_aws

from components.functions import budget_enforcer as enforcer

REGION = "us-east-1"
PARAMETER = "/mlplat/staging/budget-enforcement"
CLUSTER = "mlplat-staging"
AT = "2026-12-06T06:00:00Z"


def alert() -> str:
    """The last ACTUAL threshold of an 8,000 USD budget, as AWS Budgets words it."""
    return (
        "Budget Name: mlplat-staging-budget\nBudgeted Amount: $8,000.00\nAlert Type: ACTUAL\n"
        "Alert Threshold: > $8,000.00\n"
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(enforcer, "_now", lambda: AT)
    with mock_aws():
        yield


@pytest.fixture
def kube(aws: None) -> Iterator[FakeKubeApi]:
    server = FakeKubeApi(
        {
            "train-spot": node_pool("train-spot", {"nvidia.com/gpu": "4"}),
            "eval": node_pool("eval", {"nvidia.com/gpu": "2", "cpu": "64"}),
        }
    )
    yield server
    server.close()


def clients(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def settings(kube: FakeKubeApi, pools: list[str] | None = None) -> enforcer.Settings:
    return enforcer.Settings(
        {
            "MLPLAT_ENVIRONMENT": "staging",
            "MLPLAT_ENFORCE": "true",
            "MLPLAT_LAST_THRESHOLD": "100",
            "MLPLAT_RECORD_PARAMETER": PARAMETER,
            "MLPLAT_NODEPOOLS": json.dumps(pools if pools is not None else ["train-spot", "eval"]),
            "MLPLAT_CLUSTER_NAME": CLUSTER,
            "MLPLAT_CLUSTER_ENDPOINT": kube.url,
            "MLPLAT_CLUSTER_CA": "",
        }
    )


def enforce(kube: FakeKubeApi, pools: list[str] | None = None) -> dict[str, Any]:
    return enforcer.on_message(alert(), settings(kube, pools), clients)


def restore(kube: FakeKubeApi) -> dict[str, Any]:
    return enforcer.restore(clients, PARAMETER, kube=lambda cluster: enforcer.cluster_api(clients, cluster, kube.url))


def patches(kube: FakeKubeApi) -> list[tuple[str, Any]]:
    return [(r.path.rsplit("/", 1)[-1], r.body) for r in kube.requests if r.method == "PATCH"]


def presigned_url(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    encoded = token.removeprefix("k8s-aws-v1.")
    assert "=" not in encoded  # base64url without padding, as aws-iam-authenticator expects
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def test_the_token_is_a_presigned_get_caller_identity_url_that_signs_the_cluster_header(aws: None) -> None:
    url = urlsplit(presigned_url(enforcer.eks_token(clients("sts"), CLUSTER)))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc, url.path) == ("https", f"sts.{REGION}.amazonaws.com", "/")
    assert query["Action"] == "GetCallerIdentity"
    assert query["Version"] == "2011-06-15"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Credential"].endswith(f"/{REGION}/sts/aws4_request")


def test_tokens_for_two_clusters_differ_only_in_what_the_signature_covers(aws: None) -> None:
    sts = clients("sts")
    first, second = (urlsplit(presigned_url(enforcer.eks_token(sts, name))) for name in ("a", "b"))
    assert parse_qs(first.query)["X-Amz-Signature"] != parse_qs(second.query)["X-Amz-Signature"]


def test_every_kubernetes_request_carries_the_bearer_token(kube: FakeKubeApi) -> None:
    enforce(kube)
    assert len(kube.requests) == 4
    for request in kube.requests:
        scheme, token = request.authorization.split(" ")
        assert scheme == "Bearer"
        assert parse_qs(urlsplit(presigned_url(token)).query)["Action"] == ["GetCallerIdentity"]


def test_enforcement_merge_patches_each_pools_limits_to_zero_and_annotates_it(kube: FakeKubeApi) -> None:
    result = enforce(kube)
    assert result["action"] == "enforced"
    assert patches(kube) == [
        (
            "train-spot",
            {
                "metadata": {"annotations": {"mlplat.io/budget-enforced": AT}},
                "spec": {"limits": {"nvidia.com/gpu": "0"}},
            },
        ),
        (
            "eval",
            {
                "metadata": {"annotations": {"mlplat.io/budget-enforced": AT}},
                "spec": {"limits": {"nvidia.com/gpu": "0", "cpu": "0"}},
            },
        ),
    ]
    assert {r.content_type for r in kube.requests if r.method == "PATCH"} == {"application/merge-patch+json"}
    assert kube.pools["eval"]["spec"]["limits"] == {"nvidia.com/gpu": "0", "cpu": "0"}
    assert kube.problems == []


def test_enforcement_records_each_pools_previous_limits_before_patching(kube: FakeKubeApi) -> None:
    enforce(kube)
    record = enforcer.read_record(clients, PARAMETER)
    assert record is not None
    assert record["changes"] == [
        {
            "kind": "nodepool",
            "name": "train-spot",
            "cluster": CLUSTER,
            "limits": {"nvidia.com/gpu": "4"},
            "target": "0",
        },
        {
            "kind": "nodepool",
            "name": "eval",
            "cluster": CLUSTER,
            "limits": {"nvidia.com/gpu": "2", "cpu": "64"},
            "target": "0",
        },
    ]
    # Every read precedes every write: the record can only hold the limits from before enforcement.
    assert [r.method for r in kube.requests] == ["GET", "GET", "PATCH", "PATCH"]


def test_restore_patches_back_exactly_the_recorded_limits_and_removes_the_annotation(kube: FakeKubeApi) -> None:
    before = json.loads(json.dumps(kube.pools))
    enforce(kube)
    kube.requests.clear()
    restore(kube)
    assert patches(kube) == [
        (
            "train-spot",
            {
                "metadata": {"annotations": {"mlplat.io/budget-enforced": None}},
                "spec": {"limits": {"nvidia.com/gpu": "4"}},
            },
        ),
        (
            "eval",
            {
                "metadata": {"annotations": {"mlplat.io/budget-enforced": None}},
                "spec": {"limits": {"nvidia.com/gpu": "2", "cpu": "64"}},
            },
        ),
    ]
    assert kube.pools == before
    assert enforcer.read_record(clients, PARAMETER) is None


def test_a_pool_without_limits_gets_a_zero_gpu_limit_and_loses_it_on_restore(kube: FakeKubeApi) -> None:
    kube.pools["open"] = node_pool("open", None)
    before = json.loads(json.dumps(kube.pools["open"]))
    enforce(kube, ["open"])
    assert kube.pools["open"]["spec"]["limits"] == {"nvidia.com/gpu": "0"}
    kube.requests.clear()
    restore(kube)
    assert patches(kube) == [
        ("open", {"metadata": {"annotations": {"mlplat.io/budget-enforced": None}}, "spec": {"limits": None}})
    ]
    assert kube.pools["open"] == before


def test_restore_with_nothing_recorded_says_so_and_sends_the_cluster_nothing(kube: FakeKubeApi) -> None:
    with pytest.raises(enforcer.NothingRecorded):
        restore(kube)
    assert kube.requests == []


def test_enforcement_report_names_each_pools_limits(kube: FakeKubeApi) -> None:
    record = enforce(kube)["record"]
    assert enforcer.describe(record, "scaled down").splitlines()[1:] == [
        "- nodepool train-spot: nvidia.com/gpu limit 4 -> 0",
        "- nodepool eval: nvidia.com/gpu limit 2 -> 0",
        "- nodepool eval: cpu limit 64 -> 0",
    ]


def test_an_unknown_pool_fails_enforcement_with_the_api_servers_status(kube: FakeKubeApi) -> None:
    with pytest.raises(enforcer.KubeError, match=r"^GET /apis/karpenter.sh/v1/nodepools/gone: HTTP 404 "):
        enforce(kube, ["gone"])
    assert enforcer.read_record(clients, PARAMETER) is None


def test_without_an_endpoint_the_cluster_is_found_with_describe_cluster(aws: None) -> None:
    eks = clients("eks")
    eks.create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
    )
    described = eks.describe_cluster(name=CLUSTER)["cluster"]
    api = enforcer.cluster_api(clients, CLUSTER)
    assert api.endpoint == described["endpoint"].rstrip("/")
    assert api.ca_data == described["certificateAuthority"]["data"]


def test_a_pool_the_cluster_refuses_to_patch_is_reported_and_the_others_still_go_to_zero(kube: FakeKubeApi) -> None:
    sns, sqs = clients("sns"), clients("sqs")
    topic = sns.create_topic(Name="budget")["TopicArn"]
    queue = sqs.create_queue(QueueName="heard")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    chosen = settings(kube)
    chosen.topic_arn = topic
    # The pool vanishes between the snapshot and the patch.
    original_patch = enforcer.KubeApi.patch_node_pool

    def patch(api: enforcer.KubeApi, name: str, body: Any) -> dict[str, Any]:
        if name == "train-spot":
            kube.pools.pop("train-spot")
        return original_patch(api, name, body)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(enforcer.KubeApi, "patch_node_pool", patch)
        result = enforcer.on_message(alert(), chosen, clients)
    assert result["failed"] == [
        "- FAILED nodepool train-spot: PATCH /apis/karpenter.sh/v1/nodepools/train-spot: HTTP 404 "
        '{"kind": "Status", "reason": "NotFound"}'
    ]
    assert kube.pools["eval"]["spec"]["limits"] == {"nvidia.com/gpu": "0", "cpu": "0"}
    (message,) = [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert message.splitlines()[-1] == result["failed"][0]
