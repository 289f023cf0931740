"""The budget enforcer against moto: a budget alert crosses the last threshold, the endpoints go to their floor,
the record is written, and a restore puts back exactly what was there (inference components through ic_fake)."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ic_fake import AutoScaling, InferenceComponents, SageMaker
from moto import mock_aws

from components.functions import budget_enforcer as enforcer

REGION = "us-east-1"
ACCOUNT = "123456789012"
PARAMETER = "/mlplat/dev/budget-enforcement"
IC_ENDPOINT = "mlplat-dev-abalone-dev"
IC = "mlplat-dev-abalone-dev-abalone"
VARIANT_ENDPOINT = "mlplat-dev-churn-dev"
VARIANT_TARGET = f"endpoint/{VARIANT_ENDPOINT}/variant/primary"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def alert(kind: str = "ACTUAL", threshold: float = 300.0, budgeted: float = 300.0) -> str:
    """The text AWS Budgets publishes to an SNS topic."""
    return (
        "AWS Budget Notification December 06, 2026\n"
        f"AWS Account {ACCOUNT}\n\n"
        "Dear AWS Customer,\n\n"
        f"You requested that we alert you when the {kind} Cost associated with your mlplat-dev-budget budget "
        f"is greater than ${threshold:.2f} for the current month.\n\n"
        "Budget Name: mlplat-dev-budget\n"
        "Budget Type: Cost\n"
        f"Budgeted Amount: ${budgeted:,.2f}\n"
        f"Alert Type: {kind}\n"
        f"Alert Threshold: > ${threshold:,.2f}\n"
        f"{kind} Amount: $312.40\n"
    )


def sns_event(message: str) -> dict[str, Any]:
    """The event SNS hands a subscribed Lambda."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {"Type": "Notification", "Subject": "AWS Budgets", "Message": message},
            }
        ]
    }


class World:
    """moto's account with one variant endpoint, plus the fake's inference component, and a queue on the topic."""

    def __init__(self) -> None:
        self.store = InferenceComponents(ACCOUNT, REGION)
        self.store.add(IC, copies=2, scaling=(0, 4))
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        self.autoscaling = boto3.client("application-autoscaling", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        self.topic = sns.create_topic(Name="budget")["TopicArn"]
        self.queue = sqs.create_queue(QueueName="heard")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        self.sqs = sqs
        self.sagemaker.create_model(
            ModelName="churn",
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/serving",
            PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/serving:1"},
        )
        self.sagemaker.create_endpoint_config(
            EndpointConfigName="churn-config",
            ProductionVariants=[
                {
                    "VariantName": "primary",
                    "ModelName": "churn",
                    "InstanceType": "ml.c5.large",
                    "InitialInstanceCount": 3,
                }
            ],
        )
        self.sagemaker.create_endpoint(EndpointName=VARIANT_ENDPOINT, EndpointConfigName="churn-config")
        self.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=VARIANT_TARGET,
            ScalableDimension=VARIANT_DIMENSION,
            MinCapacity=1,
            MaxCapacity=5,
        )

    def clients(self, service: str) -> Any:
        if service == "sagemaker":
            return SageMaker(self.sagemaker, self.store)
        if service == "application-autoscaling":
            return AutoScaling(self.autoscaling, self.store)
        return boto3.client(service, region_name=REGION)

    def settings(self, enforce: bool = True) -> enforcer.Settings:
        endpoints = [
            {"endpoint": IC_ENDPOINT, "variant": "primary", "inferenceComponent": IC, "minimum": 0},
            {"endpoint": VARIANT_ENDPOINT, "variant": "primary", "inferenceComponent": None, "minimum": 1},
        ]
        return enforcer.Settings(
            {
                "MLPLAT_ENVIRONMENT": "dev",
                "MLPLAT_ENFORCE": "true" if enforce else "false",
                "MLPLAT_LAST_THRESHOLD": "100",
                "MLPLAT_ENDPOINTS": json.dumps(endpoints),
                "MLPLAT_RECORD_PARAMETER": PARAMETER,
                "MLPLAT_TOPIC_ARN": self.topic,
            }
        )

    def instances(self) -> int:
        variant = self.sagemaker.describe_endpoint(EndpointName=VARIANT_ENDPOINT)["ProductionVariants"][0]
        return int(variant.get("DesiredInstanceCount", variant["CurrentInstanceCount"]))

    def variant_bounds(self) -> tuple[int, int]:
        (target,) = self.autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[VARIANT_TARGET], ScalableDimension=VARIANT_DIMENSION
        )["ScalableTargets"]
        return target["MinCapacity"], target["MaxCapacity"]

    def record(self) -> dict[str, Any] | None:
        return enforcer.read_record(self.clients, PARAMETER)

    def heard(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        return [m["Body"] for m in messages]

    def endpoint_tags(self) -> dict[str, str]:
        arn = self.sagemaker.describe_endpoint(EndpointName=VARIANT_ENDPOINT)["EndpointArn"]
        return {t["Key"]: t["Value"] for t in self.sagemaker.list_tags(ResourceArn=arn)["Tags"]}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield World()


def _cross(world: World, message: str | None = None, enforce: bool = True) -> dict[str, Any]:
    return enforcer.on_message(message or alert(), world.settings(enforce), world.clients)


def test_the_handler_reads_the_alert_out_of_the_sns_event(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MLPLAT_ENVIRONMENT": "dev",
        "MLPLAT_ENFORCE": "true",
        "MLPLAT_LAST_THRESHOLD": "100",
        "MLPLAT_ENDPOINTS": json.dumps(
            [{"endpoint": VARIANT_ENDPOINT, "variant": "primary", "inferenceComponent": None, "minimum": 1}]
        ),
        "MLPLAT_RECORD_PARAMETER": PARAMETER,
        "MLPLAT_TOPIC_ARN": world.topic,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = enforcer.handler(sns_event(alert()), None, clients=world.clients)
    assert [r["action"] for r in result["results"]] == ["enforced"]
    assert world.instances() == 1


def test_crossing_the_last_threshold_scales_the_inference_component_to_zero_copies(world: World) -> None:
    assert _cross(world)["action"] == "enforced"
    assert world.store.copies[IC] == 0
    assert world.store.targets[f"inference-component/{IC}"] == (0, 0)


def test_crossing_the_last_threshold_scales_a_variant_endpoint_to_its_minimum_and_pins_it(world: World) -> None:
    _cross(world)
    assert world.instances() == 1
    assert world.variant_bounds() == (1, 1)


def test_enforcement_records_every_previous_state(world: World) -> None:
    _cross(world)
    record = world.record()
    assert record is not None
    changes = {c["name"]: c for c in record["changes"]}
    assert changes[IC]["copyCount"] == 2
    assert changes[IC]["scaling"] == [0, 4]
    assert changes[VARIANT_ENDPOINT]["instanceCount"] == 3
    assert changes[VARIANT_ENDPOINT]["scaling"] == [1, 5]
    assert record["thresholdPercent"] == 100


def test_enforcement_tags_what_it_changed(world: World) -> None:
    _cross(world)
    assert enforcer.ENFORCED_TAG in world.endpoint_tags()
    assert enforcer.ENFORCED_TAG in world.store.tags[IC]


def test_enforcement_posts_what_it_did_to_the_topic(world: World) -> None:
    _cross(world)
    (message,) = world.heard()
    assert message.splitlines()[1:] == [
        f"- inference-component {IC}: 2 -> 0 copies",
        f"- variant {VARIANT_ENDPOINT}: 3 -> 1 instances",
    ]


def test_restore_puts_back_exactly_what_was_recorded_and_deletes_the_record(world: World) -> None:
    _cross(world)
    enforcer.restore(world.clients, PARAMETER)
    assert world.store.copies[IC] == 2
    assert world.store.targets[f"inference-component/{IC}"] == (0, 4)
    assert world.instances() == 3
    assert world.variant_bounds() == (1, 5)
    assert enforcer.ENFORCED_TAG not in world.endpoint_tags()
    assert world.store.tags[IC] == {}
    assert world.record() is None


def test_restore_with_nothing_recorded_says_so_and_changes_nothing(world: World) -> None:
    with pytest.raises(enforcer.NothingRecorded):
        enforcer.restore(world.clients, PARAMETER)
    assert world.instances() == 3
    assert world.store.copies[IC] == 2


def test_a_second_alert_keeps_the_first_record(world: World) -> None:
    _cross(world)
    first = world.record()
    assert _cross(world)["action"] == "already-enforced"
    assert world.record() == first


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (alert(kind="FORECASTED"), "FORECASTED alert at 100%"),
        (alert(threshold=240.0), "ACTUAL alert at 80%"),
        ("mlplat budget enforcement (dev): scaled down ...", "not a budget notification"),
    ],
)
def test_forecasts_earlier_thresholds_and_its_own_reports_change_nothing(
    world: World, message: str, reason: str
) -> None:
    assert _cross(world, message) == {"action": "ignored", "reason": reason}
    assert world.instances() == 3
    assert world.record() is None


def test_a_notify_only_stack_reports_the_crossing_and_changes_nothing(world: World) -> None:
    assert _cross(world, enforce=False) == {"action": "notified"}
    assert world.instances() == 3
    assert world.store.copies[IC] == 2
    assert world.record() is None
    (message,) = world.heard()
    assert message.endswith("this stack notifies only, nothing was changed.")


def test_the_alert_parser_reads_the_threshold_as_a_share_of_the_budget() -> None:
    assert enforcer.parse_budget_alert(alert(threshold=2400.0, budgeted=3000.0)) == {
        "budget": "mlplat-dev-budget",
        "type": "ACTUAL",
        "thresholdPercent": 80.0,
    }
