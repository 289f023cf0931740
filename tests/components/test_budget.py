"""The BudgetAlerts component: a monthly cost budget on the environment tag, alerting an encrypted topic."""

import pytest
from plan_helpers import owned, statements

from mlplat.synth import PlanRecord

BUDGET = "aws:budgets/budget:Budget"
TOPIC = "aws:sns/topic:Topic"
COMPONENT = "mlplat:budget:BudgetAlerts"


@pytest.mark.parametrize("type_token", [BUDGET, TOPIC, "aws:sns/topicPolicy:TopicPolicy", "aws:kms/key:Key"])
def test_budget_pieces_are_children_of_the_component(dev: PlanRecord, type_token: str) -> None:
    assert len(owned(dev, type_token, COMPONENT)) == 1


@pytest.mark.parametrize(("stack", "limit"), [("dev", "300.00"), ("staging", "8000.00"), ("prod", "60000.00")])
def test_monthly_cost_budget_at_the_configured_limit(plans: dict[str, PlanRecord], stack: str, limit: str) -> None:
    (budget,) = owned(plans[stack], BUDGET, COMPONENT)
    assert (budget.inputs["budgetType"], budget.inputs["timeUnit"]) == ("COST", "MONTHLY")
    assert (budget.inputs["limitAmount"], budget.inputs["limitUnit"]) == (limit, "USD")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_budget_counts_only_the_stacks_environment_tag(plans: dict[str, PlanRecord], stack: str) -> None:
    (budget,) = owned(plans[stack], BUDGET, COMPONENT)
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:mlplat:environment${stack}"]}]


def test_budget_notifies_on_actual_and_forecasted_spend_at_each_threshold(prod: PlanRecord) -> None:
    (budget,) = owned(prod, BUDGET, COMPONENT)
    notifications = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
    assert notifications == {(kind, t) for kind in ("ACTUAL", "FORECASTED") for t in (50, 80, 100)}
    assert {n["thresholdType"] for n in budget.inputs["notifications"]} == {"PERCENTAGE"}
    assert {n["comparisonOperator"] for n in budget.inputs["notifications"]} == {"GREATER_THAN"}


def test_every_notification_goes_to_the_alert_topic(prod: PlanRecord) -> None:
    (budget,) = owned(prod, BUDGET, COMPONENT)
    (topic,) = owned(prod, "aws:sns/topicPolicy:TopicPolicy", COMPONENT)
    assert {tuple(n["subscriberSnsTopicArns"]) for n in budget.inputs["notifications"]} == {(topic.inputs["arn"],)}


def test_topic_is_encrypted_with_its_own_key(dev: PlanRecord) -> None:
    (topic,) = owned(dev, TOPIC, COMPONENT)
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    key = dev.get("aws:kms/key:Key", "mlplat-dev-budget-key")
    assert key.inputs["enableKeyRotation"] is True
    budgets = [s for s in statements(key) if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert [sorted(s["Action"]) for s in budgets] == [["kms:Decrypt", "kms:GenerateDataKey"]]


def test_topic_policy_lets_budgets_of_this_account_publish(dev: PlanRecord) -> None:
    (policy,) = owned(dev, "aws:sns/topicPolicy:TopicPolicy", COMPONENT)
    (statement,) = statements(policy)
    assert statement["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert statement["Action"] == "SNS:Publish"
    assert statement["Resource"] == policy.inputs["arn"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_each_configured_address_is_subscribed_by_email(prod: PlanRecord) -> None:
    subscriptions = owned(prod, "aws:sns/topicSubscription:TopicSubscription", COMPONENT)
    emails = [s for s in subscriptions if s.inputs["protocol"] == "email"]
    assert sorted((s.inputs["protocol"], s.inputs["endpoint"]) for s in emails) == [
        ("email", "finops@example.com"),
        ("email", "ml-platform@example.com"),
    ]


def test_budget_waits_for_the_topic_policy(dev: PlanRecord) -> None:
    (budget,) = owned(dev, BUDGET, COMPONENT)
    (policy,) = owned(dev, "aws:sns/topicPolicy:TopicPolicy", COMPONENT)
    assert policy.urn in budget.options["dependsOn"]


def test_budget_name_is_exported(dev: PlanRecord) -> None:
    assert dev.outputs["budgetName"].startswith("mlplat-dev-budget-budget-")
