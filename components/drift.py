"""Scheduled drift monitoring of one endpoint: an encrypted alarm topic, a narrowly scoped role, and the schedule.

The job is `python -m mlplat.monitor` in the training image (the same command as `mlplat monitor`): it reads
`data-capture/<endpoint>/` for the last schedule period, loads the reference profile of the model version that
served it from the tracking server, logs a drift run there, publishes to the alarm topic, and exits 3 on drift so the
job fails where someone looks. It runs either

- `runner="sagemaker"`: an EventBridge Scheduler schedule whose universal target
  `arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob` starts a processing job in the private subnets, its
  volume and output encrypted with the bucket's key, inter-container traffic encrypted; or
- `runner="kubernetes"`: a CronJob on the GPU cluster (the stack's schedule converted to cron), in a team namespace,
  as its own service account whose IRSA role is the monitor role, with the hardened pod security every mlplat
  workload carries. `render_cronjob` is the one source of the manifest; without a provider only the role and topic
  are created (the manifest can still be rendered and applied by hand).

SageMaker network isolation is off by default, deliberately: an isolated container has no network at all (not even
the VPC), so it could not read the capture, reach the tracking server or publish the alarm. With
`network_isolation=True` the capture prefix and the profile (`models/<model>/<version>/reference_profile.json`) are
staged in as processing inputs, the report is staged out to `monitoring/<endpoint>/`, nothing is logged to MLflow,
and the failed job is the only signal.
"""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, images
from components.artifacts import ArtifactStore
from components.cluster import irsa_trust_policy
from components.k8s_objects import container_security_context, create_objects, pod_security_context
from components.problems import Problem, at, refuse
from components.tracking import kind_of
from contracts import bucket as layout
from contracts.bucket import MLFLOW_PREFIX, PROFILE_FILE

PROCESSING_TARGET = "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
MONITOR_COMMAND = ("python", "-m", "mlplat.monitor")
PROCESSING_OUTPUT = "/opt/ml/processing/output"
PROCESSING_CAPTURE = "/opt/ml/processing/input/capture"
PROCESSING_PROFILE = "/opt/ml/processing/input/profile"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
"""Where SageMaker writes a processing job's container logs."""
# EventBridge Scheduler replaces this in the target input on every invocation: each job gets a unique name.
EXECUTION_ID = "<aws.scheduler.execution-id>"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
CONTAINER = "monitor"
# IRSA's web-identity token, exactly as EKS's pod identity webhook projects it (volume name, path, audience): the
# pod declares it itself so that it can refuse the Kubernetes API token (automountServiceAccountToken: false). The
# webhook sees its volume already present and leaves the pod alone.
IRSA_VOLUME = "aws-iam-token"
IRSA_MOUNT = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
IRSA_AUDIENCE = "sts.amazonaws.com"
IRSA_LIFETIME_SECONDS = 86400

# What one monitor pass does in MLflow (on a tracking server each is its own action; an App takes one action for all):
# resolve the model version to its run, read that run's profile, and log one run of its own.
MLFLOW_OPERATIONS: tuple[str, ...] = (
    "GetModelVersion",
    "GetRun",
    "ListArtifacts",
    "GetExperimentByName",
    "CreateExperiment",
    "CreateRun",
    "LogBatch",
    "UpdateRun",
)

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")


@dataclass(frozen=True)
class KubernetesRunner:
    """Where a CronJob runs: the cluster's provider, its OIDC identity for IRSA, and a namespace that exists."""

    namespace: str
    """The (team) namespace the CronJob and its service account go in; its quota and network policies apply."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider (the monitor role trusts one service account through it)."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""
    provider: pulumi.ProviderResource | None = None
    """The cluster's Kubernetes provider; None renders nothing on the cluster (role and topic only)."""


@dataclass(frozen=True)
class DriftMonitorArgs:
    """One endpoint's monitor: what to watch, against which thresholds, how often, and where it runs."""

    endpoint: str
    """The endpoint's name in `mlplat:endpoints`; its capture is under `data-capture/<endpoint>/`."""
    model_name: str
    """Registered model the endpoint serves (used when SageMaker's capture does not name it)."""
    model_version: int
    """Model version the endpoint serves."""
    region: str
    """AWS region of the stack."""
    artifacts: ArtifactStore
    """The artifact store: the role is granted exactly its capture, MLflow and monitoring prefixes and its key."""
    tracking_arn: pulumi.Input[str]
    """ARN of the SageMaker MLflow app or tracking server (also the job's MLFLOW_TRACKING_URI)."""
    tracking_kind: iam.MlflowKind
    """Whether `tracking_arn` is an MLflow App or a tracking server (they are authorized differently)."""
    image: str
    """The training image (short ECR name or full URI); it holds the monitor entrypoint."""
    schedule: str = "rate(1 day)"
    """EventBridge schedule expression, `rate(...)` or `cron(...)` (`mlplat:monitoring.schedule`)."""
    psi_threshold: float = 0.2
    """PSI at or over which a feature drifts (`mlplat:monitoring.psiThreshold`)."""
    p_value: float = 0.01
    """Test p-value under which a shift is significant (`mlplat:monitoring.pValue`)."""
    runner: Literal["sagemaker", "kubernetes"] = "sagemaker"
    """Where the job runs (`mlplat:monitoring.runner`)."""
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Private subnets of the processing job (sagemaker runner)."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the processing job (sagemaker runner)."""
    vpc_arn: pulumi.Input[str] | None = None
    """The VPC's ARN: the job may create network interfaces in it and nowhere else (sagemaker runner)."""
    kubernetes: KubernetesRunner | None = None
    """The cluster to run the CronJob on (kubernetes runner)."""
    network_isolation: bool = False
    """Run the processing job without network, on staged inputs (see the module docstring)."""
    instance_type: str = "ml.t3.medium"
    """Processing instance type."""
    max_runtime_seconds: int = 3600
    """Longest a pass may run."""
    alarm_emails: Sequence[str] = field(default_factory=tuple)
    """Addresses subscribed to the drift alarm topic."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags each processing job carries (the stack's cost tags; jobs are not Pulumi resources the transform reaches)."""


def schedule_window(schedule: str) -> str:
    """The `--since` window of one pass: the schedule's period for `rate(...)`, a day for `cron(...)`."""
    match = _RATE.match(schedule)
    if not match:
        return "24h"
    count, unit = int(match[1]), match[2].rstrip("s")
    return f"{count}{ {'minute': 'm', 'hour': 'h', 'day': 'd'}[unit] }"


def kubernetes_schedule(schedule: str) -> str:
    """An EventBridge `rate(...)`/`cron(...)` expression as a Kubernetes CronJob schedule (UTC).

    `rate(N hours)` becomes `0 */N * * *` (exact when N divides 24); EventBridge cron's six fields drop the year,
    `?` becomes `*` and numeric days of week move from 1-7 (Sunday 1) to 0-6 (Sunday 0).
    """
    match = _RATE.match(schedule)
    if match:
        count, unit = int(match[1]), match[2].rstrip("s")
        if count < 1:
            raise ValueError(f"must be at least rate(1 ...) (got {schedule!r})")
        if unit == "minute":
            if count % 60 == 0:
                return kubernetes_schedule(f"rate({count // 60} hours)")
            return f"*/{count} * * * *" if count < 60 else "0 * * * *"
        if unit == "hour":
            if count % 24 == 0:
                return kubernetes_schedule(f"rate({count // 24} days)")
            return "0 * * * *" if count == 1 else f"0 */{count} * * *"
        return "0 0 * * *" if count == 1 else f"0 0 */{count} * *"
    cron = _CRON.match(schedule)
    if not cron:
        raise ValueError(f"must be rate(N minutes|hours|days) or cron(...) (got {schedule!r})")
    fields = cron[1].split()
    if len(fields) != 6:
        raise ValueError(f"must have the six fields of an EventBridge cron (got {schedule!r})")
    minute, hour, day, month, weekday, _year = fields
    if any(mark in " ".join(fields) for mark in ("L", "W", "#")):
        raise ValueError(f"must not use L, W or # on runner kubernetes (Kubernetes cron has none) (got {schedule!r})")

    def shift(value: str) -> str:
        return str(int(value) - 1) if value.isdigit() else value

    weekday = re.sub(r"\d+", lambda m: shift(m.group(0)), weekday)
    return " ".join(f.replace("?", "*") for f in (minute, hour, day, month, weekday))


def monitor_arguments(
    capture: pulumi.Input[str],
    endpoint: str,
    window: str,
    psi_threshold: float,
    p_value: float,
    model_name: str,
    model_version: int,
    output_dir: str,
    profile: str | None = None,
) -> list[pulumi.Input[str]]:
    """The monitor's command-line arguments for one scheduled pass."""
    args = [
        "--capture", capture,
        "--endpoint", endpoint,
        "--since", window,
        "--psi-threshold", f"{psi_threshold:g}",
        "--p-value", f"{p_value:g}",
        "--model", model_name,
        "--model-version", str(model_version),
        "--output-dir", output_dir,
    ]  # fmt: skip
    if profile is not None:
        args += ["--profile", profile, "--no-log"]
    return args


def processing_job_request(
    *,
    job_prefix: str,
    image_uri: str,
    role_arn: str,
    bucket: str,
    kms_key_arn: str,
    tracking_arn: str,
    topic_arn: str,
    endpoint: str,
    model_name: str,
    model_version: int,
    window: str,
    psi_threshold: float,
    p_value: float,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    network_isolation: bool,
    instance_type: str,
    max_runtime_seconds: int,
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """The CreateProcessingJob request the schedule sends (plain values; the job name gets the execution id)."""
    capture_uri = layout.s3_uri(bucket, layout.capture_prefix(endpoint))
    if network_isolation:
        capture, profile = PROCESSING_CAPTURE, f"{PROCESSING_PROFILE}/{PROFILE_FILE}"
    else:
        capture, profile = capture_uri, None
    arguments = [
        str(a)
        for a in monitor_arguments(
            capture, endpoint, window, psi_threshold, p_value, model_name, model_version, PROCESSING_OUTPUT, profile
        )
    ]
    environment = {"MLPLAT_MONITOR_OUTPUT": PROCESSING_OUTPUT, "MPLCONFIGDIR": "/tmp/matplotlib"}
    if not network_isolation:
        environment.update({"MLFLOW_TRACKING_URI": tracking_arn, "MLPLAT_DRIFT_TOPIC": topic_arn})
    request: dict[str, Any] = {
        "ProcessingJobName": f"{job_prefix}-{EXECUTION_ID}",
        "RoleArn": role_arn,
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": list(MONITOR_COMMAND),
            "ContainerArguments": arguments,
        },
        "Environment": environment,
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": instance_type,
                "VolumeSizeInGB": 20,
                "VolumeKmsKeyId": kms_key_arn,
            }
        },
        "NetworkConfig": {
            "EnableNetworkIsolation": network_isolation,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": {"Subnets": list(subnet_ids), "SecurityGroupIds": list(security_group_ids)},
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "ProcessingOutputConfig": {
            "KmsKeyId": kms_key_arn,
            "Outputs": [
                {
                    "OutputName": "report",
                    "S3Output": {
                        "S3Uri": layout.s3_uri(bucket, layout.monitoring_prefix(endpoint)),
                        "LocalPath": PROCESSING_OUTPUT,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ],
        },
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    }
    if network_isolation:
        request["ProcessingInputs"] = [
            {
                "InputName": "capture",
                "S3Input": {
                    "S3Uri": capture_uri,
                    "LocalPath": PROCESSING_CAPTURE,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "profile",
                "S3Input": {
                    "S3Uri": layout.s3_uri(bucket, layout.profile_key(model_name, model_version)),
                    "LocalPath": PROCESSING_PROFILE,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ]
    return request


def render_service_account(name: str, namespace: str, role_arn: pulumi.Input[str]) -> dict[str, Any]:
    """The monitor's own service account, bound to its IRSA role."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": _labels(name),
            "annotations": {ROLE_ARN_ANNOTATION: role_arn},
        },
    }


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "drift-monitor", "app.kubernetes.io/instance": name}


def render_cronjob(
    *,
    name: str,
    namespace: str,
    schedule: str,
    image: pulumi.Input[str],
    arguments: Sequence[pulumi.Input[str]],
    environment: Mapping[str, pulumi.Input[str]],
    role_arn: pulumi.Input[str],
    max_runtime_seconds: int = 3600,
) -> dict[str, Any]:
    """The CronJob of one endpoint's monitor: one pass at a time, exit 2 or 3 fails the Job at once, hardened pod.

    The monitor talks to AWS only, never to the Kubernetes API, so the pod mounts no service-account token for the
    API; it mounts the one IRSA token (audience STS) that `role_arn` is assumed with.
    """
    labels = _labels(name)
    irsa = {
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": f"{IRSA_MOUNT}/token",
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
    }
    env = [{"name": k, "value": v} for k, v in sorted({**environment, **irsa}.items())]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "schedule": kubernetes_schedule(schedule),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": max_runtime_seconds,
                    "ttlSecondsAfterFinished": 7 * 24 * 3600,
                    # Drift (3) and bad input (2) are answers, not flakes: fail the Job without retrying.
                    "podFailurePolicy": {
                        "rules": [
                            {
                                "action": "FailJob",
                                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [2, 3]},
                            }
                        ]
                    },
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": name,
                            "automountServiceAccountToken": False,
                            "restartPolicy": "Never",
                            "securityContext": pod_security_context(),
                            "containers": [
                                {
                                    "name": CONTAINER,
                                    "image": image,
                                    # A tag may be moved; Always re-resolves it on every pass (a digest never moves).
                                    "imagePullPolicy": "Always",
                                    "command": list(MONITOR_COMMAND),
                                    "args": list(arguments),
                                    "env": env,
                                    "resources": {
                                        "requests": {"cpu": "250m", "memory": "512Mi"},
                                        "limits": {"cpu": "1", "memory": "1Gi"},
                                    },
                                    "securityContext": container_security_context(),
                                    # The root filesystem is read-only: reports, plots and caches go here.
                                    "volumeMounts": [
                                        {"name": "scratch", "mountPath": "/tmp"},
                                        {"name": IRSA_VOLUME, "mountPath": IRSA_MOUNT, "readOnly": True},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                                {
                                    "name": IRSA_VOLUME,
                                    "projected": {
                                        "sources": [
                                            {
                                                "serviceAccountToken": {
                                                    "audience": IRSA_AUDIENCE,
                                                    "expirationSeconds": IRSA_LIFETIME_SECONDS,
                                                    "path": "token",
                                                }
                                            }
                                        ]
                                    },
                                },
                            ],
                        },
                    },
                },
            },
        },
    }


def problems(prefix: str, *, schedule: str, runner: str, psi_threshold: float, p_value: float) -> list[Problem]:
    """Problems with the monitor's settings under `prefix` (`mlplat:monitoring`, or empty for the component's own)."""
    found: list[Problem] = []
    if runner == "kubernetes":
        try:
            kubernetes_schedule(schedule)
        except ValueError as error:
            found.append(Problem(at(prefix, "schedule"), str(error)))
    elif not (_RATE.match(schedule) or _CRON.match(schedule)):
        found.append(
            Problem(at(prefix, "schedule"), f"must be rate(N minutes|hours|days) or cron(...) (got {schedule!r})")
        )
    # Worded as the config's field types word them, so the stack file and a program read the same line.
    if psi_threshold <= 0:
        found.append(Problem(at(prefix, "psiThreshold"), f"must be greater than 0 (got {psi_threshold!r})"))
    if p_value <= 0 or p_value >= 1:
        bound = "greater than 0" if p_value <= 0 else "less than 1"
        found.append(Problem(at(prefix, "pValue"), f"must be {bound} (got {p_value!r})"))
    return found


def _wiring_problems(args: DriftMonitorArgs) -> list[Problem]:
    """What a program must hand the component for its runner (the stack file never names these)."""
    if args.runner == "kubernetes" and args.kubernetes is None:
        return [Problem("runner", "is kubernetes but no cluster (kubernetes) was given")]
    if args.runner == "sagemaker" and (not args.subnet_ids or not args.security_group_ids or args.vpc_arn is None):
        return [Problem("runner", "is sagemaker but subnet_ids, security_group_ids or vpc_arn is missing")]
    return []


class DriftMonitor(pulumi.ComponentResource):
    """One endpoint's drift monitor: alarm topic, monitor role, and a schedule (SageMaker) or CronJob (Kubernetes)."""

    topic_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    schedule_arn: pulumi.Output[str] | None
    cronjob: dict[str, Any] | None

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        settings = problems(
            "", schedule=args.schedule, runner=args.runner, psi_threshold=args.psi_threshold, p_value=args.p_value
        )
        refuse(f"DriftMonitor {name}", _wiring_problems(args) + settings)
        super().__init__("mlplat:drift:DriftMonitor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = iam.account_id()
        arn_partition = iam.partition()
        store = args.artifacts
        image_uri = images.image_uri(args.image, args.region, account)
        window = schedule_window(args.schedule)
        capture_prefix = layout.capture_prefix(args.endpoint)

        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=store.key_arn, opts=child)
        for i, email in enumerate(args.alarm_emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{i}", topic=topic.arn, protocol="email", endpoint=email, opts=child
            )

        statements: list[iam.Statement] = [
            *store.read_statements(capture_prefix),
            # The profile is an artifact of the model version's run, and the drift run logs its report beside it.
            *store.read_statements(MLFLOW_PREFIX),
            *store.write_statements(MLFLOW_PREFIX),
            *store.write_statements(layout.monitoring_prefix(args.endpoint)),
            *store.kms_statements(),
            *iam.mlflow_statements(args.tracking_kind, args.tracking_arn, MLFLOW_OPERATIONS, sid="UseMlflow"),
            {"Sid": "PublishDrift", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": topic.arn},
        ]
        if args.runner == "sagemaker":
            assert args.vpc_arn is not None
            if args.network_isolation:
                statements += store.read_statements(layout.model_prefix(args.model_name, args.model_version))
            statements += [
                iam.write_logs_statement(iam.log_group_arn(args.region, account, arn_partition, PROCESSING_LOG_GROUP)),
                *images.ecr_pull_statements([args.image], args.region, account, arn_partition),
                *iam.sagemaker_vpc_statements(args.vpc_arn),
            ]
            trust = iam.service_trust("sagemaker.amazonaws.com", account)
        else:
            assert args.kubernetes is not None
            trust = irsa_trust_policy(
                args.kubernetes.oidc_provider_arn, args.kubernetes.oidc_issuer, args.kubernetes.namespace, name
            )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"Drift monitor of endpoint {args.endpoint}",
            assume_role_policy=trust,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=iam.policy_document(statements),
            opts=pulumi.ResourceOptions(parent=role),
        )
        # Whatever runs as the role waits for its policy too.
        role_arn = pulumi.Output.all(role.arn, policy.id).apply(lambda v: str(v[0]))

        self.schedule_arn = None
        self.cronjob = None
        if args.runner == "sagemaker":
            self.schedule_arn = self._schedule(name, args, role, role_arn, image_uri, topic.arn, window)
        else:
            assert args.kubernetes is not None
            runner = args.kubernetes
            capture_uri = pulumi.Output.concat("s3://", store.bucket_name, "/", capture_prefix)
            output_dir = "/tmp/monitor"
            arguments = monitor_arguments(
                capture_uri,
                args.endpoint,
                window,
                args.psi_threshold,
                args.p_value,
                args.model_name,
                args.model_version,
                output_dir,
            )
            environment: dict[str, pulumi.Input[str]] = {
                "MLFLOW_TRACKING_URI": args.tracking_arn,
                "MLPLAT_DRIFT_TOPIC": topic.arn,
                "AWS_REGION": args.region,
                "HOME": "/tmp",
                "MPLCONFIGDIR": "/tmp/matplotlib",
            }
            self.cronjob = render_cronjob(
                name=name,
                namespace=runner.namespace,
                schedule=args.schedule,
                image=image_uri,
                arguments=arguments,
                environment=environment,
                role_arn=role_arn,
                max_runtime_seconds=args.max_runtime_seconds,
            )
            if runner.provider is not None:
                k8s_opts = pulumi.ResourceOptions(parent=self, provider=runner.provider)
                (account_sa,) = create_objects(
                    name, [render_service_account(name, runner.namespace, role_arn)], k8s_opts
                )
                spec = self.cronjob
                k8s.batch.v1.CronJob(
                    f"{name}-cronjob",
                    metadata=spec["metadata"],
                    spec=spec["spec"],
                    opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[account_sa])),
                )

        self.topic_arn = topic.arn
        self.role_arn = role_arn
        self.register_outputs({"topicArn": self.topic_arn, "roleArn": self.role_arn, "scheduleArn": self.schedule_arn})

    def _schedule(
        self,
        name: str,
        args: DriftMonitorArgs,
        job_role: aws.iam.Role,
        job_role_arn: pulumi.Output[str],
        image_uri: pulumi.Output[str],
        topic_arn: pulumi.Output[str],
        window: str,
    ) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        account = iam.account_id()
        arn_partition = iam.partition()
        job_prefix = f"drift-{args.endpoint}"[:40].rstrip("-")
        processing_jobs = pulumi.Output.concat(
            "arn:", arn_partition, ":sagemaker:", args.region, ":", account, ":processing-job/", job_prefix, "-*"
        )
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role",
            description=f"EventBridge Scheduler: starts the drift monitor of {args.endpoint}",
            assume_role_policy=iam.service_trust("scheduler.amazonaws.com", account),
            opts=child,
        )
        scheduler_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=scheduler_role.id,
            policy=iam.policy_document(
                [
                    {
                        "Sid": "StartMonitorJob",
                        "Effect": "Allow",
                        "Action": ["sagemaker:CreateProcessingJob", "sagemaker:AddTags"],
                        "Resource": processing_jobs,
                    },
                    {
                        "Sid": "PassMonitorRole",
                        "Effect": "Allow",
                        "Action": ["iam:PassRole"],
                        "Resource": job_role.arn,
                        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                    },
                ]
            ),
            opts=pulumi.ResourceOptions(parent=scheduler_role),
        )
        store = args.artifacts
        request = pulumi.Output.all(
            image_uri,
            job_role_arn,
            store.bucket_name,
            store.key_arn,
            pulumi.Output.from_input(args.tracking_arn),
            topic_arn,
            pulumi.Output.all(*args.subnet_ids),
            pulumi.Output.all(*args.security_group_ids),
        ).apply(
            lambda v: json.dumps(
                processing_job_request(
                    job_prefix=job_prefix,
                    image_uri=v[0],
                    role_arn=v[1],
                    bucket=v[2],
                    kms_key_arn=v[3],
                    tracking_arn=v[4],
                    topic_arn=v[5],
                    endpoint=args.endpoint,
                    model_name=args.model_name,
                    model_version=args.model_version,
                    window=window,
                    psi_threshold=args.psi_threshold,
                    p_value=args.p_value,
                    subnet_ids=v[6],
                    security_group_ids=v[7],
                    network_isolation=args.network_isolation,
                    instance_type=args.instance_type,
                    max_runtime_seconds=args.max_runtime_seconds,
                    tags={**args.tags, "mlplat:component": "drift", "mlplat:endpoint": args.endpoint},
                ),
                sort_keys=True,
            )
        )
        schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            description=f"Drift monitor of endpoint {args.endpoint}, last {window} of capture",
            schedule_expression=args.schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            state="ENABLED",
            target=aws.scheduler.ScheduleTargetArgs(
                arn=PROCESSING_TARGET,
                role_arn=pulumi.Output.all(scheduler_role.arn, scheduler_policy.id).apply(lambda v: str(v[0])),
                input=request,
                # A missed pass is picked up by the next one; retrying could start two jobs for one window.
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(maximum_retry_attempts=0),
            ),
            opts=child,
        )
        return schedule.arn


def platform_drift_args(
    config: Any,
    endpoint: Any,
    artifacts: ArtifactStore,
    tracking_arn: pulumi.Input[str],
    network: Any,
    compute: Any | None,
) -> DriftMonitorArgs:
    """The monitor of one `mlplat:endpoints` entry as `MlPlatform` composes it from the stack config.

    `config` is the StackConfig, `network` the Network, `compute` the GpuCompute (kubernetes runner: the CronJob
    runs in the first team's namespace, through the cluster's provider and OIDC identity).
    """
    monitoring = config.monitoring
    kubernetes = None
    if monitoring.runner == "kubernetes" and compute is not None and config.teams:
        kubernetes = KubernetesRunner(
            namespace=config.teams[0].name,
            oidc_provider_arn=compute.cluster.oidc_provider_arn,
            oidc_issuer=compute.cluster.oidc_issuer,
            provider=compute.cluster.provider,
        )
    return DriftMonitorArgs(
        endpoint=endpoint.name,
        model_name=endpoint.model,
        model_version=endpoint.model_version,
        region=config.region,
        artifacts=artifacts,
        tracking_arn=tracking_arn,
        tracking_kind=kind_of(config.tracking.size),
        image=config.images.training,
        schedule=monitoring.schedule,
        psi_threshold=monitoring.psi_threshold,
        p_value=monitoring.p_value,
        runner=monitoring.runner,
        subnet_ids=network.private_subnet_ids,
        security_group_ids=[network.workload_security_group_id],
        vpc_arn=network.vpc_arn,
        kubernetes=kubernetes,
        tags=dict(config.tags),
    )
