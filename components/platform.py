"""The whole platform of one stack, composed from the validated StackConfig; the program builds exactly this."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components import iam, images, tagging
from components.artifacts import DATA_CAPTURE_PREFIX, MLFLOW_PREFIX, MODELS_PREFIX, ArtifactStore, ArtifactStoreArgs
from components.budget import BudgetAlerts, BudgetAlertsArgs
from components.compute import GpuCompute, GpuComputeArgs
from components.config import EndpointConfig, StackConfig
from components.drift import DriftMonitor, platform_drift_args
from components.endpoint import InferenceEndpoint, InferenceEndpointArgs
from components.identity import Identity, IdentityArgs
from components.network import Network, NetworkArgs
from components.team import team_role_statements
from components.tracking import TrackingServer, TrackingServerArgs


@dataclass(frozen=True)
class MlPlatformArgs:
    """What to build."""

    config: StackConfig
    """The stack's validated config; every switch that decides which resources exist comes from here."""


def model_data_key(endpoint: EndpointConfig) -> str:
    """Where an endpoint's model archive lives in the bucket: `models/<model>/<version>/model.tar.gz`."""
    return f"{MODELS_PREFIX}{endpoint.model}/{endpoint.model_version}/model.tar.gz"


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
            ),
            self._child("artifacts"),
        )

        self.tracking = TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                region=config.region,
                artifact_store_uri=self.artifacts.uri(MLFLOW_PREFIX.rstrip("/")),
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
                    data_capture_uri=self.artifacts.uri(f"{DATA_CAPTURE_PREFIX}{endpoint.name}/"),
                ),
                self._child("endpoint"),
            )
            for endpoint in config.endpoints
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
            ),
            self._child("budget"),
        )

        self.register_outputs(self.stack_outputs())

    def _child(self, component: str) -> pulumi.ResourceOptions:
        """Options for a child component: parented here and tagged `mlplat:component=<component>`."""
        return tagging.with_component_tag(pulumi.ResourceOptions(parent=self), component)

    def stack_outputs(self) -> dict[str, Any]:
        """What the program exports, by output name."""
        return {
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
            "workloadSecurityGroupId": self.network.workload_security_group_id,
            "bucketName": self.artifacts.bucket_name,
            "bucketArn": self.artifacts.bucket_arn,
            "kmsKeyArn": self.artifacts.key_arn,
            "trackingServerArn": self.tracking.arn,
            "trackingServerUrl": self.tracking.url,
            "trainingRoleArn": self.identity.training_role_arn,
            "servingRoleArn": self.identity.serving_role_arn,
            "endpointNames": [e.endpoint_name for e in self.endpoints],
            "driftAlarmTopicArns": [m.topic_arn for m in self.drift_monitors],
            "budgetName": self.budget.budget_name,
            **(self.compute.stack_outputs() if self.compute is not None else {}),
            "region": self.config.region,
            "environment": self.config.environment,
        }
