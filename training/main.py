"""The entrypoint's flow: settings → data → resume or start → train → evaluate → export → log → register → gate.

Exit statuses: 0 success (the last stdout line is `MLPLAT_RESULT {json}`); 2 bad input (one `error: ...` line on
stderr, nothing tracked or registered); 143 after SIGTERM (130 after SIGINT) once a checkpoint is written; 1 for
anything else, including a tracking server that stayed unreachable (the message names the unsent-metrics file).
Heavy imports (torch, mlflow) wait until the input has been checked, so bad input fails in about a second.
"""

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
RESULT_PREFIX = "MLPLAT_RESULT "
UNSENT_METRICS = "unsent-metrics.jsonl"
# Logged to MLflow every epoch. metrics.json and the curves also have the validation loss (val_rmse² in standardised
# units, so redundant here) and each epoch's duration: every metric row costs the tracking server CPU.
EPOCH_METRICS = ("train_loss", "val_rmse", "val_mae", "val_r2")


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

    # ---- the flow ----------------------------------------------------------------------------------------------

    def run(self) -> int:
        from training import data

        settings = self.settings
        table = data.load_table(settings.data, settings.target, self.workdir)
        splits = data.prepare(table, settings.seed, settings.val_fraction, settings.test_fraction)
        self.fingerprint = {
            "dataset_sha256": table.sha256,
            "target": settings.target,
            "hidden": list(settings.hidden),
            "seed": settings.seed,
            "val_fraction": settings.val_fraction,
            "test_fraction": settings.test_fraction,
            "batch_size": settings.batch_size,
            "encoded_features": list(splits.encoding.encoded_features),
        }
        from training import distributed  # torch: imported only once the input has passed its checks

        self.runtime = distributed.start(os.environ)
        if self.runtime.is_main:
            self._check_output_directories()
            log.info(
                "data: %d rows from %s (sha256 %s); split train/val/test = %d/%d/%d; %d encoded features",
                len(table.frame),
                ", ".join(table.files),
                table.sha256[:12],
                len(splits.y["train"]),
                len(splits.y["val"]),
                len(splits.y["test"]),
                len(splits.encoding.encoded_features),
            )
        finished = self.runtime.broadcast(self._finished_result() if self.runtime.is_main else None)
        if finished is not None:
            if self.runtime.is_main:
                log.info("job %s already finished; its result follows", settings.job_name)
                print(RESULT_PREFIX + json.dumps(finished), flush=True)
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

    def _finished_result(self) -> dict[str, Any] | None:
        result = self.store.read_result()
        if result is None or result.get("dataset_sha256") != self.fingerprint["dataset_sha256"]:
            return None
        return result

    def _load_checkpoint(self) -> dict[str, Any] | None:
        found = self.store.load_latest()
        if found is None:
            return None
        name, payload = found
        recorded = payload.get("fingerprint", {})
        for key, value in self.fingerprint.items():
            if recorded.get(key) != value:
                raise InputError(
                    f"checkpoint {name} in {self.settings.checkpoint_dir} belongs to a different job "
                    f"({key} was {recorded.get(key)!r}, now {value!r}); use another --job-name or --checkpoint-dir"
                )
        self.last_checkpoint = name
        log.info("resuming from checkpoint %s (MLflow run %s)", name, payload.get("run_id"))
        return payload

    def _train(self, table: Any, splits: Any, checkpoint: dict[str, Any] | None) -> int:
        import torch

        from training import distributed
        from training.loop import LoopConfig, Progress, Tensors, Trainer
        from training.model import FlatAdamW, FlatParameters, MLPRegressor
        from training.tracking import NullSink

        settings, runtime = self.settings, self.runtime
        encoding = splits.encoding
        torch.manual_seed(settings.seed)
        net = MLPRegressor(
            len(encoding.encoded_features), settings.hidden, settings.dropout, encoding.target_mean, encoding.target_std
        ).to(runtime.device)
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

        device = runtime.device

        def tensors(name: str) -> Tensors:
            y = torch.from_numpy(splits.y[name]).to(device)
            y_std = (y - encoding.target_mean) / encoding.target_std
            return Tensors(x=torch.from_numpy(splits.x[name]).to(device), y_std=y_std.float(), y=y)

        train, val, test = tensors("train"), tensors("val"), tensors("test")
        self.sink = NullSink()
        if runtime.is_main:
            self._start_tracking(table, checkpoint)
        save = self._checkpoint_writer(net, optimizer)
        if runtime.is_main and checkpoint is None:
            save(progress, False)  # the run id is on disk before the first epoch: a restart continues this run
        trainer = Trainer(
            net,
            flat,
            optimizer,
            runtime,
            LoopConfig(settings.epochs, settings.batch_size, settings.patience, settings.seed),
            train,
            val,
            self.signals,
        )
        if self.signals():
            raise Interrupted(self.signals())
        if runtime.is_main:
            start = progress.epochs_done + 1
            log.info(
                "training on %s%s%s: epochs %d..%d, %d batches of %d per epoch%s",
                device,
                f" ({threads} threads)" if device.type == "cpu" else "",
                f" x{runtime.world_size} ranks" if runtime.distributed else "",
                start,
                settings.epochs,
                trainer.batches_per_epoch,
                trainer.local_batch,
                f" (resuming at batch {progress.batches_done})" if progress.batches_done else "",
            )

        def on_epoch(metrics: dict[str, float], epoch: int) -> None:
            self.sink.log_metrics({key: metrics[key] for key in EPOCH_METRICS}, epoch)
            log.info(
                "epoch %d/%d train_loss=%.4f val_rmse=%.4f val_mae=%.4f val_r2=%.4f",
                epoch,
                settings.epochs,
                metrics["train_loss"],
                metrics["val_rmse"],
                metrics["val_mae"],
                metrics["val_r2"],
            )

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
        if checkpoint is not None and checkpoint.get("run_id"):
            run_id = str(checkpoint["run_id"])
            self._call(lambda: client.update_run(run_id, status="RUNNING"), "resume the MLflow run")
            restarts = int(checkpoint.get("restarts", 0)) + 1
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
        import numpy as np

        from training import export, profile, registry, report
        from training.loop import predict, regression_metrics

        settings, client, run_id = self.settings, self.client, self.run_id
        assert run_id is not None
        if progress.best_weights is not None:
            flat.restore(progress.best_weights.to(flat.flat.device))
        test_prediction = predict(net, test.x)
        truth = splits.y["test"].astype(np.float64)
        scores = regression_metrics(test_prediction, truth)
        baseline = float(np.sqrt(np.mean((truth - float(splits.y["train"].mean())) ** 2)))
        final = {
            "test_rmse": scores["rmse"],
            "test_mae": scores["mae"],
            "test_r2": scores["r2"],
            "baseline_test_rmse": baseline,
            "rmse_ratio_to_mean": scores["rmse"] / baseline if baseline > 0 else float("nan"),
            "best_val_rmse": progress.best_val_rmse,
            "best_epoch": float(progress.best_epoch),
            "epochs_trained": float(progress.epochs_done),
        }
        self.sink.log_metrics(final, progress.epochs_done)
        log.info(
            "test RMSE %.4f (predicting the training mean: %.4f; ratio %.3f), MAE %.4f, R² %.4f",
            final["test_rmse"],
            baseline,
            final["rmse_ratio_to_mean"],
            final["test_mae"],
            final["test_r2"],
        )

        # Files first, on local disk: they exist even if the tracking server is gone.
        output = settings.output_data_dir
        files = export.write_model_files(net, splits.encoding, self.workdir / "model-files")
        train_prediction = predict(net, train.x)
        reference = profile.reference_profile(
            splits.raw["train"], table.numeric, table.categorical, train_prediction, settings.seed
        )
        profile_path = output / "reference_profile.json"
        profile_path.write_text(json.dumps(reference), encoding="utf-8")
        curves = report.plot_curves(progress.history, output / report.CURVES, progress.best_epoch)
        document = {
            "run_id": run_id,
            "job_name": settings.job_name,
            "dataset_sha256": table.sha256,
            "final": final,
            "stop_reason": progress.stop_reason,
            "history": progress.history,
        }
        metrics_path = report.write_metrics(document, output / report.METRICS)
        example = splits.raw["train"].head(5)
        arguments = registry.model_arguments(files, example, predict(net, train.x[:5]), settings.target)
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
        decision = self._call(
            lambda: self._gate(name, version, final["test_rmse"], splits),
            "apply the promotion gate",
        )
        for alias in decision.aliases:
            self._call(
                partial(client.set_registered_model_alias, name, alias, version.version),
                f"set alias {alias}",
            )
        version_tags = {
            "mlplat.decision": decision.decision,
            "mlplat.decision_reason": decision.reason,
            "mlplat.test_rmse": repr(final["test_rmse"]),
            "mlplat.rmse_ratio_to_mean": repr(final["rmse_ratio_to_mean"]),
            "mlplat.dataset_sha256": table.sha256,
        }
        if decision.champion_version is not None:
            version_tags["mlplat.champion_version"] = decision.champion_version
            version_tags["mlplat.champion_test_rmse"] = repr(decision.champion_test_rmse)
        for key, value in version_tags.items():
            self._call(
                partial(client.set_model_version_tag, name, version.version, key, value),
                "tag the version",
            )
        run_tags = {"mlplat.promotion_decision": decision.decision, "mlplat.model_version": str(version.version)}
        for key, value in run_tags.items():
            self._call(partial(client.set_tag, run_id, key, value), "tag the run")
        log.info("promotion gate: %s (%s); aliases set: %s", decision.decision, decision.reason, decision.aliases)

        unsent = None
        if not self.sink.close(settings.tracking_timeout):
            unsent = self._write_unsent()
            log.warning("some metrics never reached the tracking server; they are in %s", unsent)
        self._call(lambda: client.set_terminated(run_id, status="FINISHED"), "finish the run")
        result = {
            "run_id": run_id,
            "experiment_name": settings.experiment_name,
            "model_uri": f"models:/{name}/{version.version}",
            "logged_model_uri": model_info.model_uri,
            "registered_model_name": name,
            "version": str(version.version),
            "test_rmse": final["test_rmse"],
            "test_mae": final["test_mae"],
            "test_r2": final["test_r2"],
            "baseline_test_rmse": baseline,
            "rmse_ratio_to_mean": final["rmse_ratio_to_mean"],
            "decision": decision.decision,
            "aliases": decision.aliases,
            "decision_reason": decision.reason,
            "champion_version": decision.champion_version,
            "champion_test_rmse": decision.champion_test_rmse,
            "epochs_trained": progress.epochs_done,
            "best_epoch": progress.best_epoch,
            "stop_reason": progress.stop_reason,
            "dataset_sha256": table.sha256,
            "job_name": settings.job_name,
            "model_dir": str(settings.model_dir),
            "output_data_dir": str(output),
            "unsent_metrics_file": str(unsent) if unsent else None,
        }
        self.store.write_result(result)
        self.store.wait(30.0)
        self.sink = None
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return EXIT_OK

    def _gate(self, name: str, version: Any, test_rmse: float, splits: Any) -> Any:
        from training import registry

        champion = registry.champion_version(self.client, name)
        if champion is None:
            return registry.decide(test_rmse, None, self.settings.promotion_margin, self.settings.promote)
        if str(champion.version) == str(version.version):
            # A resumed finalisation that had already promoted this version.
            return registry.Decision(registry.CHAMPION, [registry.CHALLENGER, registry.CHAMPION], None, None, "")
        champion_rmse = registry.score_version(name, champion, splits.raw["test"], splits.y["test"])
        if champion_rmse is None:
            return registry.Decision(
                "rejected", [], str(champion.version), None, f"champion version {champion.version} could not be scored"
            )
        decision = registry.decide(test_rmse, champion_rmse, self.settings.promotion_margin, self.settings.promote)
        return registry.Decision(
            decision.decision, decision.aliases, str(champion.version), champion_rmse, decision.reason
        )
