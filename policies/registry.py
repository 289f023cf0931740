"""Every policy of the `mlplat-guard` pack, declared once: name, description, enforcement, config schema, check.

Two drivers run these entries: `policies/__main__.py` wraps them into CrossGuard policies for
`pulumi preview --policy-pack policies`, and `mlplat policy` runs them over an offline plan. Names are stable:
stacks, policy config files and CI refer to them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from policies import compute, cost, iam_reference, identity, kubernetes, network, sagemaker, storage, tagging
from policies.base import ResourceCheck, StackCheck

PACK_NAME = "mlplat-guard"
Enforcement = Literal["mandatory", "advisory", "disabled"]
ENFORCEMENT_LEVELS: tuple[str, ...] = ("advisory", "mandatory", "remediate", "disabled")


@dataclass(frozen=True)
class PolicySpec:
    """One policy: what it guards, how hard, what it can be told, and the function that checks it."""

    name: str
    description: str
    domain: str
    enforcement: Enforcement
    remediation: str
    resource_types: tuple[str, ...] = ()
    """Types a resource policy applies to; empty for a stack policy."""
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """JSON-schema properties of the policy's config, each with its default."""

    @property
    def is_stack_policy(self) -> bool:
        """True when the policy looks at the whole stack rather than one resource at a time."""
        return self.stack_check is not None


def _resource(
    name: str,
    description: str,
    domain: str,
    enforcement: Enforcement,
    remediation: str,
    types: tuple[str, ...],
    check: ResourceCheck,
    schema: Mapping[str, Mapping[str, Any]] | None = None,
) -> PolicySpec:
    return PolicySpec(name, description, domain, enforcement, remediation, types, check, None, schema or {})


def _stack(
    name: str,
    description: str,
    domain: str,
    enforcement: Enforcement,
    remediation: str,
    check: StackCheck,
    schema: Mapping[str, Mapping[str, Any]] | None = None,
) -> PolicySpec:
    return PolicySpec(name, description, domain, enforcement, remediation, (), None, check, schema or {})


_STRINGS = {"type": "array", "items": {"type": "string"}}

POLICIES: tuple[PolicySpec, ...] = (
    # storage
    _stack(
        "s3-public-access-blocked",
        "S3 buckets block every form of public access.",
        "storage",
        "mandatory",
        "Add an aws.s3.BucketPublicAccessBlock per bucket with all four flags true.",
        storage.public_access_block,
    ),
    _stack(
        "s3-sse-kms",
        "S3 buckets encrypt objects by default with SSE-KMS under a customer managed key.",
        "storage",
        "mandatory",
        "Add an aws.s3.BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms and kmsMasterKeyId.",
        storage.sse_kms,
    ),
    _stack(
        "s3-tls-only",
        "S3 bucket policies deny requests made without TLS.",
        "storage",
        "mandatory",
        "Add a bucket policy statement denying s3:* to * when aws:SecureTransport is false.",
        storage.tls_only,
    ),
    _stack(
        "s3-versioning",
        "S3 buckets keep object versions.",
        "storage",
        "mandatory",
        "Add an aws.s3.BucketVersioning with status Enabled.",
        storage.versioning,
    ),
    _stack(
        "s3-lifecycle",
        "S3 buckets expire noncurrent versions and abort incomplete multipart uploads.",
        "storage",
        "mandatory",
        "Add an aws.s3.BucketLifecycleConfiguration with noncurrentVersionExpiration and "
        "abortIncompleteMultipartUpload.",
        storage.lifecycle,
    ),
    _stack(
        "s3-ownership-enforced",
        "S3 buckets disable ACLs (object ownership BucketOwnerEnforced).",
        "storage",
        "mandatory",
        "Add an aws.s3.BucketOwnershipControls with objectOwnership BucketOwnerEnforced.",
        storage.ownership_enforced,
    ),
    _resource(
        "s3-no-force-destroy",
        "S3 buckets are not force-destroyed with the stack (dev may disable this policy).",
        "storage",
        "mandatory",
        "Remove forceDestroy; only the dev policy config disables this policy.",
        storage.BUCKET_TYPES,
        storage.no_force_destroy,
    ),
    _resource(
        "kms-key-rotation",
        "Symmetric KMS keys rotate automatically.",
        "storage",
        "mandatory",
        "Set enableKeyRotation: true (and rotationPeriodInDays within the limit).",
        (storage.KMS_KEY,),
        storage.kms_rotation,
        {"maxRotationPeriodDays": {"type": "integer", "minimum": 90, "maximum": 2560, "default": 365}},
    ),
    _resource(
        "kms-no-wildcard-principal",
        "KMS key policies never allow every principal without a condition.",
        "storage",
        "mandatory",
        "Name the account root, the roles or the service principal in each Allow statement.",
        (storage.KMS_KEY, storage.KMS_KEY_POLICY),
        storage.kms_no_wildcard_principal,
    ),
    _resource(
        "log-group-retention",
        "CloudWatch log groups expire their events within the configured bounds.",
        "storage",
        "mandatory",
        "Set retentionInDays within [minRetentionDays, maxRetentionDays].",
        (storage.LOG_GROUP,),
        storage.log_group_retention,
        {
            "minRetentionDays": {"type": "integer", "minimum": 1, "default": 7},
            "maxRetentionDays": {"type": "integer", "minimum": 1, "default": 3653},
        },
    ),
    _resource(
        "log-group-kms",
        "CloudWatch log groups are encrypted with a customer managed KMS key.",
        "storage",
        "mandatory",
        "Set kmsKeyId to a KMS key whose policy lets logs.<region>.amazonaws.com use it.",
        (storage.LOG_GROUP,),
        storage.log_group_kms,
    ),
    _resource(
        "sns-topic-kms",
        "SNS topics (budget alerts) are encrypted with a KMS key.",
        "storage",
        "mandatory",
        "Set kmsMasterKeyId to a KMS key that budgets.amazonaws.com may use.",
        (storage.SNS_TOPIC,),
        storage.sns_topic_kms,
    ),
    # identity
    _resource(
        "iam-no-wildcard-action",
        'IAM and resource policies never allow "*", "<service>:*" or NotAction.',
        "identity",
        "mandatory",
        "List the actions each statement needs.",
        identity.WILDCARD_ACTION_TYPES,
        identity.no_wildcard_action,
    ),
    _resource(
        "iam-no-passrole-wildcard",
        'iam:PassRole is granted on named roles, never on "*".',
        "identity",
        "mandatory",
        "Scope iam:PassRole to role ARNs and condition it on iam:PassedToService.",
        identity.PASS_ROLE_TYPES,
        identity.no_pass_role_wildcard,
    ),
    _resource(
        "iam-no-full-access-policies",
        "No AWS managed FullAccess, AdministratorAccess or PowerUserAccess policy is attached.",
        "identity",
        "mandatory",
        "Replace the managed policy with a scoped inline or customer managed policy.",
        identity.MANAGED_POLICY_TYPES,
        identity.no_full_access_managed_policy,
        {"allowedPolicyArns": {**_STRINGS, "default": []}},
    ),
    _resource(
        "iam-trust-scoped",
        "Role trust policies admit an AWS service or exactly one federated subject (one service account).",
        "identity",
        "mandatory",
        "Trust a service principal, or a federated principal with StringEquals on <issuer>:sub.",
        (identity.ROLE,),
        identity.trust_scoped,
        {"allowedAwsPrincipals": {**_STRINGS, "default": []}},
    ),
    _resource(
        "iam-actions-exist",
        "Every action of every policy document exists in AWS's authorization reference and is granted on a "
        "resource type it applies to.",
        "identity",
        "mandatory",
        "Spell the action as the Service Authorization Reference does, and grant it on the resource type it lists "
        '(or on "*" when it lists none).',
        iam_reference.DOCUMENT_TYPES,
        iam_reference.actions_exist,
        {"acceptedActions": {**_STRINGS, "default": []}},
    ),
    _resource(
        "iam-arns-well-formed",
        "Every Resource ARN of every policy document has the shape of a resource type of its service.",
        "identity",
        "mandatory",
        "Write the ARN in the format the Service Authorization Reference gives for the resource type.",
        iam_reference.DOCUMENT_TYPES,
        iam_reference.arns_well_formed,
        {"acceptedServices": {**_STRINGS, "default": []}},
    ),
    # network
    _stack(
        "vpc-flow-logs",
        "Every VPC records its traffic in flow logs.",
        "network",
        "mandatory",
        "Add an aws.ec2.FlowLog for the VPC with trafficType ALL.",
        network.flow_logs,
        {"trafficType": {"type": "string", "enum": ["ALL", "ACCEPT", "REJECT"], "default": "ALL"}},
    ),
    _resource(
        "sg-no-public-ingress",
        "No security group admits traffic from 0.0.0.0/0 or ::/0.",
        "network",
        "mandatory",
        "Admit the VPC CIDR or a source security group.",
        network.INGRESS_TYPES,
        network.no_public_ingress,
    ),
    _resource(
        "subnet-no-public-ip",
        "Private subnets do not give instances public IP addresses.",
        "network",
        "mandatory",
        "Set mapPublicIpOnLaunch: false.",
        (network.SUBNET,),
        network.private_subnet_no_public_ip,
        {
            "publicSubnetTags": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "default": {"mlplat:subnet-tier": "public-ingress"},
            }
        },
    ),
    # compute
    _resource(
        "eks-api-endpoint-private",
        "The EKS API endpoint is private, or public only to listed CIDRs.",
        "compute",
        "mandatory",
        "Set vpcConfig.endpointPublicAccess: false and endpointPrivateAccess: true.",
        (compute.CLUSTER,),
        compute.api_endpoint_private,
    ),
    _resource(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes secrets with a KMS key.",
        "compute",
        "mandatory",
        "Set encryptionConfig with resources [secrets] and provider.keyArn.",
        (compute.CLUSTER,),
        compute.secrets_encryption,
    ),
    _resource(
        "eks-control-plane-logs",
        "EKS sends all five control-plane log types to CloudWatch.",
        "compute",
        "mandatory",
        "Set enabledClusterLogTypes to api, audit, authenticator, controllerManager, scheduler.",
        (compute.CLUSTER,),
        compute.control_plane_logs,
    ),
    _resource(
        "eks-supported-version",
        "EKS clusters pin a Kubernetes version in standard support.",
        "compute",
        "mandatory",
        "Set mlplat:cluster.version to minVersion or later.",
        (compute.CLUSTER,),
        compute.supported_version,
        {
            "minVersion": {"type": "string", "pattern": r"^1\.\d+$", "default": "1.35"},
            "standardSupportEnds": {
                "type": "object",
                "additionalProperties": {"type": "string", "format": "date"},
                "default": compute.STANDARD_SUPPORT_ENDS,
            },
            "asOf": {"type": "string", "format": "date"},
        },
    ),
    _resource(
        "eks-node-launch-template",
        "EKS node groups launch from a launch template and open no SSH.",
        "compute",
        "mandatory",
        "Give the node group launchTemplate and remove remoteAccess.",
        (compute.NODE_GROUP,),
        compute.node_group_launch_template,
    ),
    _resource(
        "ec2-imdsv2",
        "Launch templates require IMDSv2 with a small hop limit.",
        "compute",
        "mandatory",
        "Set metadataOptions.httpTokens: required and httpPutResponseHopLimit <= maxHopLimit.",
        (compute.LAUNCH_TEMPLATE,),
        compute.imdsv2,
        {"maxHopLimit": {"type": "integer", "minimum": 1, "maximum": 64, "default": 2}},
    ),
    _resource(
        "ec2-encrypted-volumes",
        "Launch templates declare encrypted EBS volumes.",
        "compute",
        "mandatory",
        "Declare blockDeviceMappings with ebs.encrypted: true.",
        (compute.LAUNCH_TEMPLATE,),
        compute.encrypted_volumes,
    ),
    _resource(
        "gpu-instance-types-allowed",
        "GPU node pools use instance types from the environment's allow-list.",
        "compute",
        "mandatory",
        "Pick a type from allowedInstanceTypes (mlplat:limits.allowedGpuInstanceTypes).",
        (compute.NODE_GROUP, compute.LAUNCH_TEMPLATE, compute.NODE_POOL),
        compute.gpu_instance_types_allowed,
        {"allowedInstanceTypes": {**_STRINGS, "default": ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"]}},
    ),
    _resource(
        "gpu-pool-max-gpus",
        "A GPU pool at its maximum size stays within the environment's GPU cap.",
        "compute",
        "mandatory",
        "Lower the NodePool's GPU limit (mlplat:gpuPools[].gpuLimit) or raise maxGpusPerPool.",
        (compute.NODE_GROUP, compute.NODE_POOL),
        compute.gpu_pool_max_gpus,
        {"maxGpusPerPool": {"type": "integer", "minimum": 1, "default": 4}},
    ),
    _resource(
        "gpu-nodepool-gpu-limit",
        "Every GPU NodePool caps the GPUs its nodes may hold.",
        "compute",
        "mandatory",
        "Set spec.limits.nvidia.com/gpu (mlplat:gpuPools[].gpuLimit).",
        (compute.NODE_POOL,),
        compute.node_pool_gpu_limit,
    ),
    _resource(
        "spot-nodepool-on-demand-fallback",
        "A NodePool that takes spot capacity falls back to on-demand, or carries a waiver saying why not.",
        "compute",
        "mandatory",
        "Add on-demand to mlplat:gpuPools[].capacityTypes, or set mlplat:gpuPools[].spotWaiver.",
        (compute.NODE_POOL,),
        compute.spot_on_demand_fallback,
    ),
    _stack(
        "kueue-team-cluster-queue",
        "Every team namespace has a Kueue LocalQueue feeding a declared ClusterQueue.",
        "compute",
        "mandatory",
        "Declare each team in mlplat:teams; the compute component adds its ClusterQueue and LocalQueue.",
        compute.team_cluster_queues,
    ),
    # sagemaker
    _resource(
        "sagemaker-model-network-isolation",
        "SageMaker model containers run with network isolation.",
        "sagemaker",
        "mandatory",
        "Set enableNetworkIsolation: true on the model.",
        (sagemaker.MODEL,),
        sagemaker.model_network_isolation,
    ),
    _resource(
        "sagemaker-model-vpc",
        "SageMaker models run in the platform's private subnets.",
        "sagemaker",
        "mandatory",
        "Set vpcConfig with subnets and securityGroupIds.",
        (sagemaker.MODEL,),
        sagemaker.model_vpc,
    ),
    _resource(
        "sagemaker-endpoint-kms",
        "SageMaker endpoint configurations encrypt their volumes with a customer managed key.",
        "sagemaker",
        "mandatory",
        "Set kmsKeyArn on the endpoint configuration.",
        (sagemaker.ENDPOINT_CONFIG,),
        sagemaker.endpoint_config_kms,
    ),
    _stack(
        "sagemaker-endpoint-autoscaling",
        "Every SageMaker endpoint has an Application Auto Scaling target.",
        "sagemaker",
        "mandatory",
        "Add an aws.appautoscaling.Target on sagemaker:variant:DesiredInstanceCount and a target-tracking policy.",
        sagemaker.endpoint_autoscaling,
    ),
    _resource(
        "sagemaker-endpoint-min-instances",
        "SageMaker endpoints keep at least the environment's minimum instance count (2 in prod).",
        "sagemaker",
        "mandatory",
        "Raise minCapacity and initialInstanceCount (mlplat:endpoints[].minCapacity).",
        (sagemaker.SCALING_TARGET, sagemaker.ENDPOINT_CONFIG),
        sagemaker.endpoint_min_instances,
        {"minInstances": {"type": "integer", "minimum": 1, "default": 1}},
    ),
    _resource(
        "sagemaker-no-scale-to-zero",
        "SageMaker endpoints stay warm: no inference component scales to zero copies, no variant to zero instances, "
        "no serverless variant (mandatory in prod, advisory in staging, off in dev).",
        "sagemaker",
        "mandatory",
        "Set mlplat:endpoints[].minCapacity >= 1 and remove serverless.",
        (sagemaker.SCALING_TARGET, sagemaker.ENDPOINT_CONFIG),
        sagemaker.no_scale_to_zero,
    ),
    _resource(
        "sagemaker-data-capture",
        "SageMaker endpoints capture requests and responses (mandatory in prod).",
        "sagemaker",
        "mandatory",
        "Set dataCaptureConfig.enableCapture and initialSamplingPercentage (mlplat:endpoints[].dataCapturePercent).",
        (sagemaker.ENDPOINT_CONFIG,),
        sagemaker.data_capture,
        {"minSamplingPercentage": {"type": "number", "minimum": 0, "maximum": 100, "default": 1}},
    ),
    _resource(
        "sagemaker-training-sealed",
        "SageMaker training, tuning, pipeline training steps and monitoring jobs run isolated, encrypted, in the VPC.",
        "sagemaker",
        "mandatory",
        "Set network isolation, inter-container traffic encryption and a VPC config on the job.",
        sagemaker.TRAINING_TYPES,
        sagemaker.training_sealed,
    ),
    # kubernetes
    _resource(
        "k8s-run-as-non-root",
        "Workload containers run as a non-root user.",
        "kubernetes",
        "mandatory",
        "Set securityContext.runAsNonRoot: true and a non-zero runAsUser.",
        kubernetes.WORKLOAD_TYPES,
        kubernetes.run_as_non_root,
    ),
    _resource(
        "k8s-read-only-root-fs",
        "Workload containers have a read-only root filesystem.",
        "kubernetes",
        "mandatory",
        "Set securityContext.readOnlyRootFilesystem: true; mount emptyDir volumes where the container writes.",
        kubernetes.WORKLOAD_TYPES,
        kubernetes.read_only_root_filesystem,
    ),
    _resource(
        "k8s-drop-capabilities",
        "Workload containers drop all Linux capabilities.",
        "kubernetes",
        "mandatory",
        'Set securityContext.capabilities.drop: ["ALL"] and no add.',
        kubernetes.WORKLOAD_TYPES,
        kubernetes.capabilities_dropped,
    ),
    _resource(
        "k8s-no-privilege-escalation",
        "Workload containers are not privileged and cannot escalate privileges.",
        "kubernetes",
        "mandatory",
        "Set securityContext.allowPrivilegeEscalation: false; remove privileged.",
        kubernetes.WORKLOAD_TYPES,
        kubernetes.no_privilege_escalation,
    ),
    _resource(
        "k8s-seccomp",
        "Workload containers run under the RuntimeDefault (or a Localhost) seccomp profile.",
        "kubernetes",
        "mandatory",
        "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
        kubernetes.WORKLOAD_TYPES,
        kubernetes.seccomp,
    ),
    _resource(
        "k8s-requests-limits",
        "Workload containers request and limit CPU and memory.",
        "kubernetes",
        "mandatory",
        "Set resources.requests and resources.limits for cpu and memory.",
        kubernetes.WORKLOAD_TYPES,
        kubernetes.requests_and_limits,
    ),
    _resource(
        "k8s-deployment-probes",
        "Deployment containers have readiness and liveness probes.",
        "kubernetes",
        "mandatory",
        "Add readinessProbe and livenessProbe to every container.",
        (kubernetes.DEPLOYMENT,),
        kubernetes.deployment_probes,
    ),
    _resource(
        "k8s-serving-hardening",
        "Serving Deployments run as a UID >= 10000 and do not mount the Kubernetes API token.",
        "kubernetes",
        "mandatory",
        "Set securityContext.runAsUser >= 10000 and automountServiceAccountToken: false.",
        (kubernetes.DEPLOYMENT,),
        kubernetes.serving_hardening,
    ),
    _stack(
        "k8s-serving-availability",
        "Serving Deployments have a HorizontalPodAutoscaler and a PodDisruptionBudget.",
        "kubernetes",
        "mandatory",
        "Build cluster endpoints with components.serving_deployment, which renders both.",
        kubernetes.serving_availability,
    ),
    _stack(
        "k8s-serving-in-flight-scaling",
        "Autoscalers on in-flight requests have the metrics adapter and a target below the server's in-flight limit.",
        "kubernetes",
        "mandatory",
        "Set autoscaling.target within 1..63 (the platform installs the Prometheus adapter for inflight endpoints).",
        kubernetes.serving_in_flight_scaling,
    ),
    _stack(
        "k8s-job-queue-label",
        "Jobs in team namespaces carry a Kueue queue label, so their pods are admitted as one gang.",
        "kubernetes",
        "mandatory",
        "Label the Job kueue.x-k8s.io/queue-name: default and set spec.suspend: true.",
        kubernetes.job_queue_label,
    ),
    _resource(
        "helm-chart-pinned",
        "Helm charts install an exact version over HTTPS or OCI.",
        "kubernetes",
        "mandatory",
        "Set version to an exact chart version and use an https:// or oci:// repository.",
        kubernetes.HELM_TYPES,
        kubernetes.helm_chart_pinned,
    ),
    # cost
    _stack(
        "budget-alerts",
        "The stack has a monthly cost budget with ACTUAL and FORECASTED notifications.",
        "cost",
        "mandatory",
        "Set mlplat:budget; the budget component adds ACTUAL and FORECASTED notifications per threshold.",
        cost.budget_alerts,
    ),
    _stack(
        "budget-covers-peak-cost",
        "The estimated peak monthly cost (every autoscaler at its maximum) fits within the budget limit.",
        "cost",
        "mandatory",
        "Lower GPU pool and endpoint maximums, or raise mlplat:budget.limitUsd.",
        cost.budget_covers_peak,
        {
            "estimatedPeakMonthlyUsd": {"type": "number", "minimum": 0},
            "maxBudgetPercent": {"type": "number", "minimum": 1, "maximum": 1000, "default": 100},
        },
    ),
    _resource(
        "gpu-pool-scales-to-zero",
        "GPU pools scale to zero when idle.",
        "cost",
        "advisory",
        "Set mlplat:gpuPools[].minSize: 0.",
        (compute.NODE_GROUP,),
        cost.gpu_pool_scales_to_zero,
        {"maxIdleNodes": {"type": "integer", "minimum": 0, "default": 0}},
    ),
    _stack(
        "budget-enforcer-scoped",
        "Every budget-enforcement role acts only on its own stack's endpoints, inference components and tagged "
        "scaling targets, and places network interfaces only in its own stack's VPC.",
        "cost",
        "mandatory",
        "Name this stack's endpoint and inference-component ARNs; condition wildcard writes on "
        "aws:ResourceTag/mlplat:environment, and network-interface writes on ArnEquals ec2:Vpc (this stack's VPC).",
        cost.enforcer_scoped,
    ),
    # tagging
    _stack(
        "aws-stack-tags",
        "Every taggable AWS resource carries the stack tags (environment, team, cost center).",
        "tagging",
        "mandatory",
        "Set the tags once through the stack transform or the provider's defaultTags.",
        tagging.stack_tags,
        {
            "requiredTags": {
                **_STRINGS,
                "default": ["mlplat:environment", "mlplat:team", "mlplat:cost-center"],
            },
            "expectedValues": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
        },
    ),
)

BY_NAME: dict[str, PolicySpec] = {spec.name: spec for spec in POLICIES}


def defaults(spec: PolicySpec) -> dict[str, Any]:
    """The policy's config with every schema default filled in."""
    return {key: prop["default"] for key, prop in spec.config_schema.items() if "default" in prop}


def effective_config(spec: PolicySpec, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema defaults overlaid with what the policy config gives (the engine's merge, repeated for safety)."""
    merged = defaults(spec)
    merged.update({k: v for k, v in (given or {}).items() if k != "enforcementLevel"})
    return merged


def enforcement(spec: PolicySpec, pack_config: Mapping[str, Any]) -> str:
    """The policy's enforcement level under a `--policy-pack-config` document (a level or `{enforcementLevel}`)."""
    entry = pack_config.get(spec.name)
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("enforcementLevel"), str):
        return str(entry["enforcementLevel"])
    return spec.enforcement


def policy_properties(spec: PolicySpec, pack_config: Mapping[str, Any]) -> dict[str, Any]:
    """The policy's config properties under a policy pack config document, defaults filled in."""
    entry = pack_config.get(spec.name)
    return effective_config(spec, entry if isinstance(entry, Mapping) else None)


def validate_pack_config(pack_config: Mapping[str, Any]) -> list[str]:
    """Problems with a `--policy-pack-config` document: unknown policies, bad levels, unknown properties."""
    problems: list[str] = []
    for name, entry in pack_config.items():
        spec = BY_NAME.get(name)
        if spec is None:
            if name != "all":
                problems.append(f"{name}: no such policy in {PACK_NAME}")
            continue
        level = (
            entry if isinstance(entry, str) else entry.get("enforcementLevel") if isinstance(entry, Mapping) else None
        )
        if level is not None and level not in ENFORCEMENT_LEVELS:
            problems.append(f"{name}: enforcementLevel must be one of {', '.join(ENFORCEMENT_LEVELS)} (got {level!r})")
        if isinstance(entry, Mapping):
            for key in entry:
                if key != "enforcementLevel" and key not in spec.config_schema:
                    problems.append(f"{name}: {key} is not a config property of this policy")
    return problems
