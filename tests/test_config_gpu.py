"""Stack-config validation of the GPU sections: each bad setting fails with its own message, naming file and key."""

import copy
from datetime import date
from typing import Any

import pytest
import yaml

from components import config, versions

SOURCE = "stacks/Pulumi.prod.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    """The shipped prod stack's config, as `validate` takes it."""
    document = yaml.safe_load(config.stack_file("prod").read_text())
    return copy.deepcopy(config.raw_from_stack_yaml(document, SOURCE))


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.validate(raw, SOURCE)
    return caught.value.problems


def test_the_shipped_prod_gpu_config_is_valid(raw: dict[str, Any]) -> None:
    cfg = config.validate(raw, SOURCE)
    assert [p.name for p in cfg.gpu_pools] == ["train-spot", "train-ondemand", "batch-infer"]


def test_a_cpu_instance_type_in_a_gpu_pool_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][0]["instanceTypes"] = ["m5.xlarge"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[0].instanceTypes[0] is not a GPU instance type (got 'm5.xlarge')"
    ]


def test_the_old_capacity_type_key_fails_naming_its_replacement(raw: dict[str, Any]) -> None:
    raw["gpuPools"][0]["capacityType"] = "SPOT"
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[0].capacityType is replaced by capacityTypes "
        "(an ordered list of reserved, spot, on-demand)"
    ]


def test_the_old_node_counts_fail_naming_the_gpu_limit(raw: dict[str, Any]) -> None:
    raw["gpuPools"][2]["maxSize"] = 4
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[2].maxSize is replaced by gpuLimit (the most GPUs the pool may hold)"
    ]


def test_an_unknown_capacity_type_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][0]["capacityTypes"] = ["spot", "SPOT"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[0].capacityTypes[1] must be 'reserved', 'spot' or 'on-demand' (got 'SPOT')"
    ]


def test_capacity_types_against_karpenters_own_order_are_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][0]["capacityTypes"] = ["on-demand", "spot"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[0].capacityTypes must follow Karpenter's order reserved, spot, on-demand "
        "(got ['on-demand', 'spot'])"
    ]


def test_a_pool_over_the_environments_gpu_cap_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][1]["gpuLimit"] = 72
    assert problems(raw) == [f"{SOURCE}: mlplat:gpuPools[1].gpuLimit is over the prod cap of 64 GPUs per pool (got 72)"]


def test_a_gpu_limit_below_the_smallest_node_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][1]["gpuLimit"] = 4  # p4d.24xlarge: 8 GPUs a node
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[1].gpuLimit is below the 8 GPUs of the pool's smallest node (got 4)"
    ]


def test_a_pool_naming_neither_families_nor_types_is_rejected(raw: dict[str, Any]) -> None:
    del raw["gpuPools"][2]["instanceFamilies"]
    assert problems(raw) == [f"{SOURCE}: mlplat:gpuPools[2] must name instanceFamilies or instanceTypes (got neither)"]


def test_a_family_with_no_allowed_type_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][2]["instanceFamilies"] = ["g4dn"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[2].instanceFamilies[0] has no instance type allowed in prod (got 'g4dn')"
    ]


def test_a_team_quota_larger_than_every_pool_together_is_rejected(raw: dict[str, Any]) -> None:
    raw["teams"][1]["gpuQuota"] = 45  # 16 + 8 + 4 = 28 GPUs at most
    assert problems(raw) == [
        f"{SOURCE}: mlplat:teams[1].gpuQuota is more than the GPU pools can ever supply (got 45 > 28)"
    ]


def test_a_version_past_standard_support_is_refused_with_its_end_date(
    raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "today", lambda: date(2026, 12, 6))
    raw["cluster"]["version"] = "1.33"
    assert problems(raw) == [
        f"{SOURCE}: mlplat:cluster.version 1.33 left EKS standard support on 2026-07-29 (table as of 2026-12-06); "
        "use 1.35, or set mlplat:cluster.allowExtendedSupport: true to pay for extended support"
    ]


def test_extended_support_accepts_an_old_version(raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "today", lambda: date(2026, 12, 6))
    raw["cluster"] |= {"version": "1.34", "allowExtendedSupport": True}
    assert config.validate(raw, SOURCE).cluster.version == "1.34"  # type: ignore[union-attr]


def test_the_default_version_is_the_newest_in_standard_support(
    raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "today", lambda: date(2026, 12, 6))
    del raw["cluster"]["version"]
    assert config.validate(raw, SOURCE).cluster.version == "1.35"  # type: ignore[union-attr]
    assert versions.default_version(date(2026, 11, 30)) == "1.35"
    assert versions.default_version(date(2026, 3, 1)) == "1.35"


def test_a_gpu_type_outside_the_environment_allow_list_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][0]["instanceTypes"] = ["g4dn.xlarge"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[0].instanceTypes[0] is not allowed in prod (got 'g4dn.xlarge')"
    ]


def test_a_public_api_endpoint_open_to_the_internet_is_rejected(raw: dict[str, Any]) -> None:
    raw["cluster"]["publicAccessCidrs"] = ["203.0.113.0/24", "0.0.0.0/0"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:cluster.publicAccessCidrs[1] must not open the API to the internet (got '0.0.0.0/0')"
    ]


def test_gpu_pools_without_a_cluster_are_rejected(raw: dict[str, Any]) -> None:
    del raw["cluster"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools needs mlplat:cluster (GPU pools run on the EKS cluster)",
        f"{SOURCE}: mlplat:budget.splitCostExport needs mlplat:cluster (split cost allocation covers EKS pods)",
        f"{SOURCE}: mlplat:teams needs mlplat:cluster (team namespaces live on the EKS cluster)",
    ]


def test_every_bad_pool_setting_is_reported_at_once(raw: dict[str, Any]) -> None:
    raw["gpuPools"][1]["gpuLimit"] = 100
    raw["gpuPools"][2]["instanceTypes"] = ["c5.large"]
    raw["gpuPools"][2]["capacityTypes"] = ["on-demand", "on-demand"]
    assert [p.split(": ", 1)[1].split(" ", 1)[0] for p in problems(raw)] == [
        "mlplat:gpuPools[1].gpuLimit",
        "mlplat:gpuPools[2].instanceTypes[0]",
        "mlplat:gpuPools[2].capacityTypes",
    ]


def test_an_enforcing_stack_with_gpu_pools_and_no_nat_is_rejected(raw: dict[str, Any]) -> None:
    raw["budget"]["enforce"] = True
    raw["network"]["nat"] = "none"
    assert problems(raw) == [
        f"{SOURCE}: mlplat:network.nat must be single or per-az when the budget enforcer zeroes mlplat:gpuPools "
        "(it runs in the VPC and calls SSM, SNS and Application Auto Scaling) (got 'none')"
    ]


def test_a_notify_only_stack_with_gpu_pools_needs_no_nat(raw: dict[str, Any]) -> None:
    raw["network"]["nat"] = "none"
    assert config.validate(raw, SOURCE).network.nat == "none"


def test_a_split_cost_export_without_a_cluster_is_rejected(raw: dict[str, Any]) -> None:
    for key in ("cluster", "gpuPools", "teams"):
        raw.pop(key)
    raw["endpoints"] = [e for e in raw["endpoints"] if e.get("platform") != "kubernetes"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:budget.splitCostExport needs mlplat:cluster (split cost allocation covers EKS pods)"
    ]
