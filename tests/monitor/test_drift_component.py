"""The DriftMonitor component under mocks: exact role statements, the schedule and its job, the topic, the CronJob."""

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.artifacts import ArtifactStore, ArtifactStoreArgs
from components.drift import (
    MLFLOW_OPERATIONS,
    PROCESSING_TARGET,
    DriftMonitor,
    DriftMonitorArgs,
    KubernetesRunner,
    kubernetes_schedule,
    render_cronjob,
    schedule_window,
)
from mlplat import synth

ACCOUNT = "123456789012"
TRACKING = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:mlflow-app/app-abc"
SERVER = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:mlflow-tracking-server/mlplat-prod-tracking"
OIDC_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
COMPONENT = "mlplat:drift:DriftMonitor"


def _program(runner: str = "sagemaker", **overrides: Any) -> synth.PlanRecord:
    def program() -> None:
        store = ArtifactStore("art", ArtifactStoreArgs())
        kubernetes = None
        if runner == "kubernetes":
            kubernetes = KubernetesRunner(
                namespace="research",
                oidc_provider_arn=OIDC_ARN,
                oidc_issuer=OIDC_ISSUER,
                provider=k8s.Provider("cluster-k8s", kubeconfig="{}"),
            )
        settings: dict[str, Any] = {
            "endpoint": "abalone-prod",
            "model_name": "abalone",
            "model_version": 4,
            "region": "us-east-1",
            "artifacts": store,
            "tracking_arn": TRACKING,
            "tracking_kind": "app",
            "image": "mlplat/training:0.1.0",
            "schedule": "rate(6 hours)",
            "psi_threshold": 0.1,
            "p_value": 0.01,
            "runner": runner,
            "subnet_ids": ["subnet-a", "subnet-b"],
            "security_group_ids": ["sg-1"],
            "vpc_arn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/vpc-1",
            "kubernetes": kubernetes,
            "alarm_emails": ["oncall@example.com"],
            "tags": {"mlplat:environment": "prod"},
            **overrides,
        }
        monitor = DriftMonitor("drift", DriftMonitorArgs(**settings))
        pulumi.export("topicArn", monitor.topic_arn)
        pulumi.export("roleArn", monitor.role_arn)
        pulumi.export("keyArn", store.key_arn)
        pulumi.export("bucketArn", store.bucket_arn)
        pulumi.export("bucketName", store.bucket_name)

    return synth.run(program)


@pytest.fixture(scope="module")
def sagemaker() -> synth.PlanRecord:
    return _program()


@pytest.fixture(scope="module")
def kubernetes() -> synth.PlanRecord:
    return _program("kubernetes")


def _statements(record: synth.PlanRecord) -> dict[str, dict[str, Any]]:
    policy = record.get("aws:iam/rolePolicy:RolePolicy", "drift-policy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    return {s.get("Sid") or f"{s['Action'][0]}@{s['Resource']}": s for s in statements}


def _bucket(record: synth.PlanRecord) -> str:
    return str(record.outputs["bucketArn"])


def test_the_topic_is_encrypted_with_the_artifact_key_and_mails_the_oncall(sagemaker) -> None:
    topic = sagemaker.get("aws:sns/topic:Topic", "drift-topic")
    assert topic.inputs["kmsMasterKeyId"] == sagemaker.outputs["keyArn"]
    subscription = sagemaker.get("aws:sns/topicSubscription:TopicSubscription", "drift-email-0")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "oncall@example.com")


def test_the_role_reads_only_this_endpoints_capture_prefix(sagemaker) -> None:
    bucket = _bucket(sagemaker)
    statements = _statements(sagemaker)
    capture_read = statements[f"s3:GetObject@{bucket}/data-capture/abalone-prod/*"]
    assert capture_read["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    policy = sagemaker.get("aws:iam/rolePolicy:RolePolicy", "drift-policy")
    listing = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Action"] == ["s3:ListBucket"]]
    assert [s["Condition"]["StringLike"]["s3:prefix"] for s in listing] == [
        ["data-capture/abalone-prod/", "data-capture/abalone-prod/*"],
        ["mlflow/", "mlflow/*"],
    ]
    writes = sorted(s["Resource"] for s in statements.values() if "s3:PutObject" in s["Action"])
    assert writes == [f"{bucket}/mlflow/*", f"{bucket}/monitoring/abalone-prod/*"]


def test_the_role_calls_the_mlflow_app_through_its_one_action(sagemaker) -> None:
    assert _statements(sagemaker)["UseMlflow"] == {
        "Sid": "UseMlflow",
        "Effect": "Allow",
        "Action": ["sagemaker:CallMlflowAppApi"],
        "Resource": TRACKING,
    }


def test_the_role_calls_a_tracking_server_with_the_monitors_named_actions_only() -> None:
    record = _program(tracking_arn=SERVER, tracking_kind="server")
    assert _statements(record)["UseMlflow"] == {
        "Sid": "UseMlflow",
        "Effect": "Allow",
        "Action": [
            "sagemaker-mlflow:GetModelVersion",
            "sagemaker-mlflow:GetRun",
            "sagemaker-mlflow:ListArtifacts",
            "sagemaker-mlflow:GetExperimentByName",
            "sagemaker-mlflow:CreateExperiment",
            "sagemaker-mlflow:CreateRun",
            "sagemaker-mlflow:LogBatch",
            "sagemaker-mlflow:UpdateRun",
        ],
        "Resource": SERVER,
    }
    assert [f"sagemaker-mlflow:{op}" for op in MLFLOW_OPERATIONS] == _statements(record)["UseMlflow"]["Action"]


def test_the_role_publishes_to_its_own_topic_only(sagemaker) -> None:
    statement = _statements(sagemaker)["PublishDrift"]
    assert statement["Action"] == ["sns:Publish"]
    assert statement["Resource"] == sagemaker.outputs["topicArn"]


def test_the_sagemaker_role_is_trusted_by_sagemaker_in_this_account(sagemaker) -> None:
    role = sagemaker.get("aws:iam/role:Role", "drift-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_the_schedule_starts_a_processing_job_through_the_universal_target(sagemaker) -> None:
    schedule = sagemaker.get("aws:scheduler/schedule:Schedule", "drift-schedule")
    assert schedule.inputs["scheduleExpression"] == "rate(6 hours)"
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule.inputs["target"]
    assert target["arn"] == PROCESSING_TARGET == "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
    assert target["retryPolicy"] == {"maximumRetryAttempts": 0}
    assert target["roleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/drift-scheduler-role-")


def _request(record: synth.PlanRecord) -> dict[str, Any]:
    schedule = record.get("aws:scheduler/schedule:Schedule", "drift-schedule")
    return json.loads(schedule.inputs["target"]["input"])


def test_the_processing_job_runs_the_monitor_in_the_vpc_encrypted(sagemaker) -> None:
    request = _request(sagemaker)
    bucket = sagemaker.outputs["bucketName"]
    key = sagemaker.outputs["keyArn"]
    assert request["ProcessingJobName"] == "drift-abalone-prod-<aws.scheduler.execution-id>"
    assert request["AppSpecification"] == {
        "ImageUri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/mlplat/training:0.1.0",
        "ContainerEntrypoint": ["python", "-m", "mlplat.monitor"],
        "ContainerArguments": [
            "--capture", f"s3://{bucket}/data-capture/abalone-prod/",
            "--endpoint", "abalone-prod",
            "--since", "6h",
            "--psi-threshold", "0.1",
            "--p-value", "0.01",
            "--model", "abalone",
            "--model-version", "4",
            "--output-dir", "/opt/ml/processing/output",
        ],
    }  # fmt: skip
    assert request["NetworkConfig"] == {
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
    }
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == key
    assert request["Environment"]["MLFLOW_TRACKING_URI"] == TRACKING
    assert request["RoleArn"] == sagemaker.outputs["roleArn"]
    assert {"Key": "mlplat:environment", "Value": "prod"} in request["Tags"]


def test_the_scheduler_may_only_start_monitor_jobs_and_pass_the_monitor_role(sagemaker) -> None:
    policy = sagemaker.get("aws:iam/rolePolicy:RolePolicy", "drift-scheduler-policy")
    start, pass_role = json.loads(policy.inputs["policy"])["Statement"]
    assert start["Action"] == ["sagemaker:CreateProcessingJob", "sagemaker:AddTags"]
    assert start["Resource"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:processing-job/drift-abalone-prod-*"
    assert pass_role["Resource"] == sagemaker.outputs["roleArn"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_network_isolation_stages_capture_and_profile_and_logs_nothing(tmp_path) -> None:
    request = _request(_program(network_isolation=True))
    assert request["NetworkConfig"]["EnableNetworkIsolation"] is True
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[:2] == ["--capture", "/opt/ml/processing/input/capture"]
    assert arguments[-3:] == ["--profile", "/opt/ml/processing/input/profile/reference_profile.json", "--no-log"]
    assert [i["S3Input"]["S3Uri"].split("/", 3)[3] for i in request["ProcessingInputs"]] == [
        "data-capture/abalone-prod/",
        "models/abalone/4/reference_profile.json",
    ]
    assert "MLFLOW_TRACKING_URI" not in request["Environment"]


def test_every_piece_is_a_child_of_the_component(sagemaker) -> None:
    owned = {r.type for r in sagemaker.resources if r.urn.split("::")[2].split("$")[-2:-1] == [COMPONENT]}
    assert owned == {
        "aws:sns/topic:Topic",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:iam/role:Role",
        "aws:scheduler/schedule:Schedule",
    }


def test_kubernetes_runs_a_hardened_cronjob_as_its_own_service_account(kubernetes) -> None:
    cronjob = kubernetes.get("kubernetes:batch/v1:CronJob", "drift-cronjob")
    spec = cronjob.inputs["spec"]
    assert spec["schedule"] == "0 */6 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "drift"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert container["command"] == ["python", "-m", "mlplat.monitor"]
    assert spec["jobTemplate"]["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3]
    account = kubernetes.get("kubernetes:core/v1:ServiceAccount", "drift-serviceaccount-drift")
    assert account.inputs["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": kubernetes.outputs["roleArn"]}


def test_the_cronjob_runs_as_a_uid_above_10000(kubernetes) -> None:
    pod = kubernetes.get("kubernetes:batch/v1:CronJob", "drift-cronjob").inputs["spec"]["jobTemplate"]["spec"]
    pod = pod["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (10001, 10001)
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 10001


def test_the_cronjob_mounts_only_the_irsa_token_and_not_the_kubernetes_api_token(kubernetes) -> None:
    pod = kubernetes.get("kubernetes:batch/v1:CronJob", "drift-cronjob").inputs["spec"]["jobTemplate"]["spec"]
    pod = pod["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    token = {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}
    assert pod["volumes"][1] == {"name": "aws-iam-token", "projected": {"sources": [token]}}
    (container,) = pod["containers"]
    assert container["volumeMounts"][1] == {
        "name": "aws-iam-token",
        "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount",
        "readOnly": True,
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AWS_ROLE_ARN"] == kubernetes.outputs["roleArn"]
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"


def test_an_image_the_stack_pins_by_digest_runs_by_that_digest() -> None:
    digest = "sha256:" + "ab" * 32
    record = _program("kubernetes", image=f"mlplat/training@{digest}")
    pod = record.get("kubernetes:batch/v1:CronJob", "drift-cronjob").inputs["spec"]["jobTemplate"]["spec"]
    (container,) = pod["template"]["spec"]["containers"]
    assert container["image"] == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/mlplat/training@{digest}"


def test_the_kubernetes_role_trusts_exactly_the_monitors_service_account(kubernetes) -> None:
    role = kubernetes.get("aws:iam/role:Role", "drift-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Federated": OIDC_ARN}
    host = OIDC_ISSUER.removeprefix("https://")
    assert trust["Condition"]["StringEquals"][f"{host}:sub"] == "system:serviceaccount:research:drift"
    assert "aws:scheduler/schedule:Schedule" not in kubernetes.counts
    assert "WriteLogs" not in _statements(kubernetes)


def test_without_a_provider_only_role_and_topic_exist_and_the_manifest_still_renders() -> None:
    runner = KubernetesRunner(namespace="research", oidc_provider_arn=OIDC_ARN, oidc_issuer=OIDC_ISSUER)
    record = _program("kubernetes", kubernetes=runner)
    assert not [r for r in record.resources if r.type.startswith("kubernetes:")]
    manifest = render_cronjob(
        name="drift",
        namespace="research",
        schedule="cron(15 2 ? * 2-6 *)",
        image="img",
        arguments=[],
        environment={},
        role_arn="arn:aws:iam::123456789012:role/drift",
    )
    assert manifest["spec"]["schedule"] == "15 2 * * 1-5"


@pytest.mark.parametrize(
    ("expression", "cron", "window"),
    [
        ("rate(1 day)", "0 0 * * *", "1d"),
        ("rate(6 hours)", "0 */6 * * *", "6h"),
        ("rate(12 hours)", "0 */12 * * *", "12h"),
        ("rate(30 minutes)", "*/30 * * * *", "30m"),
        ("rate(120 minutes)", "0 */2 * * *", "120m"),
        ("rate(48 hours)", "0 0 */2 * *", "48h"),
        ("cron(0 8 * * ? *)", "0 8 * * *", "24h"),
    ],
)
def test_schedules_convert_to_kubernetes_cron_and_a_window(expression: str, cron: str, window: str) -> None:
    assert (kubernetes_schedule(expression), schedule_window(expression)) == (cron, window)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"runner": "kubernetes", "kubernetes": None}, "runner is kubernetes but no cluster (kubernetes) was given"),
        ({"vpc_arn": None}, "runner is sagemaker but subnet_ids, security_group_ids or vpc_arn is missing"),
        ({"schedule": "every day"}, "schedule must be rate(N minutes|hours|days) or cron(...) (got 'every day')"),
    ],
)
def test_contradictory_settings_are_rejected_before_any_resource(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(synth.SynthesisError) as raised:
        _program(**overrides)
    assert message in str(raised.value.__cause__)


class _Network:
    private_subnet_ids = ("subnet-a", "subnet-b")
    workload_security_group_id = "sg-w"
    vpc_arn = "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"


class _Cluster:
    oidc_provider_arn = OIDC_ARN
    oidc_issuer = OIDC_ISSUER
    provider = None


class _Compute:
    cluster = _Cluster()


def test_the_platform_monitors_each_endpoint_with_its_stacks_monitoring_settings() -> None:
    from components.config import load_stack
    from components.drift import platform_drift_args

    dev = load_stack("dev")
    args = platform_drift_args(dev, dev.endpoints[0], None, TRACKING, _Network(), None)  # type: ignore[arg-type]
    assert (args.endpoint, args.model_name, args.model_version) == ("abalone-dev", "abalone", 1)
    assert (args.runner, args.schedule, args.psi_threshold, args.p_value) == ("sagemaker", "rate(1 day)", 0.25, 0.01)
    assert (list(args.subnet_ids), list(args.security_group_ids)) == (["subnet-a", "subnet-b"], ["sg-w"])
    assert args.image == "mlplat/training:0.1.0"
    assert args.tracking_kind == "app"
    assert args.tags == {"mlplat:environment": "dev", "mlplat:team": "ml-research", "mlplat:cost-center": "cc-4100"}
    prod = load_stack("prod")
    args = platform_drift_args(prod, prod.endpoints[0], None, TRACKING, _Network(), _Compute())  # type: ignore[arg-type]
    assert (args.runner, args.schedule, args.psi_threshold) == ("kubernetes", "rate(6 hours)", 0.1)
    assert args.tracking_kind == "server"
    assert args.kubernetes is not None and args.kubernetes.namespace == "research"
