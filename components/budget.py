"""A monthly cost budget on the stack's environment tag, alerting an encrypted SNS topic with e-mail subscribers,
and the enforcer function on that topic that scales the stack's endpoints down and zeroes its GPU NodePools' limits
at the last threshold.

The stack also activates the cost-allocation tags that the budget and `mlplat cost --actual` group by: a tag
that is not active is invisible to Budgets and Cost Explorer.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, keys
from components.functions import budget_enforcer
from components.k8s_objects import create_objects

ENVIRONMENT_TAG = "mlplat:environment"
NOTIFICATION_TYPES = ("ACTUAL", "FORECASTED")
COST_ALLOCATION_TAGS = ("mlplat:environment", "mlplat:team", "mlplat:component", "mlplat:cost-center")
ENFORCER_SOURCE = Path(budget_enforcer.__file__)
ENFORCER_RUNTIME = "python3.12"
ENFORCER_LOG_RETENTION_DAYS = 90
DUTY_TAG = "mlplat:duty"
ENFORCER_DUTY = "budget-enforcement"
ENFORCER_GROUP = "mlplat:budget-enforcer"
"""The Kubernetes group the enforcer's role is mapped to by its EKS access entry (RBAC binds it)."""
ENFORCER_RBAC_NAME = "mlplat-budget-enforcer"
HTTPS = 443
# What a VPC-attached Lambda's role needs to place and remove its network interfaces (Lambda calls EC2 as the role).
ENI_WRITE_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
)


@dataclass(frozen=True)
class EnforcedEndpoint:
    """One endpoint the enforcer may scale down; names are plain strings, so its role can name their ARNs."""

    endpoint: str
    """The SageMaker endpoint's name."""
    inference_component: str | None
    """Its inference component (scale-to-zero endpoints), whose copies go to zero; None for a variant endpoint."""
    minimum: int
    """The variant's floor when zero is not allowed (the endpoint's minCapacity)."""
    variant: str = "primary"
    """The production variant a variant endpoint scales."""


@dataclass(frozen=True)
class EnforcedCluster:
    """The EKS cluster whose GPU NodePools the enforcer zeroes, and how the function reaches its private API."""

    name: pulumi.Input[str]
    """The cluster's name (the token's `x-k8s-aws-id`, and the access entry's cluster)."""
    endpoint: pulumi.Input[str]
    """The API server's URL."""
    certificate_authority: pulumi.Input[str]
    """The cluster CA, base64 PEM as EKS gives it; the function trusts nothing else."""
    node_pools: Sequence[str]
    """The GPU NodePools' names (`mlplat:gpuPools[].name`)."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster (for the ClusterRole and its binding)."""
    vpc_id: pulumi.Input[str]
    """The VPC the function joins (the API endpoint is private)."""
    vpc_arn: pulumi.Input[str]
    """Its ARN: the role may place network interfaces in this VPC only."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """The network's private subnets."""
    cluster_security_group_id: pulumi.Input[str]
    """The cluster's security group, which is opened to the function on 443."""


def enforcer_rbac(node_pools: Sequence[str]) -> list[dict[str, object]]:
    """The ClusterRole (get and patch on exactly the GPU NodePools) and its binding to the enforcer's group."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": ENFORCER_RBAC_NAME},
            # Named pools only: the enforcer never lists, so `list` (which resourceNames cannot narrow) is left out.
            "rules": [
                {
                    "apiGroups": ["karpenter.sh"],
                    "resources": ["nodepools"],
                    "resourceNames": list(node_pools),
                    "verbs": ["get", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": ENFORCER_RBAC_NAME},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ENFORCER_RBAC_NAME},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": ENFORCER_GROUP}],
        },
    ]


def record_parameter(environment: str) -> str:
    """The SSM parameter that holds what the enforcer changed in `environment` (read by `mlplat budget restore`)."""
    return f"/mlplat/{environment}/budget-enforcement"


@dataclass(frozen=True)
class BudgetAlertsArgs:
    """The budget's limit, thresholds and who hears about them."""

    environment: str
    """The value of the `mlplat:environment` tag the budget counts."""
    limit_usd: float
    """Monthly limit in US dollars."""
    thresholds: Sequence[float]
    """Percentages of the limit that notify, on actual and on forecasted spend."""
    emails: Sequence[str]
    """Addresses subscribed to the alert topic (each confirms by e-mail)."""
    region: str = "us-east-1"
    """Where the stack's endpoints live (the enforcer's role names their ARNs)."""
    enforce: bool = False
    """Act at the last threshold (True) or only report that it was crossed (False)."""
    endpoints: Sequence[EnforcedEndpoint] = field(default_factory=tuple)
    """The stack's endpoints, the only ones the enforcer may touch."""
    activate_cost_tags: bool = True
    """Activate the platform's cost-allocation tags (one account-wide setting: one stack per account should own it)."""
    cluster: EnforcedCluster | None = None
    """The cluster whose GPU NodePools an enforcing stack zeroes; None without GPU pools."""


def cost_filter_value(environment: str) -> str:
    """The Budgets filter value for a cost allocation tag: `user:<key>$<value>`."""
    return f"user:{ENVIRONMENT_TAG}${environment}"


class BudgetAlerts(pulumi.ComponentResource):
    """Budget, alert topic (KMS), its policy for AWS Budgets, and the e-mail subscriptions."""

    budget_name: pulumi.Output[str]
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BudgetAlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:budget:BudgetAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = iam.account_id()
        arn_partition = iam.partition()
        budgets_source = {"StringEquals": {"aws:SourceAccount": account}}
        # Named (from the component's name) so that the key policy can admit CloudWatch Logs for this group only.
        self._log_group_name = f"/mlplat/{name}/enforcer"

        key = keys.customer_key(
            f"{name}-key",
            f"Encrypts the budget alert topic of {name}",
            account,
            arn_partition,
            child,
            log_group=(args.region, self._log_group_name),
            users=[
                {
                    "Sid": "BudgetsPublishesEncrypted",
                    "Effect": "Allow",
                    "Principal": {"Service": "budgets.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                    "Condition": budgets_source,
                },
            ],
        )
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key.arn, opts=child)
        self.topic_arn = topic.arn
        topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=iam.policy_document(
                [
                    {
                        "Sid": "BudgetsPublishes",
                        "Effect": "Allow",
                        "Principal": {"Service": "budgets.amazonaws.com"},
                        "Action": "SNS:Publish",
                        "Resource": topic.arn,
                        "Condition": budgets_source,
                    }
                ]
            ),
            opts=child,
        )
        for i, email in enumerate(args.emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{i}", topic=topic.arn, protocol="email", endpoint=email, opts=child
            )

        budget = aws.budgets.Budget(
            f"{name}-budget",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.limit_usd:.2f}",
            limit_unit="USD",
            cost_filters=[
                aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[cost_filter_value(args.environment)])
            ],
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[topic.arn],
                )
                for threshold in args.thresholds
                for kind in NOTIFICATION_TYPES
            ],
            # Budgets cannot publish until the topic policy lets it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[topic_policy]),
        )
        self.budget_name = budget.name

        if args.activate_cost_tags:
            for tag in COST_ALLOCATION_TAGS:
                aws.costexplorer.CostAllocationTag(
                    f"{name}-cost-tag-{tag.split(':')[-1]}", tag_key=tag, status="Active", opts=child
                )

        self.enforcer_arn = self._enforcer(name, args, topic.arn, key.arn, account, arn_partition)
        self.register_outputs(
            {"budgetName": self.budget_name, "topicArn": self.topic_arn, "enforcerArn": self.enforcer_arn}
        )

    def _enforcer(
        self,
        name: str,
        args: BudgetAlertsArgs,
        topic_arn: pulumi.Output[str],
        key_arn: pulumi.Output[str],
        account: pulumi.Output[str],
        arn_partition: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        """The enforcer Lambda, its role (this stack's endpoints and nothing else), log group and subscription."""
        child = pulumi.ResourceOptions(parent=self)
        parameter = record_parameter(args.environment)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-enforcer-logs",
            name=self._log_group_name,
            retention_in_days=ENFORCER_LOG_RETENTION_DAYS,
            kms_key_id=key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-enforcer-role",
            assume_role_policy=iam.service_trust("lambda.amazonaws.com", account),
            tags={DUTY_TAG: ENFORCER_DUTY},
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-enforcer-policy",
            role=role.id,
            policy=iam.policy_document(
                enforcer_statements(args, topic_arn, key_arn, log_group.arn, parameter, account, arn_partition)
            ),
            opts=child,
        )
        cluster = _zeroed_cluster(args)
        cluster_env: dict[str, pulumi.Input[str]] = {}
        vpc_config = None
        # Lambda checks the role's network-interface permissions when the function is created.
        function_deps: list[pulumi.Resource] = [role_policy]
        if cluster is not None:
            vpc_config, function_deps = self._cluster_access(name, cluster, role, role_policy)
            cluster_env = {
                "MLPLAT_NODEPOOLS": json.dumps(list(cluster.node_pools)),
                "MLPLAT_CLUSTER_NAME": cluster.name,
                "MLPLAT_CLUSTER_ENDPOINT": cluster.endpoint,
                "MLPLAT_CLUSTER_CA": cluster.certificate_authority,
            }
        endpoints = [
            {
                "endpoint": e.endpoint,
                "variant": e.variant,
                "inferenceComponent": e.inference_component,
                "minimum": e.minimum,
            }
            for e in args.endpoints
        ]
        function = aws.lambda_.Function(
            f"{name}-enforcer",
            role=role.arn,
            runtime=ENFORCER_RUNTIME,
            handler=f"{ENFORCER_SOURCE.stem}.handler",
            code=pulumi.AssetArchive({ENFORCER_SOURCE.name: pulumi.FileAsset(str(ENFORCER_SOURCE))}),
            timeout=120,
            memory_size=128,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=log_group.name),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "MLPLAT_ENVIRONMENT": args.environment,
                    "MLPLAT_ENFORCE": "true" if args.enforce else "false",
                    "MLPLAT_LAST_THRESHOLD": f"{max(args.thresholds):g}",
                    "MLPLAT_ENDPOINTS": json.dumps(endpoints, sort_keys=True),
                    "MLPLAT_RECORD_PARAMETER": parameter,
                    "MLPLAT_TOPIC_ARN": topic_arn,
                    **cluster_env,
                }
            ),
            vpc_config=vpc_config,
            opts=pulumi.ResourceOptions(parent=self, depends_on=function_deps),
        )
        permission = aws.lambda_.Permission(
            f"{name}-enforcer-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="sns.amazonaws.com",
            source_arn=topic_arn,
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-enforcer-subscription",
            topic=topic_arn,
            protocol="lambda",
            endpoint=function.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        return function.arn

    def _cluster_access(
        self, name: str, cluster: EnforcedCluster, role: aws.iam.Role, role_policy: aws.iam.RolePolicy
    ) -> tuple[aws.lambda_.FunctionVpcConfigArgs, list[pulumi.Resource]]:
        """The function in the private subnets, allowed to the API server on 443, its role mapped to the group
        that RBAC lets get and patch the GPU NodePools; what the function must wait for."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            f"{name}-enforcer-sg",
            description="Budget enforcer: HTTPS out to the cluster API and AWS APIs",
            vpc_id=cluster.vpc_id,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    # The cluster endpoint's addresses are inside the VPC; SSM, SNS, SageMaker and Application
                    # Auto Scaling are reached through the NAT gateway (validation requires one).
                    description="HTTPS to the cluster API and AWS APIs",
                    protocol="tcp",
                    from_port=HTTPS,
                    to_port=HTTPS,
                    cidr_blocks=["0.0.0.0/0"],
                )
            ],
            opts=child,
        )
        api_ingress = aws.vpc.SecurityGroupIngressRule(
            f"{name}-enforcer-to-cluster",
            description="Budget enforcer to the Kubernetes API",
            security_group_id=cluster.cluster_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            opts=child,
        )
        entry = aws.eks.AccessEntry(
            f"{name}-enforcer-access",
            cluster_name=cluster.name,
            principal_arn=role.arn,
            type="STANDARD",
            kubernetes_groups=[ENFORCER_GROUP],
            opts=child,
        )
        rbac = create_objects(
            f"{name}-enforcer",
            enforcer_rbac(cluster.node_pools),
            pulumi.ResourceOptions(parent=self, provider=cluster.provider),
        )
        vpc_config = aws.lambda_.FunctionVpcConfigArgs(
            subnet_ids=list(cluster.subnet_ids), security_group_ids=[group.id]
        )
        return vpc_config, [role_policy, api_ingress, entry, *rbac]


def _zeroed_cluster(args: BudgetAlertsArgs) -> EnforcedCluster | None:
    """The cluster the enforcer acts on: only an enforcing stack's, and only when it has GPU pools."""
    if args.cluster is None or not args.cluster.node_pools or not args.enforce:
        return None
    return args.cluster


def enforcer_statements(
    args: BudgetAlertsArgs,
    topic_arn: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    log_group_arn: pulumi.Input[str],
    parameter: str,
    account: pulumi.Input[str],
    arn_partition: pulumi.Input[str],
) -> list[iam.Statement]:
    """The enforcer's permissions: this stack's endpoints, components and scaling targets, its record, its topic."""

    def arn(service: str, resource: str) -> pulumi.Output[str]:
        return pulumi.Output.concat("arn:", arn_partition, f":{service}:{args.region}:", account, f":{resource}")

    endpoints = [arn("sagemaker", f"endpoint/{e.endpoint}") for e in args.endpoints]
    components = [
        arn("sagemaker", f"inference-component/{e.inference_component}")
        for e in args.endpoints
        if e.inference_component
    ]
    statements: list[iam.Statement] = []
    if endpoints:
        statements.append(
            {
                "Sid": "ScaleThisStacksEndpoints",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:UpdateEndpointWeightsAndCapacities",
                ],
                "Resource": endpoints,
            }
        )
    if components:
        statements.append(
            {
                "Sid": "ScaleThisStacksInferenceComponents",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:DescribeInferenceComponent",
                    "sagemaker:UpdateInferenceComponentRuntimeConfig",
                ],
                "Resource": components,
            }
        )
    if endpoints:
        statements += [
            {
                "Sid": "PinThisStacksScalingTargets",
                "Effect": "Allow",
                "Action": ["application-autoscaling:RegisterScalableTarget"],
                # Scalable-target ARNs carry generated IDs: the stack's environment tag picks its own targets.
                "Resource": arn("application-autoscaling", "scalable-target/*"),
                "Condition": {"StringEquals": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": args.environment}},
            },
            {
                "Sid": "ReadScalingTargets",
                "Effect": "Allow",
                "Action": ["application-autoscaling:DescribeScalableTargets"],
                # DescribeScalableTargets has no resource-level permissions: AWS accepts only "*".
                "Resource": "*",
            },
        ]
    cluster = _zeroed_cluster(args)
    if cluster is not None:
        statements += [
            {
                "Sid": "AttachToThisStacksVpc",
                "Effect": "Allow",
                "Action": list(ENI_WRITE_ACTIONS),
                # Network-interface IDs are Lambda's to pick: the VPC condition keeps them in this stack's VPC.
                "Resource": "*",
                "Condition": {"ArnEquals": {"ec2:Vpc": cluster.vpc_arn}},
            },
            {
                "Sid": "ReadNetworkInterfaces",
                "Effect": "Allow",
                "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                # EC2's Describe actions have no resource-level permissions: AWS accepts only "*".
                "Resource": "*",
            },
        ]
    statements += [
        {
            "Sid": "KeepTheRecord",
            "Effect": "Allow",
            "Action": ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:PutParameter"],
            "Resource": arn("ssm", f"parameter{parameter}"),
        },
        {
            "Sid": "ReportToTheBudgetTopic",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": topic_arn,
        },
        {
            "Sid": "UseTheTopicKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, pulumi.Output.concat(log_group_arn, ":log-stream:*")],
        },
    ]
    return statements
