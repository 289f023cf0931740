"""The stack's Cost and Usage Report 2.0 export (AWS Data Exports) with EKS split cost allocation data, delivered as
gzip CSV into the artifact bucket under `billing/`, where `mlplat cost --actual` reads pod cost per namespace.

Data Exports is served from us-east-1 only, so the export is created through a us-east-1 provider whatever the
stack's region. It delivers nothing split until the account opts in to split cost allocation data for Amazon EKS in
its Billing and Cost Management preferences (a console setting; the export API has no switch for it).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam
from contracts.bucket import BILLING_PREFIX

EXPORT_REGION = "us-east-1"
EXPORT_SERVICES = ("bcm-data-exports.amazonaws.com", "billingreports.amazonaws.com")
"""The principals that deliver Data Exports (and legacy CUR) files into a bucket."""
TABLE = "COST_AND_USAGE_REPORT"
QUERY_COLUMNS = (
    "identity_line_item_id",
    "line_item_usage_account_id",
    "line_item_line_item_type",
    "line_item_operation",
    "line_item_usage_type",
    "line_item_usage_start_date",
    "line_item_resource_id",
    "line_item_unblended_cost",
    "split_line_item_parent_resource_id",
    "split_line_item_split_usage",
    "split_line_item_split_usage_ratio",
    "split_line_item_split_cost",
    "split_line_item_unused_cost",
)
"""The CUR 2.0 columns the export selects (AWS's CUR 2.0 table dictionary; split_line_item_* need the split cost
allocation table configuration)."""


def export_name(environment: str) -> str:
    """The export's name, which is also the folder under `billing/` its files land in."""
    return f"mlplat-{environment}-split-cost"


def query_statement(columns: Sequence[str] = QUERY_COLUMNS) -> str:
    """The export's SQL."""
    return f"SELECT {', '.join(columns)} FROM {TABLE}"  # noqa: S608 (constant column names, no input)


def delivery_conditions(account: pulumi.Input[str], arn_partition: pulumi.Input[str]) -> dict[str, object]:
    """The condition AWS documents for the export services' bucket and key access: this account's exports only."""
    return {
        "StringLike": {
            "aws:SourceAccount": account,
            "aws:SourceArn": [
                pulumi.Output.concat("arn:", arn_partition, f":cur:{EXPORT_REGION}:", account, ":definition/*"),
                pulumi.Output.concat(
                    "arn:", arn_partition, f":bcm-data-exports:{EXPORT_REGION}:", account, ":export/*"
                ),
            ],
        }
    }


def bucket_statement(
    bucket_arn: pulumi.Output[str], account: pulumi.Input[str], arn_partition: pulumi.Input[str]
) -> iam.Statement:
    """Lets the export services check the bucket policy and write under `billing/`, for this account's exports."""
    return {
        "Sid": "DataExportsDelivers",
        "Effect": "Allow",
        "Principal": {"Service": list(EXPORT_SERVICES)},
        "Action": ["s3:GetBucketPolicy", "s3:PutObject"],
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, f"/{BILLING_PREFIX}*")],
        "Condition": delivery_conditions(account, arn_partition),
    }


def key_statement(account: pulumi.Input[str], arn_partition: pulumi.Input[str]) -> iam.Statement:
    """Lets the export services encrypt what they write with the bucket's key (SSE-KMS is the bucket default)."""
    return {
        "Sid": "DataExportsEncrypts",
        "Effect": "Allow",
        "Principal": {"Service": list(EXPORT_SERVICES)},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": delivery_conditions(account, arn_partition),
    }


@dataclass(frozen=True)
class SplitCostExportArgs:
    """Where the export delivers."""

    environment: str
    """Names the export (`mlplat-<environment>-split-cost`)."""
    bucket_name: pulumi.Input[str]
    """The artifact bucket, whose policy admits the export services under `billing/`."""
    bucket_region: str
    """The bucket's region (the stack's)."""
    bucket_policy: pulumi.Resource
    """That policy: Data Exports checks it when the export is created."""


class SplitCostExport(pulumi.ComponentResource):
    """A daily CUR 2.0 export with resources and split cost allocation data, overwritten in place each refresh."""

    export_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SplitCostExportArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:cost_export:SplitCostExport", name, None, opts)
        provider = aws.Provider(f"{name}-us-east-1", region=EXPORT_REGION, opts=pulumi.ResourceOptions(parent=self))
        billing_view = pulumi.Output.concat(
            "arn:", iam.partition(), ":billing::", iam.account_id(), ":billingview/primary"
        )
        export = aws.bcmdata.Export(
            f"{name}-export",
            export={
                "name": export_name(args.environment),
                "description": f"CUR 2.0 with EKS split cost allocation for mlplat {args.environment}",
                "data_queries": [
                    {
                        "query_statement": query_statement(),
                        "table_configurations": {
                            TABLE: {
                                "BILLING_VIEW_ARN": billing_view,
                                "TIME_GRANULARITY": "DAILY",
                                "INCLUDE_RESOURCES": "TRUE",
                                "INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY": "FALSE",
                                "INCLUDE_SPLIT_COST_ALLOCATION_DATA": "TRUE",
                            }
                        },
                    }
                ],
                "destination_configurations": [
                    {
                        "s3_destinations": [
                            {
                                "s3_bucket": args.bucket_name,
                                "s3_prefix": BILLING_PREFIX.rstrip("/"),
                                "s3_region": args.bucket_region,
                                # One delivery per billing period, replaced on each refresh: nothing counted twice.
                                "s3_output_configurations": [
                                    {
                                        "overwrite": "OVERWRITE_REPORT",
                                        "format": "TEXT_OR_CSV",
                                        "compression": "GZIP",
                                        "output_type": "CUSTOM",
                                    }
                                ],
                            }
                        ]
                    }
                ],
                "refresh_cadences": [{"frequency": "SYNCHRONOUS"}],
            },
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[args.bucket_policy]),
        )
        self.export_arn = export.arn
        self.register_outputs({"exportArn": self.export_arn})
