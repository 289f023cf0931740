"""Cost and tagging policies: budget alerts, peak cost within the budget, GPU pools at zero, stack tags."""

from policy_support import UNKNOWN, changed, resource, run, run_stack

from policies import tagging
from policies.base import Violation

BUDGET = "aws:budgets/budget:Budget"
BUCKET = "aws:s3/bucket:Bucket"
TAGS = {"mlplat:environment": "prod", "mlplat:team": "ml-platform", "mlplat:cost-center": "cc-4900"}


def notification(kind: str, threshold: float) -> dict:
    return {
        "comparisonOperator": "GREATER_THAN",
        "notificationType": kind,
        "threshold": threshold,
        "thresholdType": "PERCENTAGE",
        "subscriberEmailAddresses": ["finops@example.com"],
    }


BUDGET_PROPS = {
    "budgetType": "COST",
    "timeUnit": "MONTHLY",
    "limitAmount": "60000",
    "limitUnit": "USD",
    "notifications": [notification("ACTUAL", 80), notification("FORECASTED", 100)],
}


def test_a_budget_with_actual_and_forecasted_alerts_passes() -> None:
    assert run_stack("budget-alerts", [resource(BUDGET, "budget", BUDGET_PROPS)]) == []


def test_a_stack_without_a_budget_is_reported_against_the_stack() -> None:
    assert run_stack("budget-alerts", []) == [
        Violation(
            "the stack has no cost budget; add an aws.budgets.Budget (budgetType COST, timeUnit MONTHLY) filtered on "
            "the stack's tags, with ACTUAL and FORECASTED notifications (mlplat:budget)."
        )
    ]


def test_a_budget_without_a_forecast_alert_is_reported() -> None:
    budget = resource(BUDGET, "budget", changed(BUDGET_PROPS, "notifications", [notification("ACTUAL", 80)]))
    assert run_stack("budget-alerts", [budget]) == [
        Violation(
            "budget has no FORECASTED notification; add one with a threshold and a subscriber "
            "(mlplat:budget.thresholds).",
            budget.urn,
        )
    ]


def test_a_notification_nobody_receives_is_reported() -> None:
    props = changed(BUDGET_PROPS, "notifications.0.subscriberEmailAddresses", [])
    budget = resource(BUDGET, "budget", props)
    assert run_stack("budget-alerts", [budget]) == [
        Violation(
            "the ACTUAL notification at 80 has no subscriber; add subscriberEmailAddresses (mlplat:budget.emails) or "
            "subscriberSnsTopicArns.",
            budget.urn,
        )
    ]


def test_a_peak_estimate_within_the_budget_passes() -> None:
    budget = resource(BUDGET, "budget", BUDGET_PROPS)
    assert run_stack("budget-covers-peak-cost", [budget], estimatedPeakMonthlyUsd=59_999.99) == []


def test_a_peak_estimate_over_the_budget_is_reported() -> None:
    budget = resource(BUDGET, "budget", BUDGET_PROPS)
    assert run_stack("budget-covers-peak-cost", [budget], estimatedPeakMonthlyUsd=61_234.5) == [
        Violation(
            "estimated peak monthly cost $61,234.50 is over 100% of the budget limit $60,000.00; lower GPU pool and "
            "endpoint maximums or raise mlplat:budget.limitUsd.",
            budget.urn,
        )
    ]


def test_a_peak_estimate_over_a_stricter_share_is_reported() -> None:
    budget = resource(BUDGET, "budget", BUDGET_PROPS)
    assert [
        v.message
        for v in run_stack("budget-covers-peak-cost", [budget], estimatedPeakMonthlyUsd=50_000, maxBudgetPercent=80)
    ] == [
        "estimated peak monthly cost $50,000.00 is over 80% of the budget limit $60,000.00; lower GPU pool and "
        "endpoint maximums or raise mlplat:budget.limitUsd."
    ]


def test_without_an_estimate_the_budget_policy_has_nothing_to_compare() -> None:
    assert run_stack("budget-covers-peak-cost", [resource(BUDGET, "budget", BUDGET_PROPS)]) == []


POOL = {"instanceTypes": ["g5.xlarge"], "scalingConfig": {"minSize": 0, "maxSize": 2}}


def test_a_gpu_pool_at_zero_passes() -> None:
    assert run("gpu-pool-scales-to-zero", "aws:eks/nodeGroup:NodeGroup", POOL) == []


def test_a_gpu_pool_with_idle_nodes_is_reported() -> None:
    props = changed(POOL, "scalingConfig.minSize", 1)
    assert run("gpu-pool-scales-to-zero", "aws:eks/nodeGroup:NodeGroup", props) == [
        "the GPU pool keeps 1 node(s) running when idle; set scalingConfig.minSize to 0 (mlplat:gpuPools[].minSize) "
        "and let the cluster-autoscaler add nodes."
    ]


def test_a_system_pool_may_keep_nodes() -> None:
    props = {"instanceTypes": ["m6i.large"], "scalingConfig": {"minSize": 2, "maxSize": 3}}
    assert run("gpu-pool-scales-to-zero", "aws:eks/nodeGroup:NodeGroup", props) == []


def test_a_resource_carrying_the_stack_tags_passes() -> None:
    bucket = resource(BUCKET, "art", {"tags": {**TAGS, "mlplat:component": "artifacts"}})
    assert run_stack("aws-stack-tags", [bucket], expectedValues=TAGS) == []


def test_missing_stack_tags_are_named() -> None:
    bucket = resource(BUCKET, "art", {"tags": {"mlplat:environment": "prod"}})
    assert run_stack("aws-stack-tags", [bucket]) == [
        Violation(
            "missing tags mlplat:team, mlplat:cost-center; set them once for the whole stack (the platform's tag "
            "transform or the provider's defaultTags), not per resource.",
            bucket.urn,
        )
    ]


def test_a_tag_with_another_stacks_value_is_reported() -> None:
    bucket = resource(BUCKET, "art", {"tags": {**TAGS, "mlplat:environment": "dev"}})
    assert run_stack("aws-stack-tags", [bucket], expectedValues=TAGS) == [
        Violation(
            "tag mlplat:environment is 'dev', expected 'prod'; this stack's tags come from its stack file "
            "(mlplat:environment, mlplat:team, mlplat:costCenter).",
            bucket.urn,
        )
    ]


def test_provider_default_tags_count() -> None:
    bucket = resource(BUCKET, "art", {}, provider={"region": "us-east-1", "defaultTags": {"tags": TAGS}})
    assert run_stack("aws-stack-tags", [bucket], expectedValues=TAGS) == []


def test_tags_unknown_during_preview_are_not_judged() -> None:
    assert run_stack("aws-stack-tags", [resource(BUCKET, "art", {"tags": UNKNOWN})]) == []


def test_resources_that_take_no_tags_are_skipped() -> None:
    attachment = resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "att", {"role": "r"})
    assert run_stack("aws-stack-tags", [attachment]) == []


def test_the_taggable_type_list_knows_the_platform_types() -> None:
    types = tagging.taggable_types()
    assert {BUCKET, BUDGET, "aws:eks/nodeGroup:NodeGroup", "aws:sagemaker/mlflowApp:MlflowApp"} <= types
    assert "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock" not in types
