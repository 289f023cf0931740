"""AWS's own lists of valid values (botocore's service models and endpoint data), checked when a stack is validated.

Pulumi's mocks and `pulumi preview` accept any string as an instance type or an AMI type; AWS rejects a misspelled
one only when `pulumi up` reaches it, after other resources exist. botocore ships the API models the AWS CLI uses,
and those enumerate most such values, so a stack file is checked against them before any resource is registered.
Values the models do not enumerate (MLflow versions, EKS versions) are in `components.catalog`, dated.
"""

import difflib
import functools
from typing import TYPE_CHECKING

from components import catalog
from components.problems import Problem

if TYPE_CHECKING:
    from components.config import StackConfig

SAGEMAKER_ENDPOINT_TYPES = ("sagemaker", "ProductionVariantInstanceType")
SAGEMAKER_TRACKING_SIZES = ("sagemaker", "TrackingServerSize")
EC2_INSTANCE_TYPES = ("ec2", "InstanceType")


@functools.cache
def values(service: str, shape: str) -> frozenset[str]:
    """The enum of one shape of one service's API model, as the installed botocore has it."""
    # Imported on first use: loading the models takes a second, and only validation needs them.
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return frozenset(model.shape_for(shape).enum)


@functools.cache
def regions(service: str = "sagemaker") -> frozenset[str]:
    """Regions where `service` has an endpoint, in botocore's endpoint data (every partition)."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions(service, partition)
    )


def _check(key: str, value: str, allowed: frozenset[str], what: str) -> list[Problem]:
    if value in allowed:
        return []
    close = difflib.get_close_matches(value, sorted(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return [Problem(key, f"is not {what} (got {value!r}{hint})")]


def problems(cfg: "StackConfig") -> list[Problem]:
    """One line per config value that AWS's API models (or the dated catalogue) do not know."""
    found: list[Problem] = []
    found += _check("aws:region", cfg.region, regions(), "a region where SageMaker runs (botocore endpoints)")
    sagemaker_types = values(*SAGEMAKER_ENDPOINT_TYPES)
    for i, endpoint in enumerate(cfg.endpoints):
        found += _check(
            f"mlplat:endpoints[{i}].instanceType",
            endpoint.instance_type,
            sagemaker_types,
            "a SageMaker endpoint instance type",
        )
    if cfg.tracking.size is not None:
        found += _check(
            "mlplat:tracking.size", cfg.tracking.size, values(*SAGEMAKER_TRACKING_SIZES), "a tracking server size"
        )
        # Only a sized tracking server pins a version; the serverless App runs what SageMaker gives it.
        found += _check(
            "mlplat:tracking.mlflowVersion",
            cfg.tracking.mlflow_version,
            catalog.MLFLOW_VERSIONS,
            f"an MLflow version SageMaker runs (components/catalog.py, as of {catalog.MLFLOW_VERSIONS_AS_OF})",
        )
    ec2_types = values(*EC2_INSTANCE_TYPES)
    if cfg.cluster is not None:
        found += _check(
            "mlplat:cluster.systemNodes.instanceType",
            cfg.cluster.system_nodes.instance_type,
            ec2_types,
            "an EC2 instance type",
        )
    for i, pool in enumerate(cfg.gpu_pools):
        key = f"mlplat:gpuPools[{i}]"
        for j, itype in enumerate(pool.instance_types):
            found += _check(f"{key}.instanceTypes[{j}]", itype, ec2_types, "an EC2 instance type")
        families = frozenset(t.split(".", 1)[0] for t in ec2_types)
        for j, family in enumerate(pool.instance_families):
            found += _check(f"{key}.instanceFamilies[{j}]", family, families, "an EC2 instance family")
    for j, itype in enumerate(cfg.limits.allowed_gpu_instance_types or []):
        found += _check(f"mlplat:limits.allowedGpuInstanceTypes[{j}]", itype, ec2_types, "an EC2 instance type")
    return found
