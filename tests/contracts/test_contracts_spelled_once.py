"""Each shared fact is spelled in one module: bucket prefixes, registry aliases, stack output names."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from components.outputs import StackOutputs
from contracts import bucket, registry

REPO = Path(__file__).resolve().parents[2]
# Every layer that ships code (tests and docs may quote the facts they check).
SOURCES = ("__main__.py", "bench", "components", "contracts", "examples", "mlplat", "policies", "serving", "training")
PREFIXES = [
    bucket.MLFLOW_PREFIX,
    bucket.DATASETS_PREFIX,
    bucket.CHECKPOINTS_PREFIX,
    bucket.MODELS_PREFIX,
    bucket.DATA_CAPTURE_PREFIX,
    bucket.MONITORING_PREFIX,
    bucket.TRAINING_OUTPUT_PREFIX,
    bucket.BILLING_PREFIX,
    bucket.CODE_PREFIX,
]
# A prefix as it appears inside a key or URI: at the start or after a slash, followed by its own slash.
PREFIX_SPELLING = re.compile(r"(?:^|/)(" + "|".join(re.escape(p) for p in PREFIXES) + ")")
ALIASES = {registry.CHAMPION, registry.CHALLENGER}
ALIAS_SPELLING = re.compile(r"@(" + "|".join(ALIASES) + r")\b")
# Names that pulumi-aws properties, Helm charts and stack config use for their own meaning: only their use as a stack
# export is checked, by tests/components/test_outputs.py.
SHARED_VOCABULARY = {
    "clusterName",
    "clusterEndpoint",
    "oidcProviderArn",
    "region",
    "environment",
    "vpcId",
    "kmsKeyArn",
    "trackingServerUrl",
}
# MLflow's REST API lives under /api/2.0/mlflow/, which is not the bucket's mlflow/ prefix.
MLFLOW_REST = "/api/2.0/mlflow/"
OUTPUT_NAMES = {StackOutputs.output_name(f) for f in StackOutputs.model_fields} - SHARED_VOCABULARY


def _python_files() -> Iterator[Path]:
    for name in SOURCES:
        path = REPO / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in sorted(path.rglob("*.py")) if "__pycache__" not in p.parts)


def _prose(tree: ast.AST) -> set[int]:
    """ids of string constants that are prose: docstrings and `help=` texts."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            ids.add(id(node.value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            ids.update(id(n) for n in ast.walk(node.value) if isinstance(n, ast.Constant))
    return ids


def _registered_outputs(tree: ast.AST) -> set[int]:
    """ids of the keys a component passes to `register_outputs`: its own outputs may share a stack output's name."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register_outputs":
            ids.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Constant))
    return ids


def _strings(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, text, is a component's registered output key) of every string constant that is not prose."""
    tree = ast.parse(path.read_text(), str(path))
    prose, registered = _prose(tree), _registered_outputs(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in prose:
            continue
        # Text with spaces is prose (a message or a help line), never a key, URI or name.
        if not any(c.isspace() for c in node.value):
            yield node.lineno, node.value, id(node) in registered


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO)}:{line}"


def test_bucket_prefixes_are_spelled_only_in_the_bucket_contract() -> None:
    found = [
        f"{_where(path, line)} {text!r}"
        for path in _python_files()
        if path != REPO / "contracts" / "bucket.py"
        for line, text, _ in _strings(path)
        if PREFIX_SPELLING.search(text.replace(MLFLOW_REST, ""))
    ]
    assert found == []


def test_registry_aliases_are_spelled_only_in_the_registry_contract() -> None:
    found = [
        f"{_where(path, line)} {text!r}"
        for path in _python_files()
        if path != REPO / "contracts" / "registry.py"
        for line, text, _ in _strings(path)
        if text in ALIASES or ALIAS_SPELLING.search(text)
    ]
    assert found == []


def test_stack_output_names_are_spelled_only_in_the_outputs_model() -> None:
    found = [
        f"{_where(path, line)} {text!r}"
        for path in _python_files()
        if path != REPO / "components" / "outputs.py"
        for line, text, registered in _strings(path)
        if text in OUTPUT_NAMES and not registered
    ]
    assert found == []


def test_the_checks_see_a_spelled_prefix_alias_and_output_name() -> None:
    # The three checks above pass on an empty list; prove their matchers catch each kind of spelling.
    assert PREFIX_SPELLING.search("/datasets/")
    assert PREFIX_SPELLING.search("data-capture/")
    assert not PREFIX_SPELLING.search("/opt/ml/checkpoints")
    assert ALIAS_SPELLING.search("models:/abalone@champion")
    assert "bucketName" in OUTPUT_NAMES
