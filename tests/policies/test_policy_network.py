"""Network policies: flow logs, public ingress, public IPs in subnets."""

import pytest
from policy_support import changed, resource, run, run_stack

from policies.base import Violation

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SG = "aws:ec2/securityGroup:SecurityGroup"
NET = "urn:pulumi:test::mlplat::mlplat:platform:MlPlatform$mlplat:network:Network::net"
FLOW = {"vpcId": "vpc-1", "trafficType": "ALL", "logDestinationType": "cloud-watch-logs"}
HTTPS_FROM_VPC = {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.20.0.0/16"]}


def network(flow: dict | None = FLOW) -> list:
    resources = [resource(VPC, "net-vpc", {"cidrBlock": "10.20.0.0/16"}, parent=NET, id="vpc-1")]
    if flow is not None:
        resources.append(resource(FLOW_LOG, "net-flow-log", flow, parent=NET))
    return resources


def test_a_vpc_with_a_flow_log_of_all_traffic_passes() -> None:
    assert run_stack("vpc-flow-logs", network()) == []


def test_a_vpc_without_flow_logs_is_reported() -> None:
    resources = network(flow=None)
    assert run_stack("vpc-flow-logs", resources) == [
        Violation("VPC has no flow log; add an aws.ec2.FlowLog with this vpcId and trafficType ALL.", resources[0].urn)
    ]


def test_a_flow_log_of_rejected_traffic_only_is_reported() -> None:
    resources = network(flow=changed(FLOW, "trafficType", "REJECT"))
    assert run_stack("vpc-flow-logs", resources) == [
        Violation("flow log records REJECT traffic; set trafficType: ALL.", resources[1].urn)
    ]


def test_ingress_from_the_vpc_passes() -> None:
    assert run("sg-no-public-ingress", SG, {"ingress": [HTTPS_FROM_VPC]}) == []


def test_ingress_from_the_internet_is_reported() -> None:
    props = {"ingress": [changed(HTTPS_FROM_VPC, "cidrBlocks", ["0.0.0.0/0"])]}
    assert run("sg-no-public-ingress", SG, props) == [
        "ingress of tcp 443 from 0.0.0.0/0; admit the VPC CIDR or a source security group instead."
    ]


def test_ipv6_ingress_rule_from_the_internet_is_reported() -> None:
    props = {"ipProtocol": "-1", "cidrIpv6": "::/0", "securityGroupId": "sg-1"}
    assert run("sg-no-public-ingress", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", props) == [
        "ingress of all traffic from ::/0; admit the VPC CIDR or a source security group instead."
    ]


def test_egress_rules_to_the_internet_are_not_ingress() -> None:
    props = {"type": "egress", "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}
    assert run("sg-no-public-ingress", "aws:ec2/securityGroupRule:SecurityGroupRule", props) == []


def test_a_private_subnet_without_public_ips_passes() -> None:
    assert run("subnet-no-public-ip", "aws:ec2/subnet:Subnet", {"mapPublicIpOnLaunch": False}) == []


def test_a_subnet_mapping_public_ips_is_reported() -> None:
    assert run("subnet-no-public-ip", "aws:ec2/subnet:Subnet", {"mapPublicIpOnLaunch": True}) == [
        "subnet maps public IPs on launch, so every instance in it is reachable from the internet; set "
        "mapPublicIpOnLaunch: false."
    ]


def test_a_subnet_tagged_as_public_ingress_may_map_public_ips() -> None:
    props = {"mapPublicIpOnLaunch": True, "tags": {"mlplat:subnet-tier": "public-ingress"}}
    assert run("subnet-no-public-ip", "aws:ec2/subnet:Subnet", props) == []


# One bad fixture per condition each network policy checks; each case is named after its condition.
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
OPEN = "ingress of {} from {}; admit the VPC CIDR or a source security group instead."


@pytest.mark.parametrize(
    ("type_", "props", "messages"),
    [
        pytest.param(
            SG,
            {"ingress": [{"protocol": "tcp", "fromPort": 8000, "toPort": 8080, "cidrBlocks": ["0.0.0.0/0"]}]},
            [OPEN.format("tcp 8000-8080", "0.0.0.0/0")],
            id="a port range from 0.0.0.0/0",
        ),
        pytest.param(
            SG,
            {"ingress": [{"fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
            [OPEN.format("all traffic", "0.0.0.0/0")],
            id="no protocol means all traffic",
        ),
        pytest.param(
            SG,
            {"ingress": [{"protocol": "all", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
            [OPEN.format("all traffic", "::/0")],
            id="protocol all from ::/0",
        ),
        pytest.param(
            SG,
            {"ingress": [HTTPS_FROM_VPC, {**HTTPS_FROM_VPC, "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}]},
            [OPEN.format("tcp 443", "0.0.0.0/0")],
            id="the second rule's second CIDR",
        ),
        pytest.param(
            SG_RULE,
            {"type": "ingress", "protocol": "udp", "fromPort": 53, "toPort": 53, "cidrBlocks": ["0.0.0.0/0"]},
            [OPEN.format("udp 53", "0.0.0.0/0")],
            id="an ingress security group rule",
        ),
        pytest.param(
            INGRESS_RULE,
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"},
            [OPEN.format("tcp 22", "0.0.0.0/0")],
            id="an ingress rule's cidrIpv4",
        ),
        pytest.param(
            INGRESS_RULE,
            {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "referencedSecurityGroupId": "sg-2"},
            [],
            id="an ingress rule from a security group",
        ),
    ],
)
def test_sg_no_public_ingress_checks_each_kind_of_rule(type_: str, props: dict, messages: list[str]) -> None:
    assert run("sg-no-public-ingress", type_, props) == messages


SUBNET = "aws:ec2/subnet:Subnet"
PUBLIC_IP = (
    "subnet maps public IPs on launch, so every instance in it is reachable from the internet; set "
    "mapPublicIpOnLaunch: false."
)


@pytest.mark.parametrize(
    ("props", "config", "messages"),
    [
        pytest.param({"mapPublicIpOnLaunch": "true"}, {}, [PUBLIC_IP], id="public IPs as a string"),
        pytest.param(
            {"mapPublicIpOnLaunch": True, "tags": {"mlplat:subnet-tier": "private"}},
            {},
            [PUBLIC_IP],
            id="tag of another tier",
        ),
        pytest.param(
            {"mapPublicIpOnLaunch": True, "tags": {"tier": "public"}},
            {"publicSubnetTags": {"tier": "public", "nat": "yes"}},
            [PUBLIC_IP],
            id="one of two configured tags missing",
        ),
        pytest.param(
            {"mapPublicIpOnLaunch": True, "tags": {"tier": "public", "nat": "yes"}},
            {"publicSubnetTags": {"tier": "public", "nat": "yes"}},
            [],
            id="every configured tag present",
        ),
        pytest.param(
            {"mapPublicIpOnLaunch": True, "tags": {"mlplat:subnet-tier": "public-ingress"}},
            {"publicSubnetTags": {}},
            [PUBLIC_IP],
            id="no public tags configured",
        ),
    ],
)
def test_subnet_no_public_ip_checks_each_condition(props: dict, config: dict, messages: list[str]) -> None:
    assert run("subnet-no-public-ip", SUBNET, props, **config) == messages


@pytest.mark.parametrize("traffic", ["ACCEPT", "REJECT"])
def test_vpc_flow_logs_holds_each_log_to_the_configured_traffic_type(traffic: str) -> None:
    resources = network()
    assert run_stack("vpc-flow-logs", resources, trafficType=traffic) == [
        Violation(f"flow log records ALL traffic; set trafficType: {traffic}.", resources[1].urn)
    ]
