"""The platform's VPC: private subnets for every workload, VPC endpoints to AWS, NAT only when asked, flow logs."""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pulumi
import pulumi_aws as aws

from components import iam, keys

HTTPS = 443

# Interface endpoints every private workload needs to reach AWS without a NAT gateway.
INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = (
    "sts",
    "ecr.api",
    "ecr.dkr",
    "logs",
    "sagemaker.api",
    "sagemaker.runtime",
)


@dataclass(frozen=True)
class NetworkArgs:
    """How the VPC is laid out."""

    region: str
    """AWS region; names the endpoint services (`com.amazonaws.<region>.s3`)."""
    cidr: str = "10.0.0.0/16"
    """The VPC's IPv4 CIDR block."""
    az_count: int = 2
    """Availability zones to spread subnets over (each gets one private subnet)."""
    nat: Literal["none", "single", "per-az"] = "none"
    """Outbound internet: none (endpoints only), one shared NAT gateway, or one per AZ."""
    flow_log_retention_days: int = 90
    """Days CloudWatch keeps the VPC flow logs."""


def subnet_cidrs(cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """(private, public) subnet CIDRs: a quarter of the VPC per private subnet, /+4 slices of the last quarter public.

    Private subnets get the room (SageMaker and EKS take one IP per ENI or pod); public subnets only hold NAT
    gateways. With the largest allowed prefix (/24) the public subnets are /28, the smallest AWS accepts.
    """
    vpc = ipaddress.IPv4Network(cidr, strict=False)
    quarters = list(vpc.subnets(prefixlen_diff=2))
    private = [str(net) for net in quarters[:az_count]]
    public = [str(net) for net in list(quarters[3].subnets(prefixlen_diff=2))[:az_count]]
    return private, public


def _nth(index: int) -> Callable[[list[str]], str]:
    """Pick one AZ name out of the invoke's list (the list is only known once the invoke answers)."""
    return lambda names: names[index]


_Rule = TypeVar("_Rule", aws.ec2.SecurityGroupIngressArgs, aws.ec2.SecurityGroupEgressArgs)


def _https(rule: type[_Rule], description: str, **peer: Any) -> _Rule:
    """A TCP 443 rule to or from `peer` (`cidr_blocks=` or `prefix_list_ids=`)."""
    return rule(description=description, protocol="tcp", from_port=HTTPS, to_port=HTTPS, **peer)


class Network(pulumi.ComponentResource):
    """A VPC over `az_count` AZs with private subnets, VPC endpoints, optional NAT, and flow logs."""

    vpc_id: pulumi.Output[str]
    vpc_arn: pulumi.Output[str]
    vpc_cidr: str
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    nat_gateway_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    s3_prefix_list_id: pulumi.Output[str]
    endpoint_security_group_id: pulumi.Output[str]
    workload_security_group_id: pulumi.Output[str]
    flow_log_group_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, args.az_count)
        zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            # Private DNS of the interface endpoints needs both.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            opts=child,
        )
        self.vpc_id = vpc.id
        self.vpc_arn = vpc.arn
        self.vpc_cidr = args.cidr

        private_subnets = []
        private_tables = []
        for i in range(args.az_count):
            # One route table per AZ, so each AZ can route through its own NAT gateway.
            table = aws.ec2.RouteTable(f"{name}-private-rt-{i}", vpc_id=vpc.id, opts=child)
            private_subnets.append(self._subnet(name, "private", i, vpc, private_cidrs[i], zones, table))
            private_tables.append(table)
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.private_route_table_ids = [t.id for t in private_tables]

        self.public_subnet_ids = []
        self.nat_gateway_ids = []
        if args.nat != "none":
            self._nat(name, args, vpc, zones, public_cidrs, private_tables)

        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=self.private_route_table_ids,
            opts=child,
        )
        self.s3_prefix_list_id = s3.prefix_list_id

        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            description="HTTPS from inside the VPC to the AWS interface endpoints",
            vpc_id=vpc.id,
            ingress=[_https(aws.ec2.SecurityGroupIngressArgs, "HTTPS from the VPC", cidr_blocks=[args.cidr])],
            opts=child,
        )
        self.endpoint_security_group_id = endpoint_sg.id
        for service in INTERFACE_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.private_subnet_ids,
                security_group_ids=[endpoint_sg.id],
                opts=child,
            )

        workload_sg = aws.ec2.SecurityGroup(
            f"{name}-workload-sg",
            description="SageMaker models and training jobs: HTTPS to AWS endpoints and S3, peers in this group",
            vpc_id=vpc.id,
            # Distributed training (NCCL, parameter servers) talks between its instances on arbitrary ports;
            # SageMaker requires the group to admit its own members. Nothing else gets in.
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    description="Peers in this group", protocol="-1", from_port=0, to_port=0, self=True
                )
            ],
            egress=[
                _https(aws.ec2.SecurityGroupEgressArgs, "HTTPS to the interface endpoints", cidr_blocks=[args.cidr]),
                _https(
                    aws.ec2.SecurityGroupEgressArgs,
                    "HTTPS to S3 through the gateway endpoint",
                    prefix_list_ids=[s3.prefix_list_id],
                ),
                aws.ec2.SecurityGroupEgressArgs(
                    description="Peers in this group", protocol="-1", from_port=0, to_port=0, self=True
                ),
            ],
            opts=child,
        )
        self.workload_security_group_id = workload_sg.id

        self.flow_log_group_arn = self._flow_logs(name, args, vpc)

        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
                "natGatewayIds": self.nat_gateway_ids,
                "endpointSecurityGroupId": self.endpoint_security_group_id,
                "workloadSecurityGroupId": self.workload_security_group_id,
                "flowLogGroupArn": self.flow_log_group_arn,
            }
        )

    def _subnet(
        self,
        name: str,
        tier: str,
        i: int,
        vpc: aws.ec2.Vpc,
        cidr: str,
        zones: pulumi.Output[aws.GetAvailabilityZonesResult],
        table: aws.ec2.RouteTable,
    ) -> aws.ec2.Subnet:
        """Subnet `<name>-<tier>-<i>` in the i-th zone, routed by `table`.

        No public addresses even in the public tier: NAT gateways carry their own Elastic IPs.
        """
        child = pulumi.ResourceOptions(parent=self)
        subnet = aws.ec2.Subnet(
            f"{name}-{tier}-{i}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zones.names.apply(_nth(i)),
            map_public_ip_on_launch=False,
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-{tier}-rta-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=child
        )
        return subnet

    def _nat(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        zones: pulumi.Output[aws.GetAvailabilityZonesResult],
        public_cidrs: list[str],
        private_tables: list[aws.ec2.RouteTable],
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_table = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id, opts=child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )
        public_subnets = [
            self._subnet(name, "public", i, vpc, public_cidrs[i], zones, public_table) for i in range(args.az_count)
        ]
        self.public_subnet_ids = [s.id for s in public_subnets]

        nat_count = args.az_count if args.nat == "per-az" else 1
        gateways = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-eip-{i}", domain="vpc", opts=child)
            gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public_subnets[i].id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        self.nat_gateway_ids = [g.id for g in gateways]
        for i, table in enumerate(private_tables):
            aws.ec2.Route(
                f"{name}-private-nat-{i}",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=gateways[i % nat_count].id,
                opts=child,
            )

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        account = iam.account_id()
        arn_partition = iam.partition()
        # Derived from the component name so the key policy can name the log group before it exists.
        group_name = f"/mlplat/{name}/vpc-flow-logs"
        key = keys.customer_key(
            f"{name}-flow-logs-key",
            f"Encrypts the VPC flow logs of {name}",
            account,
            arn_partition,
            child,
            log_group=(args.region, group_name),
        )
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=group_name,
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=key.arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description=f"VPC flow logs of {name} write to their log group",
            assume_role_policy=iam.service_trust("vpc-flow-logs.amazonaws.com", account),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=iam.policy_document(
                [
                    {
                        "Sid": "WriteFlowLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": [group.arn, pulumi.Output.concat(group.arn, ":log-stream:*")],
                    }
                ]
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=child,
        )
        return group.arn
