"""What the cloud training launchers share: their error, the default experiment, job names and the job's image."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contracts.bucket import split_s3_uri
from mlplat.outputs import CloudError, StackOutputs

if TYPE_CHECKING:
    from components.config import StackConfig

DEFAULT_EXPERIMENT = "mlplat-training"


class TrainError(CloudError):
    """A training launch that cannot go ahead, or a job that did not complete."""


@dataclass(frozen=True)
class TrainingRun:
    """What every launcher needs of one run: the stack, the model it registers, its data, its name, its tracking."""

    outputs: StackOutputs
    cfg: "StackConfig"
    model: str
    dataset: str
    dataset_version: str
    job_name: str
    tracking_uri: str


@dataclass(frozen=True)
class SageMakerJob:
    """Every setting of one SageMaker training job, as plain values."""

    name: str
    image: str
    role_arn: str
    subnets: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    kms_key_arn: str
    data_uri: str
    output_uri: str
    checkpoint_uri: str
    instance_type: str
    instance_count: int
    volume_gb: int
    spot: bool
    max_runtime_seconds: int
    max_wait_seconds: int | None
    network_isolation: bool
    hyperparameters: Mapping[str, str]
    environment: Mapping[str, str]
    tags: Mapping[str, str]


def default_job_name(prefix: str, model: str, max_length: int = 63, now: datetime | None = None) -> str:
    """`<prefix>-<model>-<UTC time>`, unique per second: a valid SageMaker job name and Kubernetes DNS label."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    head = f"{prefix}-{model}" if prefix else model
    return f"{head[: max_length - len(stamp) - 1].rstrip('-')}-{stamp}"


def resolve_image(image: str, outputs: StackOutputs, role_arn: str | None = None) -> str:
    """A short image name (`mlplat/training:0.1.0`) lives in the stack account's ECR, as the platform resolves it;
    the account is `role_arn`'s (default: the training role's)."""
    from components.images import parse

    ref = parse(image)
    if ref.registry is not None:
        return image
    account = (role_arn or outputs.training_role_arn).split(":")[4]
    return f"{account}.dkr.ecr.{outputs.region}.amazonaws.com/{ref.repository}{ref.separator}{ref.reference}"


def parse_hyperparameters(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs from `--hp`; SageMaker passes every hyperparameter as a string."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TrainError(f"--hp must be KEY=VALUE (got {pair!r})")
        values[key.strip()] = value
    return values


def check_dataset(s3: Any, data_uri: str) -> None:
    """TrainError unless the dataset prefix holds at least one object."""
    bucket, prefix = split_s3_uri(data_uri)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    if not listed.get("KeyCount"):
        raise TrainError(f"no data at {data_uri}: upload the dataset there first")
