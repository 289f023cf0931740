"""The split cost export: prod's CUR 2.0 export with EKS split cost allocation data, delivered into its bucket's
billing/ prefix, which admits the export services for this account's exports only."""

from typing import Any

import pytest
from plan_helpers import parent_type, statements

from components.cost_export import EXPORT_SERVICES
from contracts.bucket import BILLING_PREFIX
from mlplat.cost import split
from mlplat.synth import PlanRecord

EXPORT = "aws:bcmdata/export:Export"
STORE = "mlplat:artifacts:ArtifactStore"
CONDITION = {
    "StringLike": {
        "aws:SourceAccount": "123456789012",
        "aws:SourceArn": [
            "arn:aws:cur:us-east-1:123456789012:definition/*",
            "arn:aws:bcm-data-exports:us-east-1:123456789012:export/*",
        ],
    }
}


def _export(plan: PlanRecord) -> dict[str, Any]:
    (export,) = plan.of_type(EXPORT)
    value: dict[str, Any] = export.inputs["export"]
    return value


def test_the_export_selects_split_cost_allocation_data_daily_with_resources(prod: PlanRecord) -> None:
    (query,) = _export(prod)["dataQueries"]
    assert query["tableConfigurations"] == {
        "COST_AND_USAGE_REPORT": {
            "BILLING_VIEW_ARN": "arn:aws:billing::123456789012:billingview/primary",
            "TIME_GRANULARITY": "DAILY",
            "INCLUDE_RESOURCES": "TRUE",
            "INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY": "FALSE",
            "INCLUDE_SPLIT_COST_ALLOCATION_DATA": "TRUE",
        }
    }
    assert query["queryStatement"].endswith(" FROM COST_AND_USAGE_REPORT")


def test_the_export_selects_every_column_the_reader_needs(prod: PlanRecord) -> None:
    (query,) = _export(prod)["dataQueries"]
    selected = query["queryStatement"].removeprefix("SELECT ").split(" FROM ")[0].split(", ")
    assert set(split.REQUIRED_COLUMNS) <= set(selected)


def test_the_export_overwrites_gzip_csv_under_the_buckets_billing_prefix(prod: PlanRecord) -> None:
    ((destination,),) = [d["s3Destinations"] for d in _export(prod)["destinationConfigurations"]]
    assert destination["s3Bucket"] == prod.outputs["bucketName"]
    assert f"{destination['s3Prefix']}/" == BILLING_PREFIX
    assert destination["s3Region"] == prod.config["region"]
    assert destination["s3OutputConfigurations"] == [
        {"overwrite": "OVERWRITE_REPORT", "format": "TEXT_OR_CSV", "compression": "GZIP", "outputType": "CUSTOM"}
    ]
    assert _export(prod)["name"] == "mlplat-prod-split-cost"


def test_the_export_is_created_in_us_east_1_where_data_exports_lives(prod: PlanRecord) -> None:
    (export,) = prod.of_type(EXPORT)
    (provider,) = prod.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    assert export.options["provider"].startswith(provider.urn)


def test_the_bucket_admits_the_export_services_under_billing_for_this_accounts_exports(prod: PlanRecord) -> None:
    policy = next(r for r in prod.of_type("aws:s3/bucketPolicy:BucketPolicy") if parent_type(r) == STORE)
    delivery = next(s for s in statements(policy) if s["Sid"] == "DataExportsDelivers")
    bucket = prod.outputs["bucketArn"]
    assert delivery == {
        "Sid": "DataExportsDelivers",
        "Effect": "Allow",
        "Principal": {"Service": list(EXPORT_SERVICES)},
        "Action": ["s3:GetBucketPolicy", "s3:PutObject"],
        "Resource": [bucket, f"{bucket}/billing/*"],
        "Condition": CONDITION,
    }


def test_the_bucket_key_lets_the_export_services_encrypt_for_this_accounts_exports(prod: PlanRecord) -> None:
    key = prod.get("aws:kms/key:Key", "mlplat-prod-artifacts-key")
    encrypts = next(s for s in statements(key) if s["Sid"] == "DataExportsEncrypts")
    assert encrypts["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert encrypts["Condition"] == CONDITION


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_a_stack_that_does_not_ask_exports_nothing(plans: dict[str, PlanRecord], stack: str) -> None:
    plan = plans[stack]
    assert plan.of_type(EXPORT) == []
    key = plan.get("aws:kms/key:Key", f"mlplat-{stack}-artifacts-key")
    assert [s["Sid"] for s in statements(key)] == ["AccountAdministers"]
