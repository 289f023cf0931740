"""A loopback Kubernetes API server holding Karpenter NodePools, for the budget enforcer's tests.

It answers GET and merge-patch PATCH on `/apis/karpenter.sh/v1/nodepools/<name>` as the API server does (RFC 7386
merge patches, 404 for an unknown pool, 401 without a bearer token, 415 for another patch type), records every
request with its headers and body, and checks each patched pool against Karpenter's own NodePool CRD schema and each
annotation key against Kubernetes' qualified-name rule, so a patch the real server would refuse fails here too.
"""

import copy
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlplat.k8s_validate import validate_custom_resource

PREFIX = "/apis/karpenter.sh/v1/nodepools/"
# Kubernetes' annotation key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
ANNOTATION_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")


@dataclass(frozen=True)
class Request:
    """One request the server answered."""

    method: str
    path: str
    authorization: str
    content_type: str
    body: Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def node_pool(name: str, limits: dict[str, str] | None) -> dict[str, Any]:
    """A NodePool as the platform renders one (trimmed to what the schema requires)."""
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name},
                "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}],
            }
        },
        "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "5m"},
    }
    if limits is not None:
        spec["limits"] = limits
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "labels": {"mlplat.io/pool": name}},
        "spec": spec,
    }


class FakeKubeApi:
    """The server, its NodePools by name, and the requests it answered, in order."""

    def __init__(self, pools: dict[str, dict[str, Any]]) -> None:
        self.pools = pools
        self.requests: list[Request] = []
        self.problems: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._answer(self, None)

            def do_PATCH(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake._answer(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, raw: bytes | None) -> None:
        auth = handler.headers.get("Authorization", "")
        content_type = handler.headers.get("Content-Type", "")
        body = json.loads(raw) if raw else None
        self.requests.append(Request(handler.command, handler.path, auth, content_type, body))
        name = handler.path.removeprefix(PREFIX)
        if not auth.startswith("Bearer "):
            return _reply(handler, 401, {"kind": "Status", "reason": "Unauthorized"})
        if not handler.path.startswith(PREFIX) or name not in self.pools:
            return _reply(handler, 404, {"kind": "Status", "reason": "NotFound"})
        if raw is None:
            return _reply(handler, 200, self.pools[name])
        if content_type != "application/merge-patch+json":
            return _reply(handler, 415, {"kind": "Status", "reason": "UnsupportedMediaType"})
        patched = merge_patch(self.pools[name], body)
        if patched["metadata"].get("annotations") == {}:
            # ObjectMeta's maps are `omitempty`: the server never hands back an empty annotations map.
            del patched["metadata"]["annotations"]
        errors = validate_custom_resource(patched) or []
        errors += [f"annotation key {k!r}" for k in patched["metadata"].get("annotations", {}) if not _key_ok(k)]
        if errors:
            self.problems += errors
            return _reply(handler, 422, {"kind": "Status", "reason": "Invalid", "message": "; ".join(errors)})
        self.pools[name] = patched
        return _reply(handler, 200, patched)


def _key_ok(key: str) -> bool:
    prefix, _, _ = key.rpartition("/")
    return bool(ANNOTATION_KEY.match(key)) and len(prefix) <= 253


def _reply(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
