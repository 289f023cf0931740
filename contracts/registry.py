"""The MLflow model registry's shared vocabulary: the aliases that mark what serves, and the tags mlplat writes."""

CHAMPION = "champion"
"""The alias of the version that serves."""
CHALLENGER = "challenger"
"""The alias of the version that passed the gate and waits for promotion."""


def model_uri(name: str, alias: str = CHAMPION) -> str:
    """`models:/<name>@<alias>`: how serving and the tools name the version behind an alias."""
    return f"models:/{name}@{alias}"


def version_uri(name: str, version: str | int) -> str:
    """`models:/<name>/<version>`."""
    return f"models:/{name}/{version}"


# Tags on a model version.
TAG_TEST_RMSE = "mlplat.test_rmse"
TAG_DECISION = "mlplat.decision"
TAG_DECISION_REASON = "mlplat.decision_reason"
TAG_RMSE_RATIO_TO_MEAN = "mlplat.rmse_ratio_to_mean"
TAG_DATASET_SHA256 = "mlplat.dataset_sha256"
TAG_CHAMPION_VERSION = "mlplat.champion_version"
TAG_CHAMPION_TEST_RMSE = "mlplat.champion_test_rmse"
TAG_TRAINING_JOB = "mlplat.training_job"
TAG_ARTIFACT_PREFIX = "mlplat.artifact."
"""+ environment: where that stack's copy of the version's archive lives."""

# Tags on a training run.
TAG_PROMOTION_DECISION = "mlplat.promotion_decision"
TAG_MODEL_VERSION = "mlplat.model_version"
