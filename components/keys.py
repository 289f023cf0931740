"""The platform's KMS keys: rotated yearly, administered by the account, used by whom each component admits."""

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import iam

DELETION_WINDOW_DAYS = 30
"""The longest window KMS allows: a key scheduled for deletion by mistake can be recovered for a month."""


def customer_key(
    resource_name: str,
    description: str,
    account: pulumi.Input[str],
    arn_partition: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    *,
    users: Sequence[iam.Statement] = (),
    log_group: tuple[str, str] | None = None,
    deletion_window_in_days: int = DELETION_WINDOW_DAYS,
    tags: Mapping[str, str] | None = None,
) -> aws.kms.Key:
    """A key whose policy lets the account administer it and `users` (key-policy statements) use it.

    `log_group` is (region, name) of the one log group CloudWatch Logs may encrypt with the key; by name, because
    the key policy must name the group before the group exists.
    """
    statements = [iam.account_root_statement(account, arn_partition), *users]
    if log_group is not None:
        region, group_name = log_group
        statements.append(iam.logs_key_statement(region, iam.log_group_arn(region, account, arn_partition, group_name)))
    return aws.kms.Key(
        resource_name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=deletion_window_in_days,
        policy=iam.policy_document(statements),
        tags=tags,
        opts=opts,
    )
