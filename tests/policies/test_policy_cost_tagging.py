"""Cost and tagging policies: budget alerts, peak cost within the budget, GPU pools at zero, stack tags."""

import pytest
from policy_support import UNKNOWN, changed, removed, resource, run, run_stack

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


# One bad fixture per condition each cost and tagging policy checks; each case is named after its condition.
def _no(kind: str) -> str:
    return f"budget has no {kind} notification; add one with a threshold and a subscriber (mlplat:budget.thresholds)."


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            changed(BUDGET_PROPS, "notifications", [notification("FORECASTED", 100)]), [_no("ACTUAL")], id="no ACTUAL"
        ),
        pytest.param(
            changed(BUDGET_PROPS, "notifications", []), [_no("ACTUAL"), _no("FORECASTED")], id="no notification at all"
        ),
        pytest.param(
            changed(
                changed(BUDGET_PROPS, "notifications.1.subscriberEmailAddresses", []),
                "notifications.1.subscriberSnsTopicArns",
                ["arn:aws:sns:us-east-1:111122223333:alerts"],
            ),
            [],
            id="a topic subscriber instead of email",
        ),
        pytest.param(
            changed(removed(BUDGET_PROPS, "notifications.1.subscriberEmailAddresses"), "notifications.1.threshold", 95),
            [
                "the FORECASTED notification at 95 has no subscriber; add subscriberEmailAddresses "
                "(mlplat:budget.emails) or subscriberSnsTopicArns."
            ],
            id="no subscriber field at all",
        ),
        pytest.param(removed(BUDGET_PROPS, "budgetType"), [], id="budgetType left to its default COST"),
    ],
)
def test_budget_alerts_checks_each_condition(props: dict, messages: list[str]) -> None:
    budget = resource(BUDGET, "budget", props)
    assert run_stack("budget-alerts", [budget]) == [Violation(m, budget.urn) for m in messages]


def test_budget_alerts_does_not_count_a_usage_budget_as_a_cost_budget() -> None:
    usage = resource(BUDGET, "budget", changed(BUDGET_PROPS, "budgetType", "USAGE"))
    assert [v.urn for v in run_stack("budget-alerts", [usage])] == [None]


@pytest.mark.parametrize(
    ("estimate", "config", "messages"),
    [
        pytest.param(60_000, {}, [], id="estimate at the limit"),
        pytest.param(
            60_000.01,
            {},
            [
                "estimated peak monthly cost $60,000.01 is over 100% of the budget limit $60,000.00; lower GPU pool "
                "and endpoint maximums or raise mlplat:budget.limitUsd."
            ],
            id="estimate just over the limit",
        ),
        pytest.param(48_000, {"maxBudgetPercent": 80}, [], id="estimate at a configured 80 percent"),
        pytest.param(
            48_000.5,
            {"maxBudgetPercent": 80},
            [
                "estimated peak monthly cost $48,000.50 is over 80% of the budget limit $60,000.00; lower GPU pool "
                "and endpoint maximums or raise mlplat:budget.limitUsd."
            ],
            id="estimate just over a configured 80 percent",
        ),
        pytest.param(
            "60000.5",
            {},
            [
                "estimated peak monthly cost $60,000.50 is over 100% of the budget limit $60,000.00; lower GPU pool "
                "and endpoint maximums or raise mlplat:budget.limitUsd."
            ],
            id="estimate as a numeric string",
        ),
    ],
)
def test_budget_covers_peak_cost_checks_each_boundary(estimate: object, config: dict, messages: list[str]) -> None:
    budget = resource(BUDGET, "budget", BUDGET_PROPS)
    result = run_stack("budget-covers-peak-cost", [budget], estimatedPeakMonthlyUsd=estimate, **config)
    assert result == [Violation(m, budget.urn) for m in messages]


def test_budget_covers_peak_cost_skips_a_budget_without_a_limit() -> None:
    budget = resource(BUDGET, "budget", removed(BUDGET_PROPS, "limitAmount"))
    assert run_stack("budget-covers-peak-cost", [budget], estimatedPeakMonthlyUsd=1e9) == []


NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


@pytest.mark.parametrize(
    ("props", "config", "messages"),
    [
        pytest.param(
            changed(POOL, "scalingConfig.minSize", 2), {"maxIdleNodes": 2}, [], id="at a configured allowance 2"
        ),
        pytest.param(
            changed(POOL, "scalingConfig.minSize", 3),
            {"maxIdleNodes": 2},
            [
                "the GPU pool keeps 3 node(s) running when idle; set scalingConfig.minSize to 2 "
                "(mlplat:gpuPools[].minSize) and let the cluster-autoscaler add nodes."
            ],
            id="just over a configured allowance 2",
        ),
        pytest.param(
            {"instanceTypes": ["m6i.large", "g5.xlarge"], "scalingConfig": {"minSize": 1}},
            {},
            [
                "the GPU pool keeps 1 node(s) running when idle; set scalingConfig.minSize to 0 "
                "(mlplat:gpuPools[].minSize) and let the cluster-autoscaler add nodes."
            ],
            id="one GPU type among CPU types",
        ),
        pytest.param({"instanceTypes": ["g5.xlarge"]}, {}, [], id="no minSize"),
    ],
)
def test_gpu_pool_scales_to_zero_checks_each_condition(props: dict, config: dict, messages: list[str]) -> None:
    assert run("gpu-pool-scales-to-zero", NODE_GROUP, props, **config) == messages


def _missing(*tags: str) -> str:
    return (
        f"missing tags {', '.join(tags)}; set them once for the whole stack (the platform's tag transform or the "
        "provider's defaultTags), not per resource."
    )


@pytest.mark.parametrize("tag", list(TAGS), ids=lambda tag: f"{tag} missing")
def test_aws_stack_tags_names_each_required_tag(tag: str) -> None:
    bucket = resource(BUCKET, "art", {"tags": {k: v for k, v in TAGS.items() if k != tag}})
    assert run_stack("aws-stack-tags", [bucket]) == [Violation(_missing(tag), bucket.urn)]


@pytest.mark.parametrize(
    ("props", "provider", "config", "messages"),
    [
        pytest.param({"tagsAll": TAGS}, None, {}, [], id="tags from tagsAll"),
        pytest.param(
            {"tags": {"mlplat:team": "ml-platform"}},
            {"defaultTags": {"tags": {"mlplat:environment": "prod"}}},
            {},
            [_missing("mlplat:cost-center")],
            id="own tags and provider defaults merged",
        ),
        pytest.param(
            {"tags": {}}, None, {"requiredTags": ["owner"]}, [_missing("owner")], id="configured required tags"
        ),
        pytest.param(
            {"tags": {**TAGS, "mlplat:team": "other"}},
            {"defaultTags": {"tags": TAGS}},
            {"expectedValues": {"mlplat:team": "ml-platform"}},
            [
                "tag mlplat:team is 'other', expected 'ml-platform'; this stack's tags come from its stack file "
                "(mlplat:environment, mlplat:team, mlplat:costCenter)."
            ],
            id="a resource's own tag overrides the provider default",
        ),
        pytest.param(
            {"tags": {**TAGS, "mlplat:cost-center": 4900}},
            None,
            {"expectedValues": {"mlplat:cost-center": "4900"}},
            [],
            id="expected value compared as text",
        ),
        pytest.param({"tags": "not-a-map"}, None, {}, [], id="tags that are not a map"),
    ],
)
def test_aws_stack_tags_checks_each_source_of_tags(
    props: dict, provider: dict | None, config: dict, messages: list[str]
) -> None:
    bucket = resource(BUCKET, "art", props, provider=provider)
    assert run_stack("aws-stack-tags", [bucket], **config) == [Violation(m, bucket.urn) for m in messages]
