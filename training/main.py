"""The entrypoint's flow: settings → data → resume or start → train → evaluate → export → log → register → gate.

Exit statuses: 0 success (the last stdout line is `MLPLAT_RESULT {json}`); 2 bad input (one `error: ...` line on
stderr, nothing tracked or registered); 143 after SIGTERM (130 after SIGINT) once a checkpoint is written; 1 for
anything else, including a tracking server that stayed unreachable (the message names the unsent-metrics file).
Heavy imports (torch, mlflow) wait until the input has been checked, so bad input fails in about a second.
"""

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from contracts.result import result_line
from training import config, interruptions
from training.config import Settings
from training.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    InputError,
    Interrupted,
    TrackingUnavailable,
)

log = logging.getLogger("training")
T = TypeVar("T")
UNSENT_METRICS = "unsent-metrics.jsonl"


class StopSignals:
    """Records SIGTERM/SIGINT instead of dying, so the loop can checkpoint first. A second SIGINT aborts."""

    def __init__(self) -> None:
        self.signum = 0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("received %s: writing a checkpoint and stopping", signal.Signals(signum).name)

    def __call__(self) -> int:
        return self.signum


def main(argv: Sequence[str] | None = None) -> int:
    """Run one training job; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    from training import script

    if script.requested(arguments, os.environ):
        return script.run(arguments, os.environ)
    signals = StopSignals()
    signals.install()
    interruptions.watch(os.environ)
    try:
        settings = config.resolve(arguments, os.environ)
    except InputError as exc:
        return _bad_input(exc)
    _configure_logging(int(os.environ.get("RANK", "0")))
    for key, value in _mlflow_http_defaults().items():
        os.environ.setdefault(key, value)
    job = Job(settings, signals)
    try:
        return job.run()
    except InputError as exc:
        job.abandon("FAILED")
        return _bad_input(exc)
    except Interrupted as exc:
        job.interrupted()
        name = signal.Signals(exc.signum).name
        print(f"stopped by {name}: {job.checkpoint_note()}; start the job again to resume", file=sys.stderr)
        return EXIT_SIGTERM if exc.signum == signal.SIGTERM else EXIT_SIGINT
    except TrackingUnavailable as exc:
        unsent = job.abandon("FAILED")
        where = f"; unsent metrics are in {unsent}" if unsent else ""
        print(
            f"error: tracking server unavailable: {exc}; the model is in {settings.model_dir}{where}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    except Exception as exc:
        traceback.print_exc()
        unsent = job.abandon("FAILED")
        where = f" (unsent metrics are in {unsent})" if unsent else ""
        print(f"error: unexpected failure: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        job.close()


def decisive_config(fingerprint: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """What decides the model: the data's hash, the split, the architecture and the hyperparameters.

    The data's location is left out: the same bytes read from a local copy or from S3 are the same job.
    """
    return {**{key: value for key, value in params.items() if key != "data"}, **fingerprint}


def config_hash(fingerprint: dict[str, Any], params: dict[str, str]) -> str:
    """SHA-256 of `decisive_config`: a checkpoint's identity, with the job's name."""
    decisive = decisive_config(fingerprint, params)
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode("utf-8")).hexdigest()


def changed_config(where: str, recorded: Any, asked: dict[str, Any], recorded_hash: str, asked_hash: str) -> str:
    """The one line for a job that finds its own checkpoint written with another configuration, naming what differs."""
    fix = "(use --start-fresh to discard it)"
    if not isinstance(recorded, dict):  # written before checkpoints recorded their configuration
        return (
            f"the checkpoint in {where} was written with config {recorded_hash[:12]}; this job asks for config "
            f"{asked_hash[:12]} {fix}"
        )
    keys = sorted(key for key in {*recorded, *asked} if recorded.get(key) != asked.get(key))

    def shown(values: dict[str, Any]) -> str:
        return ", ".join(f"{key}={_config_text(values.get(key))}" for key in keys)

    return f"the checkpoint in {where} was written with {shown(recorded)}; this job asks for {shown(asked)} {fix}"


def _config_text(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe_task(encoding: Any) -> str:
    if encoding.task == "classification":
        classes = ", ".join(repr(label) for label in encoding.classes[:10])
        return f"classification of {encoding.target!r} into {len(encoding.classes)} classes ({classes})"
    return f"regression of {encoding.target!r}"


def _bad_input(exc: InputError) -> int:
    message = " ".join(str(exc).split())
    print(f"error: {message}", file=sys.stderr)
    interruptions.note_exit(EXIT_BAD_INPUT)
    return EXIT_BAD_INPUT


def _configure_logging(rank: int) -> None:
    # Progress goes to stdout: stderr is kept for the one-line errors and warnings a caller acts on.
    handler = logging.StreamHandler(sys.stdout)
    prefix = f"[rank {rank}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("training")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False


def _mlflow_http_defaults() -> dict[str, str]:
    from training.tracking import MLFLOW_ENV_DEFAULTS

    return dict(MLFLOW_ENV_DEFAULTS)


def _git_commit(settings: Settings) -> str:
    if settings.git_commit:
        return settings.git_commit
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


class Job:
    """One training job; the attributes fill in as it goes, so failure handling knows what exists."""

    def __init__(self, settings: Settings, signals: StopSignals) -> None:
        self.settings = settings
        self.signals = signals
        self.scratch = tempfile.TemporaryDirectory(prefix="mlplat-training-")
        self.workdir = Path(self.scratch.name)
        self.runtime: Any = None
        self.store: Any = None
        self.client: Any = None
        self.sink: Any = None
        self.run_id: str | None = None
        self.last_checkpoint: str | None = None
        self.restarts = 0
        self.fingerprint: dict[str, Any] = {}
        self.config_hash = ""
        self.config: dict[str, Any] = {}
        self.recipe: Any = None
        # The location's run.json when it is this job's: a restart resumes its run even without a checkpoint.
        self.identity: dict[str, Any] | None = None

    # ---- the flow ----------------------------------------------------------------------------------------------

    def run(self) -> int:
        from training import data

        settings = self.settings
        table = data.load_table(settings.data, settings.target, self.workdir)
        task = table.resolve_task(settings.task)
        rows, files = table.rows, table.files
        splits = data.prepare(table, settings.seed, settings.val_fraction, settings.test_fraction, task)
        self.fingerprint = {
            "dataset_sha256": table.sha256,
            "target": settings.target,
            "task": task,
            "hidden": list(settings.hidden),
            "seed": settings.seed,
            "val_fraction": settings.val_fraction,
            "test_fraction": settings.test_fraction,
            "batch_size": settings.batch_size,
            "encoded_features": list(splits.encoding.encoded_features),
        }
        self.config = decisive_config(self.fingerprint, settings.params())
        self.config_hash = config_hash(self.fingerprint, settings.params())
        from training import distributed  # torch: imported only once the input has passed its checks

        self.runtime = distributed.start(os.environ)
        if self.runtime.is_main:
            self._check_output_directories()
            log.info(
                "data: %d rows from %s (sha256 %s); %s; split train/val/test = %d/%d/%d; %d encoded features",
                rows,
                ", ".join(files),
                table.sha256[:12],
                _describe_task(splits.encoding),
                len(splits.y["train"]),
                len(splits.y["val"]),
                len(splits.y["test"]),
                len(splits.encoding.encoded_features),
            )
            self._claim_checkpoint_location()
        finished = self.runtime.broadcast(self._finished_result() if self.runtime.is_main else None)
        if finished is not None:
            if self.runtime.is_main:
                log.info("job %s already finished; its result follows", settings.job_name)
                print(result_line(finished), flush=True)
            return EXIT_OK
        checkpoint = self.runtime.broadcast(self._load_checkpoint() if self.runtime.is_main else None)
        return self._train(table, splits, checkpoint)

    def _check_output_directories(self) -> None:
        from training import checkpoint as checkpoints

        for path, flag, env in (
            (self.settings.model_dir, "--model-dir", "SM_MODEL_DIR"),
            (self.settings.output_data_dir, "--output-data-dir", "SM_OUTPUT_DATA_DIR"),
        ):
            try:
                path.mkdir(parents=True, exist_ok=True)
                probe = path / ".write-test"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise InputError(f"cannot write to {path}: {exc.strerror or exc} (set {flag} or {env})") from None
        remote = checkpoints.s3_prefix(self.settings.checkpoint_s3_uri, self.settings.job_name)
        self.store = checkpoints.CheckpointStore(self.settings.checkpoint_dir, remote)
        self.store.prepare()

    def _claim_checkpoint_location(self) -> None:
        """Refuse (exit 2, nothing changed) a location that holds another job's files, unless --start-fresh."""
        settings = self.settings
        owner = self.store.read_identity() or self.store.read_result()
        if owner is None:
            found = self.store.load_latest()
            owner = found[1] if found is not None else None
        if owner is None:
            return
        self.identity = owner if "run_id" in owner and "config_hash" in owner else None
        other_job, other_hash = str(owner.get("job_name", "unknown")), str(owner.get("config_hash", "unknown"))
        if (other_job, other_hash) == (settings.job_name, self.config_hash):
            return
        where = str(self.store.directory) + (f" and {self.store.remote}" if self.store.remote is not None else "")
        if not settings.start_fresh and other_job == settings.job_name:
            raise InputError(changed_config(where, owner.get("config"), self.config, other_hash, self.config_hash))
        if not settings.start_fresh:
            raise InputError(
                f"checkpoint location {where} belongs to job {other_job!r} (config {other_hash[:12]}), "
                f"not to this job {settings.job_name!r} (config {self.config_hash[:12]}); "
                "use another --checkpoint-dir, or --start-fresh to delete its files"
            )
        removed = self.store.clear()
        self.identity = None
        log.warning("--start-fresh: deleted job %r's files from %s (%s)", other_job, where, ", ".join(removed))

    def _finished_result(self) -> dict[str, Any] | None:
        result = self.store.read_result()
        if result is None or result.get("config_hash") != self.config_hash:
            return None
        return {key: value for key, value in result.items() if key != "config"}

    def _load_checkpoint(self) -> dict[str, Any] | None:
        found = self.store.load_latest()
        if found is None:
            return None
        name, payload = found
        self.last_checkpoint = name
        log.info("resuming from checkpoint %s (MLflow run %s)", name, payload.get("run_id"))
        return payload

    def _train(self, table: Any, splits: Any, checkpoint: dict[str, Any] | None) -> int:
        import torch

        from training import distributed
        from training.loop import LoopConfig, Progress, Trainer
        from training.model import FlatAdamW, FlatParameters
        from training.recipes import RECIPES
        from training.tracking import NullSink

        settings, runtime = self.settings, self.runtime
        encoding = splits.encoding
        recipe = RECIPES[encoding.task]()
        self.recipe = recipe
        torch.manual_seed(settings.seed)
        net = recipe.build(encoding, settings.hidden, settings.dropout).to(runtime.device)
        threads = torch.get_num_threads()
        if runtime.device.type == "cpu":
            work = sum(parameter.numel() for parameter in net.parameters()) * settings.batch_size
            threads = distributed.configure_threads(os.environ, runtime.local_world_size, work)
        flat = FlatParameters(net)
        optimizer = FlatAdamW(flat, settings.lr, settings.weight_decay)
        progress = Progress()
        if checkpoint is not None:
            net.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            best = checkpoint.get("best_weights")
            progress = Progress.from_meta(checkpoint["progress"], best if best is not None and best.numel() else None)
            if checkpoint.get("world_size") != runtime.world_size and progress.batches_done:
                # Batch positions depend on the shard layout: restart the interrupted epoch's order from its top.
                progress.batches_done, progress.loss_sum, progress.loss_count = 0, 0.0, 0
            torch.set_rng_state(checkpoint["rng"]["torch"])
            if torch.cuda.is_available() and checkpoint["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(checkpoint["rng"]["cuda"])

        train, val, test = (
            recipe.tensors(splits.x[name], splits.y[name], encoding, runtime.device)
            for name in ("train", "val", "test")
        )
        self.sink = NullSink()
        if runtime.is_main:
            self._start_tracking(table, checkpoint)
        save = self._checkpoint_writer(net, optimizer)
        trainer = Trainer(
            net,
            flat,
            optimizer,
            runtime,
            LoopConfig(settings.epochs, settings.batch_size, settings.patience, settings.seed),
            train,
            val,
            self.signals,
            recipe,
        )
        if self.signals():
            raise Interrupted(self.signals())
        if runtime.is_main:
            start = progress.epochs_done + 1
            log.info(
                "training on %s%s%s: epochs %d..%d, %d batches of %d per epoch%s",
                runtime.device,
                f" ({threads} threads)" if runtime.device.type == "cpu" else "",
                f" x{runtime.world_size} ranks" if runtime.distributed else "",
                start,
                settings.epochs,
                trainer.batches_per_epoch,
                trainer.local_batch,
                f" (resuming at batch {progress.batches_done})" if progress.batches_done else "",
            )

        def on_epoch(metrics: dict[str, float], epoch: int) -> None:
            shown = {key: metrics[key] for key in recipe.epoch_metrics}
            self.sink.log_metrics(shown, epoch)
            text = " ".join(f"{key}={value:.4f}" for key, value in shown.items())
            log.info("epoch %d/%d %s", epoch, settings.epochs, text)

        progress = trainer.run(progress, on_epoch, save)
        if not runtime.is_main:
            return EXIT_OK
        log.info("training stopped (%s) after epoch %d", progress.stop_reason, progress.epochs_done)
        return self._finish(net, flat, progress, table, splits, train, test)

    # ---- tracking and checkpoints --------------------------------------------------------------------------------

    def _start_tracking(self, table: Any, checkpoint: dict[str, Any] | None) -> None:
        import mlflow
        from mlflow import MlflowClient

        from training.tracking import AsyncMetricSink

        settings = self.settings
        client = MlflowClient()
        self.client = client
        resumed = checkpoint if checkpoint is not None and checkpoint.get("run_id") else self.identity
        if resumed is not None:
            run_id = str(resumed["run_id"])
            self._call(lambda: client.update_run(run_id, status="RUNNING"), "resume the MLflow run")
            restarts = int(resumed.get("restarts", 0)) + 1
            self._call(lambda: client.set_tag(run_id, "mlplat.restarts", str(restarts)), "tag the run")
            self._call(lambda: interruptions.resumed(client, run_id, restarts + 1), "record the restart")
            self.restarts = restarts
        else:
            experiment_id = self._call(lambda: self._experiment_id(client), "find the MLflow experiment")
            commit = _git_commit(settings)
            tags = {
                "mlplat.git_commit": commit,
                "mlplat.dataset_sha256": table.sha256,
                "mlplat.image": settings.image,
                "mlplat.hostname": socket.gethostname(),
                "mlplat.job_name": settings.job_name,
                "mlplat.world_size": str(self.runtime.world_size),
                "mlplat.device": str(self.runtime.device),
                "mlflow.source.name": "python -m training",
            }
            if commit != "unknown":
                tags["mlflow.source.git.commit"] = commit
            run = self._call(
                lambda: client.create_run(experiment_id, tags=tags, run_name=settings.job_name),
                "create the MLflow run",
            )
            run_id = run.info.run_id
            # Before anything else can fail: whatever happens from here on, a restart finds and resumes this run.
            self.store.write_identity(self._identity(run_id))
            params = [mlflow.entities.Param(key, value) for key, value in settings.params().items()]
            self._call(lambda: client.log_batch(run_id, params=params), "log the parameters")
            self.restarts = 0
        self.run_id = run_id
        self.sink = AsyncMetricSink(client, run_id)
        if checkpoint is not None:
            self.sink.restore(checkpoint.get("pending_metrics", []))
        log.info("MLflow run %s at %s", run_id, mlflow.get_tracking_uri())

    def _experiment_id(self, client: Any) -> str:
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(self.settings.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(client.create_experiment(self.settings.experiment_name))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return str(client.get_experiment_by_name(self.settings.experiment_name).experiment_id)

    def _checkpoint_writer(self, net: Any, optimizer: Any) -> Any:
        import torch

        from training.checkpoint import checkpoint_name, pack

        def save(progress: Any, urgent: bool) -> None:
            if not self.runtime.is_main:
                return
            meta = {
                "job_name": self.settings.job_name,
                "config_hash": self.config_hash,
                "config": self.config,
                "run_id": self.run_id,
                "fingerprint": self.fingerprint,
                "world_size": self.runtime.world_size,
                "restarts": self.restarts,
                "progress": progress.to_meta(),
                "pending_metrics": self.sink.pending(),
            }
            tensors = {
                # Serialised at once, before the next step changes them: no copies needed.
                "model": {key: value.detach() for key, value in net.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "best_weights": progress.best_weights if progress.best_weights is not None else torch.empty(0),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                },
            }
            payload = pack(meta, tensors)
            name = checkpoint_name(progress.epochs_done, progress.batches_done)
            self.store.save(payload, name, urgent=urgent)
            self.last_checkpoint = name

        return save

    def _identity(self, run_id: str) -> dict[str, Any]:
        return {
            "job_name": self.settings.job_name,
            "config_hash": self.config_hash,
            "config": self.config,
            "run_id": run_id,
            "experiment_name": self.settings.experiment_name,
        }

    def _call(self, call: Callable[[], T], what: str) -> T:
        """A tracking call, retried while the server is away (up to --tracking-timeout); a signal interrupts it."""
        from training.tracking import retrying

        return retrying(call, what, self.settings.tracking_timeout, self.signals)

    def checkpoint_note(self) -> str:
        if self.last_checkpoint is None or self.store is None:
            return "no checkpoint was needed yet"
        where = f" and {self.store.remote}" if self.store.remote is not None else ""
        return f"checkpoint {self.last_checkpoint} is in {self.store.directory}{where}"

    def interrupted(self) -> None:
        """After a termination signal: send what we can quickly, mark the run KILLED, make sure S3 has the file."""
        if self.store is not None:
            self.store.wait(20.0)
        if self.sink is not None:
            self.sink.close(3.0)
        epoch = interruptions.checkpoint_epoch(self.last_checkpoint)
        interruptions.record(self.client, self.run_id, self.signals() or signal.SIGTERM, epoch)
        self._set_status("KILLED", timeout=3.0)

    def abandon(self, status: str) -> Path | None:
        """After a failure: end the run with `status` and keep unsent metrics in a file (returned)."""
        unsent: Path | None = None
        if self.sink is not None and not self.sink.close(5.0):
            unsent = self._write_unsent()
        self._set_status(status, timeout=5.0)
        return unsent

    def _write_unsent(self) -> Path | None:
        from training.tracking import write_unsent

        records = self.sink.pending() if self.sink is not None else []
        if not records or self.run_id is None:
            return None
        for directory in (self.settings.output_data_dir, self.settings.checkpoint_dir, self.workdir.parent):
            try:
                return write_unsent(self.run_id, records, directory / UNSENT_METRICS)
            except OSError:
                continue
        return None

    def _set_status(self, status: str, timeout: float) -> None:
        if self.client is None or self.run_id is None:
            return
        from training.tracking import retrying

        client, run_id = self.client, self.run_id
        try:
            retrying(lambda: client.set_terminated(run_id, status=status), f"mark the run {status}", timeout)
        except Exception as exc:
            log.warning("could not mark MLflow run %s as %s: %s", run_id, status, exc)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
        self.scratch.cleanup()

    # ---- evaluation, export, registration ----------------------------------------------------------------------

    def _checkpoint_signal(self) -> None:
        if self.signals():
            raise Interrupted(self.signals())

    def _finish(self, net: Any, flat: Any, progress: Any, table: Any, splits: Any, train: Any, test: Any) -> int:
        from training import export, profile, registry, report

        settings, client, run_id, recipe = self.settings, self.client, self.run_id, self.recipe
        encoding = splits.encoding
        assert run_id is not None
        if progress.best_weights is not None:
            flat.restore(progress.best_weights.to(flat.flat.device))
        scores = recipe.evaluate(net, test, splits.y["train"])
        final = {
            **scores,
            f"best_{recipe.selection}": progress.best_score,
            "best_epoch": float(progress.best_epoch),
            "epochs_trained": float(progress.epochs_done),
        }
        self.sink.log_metrics(final, progress.epochs_done)
        log.info("%s", recipe.summary(final))

        # Files first, on local disk: they exist even if the tracking server is gone.
        output = settings.output_data_dir
        files = export.write_model_files(net, encoding, self.workdir / "model-files")
        reference = profile.with_prediction(
            splits.feature_profile, len(splits.y["train"]), recipe.profiled(net, train.x), settings.seed
        )
        profile_path = output / "reference_profile.json"
        profile_path.write_text(json.dumps(reference), encoding="utf-8")
        curves = report.plot_curves(progress.history, output / report.CURVES, progress.best_epoch)
        document = {
            "run_id": run_id,
            "job_name": settings.job_name,
            "task": encoding.task,
            "dataset_sha256": table.sha256,
            "final": final,
            "stop_reason": progress.stop_reason,
            "history": progress.history,
        }
        metrics_path = report.write_metrics(document, output / report.METRICS)
        example = splits.example
        outputs = recipe.outputs(net, train.x[: len(example)], encoding)
        arguments = registry.model_arguments(files, example, outputs, classifier=encoding.task == "classification")
        registry.save_to_directory(arguments, settings.model_dir)
        log.info("model written to %s; outputs in %s", settings.model_dir, output)
        self._checkpoint_signal()

        for path in (profile_path, curves, metrics_path):
            self._call(partial(client.log_artifact, run_id, str(path)), f"log {path.name}")
        model_info = self._call(lambda: registry.log_model(run_id, arguments), "log the model")
        self._checkpoint_signal()
        name = settings.registered_model_name
        version = self._call(lambda: registry.register(client, name, model_info, run_id), "register the model")
        log.info("registered %s version %s", name, version.version)
        metric = recipe.promotion_metric
        decision = self._call(
            lambda: self._gate(name, version, final[metric], splits),
            "apply the promotion gate",
        )
        self._apply_decision(name, version, decision, final, table.sha256)
        log.info("promotion gate: %s (%s); aliases set: %s", decision.decision, decision.reason, decision.aliases)

        unsent = None
        if not self.sink.close(settings.tracking_timeout):
            unsent = self._write_unsent()
            log.warning("some metrics never reached the tracking server; they are in %s", unsent)
        self._call(lambda: client.set_terminated(run_id, status="FINISHED"), "finish the run")
        result = {
            "run_id": run_id,
            "experiment_name": settings.experiment_name,
            "task": encoding.task,
            "model_uri": f"models:/{name}/{version.version}",
            "logged_model_uri": model_info.model_uri,
            "registered_model_name": name,
            "version": str(version.version),
            **scores,
            "promotion_metric": metric,
            "decision": decision.decision,
            "aliases": decision.aliases,
            "decision_reason": decision.reason,
            "champion_version": decision.champion_version,
            f"champion_{metric}": decision.champion_score,
            "epochs_trained": progress.epochs_done,
            "best_epoch": progress.best_epoch,
            "stop_reason": progress.stop_reason,
            "dataset_sha256": table.sha256,
            "job_name": settings.job_name,
            "config_hash": self.config_hash,
            "model_dir": str(settings.model_dir),
            "output_data_dir": str(output),
            "unsent_metrics_file": str(unsent) if unsent else None,
        }
        if encoding.task == "classification":
            result["classes"] = list(encoding.classes)
        # The stored result names the configuration too (a later job's refusal names what differs); the line not.
        self.store.write_result({**result, "config": self.config})
        self.store.wait(30.0)
        self.sink = None
        print(result_line(result), flush=True)
        return EXIT_OK

    def _apply_decision(self, name: str, version: Any, decision: Any, final: dict[str, float], sha256: str) -> None:
        client, run_id, metric = self.client, self.run_id, self.recipe.promotion_metric
        assert run_id is not None
        for alias in decision.aliases:
            self._call(
                partial(client.set_registered_model_alias, name, alias, version.version),
                f"set alias {alias}",
            )
        version_tags = {
            "mlplat.decision": decision.decision,
            "mlplat.decision_reason": decision.reason,
            "mlplat.task": self.recipe.task,
            f"mlplat.{metric}": repr(final[metric]),
            "mlplat.dataset_sha256": sha256,
        }
        if "rmse_ratio_to_mean" in final:
            version_tags["mlplat.rmse_ratio_to_mean"] = repr(final["rmse_ratio_to_mean"])
        if decision.champion_version is not None:
            version_tags["mlplat.champion_version"] = decision.champion_version
            version_tags[f"mlplat.champion_{metric}"] = repr(decision.champion_score)
        for key, value in version_tags.items():
            self._call(
                partial(client.set_model_version_tag, name, version.version, key, value),
                "tag the version",
            )
        run_tags = {"mlplat.promotion_decision": decision.decision, "mlplat.model_version": str(version.version)}
        for key, value in run_tags.items():
            self._call(partial(client.set_tag, run_id, key, value), "tag the run")

    def _gate(self, name: str, version: Any, new_score: float, splits: Any) -> Any:
        from training import registry

        recipe, settings = self.recipe, self.settings
        champion = registry.champion_version(self.client, name)
        label, higher = recipe.promotion_label, recipe.higher_is_better
        if champion is None:
            return registry.decide(new_score, None, settings.promotion_margin, settings.promote, label, higher)
        if str(champion.version) == str(version.version):
            # A resumed finalisation that had already promoted this version.
            return registry.Decision(registry.CHAMPION, [registry.CHALLENGER, registry.CHAMPION], None, None, "")
        champion_score = registry.score_version(
            name,
            champion,
            recipe.promotion_metric,
            lambda model: recipe.score(model, splits.test_frame, splits.y["test"], splits.encoding),
        )
        if champion_score is None:
            return registry.Decision(
                "rejected", [], str(champion.version), None, f"champion version {champion.version} could not be scored"
            )
        decision = registry.decide(
            new_score, champion_score, settings.promotion_margin, settings.promote, label, higher
        )
        return registry.Decision(
            decision.decision, decision.aliases, str(champion.version), champion_score, decision.reason
        )
