"""The stack file side of `mlplat release`: pin `modelVersion` and `modelSha256` of the endpoints serving a model in
`stacks/Pulumi.<env>.yaml`, editing only those lines, validating the result, and writing it atomically.
"""

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from components import config as stack_config
from mlplat.outputs import CloudError


class ReleaseError(CloudError):
    """A release that cannot go ahead; nothing has been changed when it is raised before the upload."""


_ENDPOINTS_KEY = re.compile(r"^(?P<indent> *)mlplat:endpoints:\s*(#.*)?$")
_ITEM = re.compile(r"^(?P<dash> *)-( +|$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _endpoint_items(lines: list[str], source: str) -> list[tuple[int, int, int]]:
    """(first line, end line, key indent) of each item of the block list under `mlplat:endpoints:`."""
    start = next((i for i, line in enumerate(lines) if _ENDPOINTS_KEY.match(line.rstrip("\n"))), None)
    if start is None:
        raise ReleaseError(f"{source}: mlplat:endpoints must be a block list (one `- name: ...` item per endpoint)")
    base = _indent(lines[start])
    items: list[list[int]] = []
    dash_indent: int | None = None
    end = len(lines)
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(lines[i])
        is_item = _ITEM.match(lines[i]) is not None
        if indent < base or (indent == base and not is_item):
            end = i
            break
        if is_item and (dash_indent is None or indent == dash_indent):
            dash_indent = indent
            after_dash = lines[i][indent + 1 :]
            items.append([i, -1, indent + 1 + _indent(after_dash)])
    for n, item in enumerate(items):
        item[1] = items[n + 1][0] if n + 1 < len(items) else end
    return [(a, b, c) for a, b, c in items]


def _set_key(lines: list[str], item: tuple[int, int, int], key: str, value: str, after: str) -> None:
    """Set `key: value` at the item's top level, keeping a trailing comment, or insert it after key `after`."""
    first, end, key_indent = item
    pattern = re.compile(rf"^(?P<prefix>( {{{key_indent}}}|{' ' * (key_indent - 2)}- ){key}:)[^#\n]*(?P<rest>#.*)?")
    for i in range(first, end):
        match = pattern.match(lines[i].rstrip("\n"))
        if match:
            comment = f"  {match.group('rest')}" if match.group("rest") else ""
            lines[i] = f"{match.group('prefix')} {value}{comment}\n"
            return
    anchor = re.compile(rf"^( {{{key_indent}}}|{' ' * (key_indent - 2)}- ){after}:")
    at = next((i for i in range(first, end) if anchor.match(lines[i])), first)
    lines.insert(at + 1, f"{' ' * key_indent}{key}: {value}\n")


def pin_text(text: str, model: str, version: int, sha256: str, source: str) -> tuple[str, list[str]]:
    """The stack file's text with every endpoint serving `model` pinned; the endpoint names. Only those keys change."""
    document = yaml.safe_load(text) or {}
    endpoints = (document.get("config") or {}).get(f"{stack_config.NAMESPACE}:endpoints") or []
    targets = [i for i, ep in enumerate(endpoints) if isinstance(ep, dict) and ep.get("model") == model]
    if not targets:
        raise ReleaseError(f"{source}: no endpoint serves model {model!r} (no mlplat:endpoints[*].model is {model!r})")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    items = _endpoint_items(lines, source)
    if len(items) != len(endpoints):
        raise ReleaseError(f"{source}: mlplat:endpoints must be a block list (one `- name: ...` item per endpoint)")
    # Bottom-up, so inserting lines into one item does not move the items above it.
    for index in sorted(targets, reverse=True):
        first, end, key_indent = items[index]
        before = len(lines)
        _set_key(lines, items[index], "modelVersion", str(version), after="model")
        grown = (first, end + len(lines) - before, key_indent)
        _set_key(lines, grown, "modelSha256", f'"{sha256}"', after="modelVersion")
    new_text = "".join(lines)
    expected = json.loads(json.dumps(document))
    for index in targets:
        expected["config"][f"{stack_config.NAMESPACE}:endpoints"][index].update(
            {"modelVersion": version, "modelSha256": sha256}
        )
    if yaml.safe_load(new_text) != expected:
        raise ReleaseError(f"{source}: cannot pin model {model!r} without changing other keys; pin it by hand")
    return new_text, [str(endpoints[i].get("name")) for i in targets]


def validate_text(text: str, source: str) -> stack_config.StackConfig:
    """Validate stack-file text as `load_stack_file` does, so a pin never leaves an invalid stack behind."""
    document = yaml.safe_load(text) or {}
    return stack_config.validate(stack_config.raw_from_stack_yaml(document, source), source)


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, keeping its mode; a crash leaves the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_stack_file(path: Path) -> tuple[str, stack_config.StackConfig]:
    cfg = stack_config.load_stack_file(path)  # raises ConfigError "…: no such stack file" for an unknown stack
    return path.read_text(), cfg


def check_environment(cfg: stack_config.StackConfig, stack: str, source: str) -> None:
    if cfg.environment != stack:
        raise ReleaseError(f"{source} is the stack file of {cfg.environment!r}, not {stack!r}")


def staging_pin(path: Path, model: str) -> tuple[int, str]:
    """The (version, sha256) a stack file pins for `model`; every endpoint serving it must agree."""
    source = stack_config.display_path(path)
    cfg = stack_config.load_stack_file(path)
    pins = {(ep.model_version, ep.model_sha256) for ep in cfg.endpoints if ep.model == model}
    if not pins:
        raise ReleaseError(f"{source}: no endpoint serves model {model!r}")
    if len(pins) > 1:
        raise ReleaseError(f"{source}: endpoints serving model {model!r} pin different versions; release one first")
    version, sha256 = pins.pop()
    if sha256 is None:
        raise ReleaseError(
            f"{source} pins no released artifact for model {model!r} (modelSha256 is unset); "
            f"run `mlplat release --stack {cfg.environment} --model {model}` first"
        )
    return version, sha256
