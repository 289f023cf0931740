"""GpuCluster under mocks: a private, encrypted, fully logged EKS control plane with IRSA, access entries, pinned
add-ons and a small on-demand system node group."""

import json

import pytest
from gpu_mocks import ACCOUNT, CLUSTER_ENDPOINT, OIDC_ISSUER, Recorded, Synthesis, synthesize

from components.cluster import GpuCluster, GpuClusterArgs

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
NAME = "mlplat-prod-compute-cluster"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/mlplat-prod-admin"
SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]


def _args(**overrides: object) -> GpuClusterArgs:
    base: dict[str, object] = {
        "subnet_ids": SUBNETS,
        "region": "us-east-1",
        "version": "1.35",
        "admin_role_arn": ADMIN,
        "system_instance_type": "m6i.xlarge",
        "system_min_size": 2,
        "system_max_size": 4,
    }
    return GpuClusterArgs(**{**base, **overrides})  # type: ignore[arg-type]


def _build(name: str, args: GpuClusterArgs) -> dict[str, object]:
    cluster = GpuCluster(name, args)
    return {"kubeconfig": cluster.kubeconfig, "oidc": cluster.oidc_provider_arn, "issuer": cluster.oidc_issuer}


@pytest.fixture(scope="module")
def plan() -> Synthesis:
    return synthesize(lambda: _build(NAME, _args()))


@pytest.fixture(scope="module")
def eks(plan: Synthesis) -> Recorded:
    return plan.named(f"{NAME}-eks")


def test_the_cluster_runs_in_the_private_subnets_with_only_a_private_endpoint(eks: Recorded) -> None:
    assert eks.inputs["vpcConfig"] == {
        "subnetIds": SUBNETS,
        "endpointPrivateAccess": True,
        "endpointPublicAccess": False,
    }


def test_a_public_endpoint_opens_only_to_the_listed_cidrs() -> None:
    plan = synthesize(lambda: _build("pub", _args(public_access_cidrs=("203.0.113.0/24",))))
    assert plan.named("pub-eks").inputs["vpcConfig"] == {
        "subnetIds": SUBNETS,
        "endpointPrivateAccess": True,
        "endpointPublicAccess": True,
        "publicAccessCidrs": ["203.0.113.0/24"],
    }


def test_secrets_are_envelope_encrypted_with_the_clusters_own_rotating_key(plan: Synthesis, eks: Recorded) -> None:
    key = plan.named(f"{NAME}-key")
    assert key.inputs["enableKeyRotation"] is True
    assert eks.inputs["encryptionConfig"] == {
        "provider": {"keyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{NAME}-key"},
        "resources": ["secrets"],
    }


def test_all_five_control_plane_log_types_are_enabled(eks: Recorded) -> None:
    assert eks.inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def test_control_plane_logs_land_in_an_encrypted_log_group_with_retention_created_first(
    plan: Synthesis, eks: Recorded
) -> None:
    logs = plan.named(f"{NAME}-logs")
    assert logs.inputs["name"] == f"/aws/eks/{NAME}/cluster"
    assert logs.inputs["retentionInDays"] == 90
    assert logs.inputs["kmsKeyId"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{NAME}-key"
    assert logs.urn in eks.dependencies


def test_cloudwatch_may_use_the_cluster_key_for_the_control_plane_log_group_only(plan: Synthesis) -> None:
    logs_statement = plan.named(f"{NAME}-key").policy()["Statement"][1]
    assert logs_statement["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs_statement["Condition"] == {
        "ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/eks/{NAME}/cluster"
        }
    }


def test_the_cluster_is_named_after_the_component_and_pinned_to_its_version(eks: Recorded) -> None:
    assert eks.inputs["name"] == NAME
    assert eks.inputs["version"] == "1.35"
    assert eks.inputs["upgradePolicy"] == {"supportType": "STANDARD"}


def test_access_uses_the_api_mode_without_a_creator_admin_when_an_admin_role_is_named(eks: Recorded) -> None:
    assert eks.inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }


def test_the_admin_role_gets_cluster_admin_through_an_access_entry(plan: Synthesis) -> None:
    entry = plan.named(f"{NAME}-admin")
    assert entry.inputs == {"clusterName": NAME, "principalArn": ADMIN, "type": "STANDARD", "tags": {}}
    association = plan.named(f"{NAME}-admin-policy")
    assert association.inputs == {
        "clusterName": NAME,
        "principalArn": ADMIN,
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        "accessScope": {"type": "cluster"},
    }


def test_without_an_admin_role_the_creator_keeps_the_bootstrap_admin_and_no_entry_exists() -> None:
    plan = synthesize(lambda: _build("noadmin", _args(admin_role_arn=None)))
    assert plan.named("noadmin-eks").inputs["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True
    assert plan.of_type("aws:eks/accessEntry:AccessEntry") == []


def test_the_oidc_provider_trusts_the_clusters_issuer_for_sts(plan: Synthesis) -> None:
    oidc = plan.named(f"{NAME}-oidc")
    assert oidc.inputs["url"] == OIDC_ISSUER
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_the_cluster_role_trusts_only_eks_and_holds_the_cluster_policy_and_its_key(plan: Synthesis) -> None:
    role = plan.named(f"{NAME}-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ]
    assert plan.named(f"{NAME}-role-cluster").inputs["policyArn"] == "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    assert plan.named(f"{NAME}-role-key").policy()["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{NAME}-key",
        }
    ]


def test_the_four_managed_add_ons_are_pinned_to_versions_for_the_clusters_release(plan: Synthesis) -> None:
    assert {a.inputs["addonName"]: a.inputs["addonVersion"] for a in plan.of_type(ADDON)} == {
        "vpc-cni": "v1.21.1-eksbuild.1",
        "kube-proxy": "v1.35.0-eksbuild.2",
        "coredns": "v1.13.1-eksbuild.1",
        "eks-node-monitoring-agent": "v1.4.1-eksbuild.1",
    }


def test_the_cluster_stays_on_standard_support_unless_the_stack_accepts_extended(eks: Recorded) -> None:
    assert eks.inputs["upgradePolicy"] == {"supportType": "STANDARD"}


def test_the_system_nodes_are_repaired_automatically(plan: Synthesis) -> None:
    assert plan.named(f"{NAME}-system-group").inputs["nodeRepairConfig"] == {"enabled": True}


def test_the_vpc_cni_enforces_network_policies(plan: Synthesis) -> None:
    cni = plan.named(f"{NAME}-vpc-cni")
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_self_managed_default_add_ons_are_not_installed(eks: Recorded) -> None:
    assert eks.inputs["bootstrapSelfManagedAddons"] is False


def test_coredns_waits_for_the_system_nodes_and_the_nodes_wait_for_the_cni(plan: Synthesis) -> None:
    system = plan.named(f"{NAME}-system-group")
    assert system.urn in plan.named(f"{NAME}-coredns").dependencies
    assert plan.named(f"{NAME}-vpc-cni").urn in system.dependencies


def test_the_system_node_group_is_small_on_demand_and_labelled_system(plan: Synthesis) -> None:
    system = plan.named(f"{NAME}-system-group")
    assert system.inputs["capacityType"] == "ON_DEMAND"
    assert system.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert system.inputs["instanceTypes"] == ["m6i.xlarge"]
    assert system.inputs["scalingConfig"] == {"minSize": 2, "maxSize": 4, "desiredSize": 2}
    assert system.inputs["labels"] == {"mlplat.io/pool": "system"}
    assert "taints" not in system.inputs


def test_the_system_nodes_launch_with_imdsv2_and_an_encrypted_volume(plan: Synthesis) -> None:
    template = plan.named(f"{NAME}-system-lt")
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"


def test_the_kubeconfig_assumes_the_admin_role_for_its_token(plan: Synthesis) -> None:
    config = json.loads(plan.values["kubeconfig"])
    assert config["clusters"][0]["cluster"]["server"] == CLUSTER_ENDPOINT
    assert config["users"][0]["user"]["exec"]["args"] == [
        "eks",
        "get-token",
        "--cluster-name",
        NAME,
        "--region",
        "us-east-1",
        "--output",
        "json",
        "--role-arn",
        ADMIN,
    ]


def test_the_kubernetes_provider_is_built_from_the_kubeconfig(plan: Synthesis) -> None:
    provider = plan.named(f"{NAME}-k8s")
    assert provider.type == "pulumi:providers:kubernetes"
    assert json.loads(provider.inputs["kubeconfig"]) == json.loads(plan.values["kubeconfig"])


def test_every_child_is_parented_by_the_cluster_component(plan: Synthesis) -> None:
    component = plan.named(NAME)
    assert component.type == "mlplat:cluster:GpuCluster"
    tops = [r for r in plan if r.parent == component.urn]
    assert all("mlplat:cluster:GpuCluster$" in r.urn for r in tops)
    assert {r.name for r in tops} >= {f"{NAME}-eks", f"{NAME}-oidc", f"{NAME}-system-group", f"{NAME}-k8s"}


def test_an_unsupported_kubernetes_version_is_rejected_with_the_supported_ones() -> None:
    with pytest.raises(ValueError) as raised:
        GpuCluster("old", _args(version="1.29"))
    assert str(raised.value) == "GpuCluster old: version must be one of 1.32, 1.33, 1.34, 1.35 (got '1.29')"


def test_an_api_endpoint_open_to_the_internet_is_rejected() -> None:
    with pytest.raises(ValueError) as raised:
        GpuCluster("open", _args(public_access_cidrs=("0.0.0.0/0",)))
    assert str(raised.value) == (
        "GpuCluster open: publicAccessCidrs[0] must not open the API to the internet (got '0.0.0.0/0')"
    )
