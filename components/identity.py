"""Roles per duty (SageMaker training jobs, SageMaker endpoints), each trusted by SageMaker alone and scoped tightly.

Every statement names its resources. `"*"` appears as a resource only for actions AWS gives no resource-level
permission (ECR login, EC2 Describe*, CloudWatch PutMetricData), each narrowed by a condition where AWS has one.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import iam, images
from components.artifacts import ArtifactStore
from contracts.bucket import (
    CHECKPOINTS_PREFIX,
    CODE_PREFIX,
    DATA_CAPTURE_PREFIX,
    DATASETS_PREFIX,
    MLFLOW_PREFIX,
    MODELS_PREFIX,
)

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
TRAINING_METRIC_NAMESPACES = ("/aws/sagemaker/TrainingJobs", "mlplat/training")
ENDPOINT_METRIC_NAMESPACES = ("/aws/sagemaker/Endpoints", "mlplat/serving")


@dataclass(frozen=True)
class IdentityArgs:
    """What the roles may reach."""

    region: str
    """AWS region of the stack (log group and ECR ARNs)."""
    artifacts: ArtifactStore
    """The artifact store; roles get prefix-scoped statements from it."""
    vpc_arn: pulumi.Input[str]
    """The VPC whose network interfaces SageMaker may create and delete for these roles."""
    training_images: Sequence[str] = field(default_factory=list)
    """Images training jobs run (short names resolve to this account's ECR)."""
    serving_images: Sequence[str] = field(default_factory=list)
    """Images endpoints run."""


class Identity(pulumi.ComponentResource):
    """The SageMaker execution roles of the platform: one for training jobs, one for endpoints."""

    training_role: aws.iam.Role
    serving_role: aws.iam.Role
    training_role_arn: pulumi.Output[str]
    serving_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:identity:Identity", name, None, opts)
        self._account = iam.account_id()
        self._partition = iam.partition()
        self._region = args.region
        store = args.artifacts

        training_statements: list[iam.Statement] = [
            *store.read_statements(DATASETS_PREFIX),
            *store.read_statements(CHECKPOINTS_PREFIX),
            *store.write_statements(CHECKPOINTS_PREFIX),
            # Script mode: the job downloads the user's source archive (`sagemaker_submit_directory`).
            *store.read_statements(CODE_PREFIX),
            *store.read_statements(MLFLOW_PREFIX),
            *store.write_statements(MLFLOW_PREFIX),
            *store.write_statements(MODELS_PREFIX),
            *store.kms_statements(),
            iam.write_logs_statement(self._arn("logs", f"log-group:{TRAINING_LOG_GROUP}")),
            self._metric_statement(TRAINING_METRIC_NAMESPACES),
            *images.ecr_pull_statements(list(args.training_images), args.region, self._account, self._partition),
            *iam.sagemaker_vpc_statements(args.vpc_arn),
        ]
        self.training_role, training_policy = self._role(
            name, "training", "SageMaker training jobs: datasets in, checkpoints and models out", training_statements
        )

        serving_statements: list[iam.Statement] = [
            *store.read_statements(MODELS_PREFIX),
            *store.write_statements(DATA_CAPTURE_PREFIX),
            *store.kms_statements(),
            iam.write_logs_statement(self._arn("logs", f"log-group:{ENDPOINT_LOG_GROUP_PREFIX}*")),
            self._metric_statement(ENDPOINT_METRIC_NAMESPACES),
            *images.ecr_pull_statements(list(args.serving_images), args.region, self._account, self._partition),
            *iam.sagemaker_vpc_statements(args.vpc_arn),
        ]
        self.serving_role, serving_policy = self._role(
            name, "serving", "SageMaker endpoints: models in, captured data out", serving_statements
        )

        # SageMaker checks a role's permissions when a job or model is created with it, so whatever uses these
        # ARNs must wait for the policies too: an Output of both carries both dependencies.
        self.training_role_arn = pulumi.Output.all(self.training_role.arn, training_policy.id).apply(
            lambda v: str(v[0])
        )
        self.serving_role_arn = pulumi.Output.all(self.serving_role.arn, serving_policy.id).apply(lambda v: str(v[0]))

        self.register_outputs({"trainingRoleArn": self.training_role_arn, "servingRoleArn": self.serving_role_arn})

    def _role(
        self, name: str, duty: str, description: str, statements: list[iam.Statement]
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-{duty}-role",
            description=description,
            assume_role_policy=iam.service_trust("sagemaker.amazonaws.com", self._account),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-{duty}-policy", role=role.id, policy=iam.policy_document(statements), opts=child
        )
        return role, policy

    def _arn(self, service: str, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(
            "arn:", self._partition, ":", service, ":", self._region, ":", self._account, ":", resource
        )

    def _metric_statement(self, namespaces: Sequence[str]) -> iam.Statement:
        return {
            "Sid": "PutMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            # PutMetricData has no resource-level permissions; the namespace condition is how AWS scopes it.
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": list(namespaces)}},
        }

    def grant_training(self, label: str, statements: Sequence[iam.Statement]) -> aws.iam.RolePolicy:
        """Add statements to the training role (an inline policy `<name>-training-<label>` owned by this component)."""
        return iam.owned_role_policy(self, f"training-{label}", self.training_role, statements)

    def grant_serving(self, label: str, statements: Sequence[iam.Statement]) -> aws.iam.RolePolicy:
        """Add statements to the serving role (an inline policy `<name>-serving-<label>` owned by this component)."""
        return iam.owned_role_policy(self, f"serving-{label}", self.serving_role, statements)
