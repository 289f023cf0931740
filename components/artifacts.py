"""The artifact store: one KMS key and one private, versioned, TLS-only S3 bucket laid out by prefix.

Other components never write the bucket's ARNs by hand: they ask for scoped statements (`read_statements`,
`write_statements`, `kms_statements`) and URIs (`uri`).
"""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import cost_export, iam, keys
from contracts.bucket import CHECKPOINTS_PREFIX


@dataclass(frozen=True)
class ArtifactStoreArgs:
    """The bucket's lifecycle and deletion settings."""

    force_destroy: bool = False
    """Let `pulumi destroy` empty a non-empty bucket (dev only)."""
    noncurrent_version_expiration_days: int = 30
    """Days an overwritten or deleted object version is kept."""
    checkpoint_transition_days: int = 30
    """Days before objects under checkpoints/ move to Intelligent-Tiering."""
    checkpoint_expiration_days: int = 180
    """Days before objects under checkpoints/ expire."""
    abort_multipart_days: int = 7
    """Days before an incomplete multipart upload is aborted."""
    key_deletion_window_days: int = 30
    """Days KMS waits before it deletes the key once scheduled."""
    billing_export: bool = False
    """Admit AWS Data Exports to write (and encrypt) under `billing/` (the stack's split cost export)."""


def _prefix(prefix: str) -> str:
    return prefix if prefix.endswith("/") or prefix == "" else f"{prefix}/"


class ArtifactStore(pulumi.ComponentResource):
    """A KMS key with an alias and an S3 bucket that is private, encrypted, versioned, tiered and TLS-only."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:artifacts:ArtifactStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = iam.account_id()
        arn_partition = iam.partition()

        key = keys.customer_key(
            f"{name}-key",
            f"Encrypts the artifact bucket of {name}",
            account,
            arn_partition,
            child,
            deletion_window_in_days=args.key_deletion_window_days,
            users=[cost_export.key_statement(account, arn_partition)] if args.billing_export else [],
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=child)
        self.key_arn = key.arn
        self.key_id = key.key_id

        bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=args.force_destroy, opts=child)
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn

        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    # One data key per bucket instead of per object: far fewer KMS calls, same protection.
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_expiration_days
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="tier-then-expire-checkpoints",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=CHECKPOINTS_PREFIX),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=args.checkpoint_transition_days, storage_class="INTELLIGENT_TIERING"
                        )
                    ],
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.checkpoint_expiration_days
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=args.abort_multipart_days
                    ),
                ),
            ],
            # S3 rejects noncurrent-version rules until versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        delivery = [cost_export.bucket_statement(bucket.arn, account, arn_partition)] if args.billing_export else []
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=iam.policy_document(
                [
                    {
                        "Sid": "DenyWithoutTLS",
                        "Effect": "Deny",
                        "Principal": "*",
                        # A deny on every S3 action is the point: no request of any kind over plain HTTP.
                        "Action": "s3:*",
                        "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    *delivery,
                ]
            ),
            # Applying a policy while the public access block is being created races in S3.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )

        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "bucketArn": self.bucket_arn,
                "keyArn": self.key_arn,
                "keyId": self.key_id,
            }
        )

    def uri(self, prefix: str = "") -> pulumi.Output[str]:
        """`s3://<bucket>/<prefix>`."""
        return pulumi.Output.concat("s3://", self.bucket_name, "/", prefix)

    def object_arn(self, prefix: str) -> pulumi.Output[str]:
        """The ARN pattern of every object under `prefix`."""
        return pulumi.Output.concat(self.bucket_arn, "/", _prefix(prefix), "*")

    def read_statements(self, prefix: str) -> list[iam.Statement]:
        """Allow reading objects under `prefix` and listing that prefix only."""
        prefix = _prefix(prefix)
        return [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": self.object_arn(prefix),
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": self.bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
            },
        ]

    def write_statements(self, prefix: str) -> list[iam.Statement]:
        """Allow writing (and aborting multipart uploads of) objects under `prefix`."""
        return [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": self.object_arn(prefix),
            }
        ]

    def kms_statements(self) -> list[iam.Statement]:
        """Allow encrypting and decrypting with the bucket's key (SSE-KMS needs both for reads and writes)."""
        return [
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": self.key_arn,
            }
        ]
