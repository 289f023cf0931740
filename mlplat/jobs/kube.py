"""The few Kubernetes calls the job commands make, through the official client, with access errors as one line.

A kubeconfig whose user lacks a right in the team's namespace gets a 403 from the API server; that becomes a
`KubeAccessError` naming the namespace and the missing verb and resource, never a traceback.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mlplat.outputs import CloudError

T = TypeVar("T")
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta1"
_FORBIDDEN = re.compile(r'cannot (?P<verb>\w+) resource "(?P<resource>[^"]+)"(?: in API group "(?P<group>[^"]*)")?')


class KubeAccessError(CloudError):
    """The kubeconfig's user may not do what the command needs in the namespace."""


class KubeError(CloudError):
    """The API server refused or failed a call."""


def guarded(call: Callable[[], T], namespace: str, verb: str, resource: str) -> T:
    """Run one API call; a 401/403 becomes KubeAccessError and any other API error KubeError, each one line."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return call()
    except ApiException as exc:
        if exc.status in (401, 403):
            message = _status_message(exc)
            match = _FORBIDDEN.search(message)
            if match:
                group = match.group("group")
                verb, resource = match.group("verb"), match.group("resource") + (f".{group}" if group else "")
            raise KubeAccessError(
                f"the kubeconfig's user may not {verb} {resource} in namespace {namespace} "
                f"({exc.status} {exc.reason}): ask the cluster admin for that right in {namespace}"
            ) from None
        raise KubeError(
            f"the cluster refused to {verb} {resource} in namespace {namespace}: "
            f"{exc.status} {exc.reason}: {_status_message(exc)}"
        ) from None
    except HTTPError as exc:
        raise KubeError(f"cannot reach the cluster to {verb} {resource}: {exc}") from None
    except ValueError as exc:  # the client's models refuse an answer they cannot read
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KubeError(f"the cluster's answer to {verb} {resource} cannot be read: {first}") from None


def _status_message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))
    except (ValueError, AttributeError):
        return str(exc.body or "")


class Kube:
    """The calls on one namespace's training jobs."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path, context: str | None = None) -> "Kube":
        """A client for the kubeconfig's (current or named) context."""
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        try:
            return cls(config.new_client_from_config(config_file=str(kubeconfig), context=context))
        except (ConfigException, ValueError) as exc:
            raise KubeError(f"kubeconfig {kubeconfig} cannot be used: {exc}") from None

    def create(self, manifest: Mapping[str, Any]) -> None:
        """Create one object (a Service or a Job)."""
        from kubernetes import client

        namespace = str(manifest["metadata"]["namespace"])
        if manifest["kind"] == "Job":
            job: Any = client.V1Job.from_dict(dict(manifest))
            guarded(lambda: self.batch.create_namespaced_job(namespace, job), namespace, "create", "jobs.batch")
        else:
            service: Any = client.V1Service.from_dict(dict(manifest))
            guarded(lambda: self.core.create_namespaced_service(namespace, service), namespace, "create", "services")

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        """The Job as the API's JSON."""
        model = guarded(lambda: self.batch.read_namespaced_job(name, namespace), namespace, "get", "jobs.batch")
        return self._json(model)

    def jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The namespace's Jobs matching a label selector."""
        listed = guarded(
            lambda: self.batch.list_namespaced_job(namespace, label_selector=selector), namespace, "list", "jobs.batch"
        )
        return [self._json(item) for item in listed.items]

    def pods(self, namespace: str, job: str) -> list[Any]:
        """The Job's pods, as client models."""
        listed = guarded(
            lambda: self.core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}"),
            namespace,
            "list",
            "pods",
        )
        return list(listed.items)

    def events(self, namespace: str) -> list[Any]:
        """The namespace's events, as client models (the diagnosis picks the job's own)."""
        listed = guarded(lambda: self.core.list_namespaced_event(namespace), namespace, "list", "events")
        return list(listed.items)

    def workloads(self, namespace: str) -> list[dict[str, Any]]:
        """Kueue Workloads of the namespace; [] on a cluster without Kueue."""
        from kubernetes.client.exceptions import ApiException

        try:
            listed = self.custom.list_namespaced_custom_object(KUEUE_GROUP, KUEUE_VERSION, namespace, "workloads")
        except ApiException as exc:
            if exc.status == 404:
                return []
            error = exc
            return guarded(lambda: _raise(error), namespace, "list", f"workloads.{KUEUE_GROUP}")
        items: Any = listed.get("items", []) if isinstance(listed, dict) else []
        return list(items)

    def log(self, namespace: str, pod: str, tail: int = 200) -> str:
        """The last lines of a pod's log."""
        return str(
            guarded(
                lambda: self.core.read_namespaced_pod_log(pod, namespace, tail_lines=tail),
                namespace,
                "get",
                "pods/log",
            )
        )

    def annotate_job(self, namespace: str, name: str, annotations: Mapping[str, str], spec: Mapping[str, Any]) -> None:
        """Merge-patch the Job's annotations and spec fields."""
        body: dict[str, Any] = {"metadata": {"annotations": dict(annotations)}}
        if spec:
            body["spec"] = dict(spec)
        guarded(lambda: self.batch.patch_namespaced_job(name, namespace, body), namespace, "patch", "jobs.batch")

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and, in the background, its pods."""
        from kubernetes import client

        options = client.V1DeleteOptions(propagation_policy="Background")
        guarded(
            lambda: self.batch.delete_namespaced_job(name, namespace, body=options), namespace, "delete", "jobs.batch"
        )

    def evict(self, namespace: str, pods: Sequence[str]) -> None:
        """Evict pods through the Eviction API, which marks them `DisruptionTarget` (the Job ignores those)."""
        from kubernetes import client

        for pod in pods:
            body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=namespace))

            def evict_one(pod: str = pod, body: Any = body) -> Any:
                return self.core.create_namespaced_pod_eviction(pod, namespace, body)

            guarded(evict_one, namespace, "create", "pods/eviction")

    def _json(self, model: Any) -> dict[str, Any]:
        serialized = self.api_client.sanitize_for_serialization(model)
        return serialized if isinstance(serialized, dict) else {}


def _raise(exc: Exception) -> Any:
    raise exc
