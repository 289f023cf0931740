"""The whole platform of one stack, composed from the validated StackConfig; the program builds exactly this."""

from dataclasses import dataclass
from typing import Any

import pulumi

from components import tagging
from components.artifacts import ArtifactStore, ArtifactStoreArgs
from components.config import StackConfig
from components.network import Network, NetworkArgs


@dataclass(frozen=True)
class MlPlatformArgs:
    """What to build."""

    config: StackConfig
    """The stack's validated config; every switch that decides which resources exist comes from here."""


class MlPlatform(pulumi.ComponentResource):
    """Network, artifact store, tracking, identities, endpoints and budget of one environment, tagged once."""

    network: Network
    artifacts: ArtifactStore

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
            "region": self.config.region,
            "environment": self.config.environment,
        }
