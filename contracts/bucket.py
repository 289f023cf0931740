"""The artifact bucket's layout: one prefix per duty, and the keys and URIs built under them.

Every prefix ends with `/`; builders return keys (no bucket) or `s3://` URIs. Nothing else spells a prefix.
"""

MLFLOW_PREFIX = "mlflow/"
DATASETS_PREFIX = "datasets/"
CHECKPOINTS_PREFIX = "checkpoints/"
# Training jobs write model.tar.gz under models/<model>/<version>/, where endpoints read it.
MODELS_PREFIX = "models/"
DATA_CAPTURE_PREFIX = "data-capture/"
# Drift reports of network-isolated monitors (they cannot reach MLflow), one folder per endpoint.
MONITORING_PREFIX = "monitoring/"
# SageMaker training jobs' output (their own output.tar.gz, not the registered model).
TRAINING_OUTPUT_PREFIX = "training-jobs/"
# AWS Data Exports delivers the stack's CUR 2.0 export (with EKS split cost allocation) here:
# billing/<export>/data/BILLING_PERIOD=YYYY-MM/ (and billing/<export>/metadata/...), written by the export service.
BILLING_PREFIX = "billing/"
# Script mode's source archives, content-addressed: code/<sha256>/sourcedir.tar.gz (training jobs read them).
CODE_PREFIX = "code/"

# The folders a fresh bucket is given (the local platform creates them as markers, as the cloud lays them out).
FOLDERS = (MLFLOW_PREFIX, DATASETS_PREFIX, CHECKPOINTS_PREFIX, DATA_CAPTURE_PREFIX)

MODEL_ARCHIVE = "model.tar.gz"
SOURCE_ARCHIVE = "sourcedir.tar.gz"
PROFILE_FILE = "reference_profile.json"


def s3_uri(bucket: str, key: str = "") -> str:
    """`s3://<bucket>/<key>`."""
    return f"s3://{bucket}/{key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(`bucket`, `key`) of an `s3://bucket/key` URI; ValueError naming the URI when it is not one."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{uri} names no bucket")
    return bucket, key


def mlflow_artifacts_key() -> str:
    """The tracking server's artifact root, without the trailing slash MLflow does not want."""
    return MLFLOW_PREFIX.rstrip("/")


def dataset_root(dataset: str) -> str:
    """`datasets/<dataset>/`: where every version of a data set lives."""
    return f"{DATASETS_PREFIX}{dataset}/"


def dataset_prefix(dataset: str, version: str) -> str:
    """`datasets/<dataset>/<version>/`."""
    return f"{dataset_root(dataset)}{version}/"


def checkpoint_prefix(job: str) -> str:
    """`checkpoints/<job>/`."""
    return f"{CHECKPOINTS_PREFIX}{job}/"


def model_prefix(model: str, version: str | int) -> str:
    """`models/<model>/<version>/`."""
    return f"{MODELS_PREFIX}{model}/{version}/"


def model_archive_key(model: str, version: str | int) -> str:
    """`models/<model>/<version>/model.tar.gz`: the archive an endpoint serves."""
    return f"{model_prefix(model, version)}{MODEL_ARCHIVE}"


def profile_key(model: str, version: str | int) -> str:
    """`models/<model>/<version>/reference_profile.json`: the training profile the drift monitor compares with."""
    return f"{model_prefix(model, version)}{PROFILE_FILE}"


def capture_prefix(endpoint: str) -> str:
    """`data-capture/<endpoint>/`."""
    return f"{DATA_CAPTURE_PREFIX}{endpoint}/"


def monitoring_prefix(endpoint: str) -> str:
    """`monitoring/<endpoint>/`."""
    return f"{MONITORING_PREFIX}{endpoint}/"


def billing_period_prefix(export: str, period: str) -> str:
    """`billing/<export>/data/BILLING_PERIOD=<YYYY-MM>/`: one billing period of a Data Exports delivery."""
    return f"{BILLING_PREFIX}{export}/data/BILLING_PERIOD={period}/"


def source_archive_key(sha256: str) -> str:
    """`code/<sha256>/sourcedir.tar.gz`: a user's source, named by the SHA-256 of the archive's bytes."""
    return f"{CODE_PREFIX}{sha256}/{SOURCE_ARCHIVE}"
