"""One SageMaker real-time endpoint: an isolated model in the VPC, encrypted and captured, autoscaled, and updated
blue/green with a canary and alarm-driven rollback.

A new model version or digest changes the model's inputs, so Pulumi replaces the Model (new auto-generated
name), which replaces the EndpointConfiguration, which updates the Endpoint in place: SageMaker then runs the
blue/green deployment described by `deployment_config`, and rolls back if either alarm fires.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import EndpointConfig

VARIANT = "primary"
SERVING_PORT = "8080"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
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
            ),
            enable_network_isolation=True,
            opts=child,
        )
        self.model_name = model.name

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
        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                    # The same variant name in every configuration: blue/green updates require it.
                    variant_name=VARIANT,
                    model_name=model.name,
                    instance_type=settings.instance_type,
                    initial_instance_count=settings.min_capacity,
                    initial_variant_weight=1,
                )
            ],
            kms_key_arn=args.kms_key_arn,
            data_capture_config=capture,
            opts=child,
        )
        self.config_name = endpoint_config.name

        # The endpoint's name is derived from the component's: the rollback alarms need it before the endpoint
        # exists, and clients call the endpoint by a name that does not change between deployments.
        endpoint_name = name
        alarms = self._rollback_alarms(name, endpoint_name, settings)
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=endpoint_name,
            endpoint_config_name=endpoint_config.name,
            deployment_config=self._deployment_config(settings, alarms),
            opts=child,
        )
        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn

        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="sagemaker",
            resource_id=pulumi.Output.concat("endpoint/", endpoint.name, "/variant/", VARIANT),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            resource_id=target.resource_id,
            scalable_dimension=target.scalable_dimension,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=settings.target_invocations_per_instance,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=SCALING_METRIC
                ),
                scale_in_cooldown=settings.scale_in_cooldown_seconds,
                scale_out_cooldown=settings.scale_out_cooldown_seconds,
            ),
            opts=child,
        )

        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "endpointArn": self.endpoint_arn,
                "modelName": self.model_name,
                "configName": self.config_name,
            }
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
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-invoke-{role.pulumi_resource_name}",
            role=role.id,
            policy=iam.policy_document(self.invoke_statements()),
            opts=pulumi.ResourceOptions(parent=self),
        )
