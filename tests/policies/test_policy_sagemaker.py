"""SageMaker policies: models, endpoint configurations, autoscaling, data capture, sealed training."""

import json

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
