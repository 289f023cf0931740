"""A loopback Kubernetes API server for tests: it replays recorded objects, frame by frame, and records every request.

Each frame is the cluster as one poll sees it (`{"job": ..., "pods": [...], "events": [...], "workloads": [...]}`);
every GET of the Job moves to the next frame, and the last frame stays. `forbidden` holds `(verb, resource)` pairs
answered with the API server's own 403 Status.
"""

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

ROUTES = [
    ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "get", "jobs", "batch"),
    ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "list", "jobs", "batch"),
    ("POST", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs", "create", "jobs", "batch"),
    ("PATCH", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "patch", "jobs", "batch"),
    ("DELETE", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "delete", "jobs", "batch"),
    ("POST", r"/api/v1/namespaces/(?P<ns>[^/]+)/services", "create", "services", ""),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", "get", "pods/log", ""),
    ("POST", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/eviction", "create", "pods/eviction", ""),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", "list", "pods", ""),
    ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/events", "list", "events", ""),
    ("GET", r"/apis/kueue.x-k8s.io/v1beta1/namespaces/(?P<ns>[^/]+)/workloads", "list", "workloads", "kueue.x-k8s.io"),
]


@dataclass
class Cluster:
    """What the server answers, and what it was asked."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    kueue: bool = True
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    position: int = 0

    def frame(self) -> dict[str, Any]:
        return self.frames[min(self.position, len(self.frames) - 1)] if self.frames else {}

    def calls(self, method: str, fragment: str = "") -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method and fragment in r[1]]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


def _handler(cluster: Cluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            cluster.requests.append((method, self.path, body))
            for want, pattern, verb, resource, group in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if want != method or match is None:
                    continue
                ns = match.group("ns")
                if (verb, resource) in cluster.forbidden:
                    qualified = f'resource "{resource}" in API group "{group}"'
                    return self._answer(403, _status(403, "Forbidden", (
                        f'{resource}{"." + group if group else ""} is forbidden: User "arn:aws:iam::123456789012:role/'
                        f'viewer" cannot {verb} {qualified} in the namespace "{ns}"')))  # fmt: skip
                return self._serve(verb, resource, match.groupdict(), parse_qs(url.query), body)
            return self._answer(404, _status(404, "NotFound", f"the server could not find {url.path}"))

        def _serve(self, verb: str, resource: str, args: dict[str, str], query: Any, body: Any) -> None:
            frame = cluster.frame()
            if resource == "jobs" and verb == "get":
                job = frame.get("job")
                cluster.position += 1
                if job is None:
                    return self._answer(404, _status(404, "NotFound", f'jobs.batch "{args["name"]}" not found'))
                return self._answer(200, job)
            if resource == "jobs" and verb == "list":
                items = [
                    j
                    for j in frame.get("jobs", [frame["job"]] if frame.get("job") else [])
                    if j["metadata"].get("namespace") == args["ns"]
                ]
                return self._answer(200, {"kind": "JobList", "apiVersion": "batch/v1", "metadata": {}, "items": items})
            if verb == "create":
                return self._answer(201, body)
            if verb == "patch":
                return self._answer(200, frame.get("job") or body)
            if verb == "delete":
                return self._answer(200, {**_status(200, "", ""), "status": "Success"})
            if resource == "pods/log":
                return self._answer(200, cluster.logs.get(args["name"], ""), "text/plain")
            if resource == "pods":
                return self._answer(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                          "items": frame.get("pods", [])})  # fmt: skip
            if resource == "events":
                return self._answer(200, {"kind": "EventList", "apiVersion": "v1", "metadata": {},
                                          "items": frame.get("events", [])})  # fmt: skip
            if resource == "workloads":
                if not cluster.kueue:
                    return self._answer(
                        404, _status(404, "NotFound", "the server could not find the requested resource")
                    )
                return self._answer(200, {"kind": "WorkloadList", "apiVersion": "kueue.x-k8s.io/v1beta1",
                                          "metadata": {}, "items": frame.get("workloads", [])})  # fmt: skip
            return self._answer(404, _status(404, "NotFound", "not recorded"))

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextmanager
def serve(cluster: Cluster) -> Iterator[str]:
    """Serve the cluster on 127.0.0.1 at a port the OS picks; yields the server's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(path: Path, url: str, namespace: str = "research") -> Path:
    """A kubeconfig for the loopback server, with a bearer token as EKS's exec plugin would give."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
        "clusters": [{"name": "loopback", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "loopback",
                      "context": {"cluster": "loopback", "user": "tester", "namespace": namespace}}],
    }))  # fmt: skip
    return path
