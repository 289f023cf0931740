"""`mlplat budget restore`: undo exactly what the budget enforcer recorded for a stack, or say there is nothing."""

from typing import Annotated, Any

import typer

from components.budget import record_parameter
from components.config import load_stack_file
from components.functions import budget_enforcer
from mlplat import clikit

app = typer.Typer(
    name="budget", help="The budget's enforcement: what it changed, and undoing it.", no_args_is_help=True
)


def _clients(region: str, endpoint_url: str | None) -> budget_enforcer.ClientFactory:
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url)

    return make


def restore(
    stack: clikit.StackOption = None,
    stack_file_path: clikit.StackFileOption = None,
    topic_arn: Annotated[
        str | None, typer.Option("--topic-arn", help="Post what was restored to this topic (the budget topic).")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="AWS endpoint override (an S3-compatible test server).", hidden=True),
    ] = None,
    cluster_endpoint_url: Annotated[
        str | None,
        typer.Option("--cluster-endpoint-url", help="Kubernetes API override (a loopback test server).", hidden=True),
    ] = None,
) -> None:
    """Put the stack's endpoints and GPU NodePools back as the enforcer found them, then delete its record.

    NodePools are patched as your AWS identity (its EKS access entry must allow patching NodePools), through the
    cluster endpoint EKS DescribeCluster gives: run it from where that endpoint is reachable.
    """
    console = clikit.console()
    stack, path = clikit.resolve_stack(stack, stack_file_path)
    config = load_stack_file(path)
    parameter = record_parameter(config.environment)
    clients = _clients(config.region, endpoint_url)
    kube: budget_enforcer.KubeFactory | None = None
    if cluster_endpoint_url:
        url = cluster_endpoint_url

        def kube(cluster: str) -> budget_enforcer.KubeApi:
            return budget_enforcer.cluster_api(clients, cluster, url)

    try:
        record = budget_enforcer.restore(clients, parameter, topic_arn or "", kube)
    except budget_enforcer.NothingRecorded:
        console.print(f"{stack}: nothing recorded at {parameter}; nothing to restore, nothing changed", highlight=False)
        return
    except Exception as exc:  # botocore's ClientError and credential errors: one line, never a traceback
        raise clikit.Failed(f"restore of {stack} failed: {exc}") from None
    console.print(budget_enforcer.describe(record, "restored"), markup=False, highlight=False)


clikit.command(app, "restore", restore, panel=clikit.CLOUD)


def register(root: typer.Typer) -> None:
    """Add `mlplat budget ...` to the root app."""
    root.add_typer(app, rich_help_panel=clikit.CLOUD)
