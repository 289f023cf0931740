"""The ArtifactStore component, read from the synthesized shipped stacks and built alone with every setting changed."""

import dataclasses
import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from plan_helpers import as_list, parent_type, statements

from components import iam
from components.artifacts import ArtifactStore, ArtifactStoreArgs
from mlplat import synth
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


ARGS = ArtifactStoreArgs(
    force_destroy=True,
    noncurrent_version_expiration_days=11,
    checkpoint_transition_days=12,
    checkpoint_expiration_days=13,
    abort_multipart_days=14,
    key_deletion_window_days=15,
)
BUCKET_URN = "urn:pulumi:test::mlplat::mlplat:artifacts:ArtifactStore$aws:s3/bucket:Bucket::store-bucket"


def _alone() -> PlanRecord:
    """One ArtifactStore with no default setting, plus a policy of each kind of statement it hands out."""

    def program() -> None:
        store = ArtifactStore("store", ARGS)
        aws.iam.Policy("read-models", policy=iam.policy_document(store.read_statements("models")))
        aws.iam.Policy("read-all", policy=iam.policy_document(store.read_statements("")))
        aws.iam.Policy("write-checkpoints", policy=iam.policy_document(store.write_statements("checkpoints/")))
        aws.iam.Policy("use-key", policy=iam.policy_document(store.kms_statements()))
        pulumi.export("datasetsUri", store.uri("datasets/v1"))
        pulumi.export("rootUri", store.uri())
        pulumi.export("allObjects", store.object_arn(""))
        pulumi.export("modelObjects", store.object_arn("models"))
        pulumi.export("bucketArn", store.bucket_arn)
        pulumi.export("bucketName", store.bucket_name)
        pulumi.export("keyArn", store.key_arn)
        pulumi.export("keyId", store.key_id)

    return synth.run(program)


class TestTheStoreBuiltAlone:
    """Each setting of ArtifactStoreArgs reaches its resource; each statement is exact. `make mutants` runs these.

    Each test builds its own store (a third of a second): mutmut's per-test selection maps a test to the code it
    runs, and a plan built once for the class would map every mutant to the first test alone.
    """

    @pytest.fixture
    def plan(self) -> PlanRecord:
        return _alone()

    def inputs(self, plan: PlanRecord, type_token: str, name: str) -> dict[str, Any]:
        resource = plan.get(type_token, name)
        assert resource.parent == "urn:pulumi:test::mlplat::mlplat:artifacts:ArtifactStore::store"
        return resource.inputs

    def test_the_store_has_exactly_its_nine_children(self, plan: PlanRecord) -> None:
        children = {(r.type, r.name) for r in plan.resources if r.parent.endswith("ArtifactStore::store")}
        assert children == {
            ("aws:kms/key:Key", "store-key"),
            ("aws:kms/alias:Alias", "store-key-alias"),
            ("aws:s3/bucket:Bucket", "store-bucket"),
            ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "store-public-access"),
            ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "store-ownership"),
            (
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "store-encryption",
            ),
            ("aws:s3/bucketVersioning:BucketVersioning", "store-versioning"),
            ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "store-lifecycle"),
            ("aws:s3/bucketPolicy:BucketPolicy", "store-policy"),
        }
        (component,) = plan.of_type("mlplat:artifacts:ArtifactStore")
        assert component.name == "store"

    def test_the_key_rotates_waits_the_configured_days_and_is_administered_by_the_account(
        self, plan: PlanRecord
    ) -> None:
        key = self.inputs(plan, "aws:kms/key:Key", "store-key")
        assert json.loads(key.pop("policy")) == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": list(iam.KEY_ADMIN_ACTIONS),
                    "Resource": "*",
                }
            ],
        }
        assert key == {
            "description": "Encrypts the artifact bucket of store",
            "enableKeyRotation": True,
            "deletionWindowInDays": 15,
        }

    def test_the_key_alias_is_named_after_the_store(self, plan: PlanRecord) -> None:
        alias = self.inputs(plan, "aws:kms/alias:Alias", "store-key-alias")
        assert alias == {"name": "alias/store", "targetKeyId": plan.outputs["keyId"]}

    def test_force_destroy_follows_the_args(self, plan: PlanRecord) -> None:
        assert self.inputs(plan, "aws:s3/bucket:Bucket", "store-bucket") == {"forceDestroy": True}

    def test_all_four_kinds_of_public_access_are_blocked(self, plan: PlanRecord) -> None:
        block = self.inputs(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "store-public-access")
        assert block == {
            "bucket": plan.outputs["bucketName"],
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }

    def test_the_bucket_owner_owns_every_object(self, plan: PlanRecord) -> None:
        ownership = self.inputs(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "store-ownership")
        assert ownership == {"bucket": plan.outputs["bucketName"], "rule": {"objectOwnership": "BucketOwnerEnforced"}}

    def test_objects_are_encrypted_with_the_stores_key_and_a_bucket_key(self, plan: PlanRecord) -> None:
        encryption = self.inputs(
            plan,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "store-encryption",
        )
        assert encryption == {
            "bucket": plan.outputs["bucketName"],
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": plan.outputs["keyArn"],
                    },
                    "bucketKeyEnabled": True,
                }
            ],
        }

    def test_versioning_is_enabled(self, plan: PlanRecord) -> None:
        versioning = self.inputs(plan, "aws:s3/bucketVersioning:BucketVersioning", "store-versioning")
        assert versioning == {"bucket": plan.outputs["bucketName"], "versioningConfiguration": {"status": "Enabled"}}

    def test_each_lifecycle_rule_takes_its_days_from_the_args(self, plan: PlanRecord) -> None:
        lifecycle = self.inputs(
            plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "store-lifecycle"
        )
        assert lifecycle == {
            "bucket": plan.outputs["bucketName"],
            "rules": [
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrentVersionExpiration": {"noncurrentDays": 11},
                },
                {
                    "id": "tier-then-expire-checkpoints",
                    "status": "Enabled",
                    "filter": {"prefix": "checkpoints/"},
                    "transitions": [{"days": 12, "storageClass": "INTELLIGENT_TIERING"}],
                    "expiration": {"days": 13},
                },
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 14},
                },
            ],
        }

    def test_the_lifecycle_waits_for_versioning(self, plan: PlanRecord) -> None:
        lifecycle = plan.get("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "store-lifecycle")
        assert sorted(lifecycle.options["dependsOn"]) == [
            BUCKET_URN,
            "urn:pulumi:test::mlplat::mlplat:artifacts:ArtifactStore$aws:s3/bucketVersioning:BucketVersioning"
            "::store-versioning",
        ]

    def test_the_bucket_policy_denies_every_request_without_tls(self, plan: PlanRecord) -> None:
        policy = self.inputs(plan, "aws:s3/bucketPolicy:BucketPolicy", "store-policy")
        bucket = plan.outputs["bucketArn"]
        assert policy["bucket"] == plan.outputs["bucketName"]
        assert json.loads(policy["policy"]) == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyWithoutTLS",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket, f"{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }

    def test_the_bucket_policy_waits_for_the_public_access_block(self, plan: PlanRecord) -> None:
        policy = plan.get("aws:s3/bucketPolicy:BucketPolicy", "store-policy")
        assert sorted(policy.options["dependsOn"]) == [
            BUCKET_URN,
            "urn:pulumi:test::mlplat::mlplat:artifacts:ArtifactStore$aws:s3/bucketPublicAccessBlock"
            ":BucketPublicAccessBlock::store-public-access",
        ]

    def test_uris_and_object_arns_name_the_bucket_and_the_prefix(self, plan: PlanRecord) -> None:
        name, arn = plan.outputs["bucketName"], plan.outputs["bucketArn"]
        assert arn == f"arn:aws:s3:::{name}"
        assert plan.outputs["datasetsUri"] == f"s3://{name}/datasets/v1"
        assert plan.outputs["rootUri"] == f"s3://{name}/"
        assert plan.outputs["allObjects"] == f"{arn}/*"
        assert plan.outputs["modelObjects"] == f"{arn}/models/*"

    def test_reading_a_prefix_allows_its_objects_and_listing_that_prefix_only(self, plan: PlanRecord) -> None:
        arn = plan.outputs["bucketArn"]
        assert statements(plan.get("aws:iam/policy:Policy", "read-models")) == [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": f"{arn}/models/*"},
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": ["models/", "models/*"]}},
            },
        ]

    def test_reading_the_empty_prefix_covers_the_whole_bucket(self, plan: PlanRecord) -> None:
        arn = plan.outputs["bucketArn"]
        assert statements(plan.get("aws:iam/policy:Policy", "read-all")) == [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": f"{arn}/*"},
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": ["", "*"]}},
            },
        ]

    def test_writing_a_prefix_allows_putting_and_aborting_uploads_under_it_only(self, plan: PlanRecord) -> None:
        arn = plan.outputs["bucketArn"]
        assert statements(plan.get("aws:iam/policy:Policy", "write-checkpoints")) == [
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": f"{arn}/checkpoints/*",
            }
        ]

    def test_using_the_key_allows_encrypting_and_decrypting_with_it_only(self, plan: PlanRecord) -> None:
        assert statements(plan.get("aws:iam/policy:Policy", "use-key")) == [
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": plan.outputs["keyArn"],
            }
        ]

    def test_the_store_registers_its_bucket_and_key_as_its_outputs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        registered: list[tuple[pulumi.ComponentResource, dict[str, Any]]] = []
        monkeypatch.setattr(
            pulumi.ComponentResource, "register_outputs", lambda self, outputs: registered.append((self, outputs))
        )
        stores: list[ArtifactStore] = []
        synth.run(lambda: stores.append(ArtifactStore("store", ARGS)))
        (store,) = stores
        (outputs,) = [outputs for component, outputs in registered if component is store]
        assert outputs == {
            "bucketName": store.bucket_name,
            "bucketArn": store.bucket_arn,
            "keyArn": store.key_arn,
            "keyId": store.key_id,
        }

    def test_the_store_takes_the_parent_it_is_given(self) -> None:
        class Holder(pulumi.ComponentResource):
            def __init__(self) -> None:
                super().__init__("test:index:Holder", "holder")

        def program() -> None:
            ArtifactStore("store", ARGS, pulumi.ResourceOptions(parent=Holder()))

        (store,) = synth.run(program).of_type("mlplat:artifacts:ArtifactStore")
        assert store.parent == "urn:pulumi:test::mlplat::test:index:Holder::holder"
        assert store.urn == "urn:pulumi:test::mlplat::test:index:Holder$mlplat:artifacts:ArtifactStore::store"

    def test_a_store_with_the_billing_export_admits_data_exports_to_its_key_and_billing_prefix_only(self) -> None:
        def program() -> None:
            ArtifactStore("store", dataclasses.replace(ARGS, billing_export=True))

        plan = synth.run(program)
        key_statements = statements(plan.get("aws:kms/key:Key", "store-key"))
        bucket_statements = statements(plan.get("aws:s3/bucketPolicy:BucketPolicy", "store-policy"))
        assert [s["Sid"] for s in key_statements] == ["AccountAdministers", "DataExportsEncrypts"]
        assert key_statements[1]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert [s["Sid"] for s in bucket_statements] == ["DenyWithoutTLS", "DataExportsDelivers"]
        bucket_arn = bucket_statements[0]["Resource"][0]
        assert bucket_statements[1]["Resource"] == [bucket_arn, f"{bucket_arn}/billing/*"]


def test_the_documented_defaults_of_the_store() -> None:
    assert ArtifactStoreArgs() == ArtifactStoreArgs(
        force_destroy=False,
        noncurrent_version_expiration_days=30,
        checkpoint_transition_days=30,
        checkpoint_expiration_days=180,
        abort_multipart_days=7,
        key_deletion_window_days=30,
        billing_export=False,
    )
