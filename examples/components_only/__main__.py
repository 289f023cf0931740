"""A team's own Pulumi program that adopts three mlplat components and not the whole platform: a private network,
the artifact store, and a managed MLflow tracking server whose artifacts live in that store.

Run it as any Pulumi program (`pulumi up` in this directory, with the repository on PYTHONPATH); the test
`tests/components/test_example_components_only.py` runs `program()` under Pulumi's mocks.
"""

import pulumi

from components.artifacts import ArtifactStore, ArtifactStoreArgs
from components.network import Network, NetworkArgs
from components.tracking import TrackingServer, TrackingServerArgs
from contracts import bucket as layout

REGION = "us-east-1"


def program() -> None:
    """Network, bucket and tracking server, wired the way `MlPlatform` wires them, under the team's own names."""
    network = Network("team-net", NetworkArgs(region=REGION, az_count=2))
    store = ArtifactStore("team-store", ArtifactStoreArgs(force_destroy=True))
    tracking = TrackingServer(
        "team-tracking",
        TrackingServerArgs(
            region=REGION,
            artifact_store_uri=store.uri(layout.mlflow_artifacts_key()),
            # The tracking server may read and write its own prefix of the bucket, and nothing else.
            artifact_statements=[
                *store.read_statements(layout.MLFLOW_PREFIX),
                *store.write_statements(layout.MLFLOW_PREFIX),
                *store.kms_statements(),
            ],
        ),
    )
    pulumi.export("teamVpc", network.vpc_id)
    pulumi.export("teamBucket", store.bucket_name)
    pulumi.export("teamTracking", tracking.arn)


if __name__ == "__main__":
    program()
