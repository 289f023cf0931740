"""Scale-to-zero endpoints (inference components) and serverless endpoints, as dev and a small program plan them."""

import json
from datetime import date
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator
from plan_helpers import owned

from components.config import EndpointConfig, ServerlessConfig
from components.endpoint import InferenceEndpoint, InferenceEndpointArgs
from mlplat import synth
from mlplat.cost.estimate import estimate
from mlplat.synth import PlanRecord

ENDPOINT = "mlplat:endpoint:InferenceEndpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SM_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
IC = "aws:cloudcontrol/resource:Resource"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DEV_IC = "mlplat-dev-abalone-dev-abalone"
BEFORE = Path(__file__).parent / "fixtures" / "Pulumi.dev-before.yaml"


def _program(settings: EndpointConfig) -> PlanRecord:
    def program() -> None:
        InferenceEndpoint(
            "ep",
            InferenceEndpointArgs(
                settings=settings,
                image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/serving:0.1.0",
                model_data_url="s3://bucket/models/m/1/model.tar.gz",
                role_arn="arn:aws:iam::123456789012:role/serving",
                subnet_ids=["subnet-a"],
                security_group_ids=["sg-1"],
                kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                data_capture_uri="s3://bucket/data-capture/ep/",
            ),
        )

    return synth.run(program)


def _desired(plan: PlanRecord) -> dict[str, object]:
    (component,) = owned(plan, IC, ENDPOINT)
    state: dict[str, object] = json.loads(component.inputs["desiredState"])
    return state


def test_dev_plans_an_inference_component_per_model_on_its_endpoint(dev: PlanRecord) -> None:
    (component,) = owned(dev, IC, ENDPOINT)
    assert component.inputs["typeName"] == "AWS::SageMaker::InferenceComponent"
    state = _desired(dev)
    assert state["EndpointName"] == "mlplat-dev-abalone-dev"
    assert state["InferenceComponentName"] == DEV_IC
    assert state["VariantName"] == "primary"
    assert state["RuntimeConfig"] == {"CopyCount": 1}
    specification = state["Specification"]
    assert isinstance(specification, dict)
    assert specification["ModelName"].startswith("mlplat-dev-abalone-dev-model-")
    assert specification["ComputeResourceRequirements"] == {
        "NumberOfCpuCoresRequired": 1.0,
        "MinMemoryRequiredInMb": 1024,
    }


def test_the_inference_component_carries_the_stack_tags(dev: PlanRecord) -> None:
    tags = {t["Key"]: t["Value"] for t in _desired(dev)["Tags"]}  # type: ignore[attr-defined]
    assert tags == {
        "mlplat:environment": "dev",
        "mlplat:team": "ml-research",
        "mlplat:cost-center": "cc-4100",
        "mlplat:component": "endpoint",
    }


def test_the_inference_component_state_is_a_valid_create_request() -> None:
    # Cloud Control takes the CloudFormation schema, whose properties are CreateInferenceComponent's input.
    record = _program(EndpointConfig(name="ep", model="mdl", instance_type="ml.c5.large", min_capacity=0))
    state = _desired(record)
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateInferenceComponent")
    report = ParamValidator().validate(state, shape.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_variant_has_no_model_and_may_scale_its_instances_to_zero(dev: PlanRecord) -> None:
    (config,) = owned(dev, CONFIG, ENDPOINT)
    (variant,) = config.inputs["productionVariants"]
    assert "modelName" not in variant
    assert variant["managedInstanceScaling"] == {"status": "ENABLED", "minInstanceCount": 0, "maxInstanceCount": 2}
    assert variant["routingConfigs"] == [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}]
    assert (variant["instanceType"], variant["initialInstanceCount"]) == ("ml.c5.large", 1)
    assert config.inputs["executionRoleArn"] == dev.outputs["servingRoleArn"]


def test_copies_autoscale_between_zero_and_the_maximum(dev: PlanRecord) -> None:
    (target,) = owned(dev, TARGET, ENDPOINT)
    assert target.inputs["resourceId"] == f"inference-component/{DEV_IC}"
    assert target.inputs["scalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (0, 2)


def test_copies_track_invocations_per_copy(dev: PlanRecord) -> None:
    policy = dev.get(POLICY, "mlplat-dev-abalone-dev-scaling-policy")
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
    }
    assert tracking["targetValue"] == 200


def test_a_request_with_no_copy_to_serve_it_wakes_the_component(dev: PlanRecord) -> None:
    alarm = dev.get(ALARM, "mlplat-dev-abalone-dev-wake-alarm")
    wake = dev.get(POLICY, "mlplat-dev-abalone-dev-wake-policy")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("AWS/SageMaker", "NoCapacityInvocationFailures")
    assert alarm.inputs["dimensions"] == {"InferenceComponentName": DEV_IC}
    assert (alarm.inputs["comparisonOperator"], alarm.inputs["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    (action,) = alarm.inputs["alarmActions"]
    assert "mlplat-dev-abalone-dev-wake-policy" in action
    step = wake.inputs["stepScalingPolicyConfiguration"]
    assert wake.inputs["policyType"] == "StepScaling"
    assert step["adjustmentType"] == "ChangeInCapacity"
    assert step["stepAdjustments"] == [{"metricIntervalLowerBound": "0", "scalingAdjustment": 1}]


def test_a_scale_to_zero_endpoint_has_no_blue_green_rollback(dev: PlanRecord) -> None:
    assert "deploymentConfig" not in owned(dev, SM_ENDPOINT, ENDPOINT)[0].inputs
    assert {a.name for a in owned(dev, ALARM, ENDPOINT)} == {"mlplat-dev-abalone-dev-wake-alarm"}


def test_dev_idle_estimate_drops_by_exactly_the_endpoints_share(dev: PlanRecord) -> None:
    before = estimate(synth.synthesize(BEFORE, "dev"), today=date(2026, 11, 1))
    after = estimate(dev, today=date(2026, 11, 1))
    (old,) = [line for line in before.lines if line.item == "mlplat-dev-abalone-dev-config"]
    assert round(old.idle_usd, 2) == 40.88
    assert round(before.idle_total - after.idle_total, 2) == 40.88
    (new,) = [line for line in after.lines if line.item == "mlplat-dev-abalone-dev-config"]
    assert (new.idle_usd, round(new.peak_usd, 2)) == (0.0, 148.92)


def test_a_serverless_endpoint_has_memory_and_concurrency_and_no_instances() -> None:
    record = _program(
        EndpointConfig(
            name="ep",
            model="mdl",
            serverless=ServerlessConfig(memory_mib=2048, max_concurrency=5),
            data_capture_percent=0,
        )
    )
    (config,) = owned(record, CONFIG, ENDPOINT)
    (variant,) = config.inputs["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 2048, "maxConcurrency": 5}
    assert "instanceType" not in variant and "initialInstanceCount" not in variant
    assert owned(record, TARGET, ENDPOINT) == []


def test_a_serverless_model_runs_outside_the_vpc_because_serverless_cannot_join_one() -> None:
    record = _program(
        EndpointConfig(
            name="ep",
            model="mdl",
            serverless=ServerlessConfig(memory_mib=1024, max_concurrency=1),
            data_capture_percent=0,
        )
    )
    model = owned(record, "aws:sagemaker/model:Model", ENDPOINT)[0]
    assert "vpcConfig" not in model.inputs
    assert model.inputs["enableNetworkIsolation"] is False


def test_serverless_costs_nothing_idle_and_its_memory_at_full_concurrency_at_peak() -> None:
    record = _program(
        EndpointConfig(
            name="ep",
            model="mdl",
            serverless=ServerlessConfig(memory_mib=2048, max_concurrency=5),
            data_capture_percent=0,
        )
    )
    (line,) = estimate(record, today=date(2026, 11, 1)).lines
    assert (line.idle_usd, round(line.peak_usd, 2)) == (0.0, round(0.072 * 2 * 5 * 730, 2))


@pytest.mark.parametrize(
    ("shape", "bounds"), [("ServerlessMemorySizeInMB", (1024, 6144)), ("ServerlessMaxConcurrency", (1, 200))]
)
def test_the_serverless_bounds_are_botocores(shape: str, bounds: tuple[int, int]) -> None:
    from components import sagemaker_catalog

    model = botocore.session.get_session().get_service_model("sagemaker").shape_for(shape)
    assert (model.metadata["min"], model.metadata["max"]) == bounds
    ours = {
        "ServerlessMemorySizeInMB": (
            min(sagemaker_catalog.SERVERLESS_MEMORY_MIB),
            max(sagemaker_catalog.SERVERLESS_MEMORY_MIB),
        ),
        "ServerlessMaxConcurrency": sagemaker_catalog.SERVERLESS_MAX_CONCURRENCY,
    }
    assert ours[shape] == bounds
