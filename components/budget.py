"""A monthly cost budget on the stack's environment tag, alerting an encrypted SNS topic with e-mail subscribers."""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam

ENVIRONMENT_TAG = "mlplat:environment"
NOTIFICATION_TYPES = ("ACTUAL", "FORECASTED")


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

        key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the budget alert topic of {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=iam.policy_document(
                [
                    iam.account_root_statement(account, arn_partition),
                    {
                        "Sid": "BudgetsPublishesEncrypted",
                        "Effect": "Allow",
                        "Principal": {"Service": "budgets.amazonaws.com"},
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                        "Resource": "*",
                        "Condition": budgets_source,
                    },
                ]
            ),
            opts=child,
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

        self.register_outputs({"budgetName": self.budget_name, "topicArn": self.topic_arn})
