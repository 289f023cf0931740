"""Checks on data at rest: S3 buckets and their companion settings, KMS keys, log groups and SNS topics."""

from collections.abc import Mapping, Sequence
from typing import Any

from policies.base import (
    Config,
    Props,
    StackResource,
    Violation,
    actions,
    as_list,
    as_number,
    companions,
    get,
    is_allow,
    is_set,
    is_true,
    is_unknown,
    of_type,
    peek,
    principals,
    statement_label,
    statements,
    truthy,
)

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING_TYPES = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
LIFECYCLE_TYPES = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
OWNERSHIP_CONTROLS = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SNS_TOPIC = "aws:sns/topic:Topic"

PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _buckets(resources: Sequence[StackResource]) -> list[StackResource]:
    return list(of_type(resources, *BUCKET_TYPES))


def public_access_block(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every bucket has a public access block with all four flags on."""
    found: list[Violation] = []
    for bucket in _buckets(resources):
        blocks = companions(resources, bucket, "bucket", PUBLIC_ACCESS_BLOCK)
        if not blocks:
            found.append(
                Violation(
                    "bucket has no public access block; add an aws.s3.BucketPublicAccessBlock for it with "
                    "blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true.",
                    bucket.urn,
                )
            )
        for block in blocks:
            off = [flag for flag in PUBLIC_ACCESS_FLAGS if is_true(block.props, flag) is False]
            if off:
                found.append(
                    Violation(
                        f"public access block leaves {', '.join(off)} off; set all four flags to true.", block.urn
                    )
                )
    return found


def _sse_defaults(bucket: StackResource, configs: list[StackResource]) -> list[Any]:
    inline = get(bucket.props, "serverSideEncryptionConfiguration", "rule", "applyServerSideEncryptionByDefault")
    defaults = [inline] if inline is not None else []
    for cfg in configs:
        defaults += [get(rule, "applyServerSideEncryptionByDefault") for rule in as_list(get(cfg.props, "rules"))]
    return [d for d in defaults if d is not None]


def sse_kms(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every bucket encrypts by default with SSE-KMS under a customer managed key."""
    found: list[Violation] = []
    for bucket in _buckets(resources):
        configs = companions(resources, bucket, "bucket", *SSE_TYPES)
        defaults = _sse_defaults(bucket, configs)
        urn = configs[0].urn if configs else bucket.urn
        if not defaults:
            found.append(
                Violation(
                    "bucket has no default encryption; add an aws.s3.BucketServerSideEncryptionConfiguration with "
                    "sseAlgorithm aws:kms and the platform's KMS key.",
                    bucket.urn,
                )
            )
            continue
        for default in defaults:
            algorithm = peek(default, "sseAlgorithm")
            if algorithm is not None and algorithm not in KMS_ALGORITHMS:
                found.append(
                    Violation(
                        f"default encryption is {algorithm}, not SSE-KMS; set sseAlgorithm: aws:kms with "
                        "kmsMasterKeyId.",
                        urn,
                    )
                )
            elif not is_set(default, "kmsMasterKeyId"):
                found.append(
                    Violation(
                        "SSE-KMS uses the AWS managed key; set kmsMasterKeyId to the platform's customer managed key.",
                        urn,
                    )
                )
    return found


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    who = principals(statement)
    if who not in ({"*": ["*"]}, {"AWS": ["*"]}):
        return False
    if not any(a in ("*", "s3:*") for a in actions(statement)):
        return False
    condition = statement.get("Condition")
    secure = get(condition, "Bool", "aws:SecureTransport")
    return any(str(v).lower() == "false" for v in as_list(secure))


def tls_only(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every bucket's policy denies any request made without TLS."""
    found: list[Violation] = []
    for bucket in _buckets(resources):
        holders = [bucket, *companions(resources, bucket, "bucket", BUCKET_POLICY)]
        if any(is_unknown(h.props, "policy") for h in holders):
            continue  # the document names ARNs not known before the update; the update's check sees it
        documents = [get(h.props, "policy") for h in holders]
        if not any(_denies_insecure_transport(s) for d in documents for s in statements(d)):
            found.append(
                Violation(
                    "no bucket policy denies requests without TLS; add an aws.s3.BucketPolicy statement that denies "
                    's3:* to "*" when aws:SecureTransport is false.',
                    bucket.urn,
                )
            )
    return found


def versioning(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every bucket keeps object versions."""
    found: list[Violation] = []
    for bucket in _buckets(resources):
        configs = companions(resources, bucket, "bucket", *VERSIONING_TYPES)
        statuses = [peek(c.props, "versioningConfiguration", "status") for c in configs]
        inline = is_true(bucket.props, "versioning", "enabled")
        if inline or "Enabled" in statuses:
            continue
        if configs:
            found.append(
                Violation(
                    f"versioning is {statuses[0]}; set versioningConfiguration.status: Enabled.",
                    configs[0].urn,
                )
            )
        else:
            found.append(
                Violation(
                    "bucket has no versioning; add an aws.s3.BucketVersioning with versioningConfiguration.status "
                    "Enabled.",
                    bucket.urn,
                )
            )
    return found


def lifecycle(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every bucket has enabled lifecycle rules that expire old versions and abort stale multipart uploads."""
    found: list[Violation] = []
    for bucket in _buckets(resources):
        configs = companions(resources, bucket, "bucket", *LIFECYCLE_TYPES)
        rules = [r for c in configs for r in as_list(get(c.props, "rules"))]
        enabled = [r for r in rules if peek(r, "status") == "Enabled"]
        if not enabled:
            found.append(
                Violation(
                    "bucket has no enabled lifecycle rule; add an aws.s3.BucketLifecycleConfiguration with rules that "
                    "tier and expire objects.",
                    bucket.urn,
                )
            )
            continue
        urn = configs[0].urn
        if not any(is_set(r, "noncurrentVersionExpiration") for r in enabled):
            found.append(
                Violation(
                    "no lifecycle rule expires noncurrent versions, so versioning keeps every overwrite forever; add "
                    "noncurrentVersionExpiration.noncurrentDays to a rule.",
                    urn,
                )
            )
        if not any(is_set(r, "abortIncompleteMultipartUpload") for r in enabled):
            found.append(
                Violation(
                    "no lifecycle rule aborts incomplete multipart uploads; add "
                    "abortIncompleteMultipartUpload.daysAfterInitiation to a rule.",
                    urn,
                )
            )
    return found


def ownership_enforced(resources: Sequence[StackResource], config: Config) -> list[Violation]:
    """Every bucket disables ACLs: object ownership BucketOwnerEnforced."""
    found: list[Violation] = []
    for bucket in _buckets(resources):
        controls = companions(resources, bucket, "bucket", OWNERSHIP_CONTROLS)
        if not controls:
            found.append(
                Violation(
                    "bucket has no ownership controls; add an aws.s3.BucketOwnershipControls with "
                    "rule.objectOwnership BucketOwnerEnforced.",
                    bucket.urn,
                )
            )
        for control in controls:
            ownership = peek(control.props, "rule", "objectOwnership")
            if ownership is not None and ownership != "BucketOwnerEnforced":
                found.append(
                    Violation(
                        f"object ownership is {ownership}, which keeps ACLs; set rule.objectOwnership: "
                        "BucketOwnerEnforced.",
                        control.urn,
                    )
                )
    return found


def no_force_destroy(resource_type: str, props: Props, config: Config) -> list[str]:
    """A bucket that `pulumi destroy` may empty is allowed only where the policy config says so (dev)."""
    if truthy(get(props, "forceDestroy")):
        return [
            "forceDestroy is on, so deleting the stack deletes every object in the bucket; remove forceDestroy "
            "(only dev stacks may set mlplat:artifacts.forceDestroy)."
        ]
    return []


def kms_rotation(resource_type: str, props: Props, config: Config) -> list[str]:
    """Symmetric customer managed keys rotate, at least as often as the configured period."""
    spec = get(props, "customerMasterKeySpec")
    if spec not in (None, "SYMMETRIC_DEFAULT") or get(props, "keyUsage") not in (None, "ENCRYPT_DECRYPT"):
        return []
    if not truthy(get(props, "enableKeyRotation")):
        return ["key rotation is off; set enableKeyRotation: true."]
    period = as_number(get(props, "rotationPeriodInDays"))
    limit = int(config["maxRotationPeriodDays"])
    if period is not None and period > limit:
        return [f"keys rotate every {int(period)} days, longer than {limit}; set rotationPeriodInDays <= {limit}."]
    return []


def kms_no_wildcard_principal(resource_type: str, props: Props, config: Config) -> list[str]:
    """No key policy statement allows every principal without a condition."""
    found: list[str] = []
    for i, statement in enumerate(statements(get(props, "policy"))):
        who = principals(statement)
        wildcard = "*" in who or "*" in who.get("AWS", [])
        if is_allow(statement) and wildcard and not statement.get("Condition"):
            found.append(
                f'{statement_label(i, statement)} allows every principal ("*"); name the account root, the roles '
                "or the service that use the key."
            )
    return found


def log_group_retention(resource_type: str, props: Props, config: Config) -> list[str]:
    """Log groups expire their events, within the configured bounds."""
    days = as_number(get(props, "retentionInDays"))
    low, high = int(config["minRetentionDays"]), int(config["maxRetentionDays"])
    if days is None or days == 0:
        return [f"log events never expire; set retentionInDays between {low} and {high}."]
    if days < low:
        return [f"retentionInDays is {int(days)}, below {low}; keep logs at least {low} days."]
    if days > high:
        return [f"retentionInDays is {int(days)}, above {high}; keep logs at most {high} days."]
    return []


def log_group_kms(resource_type: str, props: Props, config: Config) -> list[str]:
    """Log groups are encrypted with a customer managed KMS key."""
    if not is_set(props, "kmsKeyId"):
        return ["log group is not encrypted with a customer managed key; set kmsKeyId to a KMS key ARN."]
    return []


def sns_topic_kms(resource_type: str, props: Props, config: Config) -> list[str]:
    """SNS topics (budget alerts) are encrypted with a KMS key."""
    if not is_set(props, "kmsMasterKeyId"):
        return ["topic is not encrypted; set kmsMasterKeyId to a KMS key that allows budgets.amazonaws.com."]
    return []
