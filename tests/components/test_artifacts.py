"""The ArtifactStore component, read from the synthesized shipped stacks."""

import pytest
from plan_helpers import as_list, parent_type, statements

from mlplat.synth import PlanRecord

STORE = "mlplat:artifacts:ArtifactStore"


def _one(plan: PlanRecord, type_token: str) -> dict:
    (resource,) = [r for r in plan.of_type(type_token) if parent_type(r) == STORE]
    return resource.inputs


def test_bucket_is_a_child_of_the_artifact_store(dev: PlanRecord) -> None:
    bucket = dev.get("aws:s3/bucket:Bucket", "mlplat-dev-artifacts-bucket")
    assert bucket.urn == (
        "urn:pulumi:dev::mlplat::mlplat:platform:MlPlatform$mlplat:artifacts:ArtifactStore$aws:s3/bucket:Bucket"
        "::mlplat-dev-artifacts-bucket"
    )
    assert bucket.parent == dev.get(STORE, "mlplat-dev-artifacts").urn


def test_bucket_gets_no_hard_coded_physical_name(prod: PlanRecord) -> None:
    assert "bucket" not in prod.get("aws:s3/bucket:Bucket", "mlplat-prod-artifacts-bucket").inputs


@pytest.mark.parametrize(("stack", "force_destroy"), [("dev", True), ("staging", False), ("prod", False)])
def test_force_destroy_only_where_the_stack_says(plans: dict[str, PlanRecord], stack: str, force_destroy: bool) -> None:
    assert plans[stack].get("aws:s3/bucket:Bucket", f"mlplat-{stack}-artifacts-bucket").inputs["forceDestroy"] is (
        force_destroy
    )


def test_bucket_blocks_all_four_kinds_of_public_access(prod: PlanRecord) -> None:
    block = _one(prod, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert {flag: block[flag] for flag in flags} == dict.fromkeys(flags, True)


def test_bucket_ownership_is_enforced(prod: PlanRecord) -> None:
    ownership = _one(prod, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_bucket_encrypts_with_its_kms_key_and_a_bucket_key(prod: PlanRecord) -> None:
    (rule,) = _one(prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")[
        "rules"
    ]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == prod.outputs["kmsKeyArn"]
    assert rule["bucketKeyEnabled"] is True


def test_bucket_is_versioned(dev: PlanRecord) -> None:
    assert _one(dev, "aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}


def test_bucket_denies_requests_without_tls(staging: PlanRecord) -> None:
    """Staging exports no billing data, so the TLS deny is the policy's only statement."""
    policy = next(r for r in staging.of_type("aws:s3/bucketPolicy:BucketPolicy") if parent_type(r) == STORE)
    (deny,) = statements(policy)
    bucket = staging.outputs["bucketArn"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert as_list(deny["Resource"]) == [bucket, f"{bucket}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_lifecycle_expires_noncurrent_versions_after_the_configured_days(prod: PlanRecord) -> None:
    rules = {
        r["id"]: r for r in _one(prod, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]
    }
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
    assert rules["expire-noncurrent-versions"]["status"] == "Enabled"


def test_lifecycle_tiers_then_expires_checkpoints_only(dev: PlanRecord) -> None:
    rules = {r["id"]: r for r in _one(dev, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]}
    checkpoints = rules["tier-then-expire-checkpoints"]
    assert checkpoints["filter"] == {"prefix": "checkpoints/"}
    assert checkpoints["transitions"] == [{"days": 30, "storageClass": "INTELLIGENT_TIERING"}]
    assert checkpoints["expiration"] == {"days": 60}


def test_lifecycle_aborts_incomplete_multipart_uploads(dev: PlanRecord) -> None:
    rules = {r["id"]: r for r in _one(dev, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


def test_key_rotates_and_waits_before_deletion(prod: PlanRecord) -> None:
    key = prod.get("aws:kms/key:Key", "mlplat-prod-artifacts-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30


def test_key_policy_names_the_account_root_and_no_wildcard_principal(staging: PlanRecord) -> None:
    key = staging.get("aws:kms/key:Key", "mlplat-staging-artifacts-key")
    principals = [s["Principal"] for s in statements(key)]
    assert principals == [{"AWS": "arn:aws:iam::123456789012:root"}]


def test_key_has_an_alias_named_after_the_component(prod: PlanRecord) -> None:
    alias = prod.get("aws:kms/alias:Alias", "mlplat-prod-artifacts-key-alias")
    assert alias.inputs["name"] == "alias/mlplat-prod-artifacts"
