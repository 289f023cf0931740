"""Container image references: short names (`mlplat/serving:0.1.0`) live in the stack account's ECR registry."""

import re
from dataclasses import dataclass

import pulumi

from components import iam

_ECR_REGISTRY = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


@dataclass(frozen=True)
class ImageRef:
    """An image reference split into registry (None for this account's ECR), repository and tag or digest."""

    registry: str | None
    repository: str
    reference: str

    @property
    def separator(self) -> str:
        """`@` before a digest, `:` before a tag."""
        return "@" if self.reference.startswith("sha256:") else ":"


def parse(image: str) -> ImageRef:
    """Split `registry/repo:tag`, `repo:tag` or `repo@sha256:...`; a reference without a tag means `latest`."""
    registry: str | None = None
    rest = image
    first, _, remainder = image.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    if "@" in rest:
        repository, _, reference = rest.partition("@")
    else:
        repository, colon, reference = rest.rpartition(":")
        if not colon or "/" in reference:
            repository, reference = rest, "latest"
    return ImageRef(registry, repository, reference)


def image_uri(image: str, region: str, account: pulumi.Input[str]) -> pulumi.Output[str]:
    """The full URI SageMaker pulls: short names resolve to `<account>.dkr.ecr.<region>.amazonaws.com/<name>`."""
    ref = parse(image)
    if ref.registry is not None:
        return pulumi.Output.from_input(image)
    return pulumi.Output.concat(
        account, ".dkr.ecr.", region, ".amazonaws.com/", ref.repository, ref.separator, ref.reference
    )


def repository_arn(
    image: str, region: str, account: pulumi.Input[str], arn_partition: pulumi.Input[str]
) -> pulumi.Output[str] | None:
    """The ECR repository ARN an image lives in, or None for an image outside ECR (no ECR grant applies)."""
    ref = parse(image)
    if ref.registry is None:
        return pulumi.Output.concat(
            "arn:", arn_partition, ":ecr:", region, ":", account, ":repository/", ref.repository
        )
    match = _ECR_REGISTRY.match(ref.registry)
    if match is None:
        return None
    return pulumi.Output.concat(
        "arn:", arn_partition, ":ecr:", match["region"], ":", match["account"], ":repository/", ref.repository
    )


def ecr_pull_statements(
    images: list[str], region: str, account: pulumi.Input[str], arn_partition: pulumi.Input[str]
) -> list[iam.Statement]:
    """Allow pulling exactly these images' repositories (plus the registry login, which has no resource)."""
    repositories = [
        arn for arn in (repository_arn(i, region, account, arn_partition) for i in images) if arn is not None
    ]
    if not repositories:
        return []
    return [
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            # GetAuthorizationToken has no resource-level permissions: AWS accepts only "*".
            "Resource": "*",
        },
        {
            "Sid": "EcrPull",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": repositories,
        },
    ]
