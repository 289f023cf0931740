"""The fake provider behind synthesis: the offline answers to invokes and the state a provider would compute.

Deterministic (hashed from the URN) so records are reproducible; the account is the documentation example account.
"""

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

# The account the mocks pretend to deploy into (the documentation example account).
ACCOUNT_ID = "123456789012"
PARTITION = "aws"

Invoke = Callable[[Mapping[str, Any], str], dict[str, Any]]


def _digest(urn: str, length: int) -> str:
    return hashlib.sha256(urn.encode()).hexdigest()[:length]


def mock_state(typ: str, name: str, urn: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """Realistic computed outputs per type; deterministic (hashed from the URN) so records are reproducible."""
    h = _digest(urn, 17)
    physical = str(inputs.get("name") or f"{name}-{h[:7]}")
    module, _, kind = typ.split(":")[1].partition("/") if typ.count(":") == 2 else ("", "", "")
    arn_prefix = f"arn:{PARTITION}:{module}:{region}:{ACCOUNT_ID}"
    state: dict[str, Any] = {**inputs}
    rid = physical

    ec2_ids = {
        "vpc": "vpc",
        "subnet": "subnet",
        "routeTable": "rtb",
        "routeTableAssociation": "rtbassoc",
        "route": "r",
        "internetGateway": "igw",
        "eip": "eipalloc",
        "natGateway": "nat",
        "securityGroup": "sg",
        "vpcEndpoint": "vpce",
        "flowLog": "fl",
        "launchTemplate": "lt",
    }
    if module == "ec2" and kind in ec2_ids:
        rid = f"{ec2_ids[kind]}-{h}"
        state["arn"] = f"{arn_prefix}:{kind.lower()}/{rid}"
        if kind == "securityGroup":
            state["name"] = physical
        if kind == "eip":
            state |= {"allocationId": rid, "publicIp": f"203.0.113.{int(h[:2], 16) % 250 + 1}"}
        if kind == "vpc":
            state |= {"defaultSecurityGroupId": f"sg-{h[::-1]}", "mainRouteTableId": f"rtb-{h[::-1]}"}
        if kind == "vpcEndpoint":
            if inputs.get("vpcEndpointType") == "Gateway":
                state["prefixListId"] = f"pl-{h[:8]}"
            else:
                state["dnsEntries"] = [{"dnsName": f"{rid}.{inputs.get('serviceName', '')}", "hostedZoneId": "Z1"}]
        if kind == "launchTemplate":
            state["latestVersion"] = 1
    elif typ == "aws:s3/bucket:Bucket":
        bucket = str(inputs.get("bucket") or f"{name}-{h[:7]}").lower()[:63]
        rid = bucket
        state |= {
            "bucket": bucket,
            "arn": f"arn:{PARTITION}:s3:::{bucket}",
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
            "region": region,
        }
    elif module == "s3":
        rid = str(inputs.get("bucket") or physical)
    elif typ == "aws:kms/key:Key":
        rid = f"{h[:8]}-{h[8:12]}-4{h[12:15]}-a{h[15:17]}{h[:1]}-{_digest(urn + 'k', 12)}"
        state |= {"keyId": rid, "arn": f"{arn_prefix}:key/{rid}"}
    elif typ == "aws:kms/alias:Alias":
        state |= {"arn": f"{arn_prefix}:{physical}", "targetKeyArn": f"{arn_prefix}:key/{inputs.get('targetKeyId')}"}
    elif module == "iam":
        iam_prefix = f"arn:{PARTITION}:iam::{ACCOUNT_ID}"
        physical = physical[:64]
        state["name"] = physical
        if kind == "role":
            state |= {"arn": f"{iam_prefix}:role/{physical}", "uniqueId": f"AROA{h.upper()}"}
        elif kind == "policy":
            state |= {"arn": f"{iam_prefix}:policy/{physical}", "policyId": f"ANPA{h.upper()}"}
        elif kind == "instanceProfile":
            state |= {"arn": f"{iam_prefix}:instance-profile/{physical}"}
        elif kind == "openIdConnectProvider":
            issuer = str(inputs.get("url", "")).removeprefix("https://")
            state["arn"] = f"{iam_prefix}:oidc-provider/{issuer}"
            rid = state["arn"]
        elif kind == "rolePolicy":
            rid = f"{inputs.get('role')}:{physical}"
        elif kind == "rolePolicyAttachment":
            rid = f"{inputs.get('role')}-{h[:8]}"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        state |= {"name": physical, "arn": f"arn:{PARTITION}:logs:{region}:{ACCOUNT_ID}:log-group:{physical}"}
    elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        state |= {"name": physical, "arn": f"{arn_prefix}:alarm:{physical}"}
    elif typ == "aws:sagemaker/mlflowApp:MlflowApp":
        app_id = f"app-{h[:12].upper()}"
        state |= {"name": physical, "arn": f"{arn_prefix}:mlflow-app/{app_id}"}
        rid = state["arn"]
    elif typ == "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer":
        server = str(inputs.get("trackingServerName") or physical)
        rid = server
        state |= {
            "arn": f"{arn_prefix}:mlflow-tracking-server/{server}",
            "trackingServerUrl": f"https://t-{h[:12]}.{region}.experiments.sagemaker.aws",
        }
    elif module == "sagemaker":
        sagemaker_kinds = {"endpointConfiguration": "endpoint-config", "endpoint": "endpoint", "model": "model"}
        state |= {"name": physical, "arn": f"{arn_prefix}:{sagemaker_kinds.get(kind, kind)}/{physical.lower()}"}
    elif typ == "aws:sns/topic:Topic":
        state |= {"name": physical, "arn": f"{arn_prefix}:{physical}"}
        rid = state["arn"]
    elif module == "sns":
        state["arn"] = f"{arn_prefix}:{h[:12]}:{_digest(urn + 's', 8)}"
        rid = state["arn"]
    elif typ == "aws:budgets/budget:Budget":
        state |= {"name": physical, "arn": f"arn:{PARTITION}:budgets::{ACCOUNT_ID}:budget/{physical}"}
        rid = f"{ACCOUNT_ID}:{physical}"
    elif typ == "aws:appautoscaling/target:Target":
        rid = str(inputs.get("resourceId", physical))
        state["arn"] = f"arn:{PARTITION}:application-autoscaling:{region}:{ACCOUNT_ID}:scalable-target/{h[:24]}"
    elif typ == "aws:appautoscaling/policy:Policy":
        state |= {
            "name": physical,
            "arn": f"arn:{PARTITION}:autoscaling:{region}:{ACCOUNT_ID}:scalingPolicy:{h}:resource/{physical}",
        }
    elif typ == "aws:eks/cluster:Cluster":
        state |= {
            "name": physical,
            "arn": f"{arn_prefix}:cluster/{physical}",
            "endpoint": f"https://{h.upper()}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthority": {
                "data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm1vY2sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
            },
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{h.upper()}"}]}],
            "clusterSecurityGroupId": f"sg-{h[::-1]}",
            "vpcConfig": {**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{h[::-1]}"},
            "version": inputs.get("version", "1.33"),
            "status": "ACTIVE",
        }
    elif typ.startswith("aws:"):
        state |= {"name": physical, "arn": f"{arn_prefix}:{kind.lower()}/{physical}"}
    else:
        # Kubernetes objects and providers: the inputs are the state; the ID is the object's name.
        metadata = inputs.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("name"):
            rid = str(metadata["name"])
    return rid, state


def _availability_zones(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    letters = "abcdef"
    return {
        "id": region,
        "names": [f"{region}{x}" for x in letters],
        "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
        "groupNames": [region] * len(letters),
        "state": args.get("state"),
    }


def _policy_document(args: Mapping[str, Any], region: str) -> dict[str, Any]:
    """`aws.iam.get_policy_document`, rendered the way AWS would read it."""
    statements = []
    for s in args.get("statements") or []:
        statement: dict[str, Any] = {"Effect": s.get("effect", "Allow")}
        for key, target in (("sid", "Sid"), ("actions", "Action"), ("resources", "Resource")):
            if s.get(key):
                statement[target] = s[key]
        for principal in s.get("principals") or []:
            statement.setdefault("Principal", {})[principal["type"]] = principal["identifiers"]
        for condition in s.get("conditions") or []:
            statement.setdefault("Condition", {}).setdefault(condition["test"], {})[condition["variable"]] = condition[
                "values"
            ]
        statements.append(statement)
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return {"id": _digest(document, 10), "json": document, "minifiedJson": document}


INVOKES: dict[str, Invoke] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda args, region: {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/mlplat-offline",
        "userId": "AIDAOFFLINEMLPLAT",
    },
    "aws:index/getPartition:getPartition": lambda args, region: {
        "id": PARTITION,
        "partition": PARTITION,
        "dnsSuffix": "amazonaws.com",
        "reverseDnsPrefix": "com.amazonaws",
    },
    "aws:index/getRegion:getRegion": lambda args, region: {
        "id": region,
        "name": region,
        "region": region,
        "endpoint": f"ec2.{region}.amazonaws.com",
        "description": region,
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:ssm/getParameter:getParameter": lambda args, region: {
        "id": args.get("name"),
        "name": args.get("name"),
        "arn": f"arn:{PARTITION}:ssm:{region}::parameter{args.get('name')}",
        "type": "String",
        "value": "ami-0123456789abcdef0",
        "insecureValue": "ami-0123456789abcdef0",
        "version": 1,
        "withDecryption": True,
    },
}
