"""The TrackingServer component: serverless MLflow App by default, a sized server when a stack asks."""

import re

from plan_helpers import as_list, parent_type, statements

from components.iam import MLFLOW_CLIENT_OPERATIONS
from mlplat.synth import PlanRecord

APP = "aws:sagemaker/mlflowApp:MlflowApp"
SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
TRACKING = "mlplat:tracking:TrackingServer"


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?", duration)
    assert match is not None and duration, duration
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def test_dev_runs_the_serverless_app_and_no_sized_server(dev: PlanRecord) -> None:
    assert [r.name for r in dev.of_type(APP)] == ["mlplat-dev-tracking-app"]
    assert dev.of_type(SERVER) == []
    assert parent_type(dev.of_type(APP)[0]) == TRACKING


def test_prod_runs_a_medium_tracking_server_and_no_app(prod: PlanRecord) -> None:
    (server,) = prod.of_type(SERVER)
    assert prod.of_type(APP) == []
    assert server.inputs["trackingServerSize"] == "Medium"
    assert parent_type(server) == TRACKING


def test_tracking_server_pins_mlflow_and_registers_models(prod: PlanRecord) -> None:
    (server,) = prod.of_type(SERVER)
    assert server.inputs["mlflowVersion"] == "3.0"
    assert server.inputs["automaticModelRegistration"] is True
    assert server.inputs["weeklyMaintenanceWindowStart"] == "Sun:02:00"


def test_app_registers_models_and_keeps_the_maintenance_window(staging: PlanRecord) -> None:
    (app,) = staging.of_type(APP)
    assert app.inputs["modelRegistrationMode"] == "AutoModelRegistrationEnabled"
    assert app.inputs["weeklyMaintenanceWindowStart"] == "Sat:04:00"


def test_artifacts_go_to_the_mlflow_prefix_of_the_bucket(prod: PlanRecord, dev: PlanRecord) -> None:
    assert prod.of_type(SERVER)[0].inputs["artifactStoreUri"] == f"s3://{prod.outputs['bucketName']}/mlflow"
    assert dev.of_type(APP)[0].inputs["artifactStoreUri"] == f"s3://{dev.outputs['bucketName']}/mlflow"


def test_server_waits_at_least_an_hour_to_create_or_update(prod: PlanRecord) -> None:
    timeouts = prod.of_type(SERVER)[0].options["customTimeouts"]
    assert _minutes(timeouts["create"]) >= 60
    assert _minutes(timeouts["update"]) >= 60


def test_app_waits_at_least_an_hour_to_create_or_update(dev: PlanRecord) -> None:
    (app,) = dev.of_type(APP)
    assert _minutes(app.inputs["timeouts"]["create"]) >= 60
    assert _minutes(app.options["customTimeouts"]["update"]) >= 60


def test_role_is_trusted_by_sagemaker_of_this_account_only(prod: PlanRecord) -> None:
    (trust,) = statements(prod.get("aws:iam/role:Role", "mlplat-prod-tracking-role"), "assumeRolePolicy")
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_role_reaches_only_the_mlflow_prefix_and_the_bucket_key(prod: PlanRecord) -> None:
    policy = prod.get("aws:iam/rolePolicy:RolePolicy", "mlplat-prod-tracking-role-policy")
    bucket, key = prod.outputs["bucketArn"], prod.outputs["kmsKeyArn"]
    s3 = [s for s in statements(policy) if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    objects = {r for s in s3 for r in as_list(s["Resource"]) if r != bucket}
    assert objects == {f"{bucket}/mlflow/*"}
    listing = [s for s in s3 if as_list(s["Resource"]) == [bucket]]
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": ["mlflow/", "mlflow/*"]}}]
    kms = [s for s in statements(policy) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert [as_list(s["Resource"]) for s in kms] == [[key]]


def test_role_may_register_models_in_this_account_only(prod: PlanRecord) -> None:
    policy = prod.get("aws:iam/rolePolicy:RolePolicy", "mlplat-prod-tracking-role-policy")
    (register,) = [s for s in statements(policy) if s.get("Sid") == "RegisterModels"]
    assert register["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/*",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/*",
    ]


def test_server_url_is_exported(prod: PlanRecord) -> None:
    assert re.fullmatch(
        r"https://t-[0-9a-f]+\.us-east-1\.experiments\.sagemaker\.aws", prod.outputs["trackingServerUrl"]
    )
    assert prod.outputs["trackingServerArn"].startswith(
        "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/"
    )


def test_app_exports_its_arn_as_the_tracking_uri(dev: PlanRecord) -> None:
    assert dev.outputs["trackingServerArn"].startswith("arn:aws:sagemaker:us-east-1:123456789012:mlflow-app/")
    assert dev.outputs["trackingServerUrl"] == dev.outputs["trackingServerArn"]


def test_training_role_may_use_the_tracking_server_and_nothing_else_through_it(prod: PlanRecord) -> None:
    grant = prod.get("aws:iam/rolePolicy:RolePolicy", "mlplat-prod-tracking-use-mlplat-prod-identity-training-role")
    assert parent_type(grant) == TRACKING
    assert statements(grant) == [
        {
            "Sid": "UseMlflow",
            "Effect": "Allow",
            "Action": [f"sagemaker-mlflow:{op}" for op in MLFLOW_CLIENT_OPERATIONS],
            "Resource": prod.outputs["trackingServerArn"],
        }
    ]
    assert grant.inputs["role"].startswith("mlplat-prod-identity-training-role-")


def test_training_role_calls_the_mlflow_app_through_its_one_action(dev: PlanRecord) -> None:
    grant = dev.get("aws:iam/rolePolicy:RolePolicy", "mlplat-dev-tracking-use-mlplat-dev-identity-training-role")
    assert statements(grant) == [
        {
            "Sid": "UseMlflow",
            "Effect": "Allow",
            "Action": ["sagemaker:CallMlflowAppApi"],
            "Resource": dev.outputs["trackingServerArn"],
        }
    ]
