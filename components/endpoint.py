"""One SageMaker real-time endpoint: an isolated model in the VPC, encrypted and captured, autoscaled, and updated
blue/green with a canary and alarm-driven rollback. Three hosting modes, chosen by the endpoint's settings:

- instances (the default): a variant with the model and an instance count, autoscaled on its instance count;
- scale to zero (`minCapacity: 0`): a variant with no model whose managed instance scaling may reach zero
  instances, and an inference component per model whose copy count autoscales between 0 and `maxCapacity`.
  Target tracking cannot scale out from zero copies, so a CloudWatch alarm on `NoCapacityInvocationFailures` (a
  request arrived and nothing could serve it) drives a step-scaling policy that adds one copy;
- serverless (`serverless:`): a variant with memory and concurrency, which SageMaker scales (to zero) itself.

pulumi-aws (7.x) has no inference-component resource, so the component is an `aws.cloudcontrol.Resource` of type
`AWS::SageMaker::InferenceComponent` (Cloud Control creates it from its CloudFormation schema); its name is set
here, because the scaling target and the wake alarm address it by name.

A new model version or digest changes the model's inputs, so Pulumi replaces the Model (new auto-generated
name), which replaces the EndpointConfiguration, which updates the Endpoint in place: SageMaker then runs the
blue/green deployment described by `deployment_config`, and rolls back if either alarm fires.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import EndpointConfig

VARIANT = "primary"
SERVING_PORT = "8080"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
IC_TYPE = "AWS::SageMaker::InferenceComponent"
IC_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
IC_SCALING_METRIC = "SageMakerInferenceComponentInvocationsPerCopy"
WAKE_METRIC = "NoCapacityInvocationFailures"
WAKE_PERIOD_SECONDS = 30
ALARM_PERIOD_SECONDS = 60
ALARM_EVALUATION_PERIODS = 3


@dataclass(frozen=True)
class InferenceEndpointArgs:
    """The endpoint's settings and what it runs with."""

    settings: EndpointConfig
    """The endpoint's entry in `mlplat:endpoints` (model, version, instance type, scaling, capture, rollout)."""
    image: pulumi.Input[str]
    """Full URI of the serving image."""
    model_data_url: pulumi.Input[str]
    """`s3://<bucket>/models/<model>/<version>/model.tar.gz`."""
    role_arn: pulumi.Input[str]
    """The SageMaker execution role the model runs as."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets the model's network interfaces go in."""
    security_group_ids: Sequence[pulumi.Input[str]]
    """Security groups of those interfaces."""
    kms_key_arn: pulumi.Input[str]
    """Key for the instances' storage volumes and the captured data."""
    data_capture_uri: pulumi.Input[str]
    """`s3://<bucket>/data-capture/<endpoint>/`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for the inference component, which the stack's tag transform cannot reach (Cloud Control resource)."""


def inference_component_name(endpoint_name: str, model: str) -> str:
    """The inference component of `model` on an endpoint, named so that scaling and alarms can address it."""
    return f"{endpoint_name}-{model}"


class InferenceEndpoint(pulumi.ComponentResource):
    """Model, endpoint configuration, endpoint, rollback alarms and autoscaling of one `mlplat:endpoints` entry."""

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    model_name: pulumi.Output[str]
    config_name: pulumi.Output[str]

    def __init__(self, name: str, args: InferenceEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:endpoint:InferenceEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings

        environment = {
            "SAGEMAKER_BIND_TO_PORT": SERVING_PORT,
            "MLPLAT_MODEL_URI": "/opt/ml/model",
            "MLPLAT_MODEL_NAME": settings.model,
            "MLPLAT_MODEL_VERSION": str(settings.model_version),
        }
        if settings.model_sha256 is not None:
            # Part of the model's inputs, so a new digest replaces the model even at the same version.
            environment["MLPLAT_MODEL_SHA256"] = settings.model_sha256
        # Serverless inference supports neither VPC configuration nor network isolation: such a model runs
        # outside the VPC, which the policy pack's sagemaker-model-vpc and -isolation checks report.
        in_vpc = settings.serverless is None
        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=args.role_arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=args.image,
                model_data_url=args.model_data_url,
                environment=environment,
            ),
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(
                subnets=list(args.subnet_ids), security_group_ids=list(args.security_group_ids)
            )
            if in_vpc
            else None,
            enable_network_isolation=in_vpc,
            opts=child,
        )
        self.model_name = model.name

        serverless = settings.serverless
        scale_to_zero = serverless is None and settings.min_capacity == 0
        capture = None
        if settings.data_capture_percent > 0:
            capture = aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
                enable_capture=True,
                initial_sampling_percentage=math.ceil(settings.data_capture_percent),
                destination_s3_uri=args.data_capture_uri,
                kms_key_id=args.kms_key_arn,
                capture_options=[
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Input"),
                    aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Output"),
                ],
                capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                    csv_content_types=["text/csv"], json_content_types=["application/json"]
                ),
            )
        if serverless is not None:
            variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=VARIANT,
                model_name=model.name,
                serverless_config=aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgs(
                    memory_size_in_mb=serverless.memory_mib, max_concurrency=serverless.max_concurrency
                ),
            )
        elif scale_to_zero:
            # No model on the variant: models arrive as inference components. The variant starts with one
            # instance (SageMaker requires it) and managed instance scaling removes it when no copy is left.
            variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                variant_name=VARIANT,
                instance_type=settings.instance_type,
                initial_instance_count=1,
                managed_instance_scaling=aws.sagemaker.EndpointConfigurationProductionVariantManagedInstanceScalingArgs(
                    status="ENABLED", min_instance_count=0, max_instance_count=settings.max_capacity
                ),
                routing_configs=[
                    aws.sagemaker.EndpointConfigurationProductionVariantRoutingConfigArgs(
                        routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                    )
                ],
            )
        else:
            variant = aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                # The same variant name in every configuration: blue/green updates require it.
                variant_name=VARIANT,
                model_name=model.name,
                instance_type=settings.instance_type,
                initial_instance_count=settings.min_capacity,
                initial_variant_weight=1,
            )
        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[variant],
            # An inference-component endpoint has no model to run as: the configuration names the role.
            execution_role_arn=args.role_arn if scale_to_zero else None,
            kms_key_arn=args.kms_key_arn if serverless is None else None,
            data_capture_config=capture,
            opts=child,
        )
        self.config_name = endpoint_config.name

        # The endpoint's name is derived from the component's: the rollback alarms need it before the endpoint
        # exists, and clients call the endpoint by a name that does not change between deployments.
        endpoint_name = name
        # Blue/green with rollback guards a new configuration; an inference-component endpoint keeps one
        # configuration (new models replace the component) and a serverless one has no fleet to bake.
        deployment = None
        if serverless is None and not scale_to_zero:
            deployment = self._deployment_config(settings, self._rollback_alarms(name, endpoint_name, settings))
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=endpoint_name,
            endpoint_config_name=endpoint_config.name,
            deployment_config=deployment,
            opts=child,
        )
        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.inference_component_name: str | None = None

        if scale_to_zero:
            self._inference_component(name, args, endpoint, model)
        elif serverless is None:
            _target_tracking(
                name,
                pulumi.Output.concat("endpoint/", endpoint.name, "/variant/", VARIANT),
                SCALABLE_DIMENSION,
                settings.min_capacity,
                SCALING_METRIC,
                settings,
                child,
            )

        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "endpointArn": self.endpoint_arn,
                "modelName": self.model_name,
                "configName": self.config_name,
            }
        )

    def _inference_component(
        self, name: str, args: InferenceEndpointArgs, endpoint: aws.sagemaker.Endpoint, model: aws.sagemaker.Model
    ) -> None:
        """The model as an inference component, its copy count autoscaled 0..max, and the alarm that wakes it."""
        settings = args.settings
        ic_name = inference_component_name(name, settings.model)
        self.inference_component_name = ic_name
        tags = [{"Key": k, "Value": v} for k, v in sorted(args.tags.items())]
        desired = pulumi.Output.all(endpoint.name, model.name).apply(
            lambda names: json.dumps(
                {
                    "EndpointName": names[0],
                    "InferenceComponentName": ic_name,
                    "VariantName": VARIANT,
                    "Specification": {
                        "ModelName": names[1],
                        "ComputeResourceRequirements": {
                            "NumberOfCpuCoresRequired": settings.copy_cpu_cores,
                            "MinMemoryRequiredInMb": settings.copy_memory_mib,
                        },
                    },
                    "RuntimeConfig": {"CopyCount": 1},
                    "Tags": tags,
                },
                sort_keys=True,
            )
        )
        component = aws.cloudcontrol.Resource(
            f"{name}-inference-component",
            type_name=IC_TYPE,
            desired_state=desired,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[endpoint]),
        )
        # Registered only once the component exists: Application Auto Scaling checks the resource on registration.
        scaling = pulumi.ResourceOptions(parent=self, depends_on=[component])
        target = _target_tracking(
            name, f"inference-component/{ic_name}", IC_DIMENSION, 0, IC_SCALING_METRIC, settings, scaling
        )
        wake = _scaling_policy(
            f"{name}-wake-policy",
            target,
            scaling,
            step=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Maximum",
                cooldown=settings.scale_out_cooldown_seconds,
                step_adjustments=[
                    aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                        metric_interval_lower_bound="0", scaling_adjustment=1
                    )
                ],
            ),
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-wake-alarm",
            alarm_description=f"{ic_name}: a request found no copy to serve it; add one",
            comparison_operator="GreaterThanOrEqualToThreshold",
            namespace="AWS/SageMaker",
            metric_name=WAKE_METRIC,
            dimensions={"InferenceComponentName": ic_name},
            statistic="Maximum",
            period=WAKE_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=1,
            # No requests means no datapoints: stay as is rather than flap to OK and back.
            treat_missing_data="missing",
            alarm_actions=[wake.arn],
            opts=scaling,
        )

    def _rollback_alarms(
        self, name: str, endpoint_name: str, settings: EndpointConfig
    ) -> list[aws.cloudwatch.MetricAlarm]:
        """Alarms on the new fleet's 5xx rate and p99 model latency; either one rolls a deployment back."""
        child = pulumi.ResourceOptions(parent=self)
        rollout = settings.rollout
        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT}

        def metric(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/SageMaker",
                    metric_name=metric_name,
                    dimensions=dimensions,
                    period=ALARM_PERIOD_SECONDS,
                    stat="Sum",
                ),
            )

        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-errors-alarm",
            alarm_description=f"{endpoint_name}: 5xx responses above {rollout.max_error_rate_percent:g}% of requests",
            comparison_operator="GreaterThanThreshold",
            threshold=rollout.max_error_rate_percent,
            evaluation_periods=ALARM_EVALUATION_PERIODS,
            datapoints_to_alarm=2,
            treat_missing_data="notBreaching",
            metric_queries=[
                metric("errors", "Invocation5XXErrors"),
                metric("requests", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression="IF(requests > 0, 100 * errors / requests, 0)",
                    label="5xx error rate (%)",
                    return_data=True,
                ),
            ],
            opts=child,
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-latency-alarm",
            alarm_description=f"{endpoint_name}: p99 model latency above {rollout.max_latency_p99_ms} ms",
            comparison_operator="GreaterThanThreshold",
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dimensions,
            extended_statistic="p99",
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=ALARM_EVALUATION_PERIODS,
            datapoints_to_alarm=2,
            # ModelLatency is reported in microseconds.
            threshold=rollout.max_latency_p99_ms * 1000,
            treat_missing_data="notBreaching",
            opts=child,
        )
        return [errors, latency]

    @staticmethod
    def _deployment_config(
        settings: EndpointConfig, alarms: Sequence[aws.cloudwatch.MetricAlarm]
    ) -> aws.sagemaker.EndpointDeploymentConfigArgs:
        """Blue/green: shift `canaryPercent` of capacity, bake, then the rest; roll back on any alarm."""
        rollout = settings.rollout
        wait = rollout.wait_minutes * 60
        termination = rollout.termination_wait_minutes * 60
        if rollout.canary_percent >= 100:
            routing = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                type="ALL_AT_ONCE", wait_interval_in_seconds=wait
            )
        else:
            routing = aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                type="CANARY",
                wait_interval_in_seconds=wait,
                canary_size=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
                    type="CAPACITY_PERCENT", value=rollout.canary_percent
                ),
            )
        # SageMaker accepts 600..14400 s; leave room for provisioning the green fleet on top of the waits.
        timeout = min(max(wait + termination + 1800, 600), 14400)
        return aws.sagemaker.EndpointDeploymentConfigArgs(
            blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=termination,
                maximum_execution_timeout_in_seconds=timeout,
            ),
            auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                alarms=[
                    aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=a.name)
                    for a in alarms
                ]
            ),
        )

    def invoke_statements(self) -> list[iam.Statement]:
        """What a caller needs to invoke this endpoint, and nothing else."""
        return [
            {
                "Sid": "InvokeEndpoint",
                "Effect": "Allow",
                "Action": ["sagemaker:InvokeEndpoint"],
                "Resource": self.endpoint_arn,
            }
        ]

    def grant_invoke(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let `role` invoke this endpoint (an inline policy on that role, owned by this component)."""
        return iam.owned_role_policy(self, f"invoke-{role.pulumi_resource_name}", role, self.invoke_statements())


def _target_tracking(
    name: str,
    resource_id: pulumi.Input[str],
    dimension: str,
    min_capacity: int,
    metric: str,
    settings: EndpointConfig,
    opts: pulumi.ResourceOptions,
) -> aws.appautoscaling.Target:
    """A scalable target and its target-tracking policy on invocations; a variant's and an inference component's
    differ only in their resource, dimension, floor and metric."""
    target = aws.appautoscaling.Target(
        f"{name}-scaling-target",
        service_namespace="sagemaker",
        resource_id=resource_id,
        scalable_dimension=dimension,
        min_capacity=min_capacity,
        max_capacity=settings.max_capacity,
        opts=opts,
    )
    _scaling_policy(
        f"{name}-scaling-policy",
        target,
        opts,
        tracking=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
            target_value=settings.target_invocations_per_instance,
            predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                predefined_metric_type=metric
            ),
            scale_in_cooldown=settings.scale_in_cooldown_seconds,
            scale_out_cooldown=settings.scale_out_cooldown_seconds,
        ),
    )
    return target


def _scaling_policy(
    resource_name: str,
    target: aws.appautoscaling.Target,
    opts: pulumi.ResourceOptions,
    *,
    step: aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs | None = None,
    tracking: aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs | None = None,
) -> aws.appautoscaling.Policy:
    """A step-scaling or target-tracking policy on `target`, which it names by the target's three identifiers."""
    return aws.appautoscaling.Policy(
        resource_name,
        policy_type="StepScaling" if step is not None else "TargetTrackingScaling",
        service_namespace=target.service_namespace,
        resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension,
        step_scaling_policy_configuration=step,
        target_tracking_scaling_policy_configuration=tracking,
        opts=opts,
    )
