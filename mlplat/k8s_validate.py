"""Offline schema validation of every Kubernetes object mlplat declares, against the cluster's Kubernetes version.

Objects come either as plain manifest dicts (what `render_*` functions return) or as the `kubernetes:*` resources of a
plan record (their recorded inputs are the manifests, with the engine's camelCase keys). Each built-in kind is
validated with `kubernetes-validate` in strict mode (unknown fields are errors) against the bundled OpenAPI schema
nearest to the cluster's version. Karpenter and Kueue objects are validated with `jsonschema` against the
`openAPIV3Schema` of the upstream CRDs copied under `mlplat/crds/` (their README names source, version and license),
made strict the same way: an object schema that lists its properties rejects others unless it says
`x-kubernetes-preserve-unknown-fields`. CEL rules (`x-kubernetes-validations`) need an API server and are not run.
Helm releases carry no manifest offline; they are checked for a chart pinned to an exact version from an https (or
oci) repository.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils
from packaging.version import Version

HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
EXACT_CHART_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value unknown during preview

# Kubernetes minors with a bundled schema, oldest first ("1.25" ... ).
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(
    dict.fromkeys(kv_utils.major_minor(v) for v in kv_utils.all_versions() if v[0].isdigit())
)
KUBERNETES_VALIDATE_VERSION: str = kubernetes_validate.__version__
CRD_DIR = Path(__file__).with_name("crds")


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, for every served version of every CRD under `mlplat/crds/`."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def _strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever the API server would prune unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {k: _strict(v) for k, v in schema.items()}
    lists_fields = "properties" in schema and "additionalProperties" not in schema
    if lists_fields and not schema.get("x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    if "metadata" in strict.get("properties", {}) and "apiVersion" in strict["properties"]:
        # The CRD leaves metadata to the API server's ObjectMeta; only its shape is checked here.
        strict["properties"]["metadata"] = {"type": "object"}
    return strict


def validate_custom_resource(obj: Mapping[str, Any]) -> list[str] | None:
    """Schema errors of a Karpenter or Kueue object ([] when valid); None for a kind without a copied CRD."""
    schema = crd_schemas().get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if schema is None:
        return None
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(_plain(obj)), key=lambda e: list(e.path))
    return [f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors]


def schema_version(cluster_version: str) -> str:
    """The bundled schema version nearest to a cluster's `1.NN` (the same minor when bundled; ties go older)."""
    wanted = Version(kv_utils.major_minor(cluster_version.removeprefix("v")))

    def distance(candidate: str) -> tuple[int, int]:
        v = Version(candidate)
        gap = abs((v.major - wanted.major) * 1000 + v.minor - wanted.minor)
        return gap, 0 if v <= wanted else 1

    return min(SUPPORTED_VERSIONS, key=distance)


@dataclass(frozen=True)
class Problem:
    """One object that did not validate."""

    object: str
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"


@dataclass
class Report:
    """What was validated, against which schema, and what failed."""

    cluster_version: str
    schema_version: str
    validated: list[str] = field(default_factory=list)
    helm_releases: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every object validated and every chart is pinned."""
        return not self.problems

    def extend(self, other: "Report") -> None:
        """Fold another report (same versions) into this one."""
        self.validated += other.validated
        self.helm_releases += other.helm_releases
        self.problems += other.problems

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "clusterVersion": self.cluster_version,
            "schemaVersion": self.schema_version,
            "kubernetesValidate": KUBERNETES_VALIDATE_VERSION,
            "validated": self.validated,
            "helmReleases": self.helm_releases,
            "problems": [str(p) for p in self.problems],
            "ok": self.ok,
        }


def describe(obj: Mapping[str, Any]) -> str:
    """`Kind namespace/name` of a manifest."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{meta.get('name', '?')}"


def validate_manifest(obj: Mapping[str, Any], cluster_version: str) -> list[str]:
    """Schema errors of one manifest ([] when valid), each with the path of the offending field."""
    custom = validate_custom_resource(obj)
    if custom is not None:
        return custom
    target = schema_version(cluster_version)
    try:
        kubernetes_validate.validate(_plain(obj), target, strict=True)
    except kv_utils.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(root)"
        return [f"{path}: {exc.message}"]
    except kv_utils.SchemaNotFoundError as exc:
        return [exc.message]
    return []


def validate_manifests(objs: Iterable[Mapping[str, Any]], cluster_version: str) -> Report:
    """Validate plain manifest dicts (a render function's output)."""
    report = Report(cluster_version, schema_version(cluster_version))
    for obj in objs:
        label = describe(obj)
        report.validated.append(label)
        report.problems += [Problem(label, m) for m in validate_manifest(obj, cluster_version)]
    return report


def manifest_from_resource(resource: Any) -> dict[str, Any] | None:
    """A recorded `kubernetes:<group>/<version>:<Kind>` resource as its manifest; None for other resources."""
    typ = str(_field(resource, "type"))
    if not typ.startswith("kubernetes:") or typ == HELM_RELEASE_TYPE or not _field(resource, "custom", True):
        return None
    _, group_version, kind = typ.split(":", 2)
    if "/" not in group_version:
        return None  # providers and other non-object types
    group, version = group_version.split("/", 1)
    manifest = _plain(dict(_field(resource, "inputs") or {}))
    manifest["apiVersion"] = version if group == "core" else f"{group}/{version}"
    manifest["kind"] = kind
    metadata = manifest.setdefault("metadata", {})
    # Pulumi auto-names an object without a name; the logical name stands in for it offline.
    metadata.setdefault("name", str(_field(resource, "name")))
    return manifest


def helm_release_problems(resource: Any) -> list[str]:
    """Why a recorded Helm release is not reproducible: chart missing, version not exact, repository not https."""
    inputs = _field(resource, "inputs") or {}
    chart, version = inputs.get("chart"), inputs.get("version")
    repo = (inputs.get("repositoryOpts") or {}).get("repo", "")
    problems = []
    if not chart:
        problems.append("chart is required")
    if not isinstance(version, str) or not EXACT_CHART_VERSION.match(version):
        problems.append(f"chart version must be pinned to an exact version (got {version!r})")
    if repo and not str(repo).startswith("https://") and not str(chart).startswith("oci://"):
        problems.append(f"chart repository must be https (got {repo!r})")
    return problems


def validate_resources(resources: Iterable[Any], cluster_version: str) -> Report:
    """Validate every Kubernetes object and Helm release among recorded resources (a plan record's `.resources`)."""
    report = Report(cluster_version, schema_version(cluster_version))
    for resource in resources:
        if _field(resource, "type") == HELM_RELEASE_TYPE:
            label = f"Release {_field(resource, 'name')}"
            report.helm_releases.append(label)
            report.problems += [Problem(label, m) for m in helm_release_problems(resource)]
            continue
        manifest = manifest_from_resource(resource)
        if manifest is not None:
            report.extend(validate_manifests([manifest], cluster_version))
    return report


def validate_plan(record: Any, cluster_version: str) -> Report:
    """Validate a plan record (anything with `.resources`, or the resources themselves)."""
    resources = getattr(record, "resources", record)
    return validate_resources(resources, cluster_version)


def _field(resource: Any, key: str, default: Any = None) -> Any:
    if isinstance(resource, Mapping):
        return resource.get(key, default)
    return getattr(resource, key, default)


def _plain(value: Any) -> Any:
    """JSON-shaped copy: integral floats (the wire format's numbers) back to ints, None and unknowns dropped."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None and v != UNKNOWN}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value if v is not None]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def validate_stack(stack: str) -> Report:
    """Synthesize a shipped stack offline and validate its Kubernetes objects against its cluster's version."""
    from mlplat import synth

    record = synth.synthesize_stack(stack)
    cluster = record.config.get("cluster") or {}
    return validate_plan(record, str(cluster.get("version") or SUPPORTED_VERSIONS[-1]))


def main(argv: list[str] | None = None) -> int:
    """`python -m mlplat.k8s_validate --stack prod [--json]`: exit 1 when any object or chart fails."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m mlplat.k8s_validate", description=main.__doc__)
    parser.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = validate_stack(args.stack)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(
            f"{args.stack}: {len(report.validated)} Kubernetes objects against the {report.schema_version} schema "
            f"(cluster {report.cluster_version}, kubernetes-validate {KUBERNETES_VALIDATE_VERSION}), "
            f"{len(report.helm_releases)} Helm releases"
        )
        for problem in report.problems:
            print(f"  FAIL {problem}")
        print("PASS" if report.ok else f"FAIL {len(report.problems)} problem(s)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
