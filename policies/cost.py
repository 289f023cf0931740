"""Checks on spend: a budget that alerts on actual and forecast cost, a peak estimate within it, GPU pools idle at 0,
and a budget enforcer that can touch only its own stack."""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policies.base import (
    Config,
    Props,
    StackResource,
    Violation,
    actions,
    as_list,
    as_number,
    get,
    is_allow,
    of_type,
    peek,
    refers_to,
    statement_label,
    statements,
)
from policies.compute import gpus_per_node, is_gpu_instance
from policies.sagemaker import ENDPOINT, inference_components

BUDGET = "aws:budgets/budget:Budget"
NOTIFICATION_TYPES = ("ACTUAL", "FORECASTED")


def _cost_budgets(resources: Sequence[StackResource]) -> list[StackResource]:
    return [b for b in of_type(resources, BUDGET) if peek(b.props, "budgetType") in ("COST", None)]


def budget_alerts(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """The stack has a monthly cost budget that notifies someone on actual and on forecasted spend."""
    budgets = _cost_budgets(resources)
    if not budgets:
        return [
            Violation(
                "the stack has no cost budget; add an aws.budgets.Budget (budgetType COST, timeUnit MONTHLY) "
                "filtered on the stack's tags, with ACTUAL and FORECASTED notifications (mlplat:budget)."
            )
        ]
    found: list[Violation] = []
    for budget in budgets:
        notifications = as_list(peek(budget.props, "notifications"))
        kinds = {peek(n, "notificationType") for n in notifications}
        for kind in NOTIFICATION_TYPES:
            if kind not in kinds:
                found.append(
                    Violation(
                        f"budget has no {kind} notification; add one with a threshold and a subscriber "
                        "(mlplat:budget.thresholds).",
                        budget.urn,
                    )
                )
        for notification in notifications:
            emails = as_list(peek(notification, "subscriberEmailAddresses"))
            topics = as_list(peek(notification, "subscriberSnsTopicArns"))
            if emails == [] and topics == []:
                kind = get(notification, "notificationType")
                threshold = get(notification, "threshold")
                found.append(
                    Violation(
                        f"the {kind} notification at {threshold} has no subscriber; add subscriberEmailAddresses "
                        "(mlplat:budget.emails) or subscriberSnsTopicArns.",
                        budget.urn,
                    )
                )
    return found


def budget_covers_peak(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """The estimated peak monthly cost (every autoscaler at its maximum) fits within the budget limit.

    The estimate comes from the policy config (`estimatedPeakMonthlyUsd`), written by `mlplat cost --policy-config`
    from the same price table `mlplat cost` reports with; without an estimate there is nothing to compare.
    """
    estimate = as_number(config.get("estimatedPeakMonthlyUsd"))
    if estimate is None:
        return []
    share = float(config["maxBudgetPercent"])
    found: list[Violation] = []
    for budget in _cost_budgets(resources):
        limit = as_number(peek(budget.props, "limitAmount"))
        if limit is not None and estimate > limit * share / 100:
            found.append(
                Violation(
                    f"estimated peak monthly cost ${estimate:,.2f} is over {share:g}% of the budget limit "
                    f"${limit:,.2f}; lower GPU pool and endpoint maximums or raise mlplat:budget.limitUsd.",
                    budget.urn,
                )
            )
    return found


def gpu_pool_scales_to_zero(resource_type: str, props: Props, config: Config) -> list[str]:
    """GPU pools cost nothing idle: their minimum size is zero (or the configured allowance)."""
    types = [str(t) for t in as_list(get(props, "instanceTypes"))]
    if not any(is_gpu_instance(t) and gpus_per_node(t) > 0 for t in types):
        return []
    minimum = as_number(get(props, "scalingConfig", "minSize"))
    allowance = int(config["maxIdleNodes"])
    if minimum is not None and minimum > allowance:
        return [
            f"the GPU pool keeps {int(minimum)} node(s) running when idle; set scalingConfig.minSize to "
            f"{allowance} (mlplat:gpuPools[].minSize) and let the cluster-autoscaler add nodes."
        ]
    return []


ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
DUTY_TAG = "mlplat:duty"
ENFORCER_DUTY = "budget-enforcement"
ENVIRONMENT_TAG = "mlplat:environment"
_READ_ONLY = ("Describe", "List", "Get")
VPC = "aws:ec2/vpc:Vpc"
# A VPC-attached function's role places its network interfaces; it cannot name them before they exist.
_ENI_WRITES = frozenset(
    {
        "ec2:AssignPrivateIpAddresses",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:UnassignPrivateIpAddresses",
    }
)
_VPC_ARN = re.compile(r"^arn:[a-z-]+:ec2:[a-z0-9-]+:\d{12}:vpc/(vpc-[0-9a-f]+)$")


def _enforcement_roles(resources: Sequence[StackResource]) -> list[StackResource]:
    return [r for r in of_type(resources, ROLE) if peek(r.props, "tags", DUTY_TAG) == ENFORCER_DUTY]


def _stack_sagemaker_names(resources: Sequence[StackResource]) -> set[str]:
    """`endpoint/<name>` and `inference-component/<name>` of every endpoint and component the stack creates."""
    names = {f"endpoint/{n}" for r in of_type(resources, ENDPOINT) if isinstance(n := peek(r.props, "name"), str)}
    names |= {f"inference-component/{n}" for n in inference_components(resources)}
    return names


def _wildcard(target: str) -> bool:
    """A resource pattern that may match other stacks' resources (one named log group's streams may not)."""
    if ":log-group:" in target:
        group = target.split(":log-group:", 1)[1].removesuffix(":log-stream:*").removesuffix(":*")
        return not group or "*" in group
    return "*" in target


def _vpc_scoped(statement: Mapping[str, Any], vpc_ids: set[str]) -> bool:
    """Whether the statement holds network-interface writes to one VPC of this stack (by the VPC's ID; while a
    preview does not know the IDs yet, to one exact VPC ARN)."""
    condition = statement.get("Condition")
    equals = condition.get("ArnEquals") if isinstance(condition, Mapping) else None
    values = as_list(equals.get("ec2:Vpc")) if isinstance(equals, Mapping) else []
    if not values:
        return False
    for value in values:
        match = _VPC_ARN.match(str(value))
        if match is None or (vpc_ids and match.group(1) not in vpc_ids):
            return False
    return True


def _tag_scoped(statement: Mapping[str, Any], environment: str | None) -> bool:
    condition = statement.get("Condition")
    equals = condition.get("StringEquals") if isinstance(condition, Mapping) else None
    return (
        isinstance(equals, Mapping)
        and environment is not None
        and (equals.get(f"aws:ResourceTag/{ENVIRONMENT_TAG}") == environment)
    )


def enforcer_scoped(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every budget-enforcement role acts on its own stack's endpoints and inference components, and on anything
    else only by exact ARN or under a condition on this stack's environment tag; reads may be unscoped."""
    own = _stack_sagemaker_names(resources)
    vpc_ids = {r.id for r in of_type(resources, VPC) if r.id}
    found: list[Violation] = []
    for role in _enforcement_roles(resources):
        environment = peek(role.props, "tags", ENVIRONMENT_TAG)
        for policy in of_type(resources, ROLE_POLICY):
            if not refers_to(policy, "role", role, resources):
                continue
            for i, statement in enumerate(statements(peek(policy.props, "policy"))):
                if not is_allow(statement):
                    continue
                label = statement_label(i, statement)
                targets = [str(t) for t in as_list(statement.get("Resource"))]
                writes = [a for a in actions(statement) if not a.split(":")[-1].startswith(_READ_ONLY)]
                for action in writes:
                    if action.startswith("sagemaker:"):
                        for target in targets:
                            if target.split(":", 5)[-1] not in own:
                                found.append(
                                    Violation(
                                        f"enforcement role {label} lets {action} act on {target}, which is not one "
                                        "of this stack's endpoints or inference components.",
                                        policy.urn,
                                    )
                                )
                    elif action in _ENI_WRITES and any(_wildcard(t) for t in targets):
                        if not _vpc_scoped(statement, vpc_ids):
                            found.append(
                                Violation(
                                    f"enforcement role {label} lets {action} act on {', '.join(targets)} without "
                                    "an ArnEquals ec2:Vpc condition naming this stack's VPC.",
                                    policy.urn,
                                )
                            )
                    elif any(_wildcard(t) for t in targets) and not _tag_scoped(statement, environment):
                        found.append(
                            Violation(
                                f"enforcement role {label} lets {action} act on {', '.join(targets)} without a "
                                f"StringEquals aws:ResourceTag/{ENVIRONMENT_TAG} condition for this stack "
                                f"({environment}).",
                                policy.urn,
                            )
                        )
    return found
