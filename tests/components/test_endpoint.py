"""The InferenceEndpoint component: isolated model in the VPC, encrypted capture, blue/green, autoscaling."""

import json

import pulumi
import pulumi_aws as aws
import pytest
from plan_helpers import owned, parent_type, statements

from components.config import EndpointConfig
from components.endpoint import InferenceEndpoint, InferenceEndpointArgs
from mlplat import synth
from mlplat.synth import PlanRecord

ENDPOINT = "mlplat:endpoint:InferenceEndpoint"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SM_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _endpoint_program(settings: EndpointConfig, grant: bool = False) -> synth.PlanRecord:
    def program() -> None:
        endpoint = InferenceEndpoint(
            "ep",
            InferenceEndpointArgs(
                settings=settings,
                image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/serving:0.1.0",
                model_data_url="s3://bucket/models/m/1/model.tar.gz",
                role_arn="arn:aws:iam::123456789012:role/serving",
                subnet_ids=["subnet-a", "subnet-b"],
                security_group_ids=["sg-1"],
                kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
                data_capture_uri="s3://bucket/data-capture/ep/",
            ),
        )
        if grant:
            endpoint.grant_invoke(aws.iam.Role("caller", assume_role_policy="{}"))
        pulumi.export("endpointArn", endpoint.endpoint_arn)

    return synth.run(program)


@pytest.mark.parametrize("type_token", [MODEL, CONFIG, SM_ENDPOINT, TARGET, POLICY, ALARM])
def test_every_piece_is_a_child_of_the_endpoint_component(prod: PlanRecord, type_token: str) -> None:
    endpoint = prod.get(ENDPOINT, "mlplat-prod-abalone-prod")
    assert {r.type for r in prod.children(endpoint.urn)} == {MODEL, CONFIG, SM_ENDPOINT, TARGET, POLICY, ALARM}
    assert len(owned(prod, type_token, ENDPOINT)) == (2 if type_token == ALARM else 1)


def test_one_endpoint_component_per_configured_endpoint(plans: dict[str, PlanRecord]) -> None:
    for stack in ("dev", "staging", "prod"):
        names = [r.name for r in plans[stack].of_type(ENDPOINT)]
        assert names == [f"mlplat-{stack}-abalone-{stack}"]


def test_model_runs_network_isolated_in_the_private_subnets(prod: PlanRecord) -> None:
    (model,) = owned(prod, MODEL, ENDPOINT)
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["vpcConfig"] == {
        "subnets": prod.outputs["privateSubnetIds"],
        "securityGroupIds": [prod.outputs["workloadSecurityGroupId"]],
    }


def test_model_runs_as_the_serving_role(prod: PlanRecord) -> None:
    assert owned(prod, MODEL, ENDPOINT)[0].inputs["executionRoleArn"] == prod.outputs["servingRoleArn"]


def test_model_data_is_the_versioned_archive_under_models(prod: PlanRecord) -> None:
    container = owned(prod, MODEL, ENDPOINT)[0].inputs["primaryContainer"]
    assert container["modelDataUrl"] == f"s3://{prod.outputs['bucketName']}/models/abalone/1/model.tar.gz"


def test_model_image_is_the_serving_image_in_this_accounts_ecr(dev: PlanRecord) -> None:
    container = owned(dev, MODEL, ENDPOINT)[0].inputs["primaryContainer"]
    assert container["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlplat/serving:0.1.0"


def test_model_container_binds_the_sagemaker_port_and_knows_its_model(dev: PlanRecord) -> None:
    environment = owned(dev, MODEL, ENDPOINT)[0].inputs["primaryContainer"]["environment"]
    assert environment == {
        "SAGEMAKER_BIND_TO_PORT": "8080",
        "MLPLAT_MODEL_URI": "/opt/ml/model",
        "MLPLAT_MODEL_NAME": "abalone",
        "MLPLAT_MODEL_VERSION": "1",
    }


def test_model_gets_no_fixed_name_so_a_new_version_replaces_it(prod: PlanRecord) -> None:
    assert "name" not in owned(prod, MODEL, ENDPOINT)[0].inputs
    assert "name" not in owned(prod, CONFIG, ENDPOINT)[0].inputs


def test_a_model_digest_changes_the_models_inputs() -> None:
    digest = "ab" * 32
    record = _endpoint_program(EndpointConfig(name="ep", model="mdl", model_sha256=digest))
    assert owned(record, MODEL, ENDPOINT)[0].inputs["primaryContainer"]["environment"]["MLPLAT_MODEL_SHA256"] == digest


def test_configuration_encrypts_with_the_platform_key(prod: PlanRecord) -> None:
    assert owned(prod, CONFIG, ENDPOINT)[0].inputs["kmsKeyArn"] == prod.outputs["kmsKeyArn"]


@pytest.mark.parametrize(("stack", "count"), [("dev", 1), ("staging", 1), ("prod", 2)])
def test_variant_starts_at_the_minimum_capacity(plans: dict[str, PlanRecord], stack: str, count: int) -> None:
    (variant,) = owned(plans[stack], CONFIG, ENDPOINT)[0].inputs["productionVariants"]
    assert variant["initialInstanceCount"] == count
    assert variant["variantName"] == "primary"


@pytest.mark.parametrize(("stack", "percent"), [("dev", 100), ("staging", 50), ("prod", 100)])
def test_data_capture_goes_to_the_endpoints_prefix_at_the_configured_rate(
    plans: dict[str, PlanRecord], stack: str, percent: int
) -> None:
    plan = plans[stack]
    capture = owned(plan, CONFIG, ENDPOINT)[0].inputs["dataCaptureConfig"]
    assert capture["enableCapture"] is True
    assert capture["initialSamplingPercentage"] == percent
    assert capture["destinationS3Uri"] == f"s3://{plan.outputs['bucketName']}/data-capture/abalone-{stack}/"
    assert capture["kmsKeyId"] == plan.outputs["kmsKeyArn"]
    assert [o["captureMode"] for o in capture["captureOptions"]] == ["Input", "Output"]


def test_no_data_capture_when_the_rate_is_zero() -> None:
    record = _endpoint_program(EndpointConfig(name="ep", model="mdl", data_capture_percent=0))
    assert "dataCaptureConfig" not in owned(record, CONFIG, ENDPOINT)[0].inputs


@pytest.mark.parametrize(("stack", "low", "high"), [("staging", 1, 4), ("prod", 2, 10)])
def test_autoscaling_target_spans_the_configured_capacity(
    plans: dict[str, PlanRecord], stack: str, low: int, high: int
) -> None:
    (target,) = owned(plans[stack], TARGET, ENDPOINT)
    assert target.inputs["serviceNamespace"] == "sagemaker"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target.inputs["resourceId"] == f"endpoint/mlplat-{stack}-abalone-{stack}/variant/primary"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (low, high)


def test_scaling_policy_tracks_invocations_per_instance_with_cooldowns(prod: PlanRecord) -> None:
    (policy,) = owned(prod, POLICY, ENDPOINT)
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert (tracking["targetValue"], tracking["scaleInCooldown"], tracking["scaleOutCooldown"]) == (400, 600, 60)


def test_endpoint_deploys_blue_green_with_a_canary(prod: PlanRecord) -> None:
    policy = owned(prod, SM_ENDPOINT, ENDPOINT)[0].inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    routing = policy["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY"
    assert routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 10}
    assert routing["waitIntervalInSeconds"] == 15 * 60
    assert policy["terminationWaitInSeconds"] == 5 * 60


def test_endpoint_rolls_back_on_its_own_error_and_latency_alarms(prod: PlanRecord) -> None:
    alarms = owned(prod, SM_ENDPOINT, ENDPOINT)[0].inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    names = sorted(a["alarmName"] for a in alarms)
    assert [n.rsplit("-", 1)[0] for n in names] == [
        "mlplat-prod-abalone-prod-errors-alarm",
        "mlplat-prod-abalone-prod-latency-alarm",
    ]


def test_error_alarm_fires_above_the_configured_5xx_rate(prod: PlanRecord) -> None:
    alarm = prod.get(ALARM, "mlplat-prod-abalone-prod-errors-alarm")
    queries = {q["id"]: q for q in alarm.inputs["metricQueries"]}
    assert alarm.inputs["threshold"] == 0.5
    assert queries["errors"]["metric"]["metricName"] == "Invocation5XXErrors"
    assert queries["errors"]["metric"]["dimensions"] == {
        "EndpointName": "mlplat-prod-abalone-prod",
        "VariantName": "primary",
    }
    assert queries["error_rate"]["returnData"] is True


def test_latency_alarm_fires_above_the_configured_p99_in_microseconds(prod: PlanRecord) -> None:
    alarm = prod.get(ALARM, "mlplat-prod-abalone-prod-latency-alarm")
    assert (alarm.inputs["metricName"], alarm.inputs["extendedStatistic"]) == ("ModelLatency", "p99")
    assert alarm.inputs["threshold"] == 200 * 1000


def test_endpoint_names_are_exported(staging: PlanRecord) -> None:
    assert staging.outputs["endpointNames"] == ["mlplat-staging-abalone-staging"]


def test_grant_invoke_allows_invoking_this_endpoint_only() -> None:
    record = _endpoint_program(EndpointConfig(name="ep", model="mdl"), grant=True)
    grant = record.get("aws:iam/rolePolicy:RolePolicy", "ep-invoke-caller")
    (statement,) = statements(grant)
    assert parent_type(grant) == ENDPOINT
    assert statement["Action"] == ["sagemaker:InvokeEndpoint"]
    assert statement["Resource"] == record.outputs["endpointArn"]
    assert json.loads(grant.inputs["policy"])["Version"] == "2012-10-17"
