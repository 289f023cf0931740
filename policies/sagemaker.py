"""Checks on SageMaker: isolated models in the VPC, encrypted and captured endpoints that autoscale, sealed training."""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from policies.base import (
    Config,
    Props,
    StackResource,
    Violation,
    as_list,
    as_number,
    get,
    is_set,
    of_type,
    peek,
    refers_to,
    truthy,
)

MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
TRAINING_JOB = "aws:sagemaker/trainingJob:TrainingJob"
TUNING_JOB = "aws:sagemaker/hyperParameterTuningJob:HyperParameterTuningJob"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
JOB_DEFINITION_TYPES = (
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
    "aws:sagemaker/modelQualityJobDefinition:ModelQualityJobDefinition",
    "aws:sagemaker/modelBiasJobDefinition:ModelBiasJobDefinition",
    "aws:sagemaker/modelExplainabilityJobDefinition:ModelExplainabilityJobDefinition",
)
TRAINING_TYPES = (TRAINING_JOB, TUNING_JOB, PIPELINE, *JOB_DEFINITION_TYPES)
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
IC_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
CLOUDCONTROL = "aws:cloudcontrol/resource:Resource"
IC_TYPE_NAME = "AWS::SageMaker::InferenceComponent"


def model_network_isolation(resource_type: str, props: Props, config: Config) -> list[str]:
    """Model containers make no outbound network calls."""
    if not truthy(get(props, "enableNetworkIsolation")):
        return ["the model container can reach the network; set enableNetworkIsolation: true."]
    return []


def model_vpc(resource_type: str, props: Props, config: Config) -> list[str]:
    """Model containers run in the platform's private subnets."""
    if not (is_set(props, "vpcConfig", "subnets") and is_set(props, "vpcConfig", "securityGroupIds")):
        return ["the model runs outside the VPC; set vpcConfig with the private subnets and a security group."]
    return []


def endpoint_config_kms(resource_type: str, props: Props, config: Config) -> list[str]:
    """Endpoint storage volumes are encrypted with a customer managed key."""
    if not is_set(props, "kmsKeyArn"):
        return ["the endpoint's storage volumes use the AWS managed key; set kmsKeyArn to the platform's KMS key."]
    return []


def data_capture(resource_type: str, props: Props, config: Config) -> list[str]:
    """Endpoints capture requests and responses for drift monitoring, at the configured sampling rate."""
    capture = get(props, "dataCaptureConfig")
    low = float(config["minSamplingPercentage"])
    if capture is None or not truthy(get(capture, "enableCapture")):
        return [
            "data capture is off; set dataCaptureConfig.enableCapture: true with a destinationS3Uri "
            "(mlplat:endpoints[].dataCapturePercent)."
        ]
    percent = as_number(get(capture, "initialSamplingPercentage"))
    if percent is not None and percent < low:
        return [
            f"data capture samples {percent:g}% of requests, below {low:g}%; raise "
            "dataCaptureConfig.initialSamplingPercentage (mlplat:endpoints[].dataCapturePercent)."
        ]
    return []


def endpoint_min_instances(resource_type: str, props: Props, config: Config) -> list[str]:
    """Endpoints never scale below the environment's minimum instance count."""
    low = int(config["minInstances"])
    if resource_type == SCALING_TARGET:
        # An inference component's target counts copies, not instances: sagemaker-no-scale-to-zero judges it.
        if get(props, "serviceNamespace") != "sagemaker" or get(props, "scalableDimension") == IC_DIMENSION:
            return []
        minimum = as_number(get(props, "minCapacity"))
        if minimum is not None and minimum < low:
            return [
                f"the endpoint scales in to {int(minimum)} instance(s), below {low}; set minCapacity >= {low} "
                "(mlplat:endpoints[].minCapacity)."
            ]
        return []
    found: list[str] = []
    for variant in as_list(get(props, "productionVariants")):
        # Serverless variants have no instances; an inference-component variant (no model) starts at one
        # instance and its floor is its managed instance scaling, which sagemaker-no-scale-to-zero judges.
        if get(variant, "serverlessConfig") is not None or get(variant, "modelName") is None:
            continue
        count = as_number(get(variant, "initialInstanceCount"))
        if count is not None and count < low:
            found.append(
                f"variant {get(variant, 'variantName')} starts with {int(count)} instance(s), below {low}; set "
                f"initialInstanceCount >= {low}."
            )
    return found


def no_scale_to_zero(resource_type: str, props: Props, config: Config) -> list[str]:
    """Endpoints stay warm: no inference component scales in to zero copies, no variant to zero instances."""
    remedy = "set mlplat:endpoints[].minCapacity >= 1 and drop serverless in this environment."
    if resource_type == SCALING_TARGET:
        if get(props, "scalableDimension") != IC_DIMENSION:
            return []
        minimum = as_number(get(props, "minCapacity"))
        if minimum is not None and minimum < 1:
            return [f"the inference component scales in to {int(minimum)} copies (scale to zero); {remedy}"]
        return []
    found: list[str] = []
    for variant in as_list(get(props, "productionVariants")):
        name = get(variant, "variantName")
        if get(variant, "serverlessConfig") is not None:
            found.append(f"variant {name} is serverless, which scales to zero; {remedy}")
            continue
        managed = get(variant, "managedInstanceScaling")
        minimum = as_number(get(managed, "minInstanceCount"))
        if get(managed, "status") == "ENABLED" and minimum is not None and minimum < 1:
            found.append(f"variant {name} may scale to {int(minimum)} instances (managedInstanceScaling); {remedy}")
    return found


def inference_components(resources: Sequence[StackResource]) -> dict[str, str]:
    """Inference component name -> its endpoint's name, from the Cloud Control resources that create them."""
    found: dict[str, str] = {}
    for resource in of_type(resources, CLOUDCONTROL):
        if peek(resource.props, "typeName") != IC_TYPE_NAME:
            continue
        state = peek(resource.props, "desiredState")
        try:
            parsed = json.loads(state) if isinstance(state, str) else None
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            found[str(parsed.get("InferenceComponentName"))] = str(parsed.get("EndpointName"))
    return found


def _serverless(endpoint: StackResource, resources: Sequence[StackResource]) -> bool:
    return any(
        refers_to(endpoint, "endpointConfigName", config, resources)
        and any(get(v, "serverlessConfig") is not None for v in as_list(peek(config.props, "productionVariants")))
        for config in of_type(resources, ENDPOINT_CONFIG)
    )


def _scales(target: StackResource, endpoint: StackResource, resources: Sequence[StackResource]) -> bool:
    if peek(target.props, "serviceNamespace") != "sagemaker":
        return False
    if peek(target.props, "scalableDimension") == IC_DIMENSION:
        resource_id = peek(target.props, "resourceId")
        owners = inference_components(resources)
        component = resource_id.removeprefix("inference-component/") if isinstance(resource_id, str) else None
        return component is not None and owners.get(component) == peek(endpoint.props, "name")
    depends_on = target.dependencies.get("resourceId")
    if depends_on:
        return endpoint.urn in depends_on
    resource_id = peek(target.props, "resourceId")
    name = peek(endpoint.props, "name")
    if isinstance(resource_id, str) and isinstance(name, str) and name:
        return resource_id.startswith(f"endpoint/{name}/variant/")
    # The endpoint's name is not known yet: the target built next to it is its own.
    return refers_to(target, "resourceId", endpoint, resources)


def endpoint_autoscaling(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every endpoint has an Application Auto Scaling target on its variant's instance count or, for one built on
    inference components, on their copy count; serverless endpoints scale themselves."""
    targets = list(of_type(resources, SCALING_TARGET))
    return [
        Violation(
            "endpoint has no autoscaling target; add an aws.appautoscaling.Target (serviceNamespace sagemaker, "
            f"scalableDimension {VARIANT_DIMENSION}) and a target-tracking policy.",
            endpoint.urn,
        )
        for endpoint in of_type(resources, ENDPOINT)
        if not any(_scales(t, endpoint, resources) for t in targets) and not _serverless(endpoint, resources)
    ]


def _sealed(what: str, isolation: Any, encryption: Any, vpc: Any, keys: tuple[str, str, str, str, str]) -> list[str]:
    """Messages for a training definition; `keys` spell the field names in the definition's own casing."""
    isolation_key, encryption_key, vpc_key, subnets_key, groups_key = keys
    found: list[str] = []
    if not truthy(isolation):
        found.append(f"{what} can reach the network; set {isolation_key}: true.")
    if not truthy(encryption):
        found.append(f"{what} sends traffic between its instances in clear text; set {encryption_key}: true.")
    if not (is_set(vpc, subnets_key) and is_set(vpc, groups_key)):
        found.append(f"{what} runs outside the VPC; set {vpc_key} with the private subnets and a security group.")
    return found


_CAMEL = ("enableNetworkIsolation", "enableInterContainerTrafficEncryption", "vpcConfig", "subnets", "securityGroupIds")
_API = ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "VpcConfig", "Subnets", "SecurityGroupIds")


def _pipeline_steps(definition: Any) -> list[Mapping[str, Any]]:
    if not isinstance(definition, str):
        return []
    try:
        parsed = json.loads(definition)
    except ValueError:
        return []
    steps = parsed.get("Steps") if isinstance(parsed, Mapping) else None
    return [s for s in as_list(steps) if isinstance(s, Mapping)]


def training_sealed(resource_type: str, props: Props, config: Config) -> list[str]:
    """Training, tuning, pipeline training steps and monitoring jobs: network isolation, encrypted traffic, VPC."""
    if resource_type == TRAINING_JOB:
        return _sealed(
            "the training job",
            get(props, "enableNetworkIsolation"),
            get(props, "enableInterContainerTrafficEncryption"),
            get(props, "vpcConfig"),
            _CAMEL,
        )
    if resource_type == TUNING_JOB:
        found: list[str] = []
        definitions = [get(props, "trainingJobDefinition"), *as_list(get(props, "trainingJobDefinitions"))]
        for definition in [d for d in definitions if d is not None]:
            name = get(definition, "definitionName")
            what = f"tuning definition {name}" if name else "the tuning job's training definition"
            found += _sealed(
                what,
                get(definition, "enableNetworkIsolation"),
                get(definition, "enableInterContainerTrafficEncryption"),
                get(definition, "vpcConfig"),
                _CAMEL,
            )
        return found
    if resource_type == PIPELINE:
        found = []
        for step in _pipeline_steps(get(props, "pipelineDefinition")):
            if step.get("Type") not in ("Training", "Tuning"):
                continue
            arguments = step.get("Arguments") or {}
            if step.get("Type") == "Tuning":
                arguments = get(arguments, "TrainingJobDefinition") or {}
            found += _sealed(
                f"pipeline step {step.get('Name')}",
                get(arguments, "EnableNetworkIsolation"),
                get(arguments, "EnableInterContainerTrafficEncryption"),
                get(arguments, "VpcConfig"),
                _API,
            )
        return found
    network = get(props, "networkConfig")
    return _sealed(
        "the monitoring job",
        get(network, "enableNetworkIsolation"),
        get(network, "enableInterContainerTrafficEncryption"),
        get(network, "vpcConfig"),
        (
            "networkConfig.enableNetworkIsolation",
            "networkConfig.enableInterContainerTrafficEncryption",
            "networkConfig.vpcConfig",
            "subnets",
            "securityGroupIds",
        ),
    )
