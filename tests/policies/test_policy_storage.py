"""Storage policies: S3 buckets and their companions, KMS keys, log groups, SNS topics."""

import json

import pytest
from policy_support import UNKNOWN, changed, removed, resource, run, run_stack
from pulumi_policy.proxy import UnknownValueError

from policies.base import Violation

BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0000"
BUCKET_ID = "art-bucket-4f1a"
ART = "urn:pulumi:test::mlplat::mlplat:platform:MlPlatform$mlplat:artifacts:ArtifactStore::art"

TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::art", "arn:aws:s3:::art/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
COMPANIONS = {
    PAB: {
        "bucket": BUCKET_ID,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    },
    SSE: {
        "bucket": BUCKET_ID,
        "rules": [
            {
                "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN},
                "bucketKeyEnabled": True,
            }
        ],
    },
    VERSIONING: {"bucket": BUCKET_ID, "versioningConfiguration": {"status": "Enabled"}},
    LIFECYCLE: {
        "bucket": BUCKET_ID,
        "rules": [
            {
                "id": "versions",
                "status": "Enabled",
                "filter": {},
                "noncurrentVersionExpiration": {"noncurrentDays": 30},
                "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
            }
        ],
    },
    OWNERSHIP: {"bucket": BUCKET_ID, "rule": {"objectOwnership": "BucketOwnerEnforced"}},
    POLICY: {"bucket": BUCKET_ID, "policy": json.dumps({"Version": "2012-10-17", "Statement": [TLS_DENY]})},
}


def artifact_store(**overrides: dict | None) -> list:
    """A compliant bucket and its companions under one component; `overrides[type]` replaces (None drops) one."""
    resources = [resource(BUCKET, "art-bucket", {"tags": {}}, parent=ART, id=BUCKET_ID)]
    for type_, props in COMPANIONS.items():
        props = overrides.get(type_, props)
        if props is not None:
            resources.append(resource(type_, f"art-{type_.rsplit(':', 1)[1].lower()}", props, parent=ART))
    return resources


def by_type(resources: list, type_: str) -> str:
    return next(r.urn for r in resources if r.type == type_)


@pytest.mark.parametrize(
    "policy",
    ["s3-public-access-blocked", "s3-sse-kms", "s3-tls-only", "s3-versioning", "s3-lifecycle", "s3-ownership-enforced"],
)
def test_a_fully_guarded_bucket_passes_every_bucket_policy(policy: str) -> None:
    assert run_stack(policy, artifact_store()) == []


def test_a_bucket_without_public_access_block_is_reported_on_the_bucket() -> None:
    resources = artifact_store(**{PAB: None})
    assert run_stack("s3-public-access-blocked", resources) == [
        Violation(
            "bucket has no public access block; add an aws.s3.BucketPublicAccessBlock for it with blockPublicAcls, "
            "blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true.",
            by_type(resources, BUCKET),
        )
    ]


def test_a_public_access_block_with_a_flag_off_names_the_flag() -> None:
    resources = artifact_store(**{PAB: changed(COMPANIONS[PAB], "restrictPublicBuckets", False)})
    assert run_stack("s3-public-access-blocked", resources) == [
        Violation(
            "public access block leaves restrictPublicBuckets off; set all four flags to true.",
            by_type(resources, PAB),
        )
    ]


def test_a_flag_unknown_during_preview_is_not_reported() -> None:
    resources = artifact_store(**{PAB: changed(COMPANIONS[PAB], "blockPublicAcls", UNKNOWN)})
    assert run_stack("s3-public-access-blocked", resources) == []


def test_a_public_access_block_of_another_bucket_does_not_cover_this_one() -> None:
    other = resource(BUCKET, "other-bucket", {}, parent=ART, id="other-bucket-1")
    resources = [*artifact_store(), other]
    violations = run_stack("s3-public-access-blocked", resources)
    assert [v.urn for v in violations] == [other.urn]


def test_engine_property_dependencies_decide_which_bucket_a_companion_belongs_to() -> None:
    bucket = resource(BUCKET, "art-bucket", {}, parent=ART)
    block = resource(
        PAB, "art-pab", changed(COMPANIONS[PAB], "bucket", UNKNOWN), parent=None, dependencies={"bucket": [bucket.urn]}
    )
    assert run_stack("s3-public-access-blocked", [bucket, block]) == []


def test_a_bucket_encrypted_with_aes256_is_reported() -> None:
    sse = changed(COMPANIONS[SSE], "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256")
    resources = artifact_store(**{SSE: sse})
    assert run_stack("s3-sse-kms", resources) == [
        Violation(
            "default encryption is AES256, not SSE-KMS; set sseAlgorithm: aws:kms with kmsMasterKeyId.",
            by_type(resources, SSE),
        )
    ]


def test_sse_kms_with_the_aws_managed_key_is_reported() -> None:
    sse = removed(COMPANIONS[SSE], "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId")
    resources = artifact_store(**{SSE: sse})
    assert run_stack("s3-sse-kms", resources) == [
        Violation(
            "SSE-KMS uses the AWS managed key; set kmsMasterKeyId to the platform's customer managed key.",
            by_type(resources, SSE),
        )
    ]


def test_a_key_arn_unknown_during_preview_counts_as_set() -> None:
    sse = changed(COMPANIONS[SSE], "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", UNKNOWN)
    assert run_stack("s3-sse-kms", artifact_store(**{SSE: sse})) == []


def test_a_bucket_without_default_encryption_is_reported() -> None:
    resources = artifact_store(**{SSE: None})
    assert run_stack("s3-sse-kms", resources) == [
        Violation(
            "bucket has no default encryption; add an aws.s3.BucketServerSideEncryptionConfiguration with "
            "sseAlgorithm aws:kms and the platform's KMS key.",
            by_type(resources, BUCKET),
        )
    ]


def test_a_bucket_policy_without_the_tls_deny_is_reported() -> None:
    allow_only = {"Version": "2012-10-17", "Statement": [{**TLS_DENY, "Condition": {}}]}
    resources = artifact_store(**{POLICY: changed(COMPANIONS[POLICY], "policy", json.dumps(allow_only))})
    assert run_stack("s3-tls-only", resources) == [
        Violation(
            "no bucket policy denies requests without TLS; add an aws.s3.BucketPolicy statement that denies s3:* "
            'to "*" when aws:SecureTransport is false.',
            by_type(resources, BUCKET),
        )
    ]


def test_a_bucket_policy_unknown_during_preview_is_not_judged() -> None:
    resources = artifact_store(**{POLICY: changed(COMPANIONS[POLICY], "policy", UNKNOWN)})
    assert run_stack("s3-tls-only", resources) == []


def test_suspended_versioning_is_reported() -> None:
    resources = artifact_store(
        **{VERSIONING: changed(COMPANIONS[VERSIONING], "versioningConfiguration.status", "Suspended")}
    )
    assert run_stack("s3-versioning", resources) == [
        Violation(
            "versioning is Suspended; set versioningConfiguration.status: Enabled.", by_type(resources, VERSIONING)
        )
    ]


def test_a_bucket_without_versioning_is_reported() -> None:
    resources = artifact_store(**{VERSIONING: None})
    assert run_stack("s3-versioning", resources) == [
        Violation(
            "bucket has no versioning; add an aws.s3.BucketVersioning with versioningConfiguration.status Enabled.",
            by_type(resources, BUCKET),
        )
    ]


def test_lifecycle_rules_that_keep_noncurrent_versions_forever_are_reported() -> None:
    lifecycle = removed(COMPANIONS[LIFECYCLE], "rules.0.noncurrentVersionExpiration")
    resources = artifact_store(**{LIFECYCLE: lifecycle})
    assert run_stack("s3-lifecycle", resources) == [
        Violation(
            "no lifecycle rule expires noncurrent versions, so versioning keeps every overwrite forever; add "
            "noncurrentVersionExpiration.noncurrentDays to a rule.",
            by_type(resources, LIFECYCLE),
        )
    ]


def test_lifecycle_rules_that_keep_incomplete_uploads_are_reported() -> None:
    lifecycle = removed(COMPANIONS[LIFECYCLE], "rules.0.abortIncompleteMultipartUpload")
    resources = artifact_store(**{LIFECYCLE: lifecycle})
    assert run_stack("s3-lifecycle", resources) == [
        Violation(
            "no lifecycle rule aborts incomplete multipart uploads; add "
            "abortIncompleteMultipartUpload.daysAfterInitiation to a rule.",
            by_type(resources, LIFECYCLE),
        )
    ]


def test_only_disabled_lifecycle_rules_count_as_none() -> None:
    resources = artifact_store(**{LIFECYCLE: changed(COMPANIONS[LIFECYCLE], "rules.0.status", "Disabled")})
    assert run_stack("s3-lifecycle", resources) == [
        Violation(
            "bucket has no enabled lifecycle rule; add an aws.s3.BucketLifecycleConfiguration with rules that tier "
            "and expire objects.",
            by_type(resources, BUCKET),
        )
    ]


def test_object_writer_ownership_is_reported() -> None:
    resources = artifact_store(**{OWNERSHIP: changed(COMPANIONS[OWNERSHIP], "rule.objectOwnership", "ObjectWriter")})
    assert run_stack("s3-ownership-enforced", resources) == [
        Violation(
            "object ownership is ObjectWriter, which keeps ACLs; set rule.objectOwnership: BucketOwnerEnforced.",
            by_type(resources, OWNERSHIP),
        )
    ]


def test_a_bucket_without_ownership_controls_is_reported() -> None:
    resources = artifact_store(**{OWNERSHIP: None})
    assert run_stack("s3-ownership-enforced", resources) == [
        Violation(
            "bucket has no ownership controls; add an aws.s3.BucketOwnershipControls with rule.objectOwnership "
            "BucketOwnerEnforced.",
            by_type(resources, BUCKET),
        )
    ]


def test_a_bucket_without_force_destroy_passes() -> None:
    assert run("s3-no-force-destroy", BUCKET, {"forceDestroy": False}) == []


def test_a_force_destroyed_bucket_is_reported() -> None:
    assert run("s3-no-force-destroy", BUCKET, {"forceDestroy": True}) == [
        "forceDestroy is on, so deleting the stack deletes every object in the bucket; remove forceDestroy (only dev "
        "stacks may set mlplat:artifacts.forceDestroy)."
    ]


def test_reading_a_value_unknown_during_preview_raises_like_the_engine() -> None:
    with pytest.raises(UnknownValueError):
        run("s3-no-force-destroy", BUCKET, {"forceDestroy": UNKNOWN})


KEY_PROPS = {
    "enableKeyRotation": True,
    "deletionWindowInDays": 30,
    "policy": json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": ["kms:Decrypt"],
                    "Resource": "*",
                }
            ],
        }
    ),
}


def test_a_rotating_key_passes() -> None:
    assert run("kms-key-rotation", KEY, KEY_PROPS) == []


def test_a_key_without_rotation_is_reported() -> None:
    assert run("kms-key-rotation", KEY, changed(KEY_PROPS, "enableKeyRotation", False)) == [
        "key rotation is off; set enableKeyRotation: true."
    ]


def test_a_rotation_period_over_the_configured_limit_is_reported() -> None:
    props = changed(KEY_PROPS, "rotationPeriodInDays", 730)
    assert run("kms-key-rotation", KEY, props, maxRotationPeriodDays=365) == [
        "keys rotate every 730 days, longer than 365; set rotationPeriodInDays <= 365."
    ]


def test_an_asymmetric_key_needs_no_rotation() -> None:
    props = changed(changed(KEY_PROPS, "enableKeyRotation", False), "customerMasterKeySpec", "RSA_2048")
    assert run("kms-key-rotation", KEY, props) == []


def test_a_key_policy_naming_the_account_passes() -> None:
    assert run("kms-no-wildcard-principal", KEY, KEY_PROPS) == []


def test_a_key_policy_allowing_every_principal_is_reported() -> None:
    doc = json.loads(KEY_PROPS["policy"])
    doc["Statement"][0]["Principal"] = {"AWS": "*"}
    assert run("kms-no-wildcard-principal", KEY, changed(KEY_PROPS, "policy", json.dumps(doc))) == [
        "statement 'AccountAdministers' allows every principal (\"*\"); name the account root, the roles or the "
        "service that use the key."
    ]


def test_a_wildcard_principal_narrowed_by_a_condition_passes() -> None:
    doc = json.loads(KEY_PROPS["policy"])
    doc["Statement"][0]["Principal"] = "*"
    doc["Statement"][0]["Condition"] = {"StringEquals": {"kms:CallerAccount": "111122223333"}}
    assert run("kms-no-wildcard-principal", KEY, changed(KEY_PROPS, "policy", json.dumps(doc))) == []


LOGS = {"retentionInDays": 90, "kmsKeyId": KEY_ARN}


def test_a_log_group_with_retention_passes() -> None:
    assert run("log-group-retention", LOG_GROUP, LOGS, minRetentionDays=30) == []


def test_a_log_group_that_never_expires_is_reported() -> None:
    assert run("log-group-retention", LOG_GROUP, removed(LOGS, "retentionInDays"), minRetentionDays=30) == [
        "log events never expire; set retentionInDays between 30 and 3653."
    ]


def test_a_log_group_kept_shorter_than_the_minimum_is_reported() -> None:
    assert run("log-group-retention", LOG_GROUP, changed(LOGS, "retentionInDays", 7), minRetentionDays=30) == [
        "retentionInDays is 7, below 30; keep logs at least 30 days."
    ]


def test_an_encrypted_log_group_passes() -> None:
    assert run("log-group-kms", LOG_GROUP, LOGS) == []


def test_an_unencrypted_log_group_is_reported() -> None:
    assert run("log-group-kms", LOG_GROUP, removed(LOGS, "kmsKeyId")) == [
        "log group is not encrypted with a customer managed key; set kmsKeyId to a KMS key ARN."
    ]


def test_an_encrypted_topic_passes() -> None:
    assert run("sns-topic-kms", "aws:sns/topic:Topic", {"kmsMasterKeyId": KEY_ARN}) == []


def test_an_unencrypted_topic_is_reported() -> None:
    assert run("sns-topic-kms", "aws:sns/topic:Topic", {}) == [
        "topic is not encrypted; set kmsMasterKeyId to a KMS key that allows budgets.amazonaws.com."
    ]


# One bad fixture per condition each storage policy checks; each case is named after its condition.
PAB_FLAG_OFF = "public access block leaves {} off; set all four flags to true."


@pytest.mark.parametrize(
    ("props", "message"),
    [
        pytest.param(changed(COMPANIONS[PAB], flag, False), PAB_FLAG_OFF.format(flag), id=f"{flag} off")
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    ]
    + [
        pytest.param(
            changed(changed(COMPANIONS[PAB], "blockPublicAcls", False), "ignorePublicAcls", "false"),
            PAB_FLAG_OFF.format("blockPublicAcls, ignorePublicAcls"),
            id="two flags off, one spelled as the string false",
        ),
        pytest.param(
            removed(COMPANIONS[PAB], "blockPublicPolicy"), PAB_FLAG_OFF.format("blockPublicPolicy"), id="flag left out"
        ),
    ],
)
def test_s3_public_access_blocked_names_each_flag_that_is_off(props: dict, message: str) -> None:
    resources = artifact_store(**{PAB: props})
    assert run_stack("s3-public-access-blocked", resources) == [Violation(message, by_type(resources, PAB))]


def test_s3_public_access_blocked_accepts_flags_spelled_as_the_string_true() -> None:
    props = {**COMPANIONS[PAB], "blockPublicAcls": "true", "ignorePublicAcls": " TRUE "}
    assert run_stack("s3-public-access-blocked", artifact_store(**{PAB: props})) == []


SSE_DEFAULT = "rules.0.applyServerSideEncryptionByDefault"
NO_CMK = "SSE-KMS uses the AWS managed key; set kmsMasterKeyId to the platform's customer managed key."


@pytest.mark.parametrize(
    ("props", "message"),
    [
        pytest.param(
            changed(COMPANIONS[SSE], f"{SSE_DEFAULT}.sseAlgorithm", "AES256"),
            "default encryption is AES256, not SSE-KMS; set sseAlgorithm: aws:kms with kmsMasterKeyId.",
            id="sseAlgorithm AES256",
        ),
        pytest.param(changed(COMPANIONS[SSE], f"{SSE_DEFAULT}.kmsMasterKeyId", ""), NO_CMK, id="kmsMasterKeyId empty"),
        pytest.param(removed(COMPANIONS[SSE], f"{SSE_DEFAULT}.kmsMasterKeyId"), NO_CMK, id="kmsMasterKeyId missing"),
        pytest.param(
            changed(COMPANIONS[SSE], "rules", [{"bucketKeyEnabled": True}]),
            "bucket has no default encryption; add an aws.s3.BucketServerSideEncryptionConfiguration with "
            "sseAlgorithm aws:kms and the platform's KMS key.",
            id="rule without applyServerSideEncryptionByDefault",
        ),
    ],
)
def test_s3_sse_kms_reports_each_condition(props: dict, message: str) -> None:
    resources = artifact_store(**{SSE: props})
    where = BUCKET if "no default encryption" in message else SSE
    assert run_stack("s3-sse-kms", resources) == [Violation(message, by_type(resources, where))]


def test_s3_sse_kms_accepts_dual_layer_kms() -> None:
    sse = changed(COMPANIONS[SSE], f"{SSE_DEFAULT}.sseAlgorithm", "aws:kms:dsse")
    assert run_stack("s3-sse-kms", artifact_store(**{SSE: sse})) == []


def test_s3_sse_kms_reads_a_buckets_inline_encryption_and_reports_on_the_bucket() -> None:
    inline = {"rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}}
    bucket = resource(BUCKET, "art-bucket", {"serverSideEncryptionConfiguration": inline}, parent=ART, id=BUCKET_ID)
    assert run_stack("s3-sse-kms", [bucket]) == [
        Violation(
            "default encryption is AES256, not SSE-KMS; set sseAlgorithm: aws:kms with kmsMasterKeyId.", bucket.urn
        )
    ]


def test_s3_sse_kms_passes_a_buckets_inline_kms_encryption() -> None:
    inline = {"rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}}}
    bucket = resource(BUCKET, "art-bucket", {"serverSideEncryptionConfiguration": inline}, parent=ART, id=BUCKET_ID)
    assert run_stack("s3-sse-kms", [bucket]) == []


NO_TLS = (
    'no bucket policy denies requests without TLS; add an aws.s3.BucketPolicy statement that denies s3:* to "*" '
    "when aws:SecureTransport is false."
)


def _tls_policy(**statement: object) -> dict:
    return changed(COMPANIONS[POLICY], "policy", json.dumps({"Statement": [{**TLS_DENY, **statement}]}))


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param({"Effect": "Allow"}, id="Effect Allow instead of Deny"),
        pytest.param({"Principal": {"AWS": "arn:aws:iam::111122223333:root"}}, id="Principal one account"),
        pytest.param({"Principal": {"AWS": ["*", "arn:aws:iam::111122223333:root"]}}, id="Principal star and more"),
        pytest.param({"Action": "s3:GetObject"}, id="Action narrower than s3:*"),
        pytest.param({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, id="SecureTransport true"),
        pytest.param({"Condition": {"StringEquals": {"aws:SecureTransport": "false"}}}, id="condition not Bool"),
    ],
)
def test_s3_tls_only_reports_a_statement_missing_each_condition(statement: dict) -> None:
    resources = artifact_store(**{POLICY: _tls_policy(**statement)})
    assert run_stack("s3-tls-only", resources) == [Violation(NO_TLS, by_type(resources, BUCKET))]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param({"Principal": {"AWS": "*"}}, id="Principal AWS star"),
        pytest.param({"Action": ["s3:GetObject", "*"]}, id="Action star"),
        pytest.param({"Condition": {"Bool": {"aws:SecureTransport": ["False"]}}}, id="SecureTransport False in a list"),
    ],
)
def test_s3_tls_only_accepts_each_spelling_of_the_deny(statement: dict) -> None:
    assert run_stack("s3-tls-only", artifact_store(**{POLICY: _tls_policy(**statement)})) == []


def test_s3_tls_only_reports_a_bucket_without_any_policy() -> None:
    resources = artifact_store(**{POLICY: None})
    assert run_stack("s3-tls-only", resources) == [Violation(NO_TLS, by_type(resources, BUCKET))]


def test_s3_tls_only_reads_a_policy_inline_on_the_bucket() -> None:
    policy = json.dumps({"Statement": [TLS_DENY]})
    bucket = resource(BUCKET, "art-bucket", {"policy": policy}, parent=ART, id=BUCKET_ID)
    assert run_stack("s3-tls-only", [bucket]) == []


def test_s3_versioning_accepts_inline_versioning_on_the_bucket() -> None:
    bucket = resource(BUCKET, "art-bucket", {"versioning": {"enabled": True}}, parent=ART, id=BUCKET_ID)
    assert run_stack("s3-versioning", [bucket]) == []


def test_s3_versioning_reports_inline_versioning_turned_off() -> None:
    bucket = resource(BUCKET, "art-bucket", {"versioning": {"enabled": False}}, parent=ART, id=BUCKET_ID)
    assert run_stack("s3-versioning", [bucket]) == [
        Violation(
            "bucket has no versioning; add an aws.s3.BucketVersioning with versioningConfiguration.status Enabled.",
            bucket.urn,
        )
    ]


def test_s3_lifecycle_is_met_by_two_enabled_rules_each_doing_one_half() -> None:
    rule = COMPANIONS[LIFECYCLE]["rules"][0]
    versions = {k: v for k, v in rule.items() if k != "abortIncompleteMultipartUpload"}
    uploads = {k: v for k, v in rule.items() if k != "noncurrentVersionExpiration"}
    assert (
        run_stack("s3-lifecycle", artifact_store(**{LIFECYCLE: {"bucket": BUCKET_ID, "rules": [versions, uploads]}}))
        == []
    )


def test_s3_lifecycle_ignores_a_disabled_rule_that_would_expire_versions() -> None:
    rule = COMPANIONS[LIFECYCLE]["rules"][0]
    uploads = {k: v for k, v in rule.items() if k != "noncurrentVersionExpiration"}
    disabled = {**rule, "status": "Disabled"}
    resources = artifact_store(**{LIFECYCLE: {"bucket": BUCKET_ID, "rules": [uploads, disabled]}})
    assert run_stack("s3-lifecycle", resources) == [
        Violation(
            "no lifecycle rule expires noncurrent versions, so versioning keeps every overwrite forever; add "
            "noncurrentVersionExpiration.noncurrentDays to a rule.",
            by_type(resources, LIFECYCLE),
        )
    ]


def test_s3_lifecycle_reports_a_bucket_without_any_lifecycle_configuration() -> None:
    resources = artifact_store(**{LIFECYCLE: None})
    assert run_stack("s3-lifecycle", resources) == [
        Violation(
            "bucket has no enabled lifecycle rule; add an aws.s3.BucketLifecycleConfiguration with rules that tier "
            "and expire objects.",
            by_type(resources, BUCKET),
        )
    ]


def test_s3_ownership_enforced_reports_bucket_owner_preferred() -> None:
    props = changed(COMPANIONS[OWNERSHIP], "rule.objectOwnership", "BucketOwnerPreferred")
    resources = artifact_store(**{OWNERSHIP: props})
    assert run_stack("s3-ownership-enforced", resources) == [
        Violation(
            "object ownership is BucketOwnerPreferred, which keeps ACLs; set rule.objectOwnership: "
            "BucketOwnerEnforced.",
            by_type(resources, OWNERSHIP),
        )
    ]


def test_s3_no_force_destroy_reports_force_destroy_spelled_as_a_string() -> None:
    assert run("s3-no-force-destroy", BUCKET, {"forceDestroy": "true"}) != []


def test_s3_no_force_destroy_passes_a_bucket_that_does_not_set_it() -> None:
    assert run("s3-no-force-destroy", BUCKET, {}) == []


ROTATION_OFF = ["key rotation is off; set enableKeyRotation: true."]


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(removed(KEY_PROPS, "enableKeyRotation"), ROTATION_OFF, id="enableKeyRotation missing"),
        pytest.param(
            changed(changed(KEY_PROPS, "enableKeyRotation", False), "customerMasterKeySpec", "SYMMETRIC_DEFAULT"),
            ROTATION_OFF,
            id="spec SYMMETRIC_DEFAULT is checked",
        ),
        pytest.param(
            changed(changed(KEY_PROPS, "enableKeyRotation", False), "keyUsage", "ENCRYPT_DECRYPT"),
            ROTATION_OFF,
            id="usage ENCRYPT_DECRYPT is checked",
        ),
        pytest.param(
            changed(changed(KEY_PROPS, "enableKeyRotation", False), "keyUsage", "GENERATE_VERIFY_MAC"),
            [],
            id="usage GENERATE_VERIFY_MAC needs no rotation",
        ),
        pytest.param(changed(KEY_PROPS, "rotationPeriodInDays", 365), [], id="period at the default limit 365"),
        pytest.param(
            changed(KEY_PROPS, "rotationPeriodInDays", 366),
            ["keys rotate every 366 days, longer than 365; set rotationPeriodInDays <= 365."],
            id="period just over the default limit 365",
        ),
        pytest.param(
            changed(KEY_PROPS, "rotationPeriodInDays", "366"),
            ["keys rotate every 366 days, longer than 365; set rotationPeriodInDays <= 365."],
            id="period as a numeric string",
        ),
    ],
)
def test_kms_key_rotation_checks_each_condition(props: dict, messages: list[str]) -> None:
    assert run("kms-key-rotation", KEY, props) == messages


def test_kms_key_rotation_uses_the_configured_limit_at_its_boundary() -> None:
    assert (
        run("kms-key-rotation", KEY, changed(KEY_PROPS, "rotationPeriodInDays", 180), maxRotationPeriodDays=180) == []
    )
    assert run("kms-key-rotation", KEY, changed(KEY_PROPS, "rotationPeriodInDays", 181), maxRotationPeriodDays=180) == [
        "keys rotate every 181 days, longer than 180; set rotationPeriodInDays <= 180."
    ]


WILDCARD = '{} allows every principal ("*"); name the account root, the roles or the service that use the key.'
ACCOUNT_STATEMENT = json.loads(str(KEY_PROPS["policy"]))["Statement"][0]


def _key_policy(*statements: dict) -> dict:
    return changed(KEY_PROPS, "policy", json.dumps({"Statement": list(statements)}))


@pytest.mark.parametrize(
    ("props", "messages"),
    [
        pytest.param(
            _key_policy({**ACCOUNT_STATEMENT, "Principal": "*"}),
            [WILDCARD.format("statement 'AccountAdministers'")],
            id="Principal star",
        ),
        pytest.param(
            _key_policy(ACCOUNT_STATEMENT, {**ACCOUNT_STATEMENT, "Sid": "", "Principal": {"AWS": ["arn:x", "*"]}}),
            [WILDCARD.format("statement 2")],
            id="AWS star among others, no Sid",
        ),
        pytest.param(
            _key_policy({**ACCOUNT_STATEMENT, "Principal": "*", "Effect": "Deny"}), [], id="Deny to star is not a grant"
        ),
        pytest.param(
            _key_policy({**ACCOUNT_STATEMENT, "Principal": "*", "Condition": {}}),
            [WILDCARD.format("statement 'AccountAdministers'")],
            id="empty Condition does not narrow",
        ),
        pytest.param(
            _key_policy({**ACCOUNT_STATEMENT, "Principal": {"Service": "logs.amazonaws.com"}}),
            [],
            id="a named service",
        ),
    ],
)
def test_kms_no_wildcard_principal_checks_each_condition(props: dict, messages: list[str]) -> None:
    assert run("kms-no-wildcard-principal", KEY, props) == messages


@pytest.mark.parametrize(
    ("days", "messages"),
    [
        pytest.param(0, ["log events never expire; set retentionInDays between 7 and 3653."], id="retention 0"),
        pytest.param(7, [], id="at the default minimum 7"),
        pytest.param(6, ["retentionInDays is 6, below 7; keep logs at least 7 days."], id="just under the minimum 7"),
        pytest.param(3653, [], id="at the default maximum 3653"),
        pytest.param(
            3654, ["retentionInDays is 3654, above 3653; keep logs at most 3653 days."], id="just over the maximum 3653"
        ),
    ],
)
def test_log_group_retention_checks_each_bound(days: int, messages: list[str]) -> None:
    assert run("log-group-retention", LOG_GROUP, changed(LOGS, "retentionInDays", days)) == messages


def test_log_group_retention_uses_the_configured_maximum() -> None:
    assert run("log-group-retention", LOG_GROUP, changed(LOGS, "retentionInDays", 91), maxRetentionDays=90) == [
        "retentionInDays is 91, above 90; keep logs at most 90 days."
    ]


def test_log_group_kms_reports_an_empty_key_id() -> None:
    assert run("log-group-kms", LOG_GROUP, changed(LOGS, "kmsKeyId", "")) == [
        "log group is not encrypted with a customer managed key; set kmsKeyId to a KMS key ARN."
    ]


def test_sns_topic_kms_reports_an_empty_key_id() -> None:
    assert run("sns-topic-kms", "aws:sns/topic:Topic", {"kmsMasterKeyId": ""}) == [
        "topic is not encrypted; set kmsMasterKeyId to a KMS key that allows budgets.amazonaws.com."
    ]
