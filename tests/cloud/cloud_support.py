"""Helpers for the cloud command tests: fake stack outputs, fake MLflow model directories, the registry."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ACCOUNT = "123456789012"


@dataclass
class FakeStack:
    """One stack as the cloud commands see it: its outputs file, a copy of its stack file, its bucket."""

    name: str
    outputs_file: Path
    stack_file: Path
    outputs: dict[str, Any]
    model: str

    @property
    def bucket(self) -> str:
        return str(self.outputs["bucketName"])

    def s3(self) -> Any:
        return boto3.client("s3", region_name="us-east-1")


def make_outputs(stack: str, bucket: str, kms_key_arn: str) -> dict[str, Any]:
    """What `MlPlatform.stack_outputs()` exports for a deployed stack."""
    return {
        "environment": stack,
        "region": "us-east-1",
        "vpcId": "vpc-0a1b2c3d",
        "privateSubnetIds": ["subnet-0aaa1111", "subnet-0bbb2222"],
        "bucketName": bucket,
        "bucketArn": f"arn:aws:s3:::{bucket}",
        "kmsKeyArn": kms_key_arn,
        "trackingServerArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:mlflow-app/app-{stack}",
        "trackingServerUrl": f"https://{stack}.experiments.sagemaker.aws",
        "trainingRoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlplat-{stack}-training",
        "servingRoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlplat-{stack}-serving",
        "workloadSecurityGroupId": "sg-0workload",
        "endpointNames": [f"abalone-{stack}"],
        "budgetName": f"mlplat-{stack}",
        "clusterName": f"mlplat-{stack}",
    }


@dataclass
class Registry:
    """The session's MLflow server, with helpers to register fake models in it."""

    tracking_uri: str
    created: list[str] = field(default_factory=list)

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def register(self, name: str, model_dir: Path, alias: str | None = "champion") -> int:
        """Log `model_dir` as a run's `model` artifact and register it as a new version of `name`."""
        client = self.client()
        experiment = client.get_experiment_by_name("cloud-tests")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment("cloud-tests")
        run = client.create_run(experiment_id, run_name=f"train-{name}")
        client.log_artifacts(run.info.run_id, str(model_dir), "model")
        client.set_terminated(run.info.run_id, "FINISHED")
        if name not in self.created:
            if not client.search_registered_models(f"name = '{name}'"):
                client.create_registered_model(name)
            self.created.append(name)
        version = client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        if alias:
            client.set_registered_model_alias(name, alias, version.version)
        return int(version.version)


def write_model_dir(root: Path, weights: bytes = b"weights-v1") -> Path:
    """A small MLflow model directory with the files the training container logs."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "MLmodel").write_text(
        "artifact_path: model\n"
        "flavors:\n  python_function:\n    loader_module: mlplat_model\n    python_version: 3.11.0\n"
    )
    (root / "artifacts").mkdir(exist_ok=True)
    (root / "artifacts" / "model.pt2").write_bytes(weights)
    (root / "artifacts" / "mlplat_model.json").write_text(json.dumps({"features": ["Length"], "target": "Rings"}))
    return root
