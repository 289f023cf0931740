"""The Network component, read from the synthesized shipped stacks."""

import ipaddress

import pytest
from plan_helpers import as_list, document, parent_type, statements

from components.network import INTERFACE_ENDPOINT_SERVICES, subnet_cidrs
from mlplat.synth import PlanRecord

NETWORK = "mlplat:network:Network"
SG = "aws:ec2/securityGroup:SecurityGroup"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def test_every_network_resource_is_a_child_of_the_network_component(dev: PlanRecord) -> None:
    network = dev.get(NETWORK, "mlplat-dev-network")
    children = dev.children(network.urn)
    assert {parent_type(r) for r in children} == {NETWORK}
    assert dev.get("aws:ec2/vpc:Vpc", "mlplat-dev-network-vpc").parent == network.urn


def test_vpc_uses_the_configured_cidr_with_dns_for_private_endpoints(prod: PlanRecord) -> None:
    vpc = prod.get("aws:ec2/vpc:Vpc", "mlplat-prod-network-vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True
    assert vpc.inputs["enableDnsHostnames"] is True


@pytest.mark.parametrize(("stack", "azs"), [("dev", 2), ("staging", 3), ("prod", 3)])
def test_one_private_subnet_per_availability_zone(plans: dict[str, PlanRecord], stack: str, azs: int) -> None:
    private = [r for r in plans[stack].of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name]
    assert sorted(r.inputs["availabilityZone"] for r in private) == [
        f"{plans[stack].config['region']}{x}" for x in "abc"[:azs]
    ]
    assert all(r.inputs["mapPublicIpOnLaunch"] is False for r in private)


@pytest.mark.parametrize(("stack", "nat_gateways"), [("dev", 0), ("staging", 1), ("prod", 3)])
def test_nat_gateway_count_follows_the_nat_mode(plans: dict[str, PlanRecord], stack: str, nat_gateways: int) -> None:
    assert len(plans[stack].of_type("aws:ec2/natGateway:NatGateway")) == nat_gateways
    assert len(plans[stack].of_type("aws:ec2/eip:Eip")) == nat_gateways


def test_dev_without_nat_has_no_public_subnet_internet_gateway_or_default_route(dev: PlanRecord) -> None:
    assert [r.name for r in dev.of_type("aws:ec2/subnet:Subnet") if "-public-" in r.name] == []
    assert dev.of_type("aws:ec2/internetGateway:InternetGateway") == []
    assert dev.of_type("aws:ec2/route:Route") == []


def test_per_az_nat_gives_each_private_route_table_its_own_default_route(prod: PlanRecord) -> None:
    routes = [r for r in prod.of_type("aws:ec2/route:Route") if "-private-nat-" in r.name]
    assert len({r.inputs["natGatewayId"] for r in routes}) == 3
    assert len({r.inputs["routeTableId"] for r in routes}) == 3
    assert {r.inputs["destinationCidrBlock"] for r in routes} == {"0.0.0.0/0"}


def test_single_nat_is_shared_by_every_private_route_table(staging: PlanRecord) -> None:
    routes = [r for r in staging.of_type("aws:ec2/route:Route") if "-private-nat-" in r.name]
    assert len(routes) == 3
    assert len({r.inputs["natGatewayId"] for r in routes}) == 1


def test_s3_gateway_endpoint_serves_every_private_route_table(prod: PlanRecord) -> None:
    s3 = prod.get(ENDPOINT, "mlplat-prod-network-s3")
    assert s3.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    tables = [r for r in prod.of_type("aws:ec2/routeTable:RouteTable") if "-private-rt-" in r.name]
    assert len(s3.inputs["routeTableIds"]) == len(tables) == 3


def test_interface_endpoints_cover_the_aws_apis_with_private_dns(staging: PlanRecord) -> None:
    interface = [r for r in staging.of_type(ENDPOINT) if r.inputs["vpcEndpointType"] == "Interface"]
    assert sorted(r.inputs["serviceName"] for r in interface) == sorted(
        f"com.amazonaws.us-west-2.{s}" for s in INTERFACE_ENDPOINT_SERVICES
    )
    assert all(r.inputs["privateDnsEnabled"] is True for r in interface)
    assert all(len(r.inputs["subnetIds"]) == 3 and len(r.inputs["securityGroupIds"]) == 1 for r in interface)


def test_endpoint_security_group_admits_only_https_from_the_vpc_cidr(dev: PlanRecord) -> None:
    group = dev.get(SG, "mlplat-dev-network-endpoints-sg")
    assert [(i["protocol"], i["fromPort"], i["toPort"], i["cidrBlocks"]) for i in group.inputs["ingress"]] == [
        ("tcp", 443, 443, ["10.20.0.0/16"])
    ]
    assert "egress" not in group.inputs


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_security_group_admits_the_internet(plans: dict[str, PlanRecord], stack: str) -> None:
    open_rules = [
        (group.name, rule)
        for group in plans[stack].of_type(SG)
        for rule in group.inputs.get("ingress", [])
        if {"0.0.0.0/0", "::/0"} & set(rule.get("cidrBlocks", []) + rule.get("ipv6CidrBlocks", []))
    ]
    assert open_rules == []


def test_workload_security_group_admits_only_its_own_members(prod: PlanRecord) -> None:
    group = prod.get(SG, "mlplat-prod-network-workload-sg")
    assert [(i.get("self"), i.get("cidrBlocks")) for i in group.inputs["ingress"]] == [(True, None)]


def test_workload_security_group_leaves_only_for_https_in_the_vpc_s3_and_its_peers(prod: PlanRecord) -> None:
    egress = prod.get(SG, "mlplat-prod-network-workload-sg").inputs["egress"]
    https = [e for e in egress if e["protocol"] == "tcp"]
    assert {(e["fromPort"], e["toPort"]) for e in https} == {(443, 443)}
    assert [e.get("cidrBlocks") for e in https if "cidrBlocks" in e] == [["10.40.0.0/16"]]
    assert [len(e["prefixListIds"]) for e in https if "prefixListIds" in e] == [1]
    assert [e.get("self") for e in egress if e["protocol"] == "-1"] == [True]


def test_flow_logs_capture_all_traffic_into_the_log_group(dev: PlanRecord) -> None:
    flow_log = dev.get("aws:ec2/flowLog:FlowLog", "mlplat-dev-network-flow-log")
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"].endswith(":log-group:/mlplat/mlplat-dev-network/vpc-flow-logs")
    assert flow_log.inputs["iamRoleArn"].startswith("arn:aws:iam::123456789012:role/")


@pytest.mark.parametrize(("stack", "days"), [("dev", 30), ("staging", 90), ("prod", 365)])
def test_flow_log_group_keeps_logs_for_the_configured_days_under_kms(
    plans: dict[str, PlanRecord], stack: str, days: int
) -> None:
    group = plans[stack].get("aws:cloudwatch/logGroup:LogGroup", f"mlplat-{stack}-network-flow-logs")
    assert group.inputs["retentionInDays"] == days
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_flow_log_key_lets_cloudwatch_logs_use_it_for_that_log_group_only(dev: PlanRecord) -> None:
    key = dev.get("aws:kms/key:Key", "mlplat-dev-network-flow-logs-key")
    assert key.inputs["enableKeyRotation"] is True
    logs = [s for s in statements(key) if s.get("Principal") == {"Service": "logs.us-east-1.amazonaws.com"}]
    assert len(logs) == 1
    assert logs[0]["Condition"] == {
        "ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:"
            "/mlplat/mlplat-dev-network/vpc-flow-logs"
        }
    }


def test_flow_log_role_trusts_only_the_flow_logs_service_of_this_account(dev: PlanRecord) -> None:
    role = dev.get("aws:iam/role:Role", "mlplat-dev-network-flow-logs-role")
    (trust,) = statements(role, "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_flow_log_role_may_write_only_to_its_log_group(dev: PlanRecord) -> None:
    policy = dev.get("aws:iam/rolePolicy:RolePolicy", "mlplat-dev-network-flow-logs-policy")
    (statement,) = document(policy)["Statement"]
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/mlplat/mlplat-dev-network/vpc-flow-logs"
    assert as_list(statement["Resource"]) == [group, f"{group}:log-stream:*"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]


@pytest.mark.parametrize(("cidr", "azs"), [("10.0.0.0/16", 3), ("10.1.0.0/24", 3), ("172.16.0.0/20", 2)])
def test_subnet_cidrs_are_disjoint_and_inside_the_vpc(cidr: str, azs: int) -> None:
    private, public = subnet_cidrs(cidr, azs)
    nets = [ipaddress.ip_network(c) for c in private + public]
    assert len(private) == len(public) == azs
    assert all(n.subnet_of(ipaddress.ip_network(cidr)) for n in nets)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert all(n.prefixlen <= 28 for n in nets)
