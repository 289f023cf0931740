"""Script mode: run a team's own training script on this image, with data channels, tracking and signals prepared.

    python -m training --entry-point train.py --source-dir ./my-project [--nproc-per-node 2] [-- extra args]

The same job from the SageMaker Python SDK's PyTorch estimator runs unchanged: `sagemaker_program` and
`sagemaker_submit_directory` in hyperparameters.json (or `SAGEMAKER_PROGRAM` / `SAGEMAKER_SUBMIT_DIRECTORY`) name
the script and its source (a directory, or a `.tar.gz` locally or in S3). The source is copied or unpacked into a
private directory (archive members that would land outside it are refused); a `requirements.txt` there is installed
first. Every other hyperparameter reaches the script as `--key value` and in `SM_HPS`; the script gets SageMaker's
environment (`SM_CHANNEL_<NAME>`, `SM_CHANNELS`, `SM_MODEL_DIR`, `SM_OUTPUT_DATA_DIR`, `SM_NUM_GPUS`, `SM_HOSTS`,
`SM_CURRENT_HOST`, `SM_HPS`). With `MLFLOW_TRACKING_URI` set, the MLflow run is created (or resumed, from `run.json`
in the checkpoint directory) before the script starts and exported as `MLFLOW_RUN_ID`; it ends FINISHED, FAILED or
KILLED with the script. Several processes per node run under `torchrun --standalone`.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from contracts.result import result_line
from training import lifecycle, storage
from training.config import DEFAULT_HYPERPARAMETERS, SM_ROOT
from training.errors import EXIT_BAD_INPUT, InputError

FAILURE_FILE = f"{SM_ROOT}/output/failure"
IDENTITY = "run.json"


def requested(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """True when this job is script mode: a flag, SageMaker's variables, or its keys in hyperparameters.json."""
    if "--entry-point" in argv or any(arg.startswith("--entry-point=") for arg in argv):
        return True
    if environ.get("SAGEMAKER_PROGRAM"):
        return True
    path = environ.get("MLPLAT_HYPERPARAMETERS", DEFAULT_HYPERPARAMETERS)
    if "--hyperparameters" in argv[:-1]:
        path = argv[list(argv).index("--hyperparameters") + 1]
    return "sagemaker_program" in _read_json(Path(path))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InputError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m training --entry-point", allow_abbrev=False)
    parser.add_argument("--entry-point", help="the script (a .py file in the source) or a package.module")
    parser.add_argument("--source-dir", help="a directory, or a .tar.gz (local or s3://)")
    parser.add_argument("--hyperparameters", default=os.environ.get("MLPLAT_HYPERPARAMETERS", DEFAULT_HYPERPARAMETERS))
    parser.add_argument("--nproc-per-node", type=int, default=0, help="processes on this host (default: GPUs, else 1)")
    parser.add_argument("--grace-seconds", type=float, default=30.0, help="after SIGTERM, wait this long, then kill")
    parser.add_argument("--failure-file", default=os.environ.get("MLPLAT_FAILURE_FILE", FAILURE_FILE))
    parser.add_argument("--job-name", default=os.environ.get("MLPLAT_JOB_NAME", os.environ.get("TRAINING_JOB_NAME")))
    parser.add_argument("--experiment-name", default=os.environ.get("MLFLOW_EXPERIMENT_NAME", "mlplat-training"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", f"{SM_ROOT}/model"))
    parser.add_argument("--output-data-dir", default=os.environ.get("SM_OUTPUT_DATA_DIR", f"{SM_ROOT}/output/data"))
    parser.add_argument("--checkpoint-dir", default=os.environ.get("MLPLAT_CHECKPOINT_DIR", f"{SM_ROOT}/checkpoints"))
    parser.add_argument(
        "--checkpoint-s3-uri",
        default=os.environ.get("MLPLAT_CHECKPOINT_S3_URI", ""),
        help="mirror the checkpoint directory here (EKS; SageMaker syncs it itself): restored first, synced at the end",
    )
    parser.add_argument("--registered-model-name", default=os.environ.get("MLPLAT_REGISTERED_MODEL_NAME", ""))
    parser.add_argument("--promotion-metric", default="", metavar="NAME:min|max", help="the gate's run metric")
    parser.add_argument("--promote", action="store_true", help="when the gate passes, move the champion alias too")
    parser.add_argument("--rdzv-timeout", type=float, default=600.0, help="seconds to wait for every host to join")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=PATH", help="a channel (repeatable)")
    return parser


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the script to its end; returns its exit status (2 for bad input of ours)."""
    arguments = list(argv)
    if arguments[:1] == ["train"]:
        arguments = arguments[1:]
    extra: list[str] = []
    if "--" in arguments:
        extra = arguments[arguments.index("--") + 1 :]
        arguments = arguments[: arguments.index("--")]
    try:
        options = _parser().parse_args(arguments)
        # SageMaker writes hyperparameters.json; an Indexed Job on EKS carries the same map in SM_HPS.
        hyperparameters = _hyperparameters(Path(options.hyperparameters)) or _decoded(_env_json(environ, "SM_HPS"))
        gate = parse_gate(options.promotion_metric)
        entry = options.entry_point or environ.get("SAGEMAKER_PROGRAM") or hyperparameters.pop("sagemaker_program", "")
        source = (
            options.source_dir
            or environ.get("SAGEMAKER_SUBMIT_DIRECTORY")
            or hyperparameters.pop("sagemaker_submit_directory", "")
        )
        hyperparameters = {key: value for key, value in hyperparameters.items() if not key.startswith("sagemaker_")}
        workdir = Path(tempfile.mkdtemp(prefix="mlplat-script-"))
        code = unpack_source(source, workdir / "code") if source else Path.cwd()
        command = _command(code, entry)
        packages = install_requirements(code, workdir / "packages")
        options.data = fetch_channels(options.data, Path(environ.get("MLPLAT_INPUT_DATA_DIR", f"{SM_ROOT}/input/data")))
    except InputError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    env = script_environment(options, hyperparameters, environ)
    mirror = options.checkpoint_s3_uri
    remote = storage.S3Location.parse(mirror.rstrip("/") + "/") if mirror else None
    if remote is not None:
        # A new pod starts with an empty checkpoint directory: the last pod's run.json and checkpoints come back.
        try:
            restore_checkpoints(remote, Path(options.checkpoint_dir))
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        env["MLPLAT_CHECKPOINT_S3_URI"] = str(remote)
    if packages:
        env["PYTHONPATH"] = os.pathsep.join([*map(str, packages), *filter(None, [env.get("PYTHONPATH")])])
        env["PATH"] = os.pathsep.join([str(workdir / "packages" / "bin"), env.get("PATH", os.defpath)])
    tracking = _Tracking.start(options, env) if env.get("MLFLOW_TRACKING_URI") else None
    if tracking is not None:
        env.update(tracking.exported())
        if remote is not None:
            # The run id reaches S3 before the script starts: a pod killed at once still resumes this run.
            sync_checkpoints(Path(options.checkpoint_dir), remote, only=IDENTITY)
    nproc = options.nproc_per_node or max(1, int(env["SM_NUM_GPUS"]))
    try:
        launcher = launch_command(nproc, env, options.rdzv_timeout, options.job_name or "mlplat-script")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if tracking is not None:
            tracking.end("FAILED", str(exc))
        return EXIT_BAD_INPUT
    argv_script = [*launcher, *command, *_as_arguments(hyperparameters), *extra]
    child = lifecycle.Child(argv_script, env, code, options.grace_seconds)
    child.install_signal_handlers()
    status = child.wait()
    if remote is not None:
        # What the script wrote without the helper reaches S3 too, as SageMaker's sync at the job's end does.
        sync_checkpoints(Path(options.checkpoint_dir), remote)
    if status != 0 and not child.signum:
        reason = child.failure_text() or f"the script exited with status {status}"
        lifecycle.write_failure(Path(options.failure_file), reason)
    if tracking is not None:
        outcome = "FINISHED" if status == 0 else ("KILLED" if child.signum else "FAILED")
        if status == 0 and options.registered_model_name:
            try:
                result = tracking.register(options.registered_model_name, gate, options.promote)
                result["job_name"] = options.job_name or "mlplat-script"
                # The launchers' contract (the local platform, the EKS follower): the last stdout line.
                print(result_line(result), flush=True)
            except InputError as exc:
                print(f"error: {exc}", file=sys.stderr)
                outcome, status = "FAILED", 1
                lifecycle.write_failure(Path(options.failure_file), str(exc))
        tracking.end(outcome, child.failure_text() if outcome == "FAILED" else "")
    shutil.rmtree(workdir, ignore_errors=True)
    return status


def parse_gate(text: str) -> tuple[str, bool] | None:
    """`NAME:min|max` → (metric, higher is better); empty → None."""
    if not text:
        return None
    name, _, direction = text.rpartition(":")
    if not name or direction not in {"min", "max"}:
        raise InputError(f"--promotion-metric must be NAME:min or NAME:max (got {text!r})")
    return name, direction == "max"


RDZV_PORT = 29400
RESOURCE_CONFIG = f"{SM_ROOT}/input/config/resourceconfig.json"


def hosts_of(environ: Mapping[str, str]) -> tuple[list[str], int]:
    """The job's hosts and this host's index: SageMaker's resourceconfig.json or SM_HOSTS, or an Indexed Job's env.

    An Indexed Job (EKS) sets `JOB_COMPLETION_INDEX`; `MLPLAT_NNODES` and `MLPLAT_RDZV_HOST` (the first pod's DNS
    name behind the headless Service) complete it.
    """
    config = _read_json(Path(environ.get("MLPLAT_RESOURCE_CONFIG", RESOURCE_CONFIG)))
    hosts = [str(host) for host in config.get("hosts", [])] or json.loads(environ.get("SM_HOSTS", "[]") or "[]")
    current = str(config.get("current_host") or environ.get("SM_CURRENT_HOST", ""))
    if len(hosts) > 1:
        if current not in hosts:
            raise InputError(f"this host {current!r} is not one of the job's hosts ({', '.join(hosts)})")
        return sorted(hosts), sorted(hosts).index(current)
    if environ.get("JOB_COMPLETION_INDEX") and int(environ.get("MLPLAT_NNODES", "1")) > 1:
        nodes = int(environ["MLPLAT_NNODES"])
        rendezvous = environ.get("MLPLAT_RDZV_HOST", "")
        if not rendezvous:
            raise InputError("an Indexed Job of several nodes needs MLPLAT_RDZV_HOST (the first pod's address)")
        return [rendezvous, *[f"node-{index}" for index in range(1, nodes)]], int(environ["JOB_COMPLETION_INDEX"])
    return hosts[:1], 0


def launch_command(nproc: int, environ: Mapping[str, str], rdzv_timeout: float, job: str) -> list[str]:
    """`python` for one process; `torchrun --standalone` for several on one host; c10d rendezvous across hosts."""
    hosts, index = hosts_of(environ)
    if len(hosts) <= 1:
        if nproc <= 1:
            return [sys.executable]
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={len(hosts)}", f"--node-rank={index}", f"--nproc-per-node={nproc}",
        "--rdzv-backend=c10d", f"--rdzv-endpoint={hosts[0]}:{environ.get('MLPLAT_RDZV_PORT', RDZV_PORT)}",
        f"--rdzv-id={job}",
        f"--rdzv-conf=join_timeout={int(rdzv_timeout)}",
    ]  # fmt: skip


def _env_json(environ: Mapping[str, str], name: str) -> dict[str, Any]:
    try:
        document = json.loads(environ.get(name, "") or "{}")
    except ValueError:
        raise InputError(f"{name} is not a JSON object: {environ[name]!r}") from None
    if not isinstance(document, dict):
        raise InputError(f"{name} is not a JSON object: {environ[name]!r}")
    return document


def fetch_channels(channels: Sequence[str], input_root: Path) -> list[str]:
    """`NAME=s3://...` channels downloaded into `<input_root>/<NAME>/` (as SageMaker lays them out); others as given."""
    fetched: list[str] = []
    for item in channels:
        name, _, source = item.partition("=")
        if not source.startswith(storage.S3_SCHEME):
            fetched.append(item)
            continue
        prefix = storage.S3Location.parse(source)
        target = input_root / name
        try:
            client = storage.s3_client()
            keys = [key for key in storage.list_keys(client, prefix) if not key.endswith("/")]
            for key in keys:
                relative = key[len(prefix.key) :].lstrip("/") or key.rsplit("/", 1)[-1]
                local = (target / relative).resolve()
                if not local.is_relative_to(target.resolve()):
                    raise InputError(f"channel {name}: object {key!r} would land outside its directory")
                storage.download(client, storage.S3Location(prefix.bucket, key), local)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"cannot read channel {name} from {source}: {storage.describe_error(exc)}") from None
        if not keys:
            raise InputError(f"channel {name}: no objects under {source}")
        fetched.append(f"{name}={target}")
    return fetched


def restore_checkpoints(remote: "storage.S3Location", directory: Path) -> None:
    """Download what the prefix holds into the (empty) checkpoint directory; InputError when S3 cannot be read."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        client = storage.s3_client()
        for key in storage.list_keys(client, remote):
            local = directory / key[len(remote.key) :]
            if key.endswith("/") or local.exists() or not local.resolve().is_relative_to(directory.resolve()):
                continue
            storage.download(client, storage.S3Location(remote.bucket, key), local)
    except Exception as exc:
        raise InputError(f"cannot read the checkpoints at {remote}: {storage.describe_error(exc)}") from None


def sync_checkpoints(directory: Path, remote: "storage.S3Location", only: str | None = None) -> None:
    """Upload every finished file of the checkpoint directory (temporary `.tmp` files are half-written), or `only`.

    A failure is a warning: the job's outcome is the script's, and the files stay in the directory.
    """
    client = storage.s3_client()
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.endswith(".tmp") and only in (None, path.name):
            try:
                storage.upload(client, path, remote.child(path.relative_to(directory).as_posix()))
            except Exception as exc:
                print(f"warning: checkpoint {path.name} not synced to {remote}: {storage.describe_error(exc)}",
                      file=sys.stderr)  # fmt: skip


def _hyperparameters(path: Path) -> dict[str, str]:
    return _decoded(_read_json(path))


def _decoded(document: Mapping[str, Any]) -> dict[str, str]:
    # SageMaker's SDK JSON-encodes every value (strings arrive quoted): decode one level when it parses.
    values: dict[str, str] = {}
    for key, value in document.items():
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            decoded = json.loads(text)
            text = decoded if isinstance(decoded, str) else text
        except ValueError:
            pass
        values[str(key)] = text
    return values


def _as_arguments(hyperparameters: Mapping[str, str]) -> list[str]:
    return [item for key, value in hyperparameters.items() for item in (f"--{key}", value)]


def _command(code: Path, entry: str) -> list[str]:
    if not entry:
        raise InputError("no entry point: set --entry-point, SAGEMAKER_PROGRAM or sagemaker_program")
    if entry.endswith(".py"):
        script = (code / entry).resolve()
        if not script.is_relative_to(code.resolve()) or not script.is_file():
            raise InputError(f"entry point {entry} does not exist in the source {code}")
        return [str(script)]
    return ["-m", entry]


def unpack_source(source: str, target: Path) -> Path:
    """The source as a private directory: a copy of a directory, or an unpacked .tar.gz (local or s3://)."""
    if source.startswith(storage.S3_SCHEME):
        archive = target.parent / "sourcedir.tar.gz"
        try:
            storage.download(storage.s3_client(), storage.S3Location.parse(source), archive)
        except Exception as exc:
            raise InputError(f"cannot read the source {source}: {storage.describe_error(exc)}") from None
        return extract(archive, target, source)
    path = Path(source)
    if path.is_dir():
        shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", ".git"))
        return target
    if path.is_file():
        return extract(path, target, source)
    raise InputError(f"source {source} does not exist")


def extract(archive: Path, target: Path, display: str) -> Path:
    """Unpack `archive` into `target`, refusing members (or links) that would land outside it."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        with tarfile.open(archive, "r:*") as bundle:
            members = bundle.getmembers()
            for member in members:
                destination = (root / member.name).resolve()
                link_ok = True
                if member.issym() or member.islnk():
                    link_ok = (destination.parent / member.linkname).resolve().is_relative_to(root)
                if not destination.is_relative_to(root) or not link_ok or member.isdev():
                    raise InputError(
                        f"source {display}: archive member {member.name!r} would land outside its directory"
                    )
            bundle.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"source {display} does not unpack: {exc}") from None
    return target


def install_requirements(code: Path, prefix: Path) -> list[Path]:
    """`pip install -r requirements.txt` from the source, when it has one, into the job's private `prefix`.

    Not into the runtime's own site-packages: the image's packages stay as built, and a container reused for the
    next job starts without this one's. What the image already has is not installed again. Returns the directories
    to put on the script's PYTHONPATH; InputError (exit 2) naming a requirement that fails. pip runs in the source
    directory, so a line naming a wheel shipped with the code (`wheels/x.whl`) resolves there.
    """
    requirements = code / "requirements.txt"
    if not requirements.is_file():
        return []
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-warn-script-location",
         "--prefix", str(prefix), "-r", str(requirements)],
        capture_output=True,
        text=True,
        check=False,
        cwd=code,
    )  # fmt: skip
    if completed.returncode == 0:
        return sorted(prefix.glob("lib*/python*/site-packages"))
    marker = "No matching distribution found for "
    named = [line.split(marker, 1)[1].strip() for line in completed.stderr.splitlines() if marker in line]
    last = [line for line in completed.stderr.splitlines() if line.strip()][-1:] or ["pip failed"]
    what = named[0] if named else last[0].removeprefix("ERROR: ").strip()
    raise InputError(f"requirements.txt of the source did not install: {what}")


def script_environment(options: Any, hyperparameters: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """SageMaker's script-mode environment, from the channels under /opt/ml/input/data (or --data NAME=PATH)."""
    env = dict(environ)
    channels: dict[str, str] = {}
    input_root = Path(environ.get("MLPLAT_INPUT_DATA_DIR", f"{SM_ROOT}/input/data"))
    if input_root.is_dir():
        channels.update({path.name: str(path) for path in sorted(input_root.iterdir()) if path.is_dir()})
    for key, value in environ.items():
        if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS":
            channels[key.removeprefix("SM_CHANNEL_").lower()] = value
    for item in options.data:
        name, _, path = item.partition("=")
        channels[name] = path
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = path
    hosts = json.loads(environ.get("SM_HOSTS", "[]")) or [socket.gethostname()]
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:
        gpus = 0
    env.update(
        {
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_MODEL_DIR": str(options.model_dir),
            "SM_OUTPUT_DATA_DIR": str(options.output_data_dir),
            "SM_NUM_GPUS": environ.get("SM_NUM_GPUS", str(gpus)),
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": environ.get("SM_CURRENT_HOST", hosts[0]),
            "SM_HPS": json.dumps(dict(hyperparameters)),
            "MLPLAT_CHECKPOINT_DIR": str(options.checkpoint_dir),
        }
    )
    for directory in (options.model_dir, options.output_data_dir, options.checkpoint_dir):
        Path(directory).mkdir(parents=True, exist_ok=True)
    return env


class _Tracking:
    """The MLflow run prepared for the script: created, or resumed from run.json in the checkpoint directory."""

    def __init__(self, client: Any, run_id: str, experiment: str, uri: str) -> None:
        self.client, self.run_id, self.experiment, self.uri = client, run_id, experiment, uri

    @classmethod
    def start(cls, options: Any, env: Mapping[str, str]) -> "_Tracking":
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        job = options.job_name or "mlplat-script"
        identity_path = Path(options.checkpoint_dir) / IDENTITY
        known = _read_json(identity_path)
        if known.get("job_name") == job and known.get("run_id"):
            run_id = str(known["run_id"])
            client.update_run(run_id, status="RUNNING")
            restarts = int(known.get("restarts", 0)) + 1
            client.set_tag(run_id, "mlplat.restarts", str(restarts))
            known["restarts"] = restarts
        else:
            experiment = client.get_experiment_by_name(options.experiment_name)
            experiment_id = (
                experiment.experiment_id if experiment else client.create_experiment(options.experiment_name)
            )
            tags = {
                "mlplat.job_name": job,
                "mlplat.hostname": socket.gethostname(),
                "mlplat.image": env.get("MLPLAT_IMAGE", "local"),
                "mlplat.git_commit": env.get("MLPLAT_GIT_COMMIT", "unknown"),
                "mlplat.world_size": str(len(json.loads(env.get("SM_HOSTS", "[]"))) * max(1, options.nproc_per_node)),
                "mlplat.mode": "script",
            }
            run_id = client.create_run(experiment_id, tags=tags, run_name=job).info.run_id
            known = {"job_name": job, "run_id": run_id, "restarts": 0}
        temporary = identity_path.with_name(IDENTITY + ".tmp")
        temporary.write_text(json.dumps(known), encoding="utf-8")
        os.replace(temporary, identity_path)
        return cls(client, run_id, options.experiment_name, env["MLFLOW_TRACKING_URI"])

    def exported(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_EXPERIMENT_NAME": self.experiment,
            "MLFLOW_RUN_ID": self.run_id,
        }

    def register(self, name: str, gate: tuple[str, bool] | None, promote: bool) -> dict[str, Any]:
        """Register the model the script logged and apply the promotion gate on the run's metric; the result."""
        import mlflow

        from training import registry

        run = self.client.get_run(self.run_id)
        models = self.client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{self.run_id}'"
        )
        if not models:
            raise InputError(f"--registered-model-name {name}: the script logged no model to run {self.run_id}")
        existing = self.client.search_model_versions(f"name = '{name}' and run_id = '{self.run_id}'")
        version = existing[0] if existing else mlflow.register_model(f"models:/{models[0].model_id}", name)
        if gate is None:
            decision = registry.decide(0.0, None, 0.0, promote)
        else:
            metric, higher = gate
            if metric not in run.data.metrics:
                raise InputError(f"--promotion-metric {metric}: the script logged no such metric")
            champion = registry.champion_version(self.client, name)
            champion_score = None
            if champion is not None and str(champion.version) != str(version.version):
                champion_score = self.client.get_run(champion.run_id).data.metrics.get(metric)
            decision = registry.decide(run.data.metrics[metric], champion_score, 0.0, promote, metric, higher)
        for alias in decision.aliases:
            self.client.set_registered_model_alias(name, alias, version.version)
        self.client.set_model_version_tag(name, version.version, "mlplat.decision", decision.decision)
        self.client.set_model_version_tag(name, version.version, "mlplat.decision_reason", decision.reason)
        self.client.set_tag(self.run_id, "mlplat.promotion_decision", decision.decision)
        self.client.set_tag(self.run_id, "mlplat.model_version", str(version.version))
        return {
            **run.data.metrics,
            "run_id": self.run_id,
            "registered_model_name": name,
            "version": str(version.version),
            "decision": decision.decision,
            "aliases": list(decision.aliases),
        }

    def end(self, status: str, failure: str) -> None:
        if failure:
            self.client.set_tag(self.run_id, "mlplat.failure", failure[-4000:])
        self.client.set_terminated(self.run_id, status=status)
