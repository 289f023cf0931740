"""Checks on spend: a budget that alerts on actual and forecast cost, a peak estimate within it, GPU pools idle at 0."""

from collections.abc import Sequence

from policies.base import Config, Props, StackResource, Violation, as_list, as_number, get, of_type, peek
from policies.compute import gpus_per_node, is_gpu_instance

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
