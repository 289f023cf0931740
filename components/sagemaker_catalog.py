"""What mlplat knows about SageMaker hosting modes: where inference components and serverless inference run, dated.

Validation refuses a `minCapacity: 0` endpoint (built on inference components) or a `serverless` endpoint outside
these tables, naming the key. The tables are allowlists of what was checked on `AS_OF` against the sources below;
a family or region missing here may well work, and is added once someone checks it.
"""

from datetime import date

AS_OF = date(2026, 10, 1)
SOURCES = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html",
    "https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html",
    "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html",
)

# Instance families whose endpoints can host inference components and scale their instances to zero.
# Burstable families (ml.t2, ml.t3) are left out: their CPU credits make a copy's reserved cores meaningless.
INFERENCE_COMPONENT_FAMILIES: frozenset[str] = frozenset(
    {
        "ml.m5",
        "ml.m5d",
        "ml.m6i",
        "ml.m7i",
        "ml.c5",
        "ml.c5d",
        "ml.c6i",
        "ml.c7i",
        "ml.r5",
        "ml.r6i",
        "ml.r7i",
        "ml.g4dn",
        "ml.g5",
        "ml.g6",
        "ml.g6e",
        "ml.p4d",
        "ml.p4de",
        "ml.p5",
        "ml.inf2",
        "ml.trn1",
    }
)

# Commercial regions where SageMaker real-time inference components are offered (GovCloud and China excluded).
INFERENCE_COMPONENT_REGIONS: frozenset[str] = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "eu-south-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-east-1",
        "sa-east-1",
        "me-south-1",
        "af-south-1",
    }
)

# The serverless-inference guide lists the same 21 regions; a separate name, because the two guides change apart.
SERVERLESS_REGIONS: frozenset[str] = INFERENCE_COMPONENT_REGIONS

# ProductionVariantServerlessConfig bounds (botocore's sagemaker model: ServerlessMemorySizeInMB,
# ServerlessMaxConcurrency); the memory also steps in whole GiB.
SERVERLESS_MEMORY_MIB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = (1, 200)


def instance_family(instance_type: str) -> str:
    """`ml.c5.large` -> `ml.c5`."""
    return instance_type.rsplit(".", 1)[0]


def supports_inference_components(instance_type: str) -> bool:
    """True when the instance type's family is in the inference-component table."""
    return instance_family(instance_type) in INFERENCE_COMPONENT_FAMILIES
