"""Stack-config validation of the GPU sections: each bad setting fails with its own message, naming file and key."""

import copy
from typing import Any

import pytest
import yaml

from components import config

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
    raw["gpuPools"][2]["instanceTypes"] = ["m5.xlarge"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[2].instanceTypes[0] is not a GPU instance type (got 'm5.xlarge')"
    ]


def test_a_pool_whose_min_size_is_over_its_max_size_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][2]["minSize"] = 3
    raw["gpuPools"][2]["maxSize"] = 2
    assert problems(raw) == [f"{SOURCE}: mlplat:gpuPools[2].maxSize must be >= minSize (got 2 < 3)"]


def test_an_ami_type_without_the_nvidia_driver_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][1]["amiType"] = "AL2023_x86_64_STANDARD"
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[1].amiType must be a GPU AMI type "
        "(AL2023_x86_64_NVIDIA, BOTTLEROCKET_x86_64_NVIDIA) (got 'AL2023_x86_64_STANDARD')"
    ]


def test_a_pool_whose_gpus_at_max_size_exceed_the_environment_cap_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][1]["maxSize"] = 9  # p4d.24xlarge: 8 GPUs a node
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[1].maxSize gives 72 GPUs, over the prod cap of 64 (got maxSize 9)"
    ]


def test_a_team_quota_larger_than_every_pool_together_is_rejected(raw: dict[str, Any]) -> None:
    raw["teams"][1]["gpuQuota"] = 45  # 4x4 + 1x8 + 4x1 = 28 GPUs at most
    assert problems(raw) == [
        f"{SOURCE}: mlplat:teams[1].gpuQuota is more than the GPU pools can ever supply (got 45 > 28)"
    ]


def test_a_gpu_type_outside_the_environment_allow_list_is_rejected(raw: dict[str, Any]) -> None:
    raw["gpuPools"][2]["instanceTypes"] = ["g4dn.xlarge"]
    assert problems(raw) == [
        f"{SOURCE}: mlplat:gpuPools[2].instanceTypes[0] is not allowed in prod (got 'g4dn.xlarge')"
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
        f"{SOURCE}: mlplat:teams needs mlplat:cluster (team namespaces live on the EKS cluster)",
    ]


def test_every_bad_pool_setting_is_reported_at_once(raw: dict[str, Any]) -> None:
    raw["gpuPools"][1]["amiType"] = "AL2_x86_64"
    raw["gpuPools"][2]["instanceTypes"] = ["c5.large"]
    raw["gpuPools"][2]["minSize"] = 5
    assert [p.split(": ", 1)[1].split(" ", 1)[0] for p in problems(raw)] == [
        "mlplat:gpuPools[1].amiType",
        "mlplat:gpuPools[2].maxSize",
        "mlplat:gpuPools[2].instanceTypes[0]",
    ]
