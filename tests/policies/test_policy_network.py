"""Network policies: flow logs, public ingress, public IPs in subnets."""

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
