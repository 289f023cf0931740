"""Checks on the network: flow logs on every VPC, no ingress from the internet, no public IPs in private subnets."""

from collections.abc import Sequence
from typing import Any

from policies.base import (
    Config,
    Props,
    StackResource,
    Violation,
    as_list,
    companions,
    get,
    of_type,
    peek,
    truthy,
)

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
INGRESS_TYPES = (SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE)
SUBNET = "aws:ec2/subnet:Subnet"

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def flow_logs(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every VPC has a flow log that records all traffic."""
    wanted = str(config["trafficType"])
    found: list[Violation] = []
    for vpc in of_type(resources, VPC):
        logs = companions(resources, vpc, "vpcId", FLOW_LOG)
        if not logs:
            found.append(
                Violation(
                    f"VPC has no flow log; add an aws.ec2.FlowLog with this vpcId and trafficType {wanted}.", vpc.urn
                )
            )
        for log in logs:
            traffic = peek(log.props, "trafficType")
            if traffic is not None and traffic != wanted:
                found.append(Violation(f"flow log records {traffic} traffic; set trafficType: {wanted}.", log.urn))
    return found


def _ports(rule: Any, protocol_key: str) -> str:
    protocol = str(get(rule, protocol_key) or "-1")
    if protocol in ("-1", "all"):
        return "all traffic"
    low, high = get(rule, "fromPort"), get(rule, "toPort")
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def _cidrs(rule: Any) -> list[Any]:
    return [*as_list(get(rule, "cidrBlocks")), *as_list(get(rule, "ipv6CidrBlocks"))]


def no_public_ingress(resource_type: str, props: Props, config: Config) -> list[str]:
    """No security group admits traffic from 0.0.0.0/0 or ::/0."""

    protocol_key = "protocol"
    if resource_type == SECURITY_GROUP:
        sources = [(rule, _cidrs(rule)) for rule in as_list(get(props, "ingress"))]
    elif resource_type == SECURITY_GROUP_RULE:
        sources = [(props, _cidrs(props))] if get(props, "type") == "ingress" else []
    else:
        sources = [(props, [c for c in (get(props, "cidrIpv4"), get(props, "cidrIpv6")) if c])]
        protocol_key = "ipProtocol"
    found: list[str] = []
    for rule, cidrs in sources:
        for cidr in cidrs:
            if cidr in OPEN_CIDRS:
                found.append(
                    f"ingress of {_ports(rule, protocol_key)} from {cidr}; admit the VPC CIDR or a source security "
                    "group instead."
                )
    return found


def private_subnet_no_public_ip(resource_type: str, props: Props, config: Config) -> list[str]:
    """Subnets hand out public IPs only when tagged as public (and mlplat's public subnets hold NAT gateways only)."""
    if not truthy(get(props, "mapPublicIpOnLaunch")):
        return []
    tags = get(props, "tags") or {}
    public = config.get("publicSubnetTags") or {}
    if public and all(str(get(tags, key)) == str(value) for key, value in public.items()):
        return []
    return [
        "subnet maps public IPs on launch, so every instance in it is reachable from the internet; set "
        "mapPublicIpOnLaunch: false."
    ]
