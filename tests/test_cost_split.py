"""Reading pod cost out of a CUR 2.0 export with split cost allocation data (a recorded file, AWS's documented
columns): which rows count, which delivery is read, which billing periods a window needs."""

import csv
import gzip
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from components.cost_export import QUERY_COLUMNS
from contracts.bucket import billing_period_prefix
from mlplat.cost import split

RECORDED = Path(__file__).parent / "fixtures" / "cur2" / "split-cost-2026-11.csv"
CLUSTER = "mlplat-prod-compute-cluster"


def rows() -> list[dict[str, str]]:
    with RECORDED.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_recorded_file_has_exactly_the_columns_the_export_selects() -> None:
    with RECORDED.open(newline="") as handle:
        assert tuple(next(csv.reader(handle))) == QUERY_COLUMNS


def test_a_namespace_costs_its_pods_split_plus_unused_cost() -> None:
    costs = split.namespace_costs(rows(), CLUSTER, date(2026, 11, 1), date(2026, 12, 1))
    assert [(c.namespace, round(c.split_usd, 2), round(c.unused_usd, 2)) for c in costs] == [
        ("research", 14.5, 2.0),
        ("applied", 3.05, 0.95),
    ]


def test_another_clusters_pods_and_rows_without_a_pod_do_not_count() -> None:
    costs = split.namespace_costs(rows(), "someone-elses-cluster", date(2026, 11, 1), date(2026, 12, 1))
    assert [(c.namespace, c.split_usd) for c in costs] == [("research", 50.0)]


def test_usage_outside_the_window_does_not_count() -> None:
    costs = split.namespace_costs(rows(), CLUSTER, date(2026, 11, 4), date(2026, 12, 1))
    assert [c.namespace for c in costs] == ["applied"]


@pytest.mark.parametrize(
    ("start", "end", "periods"),
    [
        (date(2026, 11, 1), date(2026, 12, 1), ["2026-11"]),
        (date(2026, 11, 2), date(2026, 12, 2), ["2026-11", "2026-12"]),
        (date(2025, 12, 15), date(2026, 1, 5), ["2025-12", "2026-01"]),
    ],
)
def test_a_window_reads_every_billing_period_it_touches(start: date, end: date, periods: list[str]) -> None:
    assert split.billing_periods(start, end) == periods


def test_only_the_newest_executions_files_are_read() -> None:
    prefix = billing_period_prefix("e", "2026-11")
    older, newer = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    objects = [
        {"Key": f"{prefix}20261120T0200Z-a/e-00001.csv.gz", "LastModified": older},
        {"Key": f"{prefix}20261130T0200Z-b/e-00002.csv.gz", "LastModified": newer},
        {"Key": f"{prefix}20261130T0200Z-b/e-00001.csv.gz", "LastModified": newer},
        {"Key": f"{prefix}20261130T0200Z-b/e-Manifest.json", "LastModified": newer},
    ]
    assert split.latest_delivery(objects, prefix) == [
        f"{prefix}20261130T0200Z-b/e-00001.csv.gz",
        f"{prefix}20261130T0200Z-b/e-00002.csv.gz",
    ]


def test_pod_costs_reads_the_delivery_from_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="billing-bucket")
        key = f"{billing_period_prefix('x', '2026-11')}run-1/x-00001.csv.gz"
        s3.put_object(Bucket="billing-bucket", Key=key, Body=gzip.compress(RECORDED.read_bytes()))
        costs = split.pod_costs(s3, "billing-bucket", "x", CLUSTER, date(2026, 11, 1), date(2026, 12, 1))
    assert [c.to_json()["totalUsd"] for c in costs] == [16.5, 4.0]


def test_a_file_that_is_not_gzip_is_one_line_naming_it() -> None:
    with pytest.raises(split.SplitCostError, match=r"^k\.csv\.gz is not a gzip CSV export file"):
        list(split._rows(b"plain text", "k.csv.gz"))
