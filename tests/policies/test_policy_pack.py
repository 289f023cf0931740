"""The pack as a whole: registry invariants, per-environment config files, and the CrossGuard wrapper."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from policy_support import urn
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

import policies.__main__ as pack_main
from components.config import ENVIRONMENTS, load_stack
from policies import registry, tagging
from policies.base import StackResource

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "policies" / "config"


def test_the_pack_has_at_least_thirty_policies_with_unique_stable_names() -> None:
    names = [spec.name for spec in registry.POLICIES]
    assert len(names) >= 30
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", n) for n in names)


def test_every_policy_has_a_description_remediation_and_a_default_level() -> None:
    for spec in registry.POLICIES:
        assert spec.description.endswith("."), spec.name
        assert spec.remediation, spec.name
        assert spec.enforcement in ("mandatory", "advisory"), spec.name
        assert (spec.check is None) != (spec.stack_check is None), spec.name
        assert bool(spec.resource_types) == (spec.check is not None), spec.name


def test_every_config_schema_is_valid_json_schema_and_its_defaults_satisfy_it() -> None:
    for spec in registry.POLICIES:
        schema = {"type": "object", "properties": dict(spec.config_schema)}
        jsonschema.Draft7Validator.check_schema(schema)
        jsonschema.validate(registry.defaults(spec), schema)


def test_the_policy_domains_are_the_eight_named_ones() -> None:
    assert {s.domain for s in registry.POLICIES} == {
        "storage",
        "identity",
        "network",
        "compute",
        "sagemaker",
        "kubernetes",
        "cost",
        "tagging",
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_config_file_names_real_policies_with_valid_settings(env: str) -> None:
    doc = json.loads((CONFIG_DIR / f"{env}.json").read_text())
    assert registry.validate_pack_config(doc) == []
    for name, entry in doc.items():
        spec = registry.BY_NAME[name]
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        jsonschema.validate(props, {"type": "object", "properties": dict(spec.config_schema)})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_config_carries_the_stacks_own_guard_rails(env: str) -> None:
    doc = json.loads((CONFIG_DIR / f"{env}.json").read_text())
    stack = load_stack(env)
    assert doc["gpu-instance-types-allowed"]["allowedInstanceTypes"] == stack.allowed_gpu_instance_types
    assert doc["gpu-pool-max-gpus"]["maxGpusPerPool"] == stack.max_gpus_per_pool
    assert doc["aws-stack-tags"]["expectedValues"] == stack.tags


def test_force_destroy_is_only_allowed_in_dev_and_data_capture_is_mandatory_only_in_prod() -> None:
    levels = {
        env: {
            name: registry.enforcement(registry.BY_NAME[name], json.loads((CONFIG_DIR / f"{env}.json").read_text()))
            for name in ("s3-no-force-destroy", "sagemaker-data-capture")
        }
        for env in ENVIRONMENTS
    }
    assert levels == {
        "dev": {"s3-no-force-destroy": "disabled", "sagemaker-data-capture": "advisory"},
        "staging": {"s3-no-force-destroy": "mandatory", "sagemaker-data-capture": "advisory"},
        "prod": {"s3-no-force-destroy": "mandatory", "sagemaker-data-capture": "mandatory"},
    }


def test_an_unknown_policy_or_property_in_a_config_file_is_reported() -> None:
    assert registry.validate_pack_config(
        {"no-such-policy": "mandatory", "s3-tls-only": {"enforcementLevel": "sometimes", "maxDays": 3}}
    ) == [
        "no-such-policy: no such policy in mlplat-guard",
        "s3-tls-only: enforcementLevel must be one of advisory, mandatory, remediate, disabled (got 'sometimes')",
        "s3-tls-only: maxDays is not a config property of this policy",
    ]


def test_main_builds_the_pack_with_every_policy_and_its_default_level(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(pack_main, "PolicyPack", lambda **kwargs: built.update(kwargs))
    pack_main.main()
    assert built["name"] == "mlplat-guard"
    assert [p.name for p in built["policies"]] == [s.name for s in registry.POLICIES]
    for policy, spec in zip(built["policies"], registry.POLICIES, strict=True):
        assert isinstance(policy, StackValidationPolicy if spec.is_stack_policy else ResourceValidationPolicy)
        assert policy.enforcement_level == EnforcementLevel(spec.enforcement)
        assert policy.description == spec.description
        assert policy.remediation_steps == spec.remediation
        if spec.config_schema:
            assert policy.config_schema is not None
            assert policy.config_schema.properties == spec.config_schema
        else:
            assert policy.config_schema is None
    assert built["enforcement_level"] == EnforcementLevel.MANDATORY
    assert built["description"] == (
        "mlplat guard rails: storage, identity, network, GPU compute, SageMaker, Kubernetes, cost, tags."
    )


def _policy(name: str) -> Any:
    return next(p for p in pack_main.policies() if p.name == name)


def test_the_resource_wrapper_reports_what_the_check_finds_with_config_defaults_applied() -> None:
    reported: list[tuple[str, Any]] = []
    args = ResourceValidationArgs(
        resource_type="aws:cloudwatch/logGroup:LogGroup",
        props={"retentionInDays": 3, "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k"},
        urn=urn("aws:cloudwatch/logGroup:LogGroup", "logs"),
        name="logs",
        opts=PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []),
        provider=None,
        config={"minRetentionDays": 30},
    )
    _policy("log-group-retention").validate(args, lambda message, u: reported.append((message, u)))
    assert reported == [("retentionInDays is 3, below 30; keep logs at least 30 days.", None)]


def test_the_resource_wrapper_ignores_types_the_policy_does_not_guard() -> None:
    reported: list[str] = []
    args = ResourceValidationArgs(
        "aws:s3/bucket:Bucket",
        {"forceDestroy": True},
        "urn",
        "b",
        PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []),
        None,
    )
    _policy("log-group-kms").validate(args, lambda message, u=None: reported.append(message))
    assert reported == []


def test_the_stack_wrapper_passes_urns_parents_and_property_dependencies() -> None:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    bucket = PolicyResource("aws:s3/bucket:Bucket", {}, urn("aws:s3/bucket:Bucket", "b"), "b", opts, None, None, [], {})
    reported: list[tuple[str, Any]] = []
    _policy("s3-versioning").validate(
        StackValidationArgs([bucket], {}), lambda message, u: reported.append((message, u))
    )
    assert reported == [
        (
            "bucket has no versioning; add an aws.s3.BucketVersioning with versioningConfiguration.status Enabled.",
            bucket.urn,
        )
    ]


def test_the_taggable_type_list_matches_the_installed_pulumi_aws() -> None:
    import pulumi_aws

    found: set[str] = set()
    for path in Path(pulumi_aws.__file__).parent.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r'@pulumi\.type_token\("(aws:[^"]+)"\)\nclass \w+\(pulumi\.CustomResource\):', text):
            init = text.find("def _internal_init(", match.end())
            signature = text[init : text.find("__props__", init)]
            if re.search(r"\n\s+tags: pulumi\.Input\[Optional\[Mapping\[str", signature):
                found.add(match.group(1))
    assert tagging.taggable_types() == found


def test_the_pack_never_imports_the_tools() -> None:
    for path in (ROOT / "policies").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (mlplat|components)\b", path.read_text(), re.M), path


def test_the_pack_manifest_and_requirements_are_shipped() -> None:
    manifest = (ROOT / "policies" / "PulumiPolicy.yaml").read_text()
    assert "name: python" in manifest
    assert "pulumi-policy" in (ROOT / "policies" / "requirements.txt").read_text()


def test_the_pack_readme_lists_every_policy_once() -> None:
    readme = (ROOT / "policies" / "README.md").read_text()
    for spec in registry.POLICIES:
        assert readme.count(f"| `{spec.name}` |") == 1, spec.name


# One case per condition of the registry's config handling; each case is named after its condition.
@pytest.mark.parametrize(
    ("pack_config", "problems"),
    [
        pytest.param({"all": "advisory"}, [], id="all is accepted as a name"),
        pytest.param({"s3-tls-only": "disabled"}, [], id="a level as a string"),
        pytest.param({"s3-tls-only": "remediate"}, [], id="remediate"),
        pytest.param(
            {"s3-tls-only": "off"},
            ["s3-tls-only: enforcementLevel must be one of advisory, mandatory, remediate, disabled (got 'off')"],
            id="a bad level as a string",
        ),
        pytest.param({"log-group-retention": {"minRetentionDays": 30}}, [], id="a config property without a level"),
        pytest.param(
            {"log-group-retention": {"enforcementLevel": "advisory", "minRetentionDays": 30}},
            [],
            id="a level and a config property",
        ),
        pytest.param({"s3-tls-only": 3}, [], id="an entry that is neither a level nor a mapping"),
    ],
)
def test_validate_pack_config_checks_each_entry(pack_config: dict[str, Any], problems: list[str]) -> None:
    assert registry.validate_pack_config(pack_config) == problems


SPEC = registry.BY_NAME["log-group-retention"]


@pytest.mark.parametrize(
    ("entry", "level"),
    [
        pytest.param("advisory", "advisory", id="a level as a string"),
        pytest.param({"enforcementLevel": "disabled"}, "disabled", id="a level in a mapping"),
        pytest.param({"minRetentionDays": 30}, "mandatory", id="a mapping without a level"),
        pytest.param({"enforcementLevel": 3}, "mandatory", id="a level that is not a string"),
        pytest.param(None, "mandatory", id="no entry"),
    ],
)
def test_enforcement_reads_each_spelling_of_a_level(entry: Any, level: str) -> None:
    pack_config = {} if entry is None else {SPEC.name: entry}
    assert registry.enforcement(SPEC, pack_config) == level


@pytest.mark.parametrize(
    ("entry", "properties"),
    [
        pytest.param(None, {"minRetentionDays": 7, "maxRetentionDays": 3653}, id="defaults"),
        pytest.param("advisory", {"minRetentionDays": 7, "maxRetentionDays": 3653}, id="a level only"),
        pytest.param(
            {"enforcementLevel": "advisory", "minRetentionDays": 30},
            {"minRetentionDays": 30, "maxRetentionDays": 3653},
            id="a property over its default, the level left out",
        ),
    ],
)
def test_policy_properties_overlays_the_config_on_the_defaults(entry: Any, properties: dict[str, Any]) -> None:
    pack_config = {} if entry is None else {SPEC.name: entry}
    assert registry.policy_properties(SPEC, pack_config) == properties


def test_effective_config_takes_no_config_as_the_defaults() -> None:
    assert registry.effective_config(SPEC, None) == {"minRetentionDays": 7, "maxRetentionDays": 3653}


def test_a_resource_policy_is_no_stack_policy_and_the_reverse() -> None:
    assert registry.BY_NAME["s3-tls-only"].is_stack_policy is True
    assert registry.BY_NAME["log-group-retention"].is_stack_policy is False


def _no_findings(*args: Any) -> list[Any]:
    return []


# The registry builds its entries at import, before any test runs, so these call the two builders directly: each
# argument lands in its own field, and a policy without a config schema gets an empty one.
@pytest.mark.parametrize("schema", [None, {"days": {"type": "integer", "default": 7}}], ids=["no schema", "a schema"])
def test_a_resource_entry_keeps_each_argument_in_its_field(schema: dict[str, Any] | None) -> None:
    spec = registry._resource("n", "d", "storage", "advisory", "r", ("aws:t",), _no_findings, schema)
    assert spec == registry.PolicySpec(
        name="n",
        description="d",
        domain="storage",
        enforcement="advisory",
        remediation="r",
        resource_types=("aws:t",),
        check=_no_findings,
        stack_check=None,
        config_schema=schema or {},
    )


@pytest.mark.parametrize("schema", [None, {"days": {"type": "integer", "default": 7}}], ids=["no schema", "a schema"])
def test_a_stack_entry_keeps_each_argument_in_its_field(schema: dict[str, Any] | None) -> None:
    spec = registry._stack("n", "d", "cost", "mandatory", "r", _no_findings, schema)
    assert spec == registry.PolicySpec(
        name="n",
        description="d",
        domain="cost",
        enforcement="mandatory",
        remediation="r",
        resource_types=(),
        check=None,
        stack_check=_no_findings,
        config_schema=schema or {},
    )


OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def test_the_resource_wrapper_hands_the_check_the_resources_type() -> None:
    reported: list[str] = []
    args = ResourceValidationArgs(
        "aws:ec2/securityGroup:SecurityGroup",
        {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]},
        "urn",
        "sg",
        OPTS,
        None,
    )
    _policy("sg-no-public-ingress").validate(args, lambda message, u: reported.append(message))
    assert reported == ["ingress of tcp 22 from 0.0.0.0/0; admit the VPC CIDR or a source security group instead."]


def test_the_stack_wrapper_applies_the_policys_config() -> None:
    bucket = PolicyResource("aws:s3/bucket:Bucket", {"tags": {}}, "urn:b", "b", OPTS, None, None, [], {})
    reported: list[str] = []
    _policy("aws-stack-tags").validate(
        StackValidationArgs([bucket], {"requiredTags": ["owner"]}), lambda message, u: reported.append(message)
    )
    assert reported == [
        "missing tags owner; set them once for the whole stack (the platform's tag transform or the provider's "
        "defaultTags), not per resource."
    ]


def test_a_policy_resource_becomes_a_stack_resource_field_by_field() -> None:
    provider = PolicyProviderResource("pulumi:providers:aws", {"region": "us-east-1"}, "urn:provider", "aws")
    parent = PolicyResource("mlplat:artifacts:ArtifactStore", {}, "urn:parent", "art", OPTS, None, None, [], {})
    key = PolicyResource("aws:kms/key:Key", {}, "urn:key", "key", OPTS, None, None, [], {})
    bucket = PolicyResource(
        "aws:s3/bucket:Bucket", {"bucket": "b"}, "urn:b", "b", OPTS, provider, parent, [key], {"kmsKey": [key]}
    )
    assert pack_main._stack_resource(bucket) == StackResource(
        urn="urn:b",
        type="aws:s3/bucket:Bucket",
        name="b",
        props={"bucket": "b"},
        parent="urn:parent",
        dependencies={"kmsKey": ["urn:key"]},
        provider_props={"region": "us-east-1"},
    )


def test_a_policy_resource_without_parent_or_provider_has_neither() -> None:
    bucket = PolicyResource("aws:s3/bucket:Bucket", {}, "urn:b", "b", OPTS, None, None, [], {})
    resource = pack_main._stack_resource(bucket)
    assert (resource.parent, resource.provider_props, resource.dependencies) == (None, None, {})
