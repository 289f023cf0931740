"""The whole platform of one stack, composed from the validated StackConfig; the program builds exactly this."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components import iam, images, tagging
from components.artifacts import ArtifactStore, ArtifactStoreArgs
from components.budget import BudgetAlerts, BudgetAlertsArgs, EnforcedCluster, EnforcedEndpoint
from components.compute import GpuCompute, GpuComputeArgs
from components.config import SYSTEM_POOL, EndpointConfig, StackConfig
from components.cost_export import SplitCostExport, SplitCostExportArgs
from components.drift import DriftMonitor, platform_drift_args
from components.endpoint import InferenceEndpoint, InferenceEndpointArgs
from components.identity import Identity, IdentityArgs
from components.network import Network, NetworkArgs
from components.outputs import StackOutputs
from components.serving_deployment import ServingDeployment, ServingDeploymentArgs, ServingSpec
from components.team import SERVICE_ACCOUNT, team_role_statements
from components.tracking import TrackingServer, TrackingServerArgs
from contracts import bucket as layout
from contracts import registry
from contracts.bucket import MLFLOW_PREFIX

# The serving image's capture settings (serving/capture.py reads them; components may not import serving, so a
# test holds the two spellings together). A cluster-served endpoint writes where SageMaker's capture would.
CAPTURE_DESTINATION_ENV = "MLPLAT_CAPTURE_DESTINATION"
CAPTURE_PERCENT_ENV = "MLPLAT_CAPTURE_PERCENT"
CAPTURE_ENDPOINT_ENV = "MLPLAT_ENDPOINT_NAME"
CAPTURE_KMS_ENV = "MLPLAT_CAPTURE_KMS_KEY_ID"


@dataclass(frozen=True)
class MlPlatformArgs:
    """What to build."""

    config: StackConfig
    """The stack's validated config; every switch that decides which resources exist comes from here."""


def model_data_key(endpoint: EndpointConfig) -> str:
    """Where an endpoint's model archive lives in the bucket: `models/<model>/<version>/model.tar.gz`."""
    return layout.model_archive_key(endpoint.model, endpoint.model_version)


def cluster_serving_spec(
    endpoint: EndpointConfig,
    image: pulumi.Input[str],
    tracking_uri: pulumi.Input[str],
    capture_uri: pulumi.Input[str],
    kms_key_arn: pulumi.Input[str],
) -> ServingSpec:
    """The Deployment of a `platform: kubernetes` endpoint: replicas from its capacity, one GPU per pod on a GPU
    pool, none on the system nodes (which carry no pool label, so no node selector)."""
    assert endpoint.team is not None and endpoint.pool is not None  # config validation guarantees both
    on_gpu = endpoint.pool != SYSTEM_POOL
    return ServingSpec(
        name=endpoint.name,
        namespace=endpoint.team,
        image=image,
        model_uri=registry.version_uri(endpoint.model, endpoint.model_version),
        tracking_uri=tracking_uri,
        min_replicas=endpoint.min_capacity,
        max_replicas=endpoint.max_capacity,
        **_autoscaling(endpoint),
        cpu="500m" if not on_gpu else "1",
        memory="1Gi" if not on_gpu else "4Gi",
        gpus=1 if on_gpu else 0,
        pool=endpoint.pool if on_gpu else None,
        service_account=SERVICE_ACCOUNT,
        env=capture_env(endpoint, capture_uri, kms_key_arn),
    )


def scales_on_in_flight(endpoint: EndpointConfig) -> bool:
    """The endpoint runs on the cluster and its autoscaler follows in-flight requests."""
    return (
        endpoint.platform == "kubernetes"
        and endpoint.autoscaling is not None
        and endpoint.autoscaling.metric == "inflight"
    )


def _autoscaling(endpoint: EndpointConfig) -> dict[str, Any]:
    """The ServingSpec fields of `autoscaling`; the spec's defaults (CPU at 70 %) when the endpoint has none."""
    scaling = endpoint.autoscaling
    if scaling is None:
        return {}
    if scaling.metric == "inflight":
        return {"scaling_metric": "inflight", "target_in_flight": scaling.target}
    return {"scaling_metric": "cpu", "target_cpu_utilization": scaling.target}


def capture_env(
    endpoint: EndpointConfig, capture_uri: pulumi.Input[str], kms_key_arn: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The server's capture settings; none when the endpoint captures nothing (`dataCapturePercent: 0`)."""
    env: dict[str, pulumi.Input[str]] = {CAPTURE_ENDPOINT_ENV: endpoint.name}
    if endpoint.data_capture_percent > 0:
        env[CAPTURE_DESTINATION_ENV] = capture_uri
        env[CAPTURE_PERCENT_ENV] = f"{endpoint.data_capture_percent:g}"
        env[CAPTURE_KMS_ENV] = kms_key_arn
    return env


class MlPlatform(pulumi.ComponentResource):
    """Network, artifact store, tracking, identities, endpoints and budget of one environment, tagged once.

    Each child component is created with `self._child("<component>")`, which parents it here and tags everything
    beneath it `mlplat:component=<component>`; the stack tags reach every resource through this component.
    """

    network: Network
    artifacts: ArtifactStore
    tracking: TrackingServer
    identity: Identity
    endpoints: list[InferenceEndpoint]
    cluster_endpoints: list[ServingDeployment]
    drift_monitors: list[DriftMonitor]
    budget: BudgetAlerts

    def __init__(self, name: str, args: MlPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config = args.config
        # The stack tags, set once here: a transform on the platform reaches every resource beneath it.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transforms=[tagging.stack_tags(config.tags)]))
        super().__init__("mlplat:platform:MlPlatform", name, None, opts)
        self.config = config

        self.network = Network(
            f"{name}-network",
            NetworkArgs(
                region=config.region,
                cidr=config.network.cidr,
                az_count=config.network.az_count,
                nat=config.network.nat,
                flow_log_retention_days=config.network.flow_log_retention_days,
            ),
            self._child("network"),
        )

        self.artifacts = ArtifactStore(
            f"{name}-artifacts",
            ArtifactStoreArgs(
                force_destroy=config.artifacts.force_destroy,
                noncurrent_version_expiration_days=config.artifacts.noncurrent_version_expiration_days,
                checkpoint_transition_days=config.artifacts.checkpoint_transition_days,
                checkpoint_expiration_days=config.artifacts.checkpoint_expiration_days,
                abort_multipart_days=config.artifacts.abort_multipart_days,
                billing_export=config.budget.split_cost_export,
            ),
            self._child("artifacts"),
        )
        if config.budget.split_cost_export:
            SplitCostExport(
                f"{name}-split-cost",
                SplitCostExportArgs(
                    environment=config.environment,
                    bucket_name=self.artifacts.bucket_name,
                    bucket_region=config.region,
                    bucket_policy=self.artifacts.bucket_policy,
                ),
                self._child("budget"),
            )

        self.tracking = TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                region=config.region,
                artifact_store_uri=self.artifacts.uri(layout.mlflow_artifacts_key()),
                artifact_statements=[
                    *self.artifacts.read_statements(MLFLOW_PREFIX),
                    *self.artifacts.write_statements(MLFLOW_PREFIX),
                    *self.artifacts.kms_statements(),
                ],
                size=config.tracking.size,
                mlflow_version=config.tracking.mlflow_version,
                maintenance_window=config.tracking.maintenance_window,
                automatic_model_registration=config.tracking.automatic_model_registration,
            ),
            self._child("tracking"),
        )

        self.identity = Identity(
            f"{name}-identity",
            IdentityArgs(
                region=config.region,
                artifacts=self.artifacts,
                vpc_arn=self.network.vpc_arn,
                training_images=[config.images.training],
                serving_images=sorted({ep.image or config.images.serving for ep in config.endpoints}),
            ),
            self._child("identity"),
        )
        self.tracking.grant_use(self.identity.training_role)

        # GPU compute only where the stack declares a cluster (dev does not; its control plane would eat its budget).
        self.compute: GpuCompute | None = None
        if config.cluster is not None:
            self.compute = GpuCompute(
                f"{name}-compute",
                GpuComputeArgs(
                    cluster=config.cluster,
                    region=config.region,
                    subnet_ids=self.network.private_subnet_ids,
                    vpc_cidr=self.network.vpc_cidr,
                    team_statements=team_role_statements(self.artifacts, self.tracking),
                    gpu_pools=config.gpu_pools,
                    teams=config.teams,
                    allowed_gpu_instance_types=config.allowed_gpu_instance_types,
                    deletion_protection=config.environment == "prod",
                    serving_metrics=any(scales_on_in_flight(ep) for ep in config.endpoints),
                    # Node classes and templates copy these onto instances and volumes (out of the transform's reach).
                    tags={**config.tags, tagging.COMPONENT_TAG: "compute"},
                ),
                self._child("compute"),
            )

        account = iam.account_id()
        self.endpoints = [
            InferenceEndpoint(
                f"{name}-{endpoint.name}",
                InferenceEndpointArgs(
                    settings=endpoint,
                    image=images.image_uri(endpoint.image or config.images.serving, config.region, account),
                    model_data_url=self.artifacts.uri(model_data_key(endpoint)),
                    role_arn=self.identity.serving_role_arn,
                    subnet_ids=self.network.private_subnet_ids,
                    security_group_ids=[self.network.workload_security_group_id],
                    kms_key_arn=self.artifacts.key_arn,
                    data_capture_uri=self.artifacts.uri(layout.capture_prefix(endpoint.name)),
                    tags={**config.tags, tagging.COMPONENT_TAG: "endpoint"},
                ),
                self._child("endpoint"),
            )
            for endpoint in config.endpoints
            if endpoint.platform == "sagemaker"
        ]
        self.cluster_endpoints = [
            ServingDeployment(
                f"{name}-{endpoint.name}",
                ServingDeploymentArgs(
                    spec=cluster_serving_spec(
                        endpoint,
                        image=images.image_uri(endpoint.image or config.images.serving, config.region, account),
                        tracking_uri=self.tracking.arn,
                        capture_uri=self.artifacts.uri(layout.capture_prefix(endpoint.name)),
                        kms_key_arn=self.artifacts.key_arn,
                    ),
                    provider=self.compute.cluster.provider,
                ),
                self._child("serving"),
            )
            for endpoint in config.endpoints
            if endpoint.platform == "kubernetes" and self.compute is not None
        ]

        # A model nobody watches silently rots: every endpoint gets a scheduled drift check and an alarm topic.
        self.drift_monitors = [
            DriftMonitor(
                f"{name}-{endpoint.name}-drift",
                platform_drift_args(config, endpoint, self.artifacts, self.tracking.arn, self.network, self.compute),
                self._child("drift"),
            )
            for endpoint in config.endpoints
        ]

        self.budget = BudgetAlerts(
            f"{name}-budget",
            BudgetAlertsArgs(
                environment=config.environment,
                limit_usd=config.budget.limit_usd,
                thresholds=config.budget.thresholds,
                emails=config.budget.emails,
                region=config.region,
                enforce=config.budget.enforces(config.environment),
                endpoints=[
                    EnforcedEndpoint(
                        endpoint=e.pulumi_resource_name,
                        inference_component=e.inference_component_name,
                        minimum=settings.min_capacity,
                    )
                    # Budget enforcement scales SageMaker endpoints; cluster-served ones are bounded by their pool.
                    for e, settings in zip(
                        self.endpoints, [ep for ep in config.endpoints if ep.platform == "sagemaker"], strict=True
                    )
                    # Serverless endpoints bill per request and have no capacity to take away.
                    if settings.serverless is None
                ],
                cluster=self._enforced_cluster(),
            ),
            self._child("budget"),
        )

        self.register_outputs(self.stack_outputs())

    def _enforced_cluster(self) -> EnforcedCluster | None:
        """The cluster and GPU pools the budget enforcer zeroes; None without a cluster."""
        if self.compute is None:
            return None
        cluster = self.compute.cluster
        return EnforcedCluster(
            name=cluster.cluster_name,
            endpoint=cluster.endpoint,
            certificate_authority=cluster.cluster.certificate_authority.apply(lambda ca: ca.data or ""),
            node_pools=[p.name for p in self.config.gpu_pools],
            provider=cluster.provider,
            vpc_id=self.network.vpc_id,
            vpc_arn=self.network.vpc_arn,
            subnet_ids=self.network.private_subnet_ids,
            cluster_security_group_id=cluster.cluster_security_group_id,
        )

    def _child(self, component: str) -> pulumi.ResourceOptions:
        """Options for a child component: parented here and tagged `mlplat:component=<component>`."""
        return tagging.with_component_tag(pulumi.ResourceOptions(parent=self), component)

    def stack_outputs(self) -> dict[str, Any]:
        """What the program exports, by output name."""
        return StackOutputs.exports(
            vpc_id=self.network.vpc_id,
            private_subnet_ids=self.network.private_subnet_ids,
            workload_security_group_id=self.network.workload_security_group_id,
            bucket_name=self.artifacts.bucket_name,
            bucket_arn=self.artifacts.bucket_arn,
            kms_key_arn=self.artifacts.key_arn,
            tracking_server_arn=self.tracking.arn,
            tracking_server_url=self.tracking.url,
            training_role_arn=self.identity.training_role_arn,
            serving_role_arn=self.identity.serving_role_arn,
            endpoint_names=[e.endpoint_name for e in self.endpoints],
            drift_alarm_topic_arns=[m.topic_arn for m in self.drift_monitors],
            budget_name=self.budget.budget_name,
            **(self.compute.stack_outputs() if self.compute is not None else {}),
            region=self.config.region,
            environment=self.config.environment,
        )
