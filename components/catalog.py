"""What mlplat knows about AWS instance types: GPU families and per-type GPU counts, used by validation and pricing."""

from collections.abc import Sequence
from typing import NamedTuple


class GpuInstance(NamedTuple):
    """One EC2 GPU instance type."""

    gpus: int
    vcpus: int
    memory_gib: int
    gpu_model: str


# Instance families whose nodes carry NVIDIA GPUs (EKS accelerated AMIs support exactly these).
GPU_FAMILIES: frozenset[str] = frozenset({"g4dn", "g5", "g6", "g6e", "gr6", "p3", "p4d", "p4de", "p5", "p5e", "p5en"})

GPU_INSTANCES: dict[str, GpuInstance] = {
    "g4dn.xlarge": GpuInstance(1, 4, 16, "T4"),
    "g4dn.2xlarge": GpuInstance(1, 8, 32, "T4"),
    "g4dn.12xlarge": GpuInstance(4, 48, 192, "T4"),
    "g5.xlarge": GpuInstance(1, 4, 16, "A10G"),
    "g5.2xlarge": GpuInstance(1, 8, 32, "A10G"),
    "g5.4xlarge": GpuInstance(1, 16, 64, "A10G"),
    "g5.12xlarge": GpuInstance(4, 48, 192, "A10G"),
    "g5.48xlarge": GpuInstance(8, 192, 768, "A10G"),
    "g6.xlarge": GpuInstance(1, 4, 16, "L4"),
    "g6.2xlarge": GpuInstance(1, 8, 32, "L4"),
    "g6.12xlarge": GpuInstance(4, 48, 192, "L4"),
    "g6e.xlarge": GpuInstance(1, 4, 32, "L40S"),
    "g6e.12xlarge": GpuInstance(4, 48, 384, "L40S"),
    "p3.2xlarge": GpuInstance(1, 8, 61, "V100"),
    "p4d.24xlarge": GpuInstance(8, 96, 1152, "A100"),
    "p4de.24xlarge": GpuInstance(8, 96, 1152, "A100-80GB"),
    "p5.48xlarge": GpuInstance(8, 192, 2048, "H100"),
    "p5e.48xlarge": GpuInstance(8, 192, 2048, "H200"),
}

# EKS managed node group AMI types that ship the NVIDIA driver and container toolkit.
GPU_AMI_TYPES: frozenset[str] = frozenset({"AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"})


def instance_family(instance_type: str) -> str:
    """`g5.xlarge` -> `g5`."""
    return instance_type.split(".", 1)[0]


def is_gpu_instance(instance_type: str) -> bool:
    """True for an EC2 type of a GPU family (the type itself need not be in the catalogue)."""
    return "." in instance_type and instance_family(instance_type) in GPU_FAMILIES


def gpus_per_node(instance_type: str) -> int:
    """GPU count of a catalogued type; 1 for an uncatalogued GPU type, 0 for a CPU type."""
    if instance_type in GPU_INSTANCES:
        return GPU_INSTANCES[instance_type].gpus
    return 1 if is_gpu_instance(instance_type) else 0


# MLflow versions a SageMaker managed tracking server can be created with. botocore's model types MlflowVersion as a
# free string, so this table is the reference; update it (and the date) from the SageMaker developer guide.
MLFLOW_VERSIONS_AS_OF = "2026-12-01"
MLFLOW_VERSIONS: frozenset[str] = frozenset({"2.13", "2.13.2", "2.16", "2.16.2", "3.0"})


def types_in_families(families: list[str]) -> list[str]:
    """The catalogued types of the given families, in catalogue order."""
    return [t for t in GPU_INSTANCES if instance_family(t) in families]


def pool_types(instance_types: Sequence[str], families: Sequence[str], allowed: Sequence[str] | None) -> list[str]:
    """The types a pool may launch: its named types, plus the catalogued types of its families that are allowed."""
    from_families = [t for t in types_in_families(list(families)) if allowed is None or t in allowed]
    return list(dict.fromkeys([*instance_types, *from_families]))
