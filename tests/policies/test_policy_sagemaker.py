"""SageMaker policies: models, endpoint configurations, autoscaling, data capture, sealed training."""

import json

import pytest
from policy_support import UNKNOWN, changed, removed, resource, run, run_stack

from policies.base import Violation

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
TRAINING = "aws:sagemaker/trainingJob:TrainingJob"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0000"
EP = "urn:pulumi:test::mlplat::mlplat:platform:MlPlatform$mlplat:endpoint:Endpoint::abalone"
VPC = {"subnets": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"]}

MODEL_PROPS = {"executionRoleArn": "arn:aws:iam::1:role/serving", "enableNetworkIsolation": True, "vpcConfig": VPC}
CONFIG_PROPS = {
    "kmsKeyArn": KEY_ARN,
    "productionVariants": [
        {"variantName": "champion", "modelName": "abalone-1", "instanceType": "ml.c5.xlarge", "initialInstanceCount": 2}
    ],
    "dataCaptureConfig": {
        "enableCapture": True,
        "initialSamplingPercentage": 100,
        "destinationS3Uri": "s3://art/data-capture/abalone",
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
    },
}
TARGET_PROPS = {
    "serviceNamespace": "sagemaker",
    "resourceId": "endpoint/abalone-prod/variant/champion",
    "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
    "minCapacity": 2,
    "maxCapacity": 10,
}
TRAINING_PROPS = {
    "trainingJobName": "abalone-1",
    "roleArn": "arn:aws:iam::1:role/training",
    "enableNetworkIsolation": True,
    "enableInterContainerTrafficEncryption": True,
    "vpcConfig": VPC,
}


def test_an_isolated_model_in_the_vpc_passes_both_model_policies() -> None:
    assert run("sagemaker-model-network-isolation", MODEL, MODEL_PROPS) == []
    assert run("sagemaker-model-vpc", MODEL, MODEL_PROPS) == []


def test_a_model_with_network_access_is_reported() -> None:
    assert run("sagemaker-model-network-isolation", MODEL, changed(MODEL_PROPS, "enableNetworkIsolation", False)) == [
        "the model container can reach the network; set enableNetworkIsolation: true."
    ]


def test_a_model_outside_the_vpc_is_reported() -> None:
    assert run("sagemaker-model-vpc", MODEL, removed(MODEL_PROPS, "vpcConfig")) == [
        "the model runs outside the VPC; set vpcConfig with the private subnets and a security group."
    ]


def test_an_endpoint_configuration_with_a_key_passes() -> None:
    assert run("sagemaker-endpoint-kms", CONFIG, CONFIG_PROPS) == []


def test_an_endpoint_configuration_without_a_key_is_reported() -> None:
    assert run("sagemaker-endpoint-kms", CONFIG, removed(CONFIG_PROPS, "kmsKeyArn")) == [
        "the endpoint's storage volumes use the AWS managed key; set kmsKeyArn to the platform's KMS key."
    ]


def test_full_data_capture_passes_the_prod_threshold() -> None:
    assert run("sagemaker-data-capture", CONFIG, CONFIG_PROPS, minSamplingPercentage=100) == []


def test_an_endpoint_without_data_capture_is_reported() -> None:
    assert run("sagemaker-data-capture", CONFIG, removed(CONFIG_PROPS, "dataCaptureConfig")) == [
        "data capture is off; set dataCaptureConfig.enableCapture: true with a destinationS3Uri "
        "(mlplat:endpoints[].dataCapturePercent)."
    ]


def test_sampling_below_the_threshold_is_reported() -> None:
    props = changed(CONFIG_PROPS, "dataCaptureConfig.initialSamplingPercentage", 50)
    assert run("sagemaker-data-capture", CONFIG, props, minSamplingPercentage=100) == [
        "data capture samples 50% of requests, below 100%; raise dataCaptureConfig.initialSamplingPercentage "
        "(mlplat:endpoints[].dataCapturePercent)."
    ]


def test_a_target_at_the_minimum_passes() -> None:
    assert run("sagemaker-endpoint-min-instances", TARGET, TARGET_PROPS, minInstances=2) == []
    assert run("sagemaker-endpoint-min-instances", CONFIG, CONFIG_PROPS, minInstances=2) == []


def test_a_target_scaling_in_below_the_minimum_is_reported() -> None:
    props = changed(TARGET_PROPS, "minCapacity", 1)
    assert run("sagemaker-endpoint-min-instances", TARGET, props, minInstances=2) == [
        "the endpoint scales in to 1 instance(s), below 2; set minCapacity >= 2 (mlplat:endpoints[].minCapacity)."
    ]


def test_a_variant_starting_below_the_minimum_is_reported() -> None:
    props = changed(CONFIG_PROPS, "productionVariants.0.initialInstanceCount", 1)
    assert run("sagemaker-endpoint-min-instances", CONFIG, props, minInstances=2) == [
        "variant champion starts with 1 instance(s), below 2; set initialInstanceCount >= 2."
    ]


def test_targets_of_other_services_are_not_endpoints() -> None:
    props = changed(changed(TARGET_PROPS, "serviceNamespace", "ecs"), "minCapacity", 0)
    assert run("sagemaker-endpoint-min-instances", TARGET, props, minInstances=2) == []


def serving(target: dict | None = TARGET_PROPS) -> list:
    resources = [resource(ENDPOINT, "abalone-endpoint", {"name": "abalone-prod", "endpointConfigName": "c"}, parent=EP)]
    if target is not None:
        resources.append(resource(TARGET, "abalone-scaling", target, parent=EP))
    return resources


def test_an_endpoint_with_a_scaling_target_passes() -> None:
    assert run_stack("sagemaker-endpoint-autoscaling", serving()) == []


def test_an_endpoint_named_at_update_time_matches_the_target_beside_it() -> None:
    resources = [
        resource(ENDPOINT, "abalone-endpoint", {"name": UNKNOWN}, parent=EP),
        resource(TARGET, "abalone-scaling", changed(TARGET_PROPS, "resourceId", UNKNOWN), parent=EP),
    ]
    assert run_stack("sagemaker-endpoint-autoscaling", resources) == []


def test_an_endpoint_without_a_scaling_target_is_reported() -> None:
    resources = serving(target=None)
    assert run_stack("sagemaker-endpoint-autoscaling", resources) == [
        Violation(
            "endpoint has no autoscaling target; add an aws.appautoscaling.Target (serviceNamespace sagemaker, "
            "scalableDimension sagemaker:variant:DesiredInstanceCount) and a target-tracking policy.",
            resources[0].urn,
        )
    ]


def test_a_target_for_another_endpoint_does_not_count() -> None:
    resources = serving(target=changed(TARGET_PROPS, "resourceId", "endpoint/other/variant/champion"))
    assert [v.urn for v in run_stack("sagemaker-endpoint-autoscaling", resources)] == [resources[0].urn]


def test_a_sealed_training_job_passes() -> None:
    assert run("sagemaker-training-sealed", TRAINING, TRAINING_PROPS) == []


def test_a_training_job_missing_every_seal_is_reported_three_times() -> None:
    props = {"trainingJobName": "abalone-1", "roleArn": "arn:aws:iam::1:role/training"}
    assert run("sagemaker-training-sealed", TRAINING, props) == [
        "the training job can reach the network; set enableNetworkIsolation: true.",
        "the training job sends traffic between its instances in clear text; set "
        "enableInterContainerTrafficEncryption: true.",
        "the training job runs outside the VPC; set vpcConfig with the private subnets and a security group.",
    ]


def test_a_pipeline_training_step_without_encryption_is_reported() -> None:
    step = {
        "Name": "train",
        "Type": "Training",
        "Arguments": {
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": False,
            "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
        },
    }
    props = {"pipelineName": "p", "pipelineDefinition": json.dumps({"Version": "2020-12-01", "Steps": [step]})}
    assert run("sagemaker-training-sealed", "aws:sagemaker/pipeline:Pipeline", props) == [
        "pipeline step train sends traffic between its instances in clear text; set "
        "EnableInterContainerTrafficEncryption: true."
    ]


def test_a_monitoring_job_outside_the_vpc_is_reported() -> None:
    props = {"networkConfig": {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True}}
    type_ = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
    assert run("sagemaker-training-sealed", type_, props) == [
        "the monitoring job runs outside the VPC; set networkConfig.vpcConfig with the private subnets and a "
        "security group."
    ]


# One bad fixture per condition each SageMaker policy checks; each case is named after its condition.
@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            changed(MODEL_PROPS, "enableNetworkIsolation", "false"),
            ["the model container can reach the network; set enableNetworkIsolation: true."],
            id="isolation as the string false",
        ),
        pytest.param(changed(MODEL_PROPS, "enableNetworkIsolation", "true"), [], id="isolation as the string true"),
    ],
)
def test_sagemaker_model_network_isolation_checks_each_spelling(props: dict, messages: list[str]) -> None:
    assert run("sagemaker-model-network-isolation", MODEL, props) == messages


@pytest.mark.parametrize(
    "props",
    [
        pytest.param(removed(MODEL_PROPS, "vpcConfig.subnets"), id="no subnets"),
        pytest.param(changed(MODEL_PROPS, "vpcConfig.subnets", []), id="empty subnets"),
        pytest.param(removed(MODEL_PROPS, "vpcConfig.securityGroupIds"), id="no security groups"),
    ],
)
def test_sagemaker_model_vpc_needs_both_subnets_and_security_groups(props: dict) -> None:
    assert run("sagemaker-model-vpc", MODEL, props) == [
        "the model runs outside the VPC; set vpcConfig with the private subnets and a security group."
    ]


def test_sagemaker_endpoint_kms_reports_an_empty_key() -> None:
    assert run("sagemaker-endpoint-kms", CONFIG, changed(CONFIG_PROPS, "kmsKeyArn", "")) == [
        "the endpoint's storage volumes use the AWS managed key; set kmsKeyArn to the platform's KMS key."
    ]


CAPTURE_OFF = (
    "data capture is off; set dataCaptureConfig.enableCapture: true with a destinationS3Uri "
    "(mlplat:endpoints[].dataCapturePercent)."
)


def _low(percent: str, low: str) -> list[str]:
    return [
        f"data capture samples {percent}% of requests, below {low}%; raise dataCaptureConfig.initialSamplingPercentage "
        "(mlplat:endpoints[].dataCapturePercent)."
    ]


@pytest.mark.parametrize(
    ("path", "value", "config", "messages"),
    [
        pytest.param("dataCaptureConfig.enableCapture", False, {}, [CAPTURE_OFF], id="enableCapture false"),
        pytest.param(
            "dataCaptureConfig", {"initialSamplingPercentage": 100}, {}, [CAPTURE_OFF], id="enableCapture unset"
        ),
        pytest.param("dataCaptureConfig.initialSamplingPercentage", 1, {}, [], id="at the default minimum 1"),
        pytest.param(
            "dataCaptureConfig.initialSamplingPercentage",
            0.5,
            {},
            _low("0.5", "1"),
            id="just under the default minimum 1",
        ),
        pytest.param(
            "dataCaptureConfig.initialSamplingPercentage",
            20,
            {"minSamplingPercentage": 20},
            [],
            id="at a configured minimum",
        ),
        pytest.param(
            "dataCaptureConfig.initialSamplingPercentage",
            19,
            {"minSamplingPercentage": 20},
            _low("19", "20"),
            id="just under a configured minimum",
        ),
    ],
)
def test_sagemaker_data_capture_checks_each_condition(
    path: str, value: object, config: dict, messages: list[str]
) -> None:
    assert run("sagemaker-data-capture", CONFIG, changed(CONFIG_PROPS, path, value), **config) == messages


@pytest.mark.parametrize(
    ("minimum", "messages"),
    [
        pytest.param(1, [], id="target at the default minimum 1"),
        pytest.param(
            0,
            [
                "the endpoint scales in to 0 instance(s), below 1; set minCapacity >= 1 "
                "(mlplat:endpoints[].minCapacity)."
            ],
            id="target just under the default minimum 1",
        ),
    ],
)
def test_sagemaker_endpoint_min_instances_holds_a_target_to_the_default(minimum: int, messages: list[str]) -> None:
    assert run("sagemaker-endpoint-min-instances", TARGET, changed(TARGET_PROPS, "minCapacity", minimum)) == messages


CHAMPION: dict = CONFIG_PROPS["productionVariants"][0]


@pytest.mark.parametrize(
    ("variant", "messages"),
    [
        pytest.param({**CHAMPION, "initialInstanceCount": 2}, [], id="variant at a configured minimum 2"),
        pytest.param(
            {**CHAMPION, "initialInstanceCount": 1},
            ["variant champion starts with 1 instance(s), below 2; set initialInstanceCount >= 2."],
            id="variant just under a configured minimum 2",
        ),
        pytest.param(
            {**CHAMPION, "initialInstanceCount": 1, "serverlessConfig": {"memorySizeInMb": 1024}},
            [],
            id="serverless variant",
        ),
        pytest.param(
            {"variantName": "primary", "instanceType": "ml.c5.large", "initialInstanceCount": 1},
            [],
            id="inference-component variant without a model",
        ),
    ],
)
def test_sagemaker_endpoint_min_instances_checks_each_variant(variant: dict, messages: list[str]) -> None:
    props = changed(CONFIG_PROPS, "productionVariants", [variant])
    assert run("sagemaker-endpoint-min-instances", CONFIG, props, minInstances=2) == messages


SEALED = ("enableNetworkIsolation", "enableInterContainerTrafficEncryption", "vpcConfig")
OPEN_NETWORK = "{} can reach the network; set {}: true."
CLEAR_TEXT = "{} sends traffic between its instances in clear text; set {}: true."
OUTSIDE_VPC = "{} runs outside the VPC; set {} with the private subnets and a security group."


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            changed(TRAINING_PROPS, "enableNetworkIsolation", False),
            [OPEN_NETWORK.format("the training job", "enableNetworkIsolation")],
            id="isolation off",
        ),
        pytest.param(
            changed(TRAINING_PROPS, "enableInterContainerTrafficEncryption", "false"),
            [CLEAR_TEXT.format("the training job", "enableInterContainerTrafficEncryption")],
            id="traffic encryption off",
        ),
        pytest.param(
            removed(TRAINING_PROPS, "vpcConfig.subnets"),
            [OUTSIDE_VPC.format("the training job", "vpcConfig")],
            id="vpc without subnets",
        ),
        pytest.param(
            removed(TRAINING_PROPS, "vpcConfig.securityGroupIds"),
            [OUTSIDE_VPC.format("the training job", "vpcConfig")],
            id="vpc without security groups",
        ),
    ],
)
def test_sagemaker_training_sealed_checks_each_seal_of_a_training_job(props: dict, messages: list[str]) -> None:
    assert run("sagemaker-training-sealed", TRAINING, props) == messages


TUNING = "aws:sagemaker/hyperParameterTuningJob:HyperParameterTuningJob"
DEFINITION = {k: v for k, v in TRAINING_PROPS.items() if k in SEALED}


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param({"trainingJobDefinition": DEFINITION}, [], id="a sealed definition"),
        pytest.param(
            {"trainingJobDefinition": {**DEFINITION, "enableNetworkIsolation": False}},
            [OPEN_NETWORK.format("the tuning job's training definition", "enableNetworkIsolation")],
            id="the unnamed definition open",
        ),
        pytest.param(
            {"trainingJobDefinitions": [DEFINITION, {**DEFINITION, "definitionName": "wide", "vpcConfig": {}}]},
            [OUTSIDE_VPC.format("tuning definition wide", "vpcConfig")],
            id="the second named definition outside the VPC",
        ),
        pytest.param(
            {"trainingJobDefinition": {**DEFINITION, "enableInterContainerTrafficEncryption": None}},
            [CLEAR_TEXT.format("the tuning job's training definition", "enableInterContainerTrafficEncryption")],
            id="the definition without traffic encryption",
        ),
    ],
)
def test_sagemaker_training_sealed_checks_each_tuning_definition(props: dict, messages: list[str]) -> None:
    assert run("sagemaker-training-sealed", TUNING, props) == messages


PIPELINE = "aws:sagemaker/pipeline:Pipeline"
API_SEALED = {
    "EnableNetworkIsolation": True,
    "EnableInterContainerTrafficEncryption": True,
    "VpcConfig": {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
}


def _pipeline(*steps: dict) -> dict:
    return {"pipelineName": "p", "pipelineDefinition": json.dumps({"Steps": list(steps)})}


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            _pipeline(
                {
                    "Name": "tune",
                    "Type": "Tuning",
                    "Arguments": {"TrainingJobDefinition": {**API_SEALED, "EnableNetworkIsolation": False}},
                }
            ),
            [OPEN_NETWORK.format("pipeline step tune", "EnableNetworkIsolation")],
            id="a tuning step's definition open",
        ),
        pytest.param(
            _pipeline(
                {"Name": "train", "Type": "Training", "Arguments": {**API_SEALED, "VpcConfig": {"Subnets": ["s"]}}}
            ),
            [OUTSIDE_VPC.format("pipeline step train", "VpcConfig")],
            id="a training step without security groups",
        ),
        pytest.param(
            _pipeline({"Name": "prep", "Type": "Processing", "Arguments": {}}),
            [],
            id="a processing step is not training",
        ),
        pytest.param({"pipelineName": "p", "pipelineDefinition": "not json"}, [], id="a definition that is not JSON"),
        pytest.param(
            {"pipelineName": "p", "pipelineDefinition": json.dumps([1])}, [], id="a definition that is no object"
        ),
    ],
)
def test_sagemaker_training_sealed_checks_each_pipeline_step(props: dict, messages: list[str]) -> None:
    assert run("sagemaker-training-sealed", PIPELINE, props) == messages


def test_sagemaker_training_sealed_reports_a_pipeline_training_step_without_arguments_three_times() -> None:
    assert run("sagemaker-training-sealed", PIPELINE, _pipeline({"Name": "train", "Type": "Training"})) == [
        OPEN_NETWORK.format("pipeline step train", "EnableNetworkIsolation"),
        CLEAR_TEXT.format("pipeline step train", "EnableInterContainerTrafficEncryption"),
        OUTSIDE_VPC.format("pipeline step train", "VpcConfig"),
    ]


def test_sagemaker_training_sealed_names_a_monitoring_jobs_fields_under_network_config() -> None:
    type_ = "aws:sagemaker/modelQualityJobDefinition:ModelQualityJobDefinition"
    assert run("sagemaker-training-sealed", type_, {}) == [
        OPEN_NETWORK.format("the monitoring job", "networkConfig.enableNetworkIsolation"),
        CLEAR_TEXT.format("the monitoring job", "networkConfig.enableInterContainerTrafficEncryption"),
        OUTSIDE_VPC.format("the monitoring job", "networkConfig.vpcConfig"),
    ]


def test_sagemaker_training_sealed_reports_every_open_step_after_a_processing_step() -> None:
    open_step = {"Type": "Training", "Arguments": {**API_SEALED, "EnableNetworkIsolation": False}}
    props = _pipeline({"Name": "prep", "Type": "Processing"}, {"Name": "a", **open_step}, {"Name": "b", **open_step})
    assert run("sagemaker-training-sealed", PIPELINE, props) == [
        OPEN_NETWORK.format("pipeline step a", "EnableNetworkIsolation"),
        OPEN_NETWORK.format("pipeline step b", "EnableNetworkIsolation"),
    ]


def test_sagemaker_training_sealed_reports_every_open_tuning_definition() -> None:
    definitions = [{**DEFINITION, "definitionName": n, "enableNetworkIsolation": False} for n in ("a", "b")]
    assert run("sagemaker-training-sealed", TUNING, {"trainingJobDefinitions": definitions}) == [
        OPEN_NETWORK.format("tuning definition a", "enableNetworkIsolation"),
        OPEN_NETWORK.format("tuning definition b", "enableNetworkIsolation"),
    ]


def test_sagemaker_training_sealed_passes_a_sealed_monitoring_job() -> None:
    props = {"networkConfig": {**DEFINITION}}
    assert (
        run("sagemaker-training-sealed", "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition", props) == []
    )


SERVERLESS = {"productionVariants": [{"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 1024}}]}


@pytest.mark.parametrize(
    ("configs", "reported"),
    [
        pytest.param([("c", SERVERLESS)], False, id="its own configuration is serverless"),
        pytest.param([("c", CONFIG_PROPS)], True, id="its own configuration has instances"),
        pytest.param(
            [("c", CONFIG_PROPS), ("other", SERVERLESS)], True, id="another endpoint's configuration is serverless"
        ),
    ],
)
def test_sagemaker_endpoint_autoscaling_exempts_only_a_serverless_endpoint(
    configs: list[tuple[str, dict]], reported: bool
) -> None:
    resources = [
        resource(ENDPOINT, "abalone-endpoint", {"name": "abalone-prod", "endpointConfigName": "c"}, parent=EP),
        *(resource(CONFIG, f"{name}-config", {**props, "name": name}, parent=None) for name, props in configs),
    ]
    violations = run_stack("sagemaker-endpoint-autoscaling", resources)
    assert [v.urn for v in violations] == ([resources[0].urn] if reported else [])
