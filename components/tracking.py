"""Managed MLflow on SageMaker: the serverless MLflow App by default, a sized tracking server when a stack asks."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components import iam

# Creating or updating a managed MLflow server takes 20-40 minutes; the provider's defaults give up sooner.
CREATE_TIMEOUT = "90m"
UPDATE_TIMEOUT = "90m"


@dataclass(frozen=True)
class TrackingServerArgs:
    """Where MLflow keeps artifacts and how the server is run."""

    region: str
    """AWS region (names the model registry resources the server may register into)."""
    artifact_store_uri: pulumi.Input[str]
    """`s3://<bucket>/mlflow`: where MLflow writes run artifacts."""
    artifact_statements: Sequence[iam.Statement] = field(default_factory=list)
    """IAM statements that reach the artifact prefix and its key; the server's role gets these and nothing wider."""
    size: Literal["Small", "Medium", "Large"] | None = None
    """None for the serverless MLflow App; a size for a dedicated tracking server."""
    mlflow_version: str = "3.0"
    """MLflow version of a sized tracking server, pinned."""
    maintenance_window: str = "Sun:03:00"
    """Weekly maintenance window start, `Day:HH:MM` UTC."""
    automatic_model_registration: bool = True
    """Register logged models in the SageMaker Model Registry automatically."""


class TrackingServer(pulumi.ComponentResource):
    """A SageMaker managed MLflow app (or sized server) with a role scoped to its artifact prefix."""

    arn: pulumi.Output[str]
    url: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    kind: iam.MlflowKind

    def __init__(self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:tracking:TrackingServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = iam.account_id()
        arn_partition = iam.partition()

        role = aws.iam.Role(
            f"{name}-role",
            description=f"SageMaker managed MLflow of {name}: its artifact prefix and model registration only",
            assume_role_policy=iam.service_trust("sagemaker.amazonaws.com", account),
            opts=child,
        )
        statements = list(args.artifact_statements)
        if args.automatic_model_registration:
            registry = pulumi.Output.concat("arn:", arn_partition, ":sagemaker:", args.region, ":", account)
            statements.append(
                {
                    "Sid": "RegisterModels",
                    "Effect": "Allow",
                    "Action": [
                        "sagemaker:AddTags",
                        "sagemaker:CreateModelPackage",
                        "sagemaker:CreateModelPackageGroup",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:UpdateModelPackage",
                    ],
                    "Resource": [
                        pulumi.Output.concat(registry, ":model-package-group/*"),
                        pulumi.Output.concat(registry, ":model-package/*"),
                    ],
                }
            )
        policy = aws.iam.RolePolicy(
            f"{name}-role-policy", role=role.id, policy=iam.policy_document(statements), opts=child
        )
        # The server checks its role on creation: wait for the policy, not only for the role.
        role_arn = pulumi.Output.all(role.arn, policy.id).apply(lambda values: str(values[0]))
        self.role_arn = role_arn

        registration = (
            "AutoModelRegistrationEnabled" if args.automatic_model_registration else ("AutoModelRegistrationDisabled")
        )
        long_running = pulumi.ResourceOptions(
            parent=self, custom_timeouts=pulumi.CustomTimeouts(create=CREATE_TIMEOUT, update=UPDATE_TIMEOUT)
        )
        self.kind = kind_of(args.size)
        if self.kind == "app":
            app = aws.sagemaker.MlflowApp(
                f"{name}-app",
                # MLflow apps are not auto-named by the provider; derive the name from the component's.
                name=name,
                artifact_store_uri=args.artifact_store_uri,
                role_arn=role_arn,
                model_registration_mode=registration,
                weekly_maintenance_window_start=args.maintenance_window,
                timeouts=aws.sagemaker.MlflowAppTimeoutsArgs(create=CREATE_TIMEOUT, update=UPDATE_TIMEOUT),
                opts=long_running,
            )
            self.arn = app.arn
            # An app has no static URL: clients use its ARN as MLFLOW_TRACKING_URI (the sagemaker-mlflow plugin
            # signs the requests) and open the UI through a presigned URL.
            self.url = app.arn
        else:
            server = aws.sagemaker.MlflowTrackingServer(
                f"{name}-server",
                tracking_server_name=name,
                tracking_server_size=args.size,
                mlflow_version=args.mlflow_version,
                artifact_store_uri=args.artifact_store_uri,
                role_arn=role_arn,
                automatic_model_registration=args.automatic_model_registration,
                weekly_maintenance_window_start=args.maintenance_window,
                opts=long_running,
            )
            self.arn = server.arn
            self.url = server.tracking_server_url

        self.register_outputs({"arn": self.arn, "url": self.url, "roleArn": self.role_arn})

    def client_statements(self, ui: bool = False) -> list[iam.Statement]:
        """What a client needs to log runs and register models here (and, with `ui`, to open the web UI)."""
        return iam.mlflow_statements(self.kind, self.arn, ui=ui)

    def grant_use(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let `role` log runs and register models here (an inline policy on that role, owned by this component)."""
        return iam.owned_role_policy(self, f"use-{role.pulumi_resource_name}", role, self.client_statements())


def kind_of(size: str | None) -> iam.MlflowKind:
    """The MLflow a stack gets: the serverless App without a size, a tracking server with one."""
    return "app" if size is None else "server"
