"""The six steps of `mlplat up --local`, run in order by one `UpRun`, which rolls back what it started on failure."""

import subprocess
import time
from pathlib import Path
from typing import Any

from contracts import bucket as layout
from contracts.registry import CHAMPION, model_uri
from mlplat.local import launcher, services
from mlplat.local import state as st
from mlplat.local.bucket import (
    DATASET_NAME,
    DATASET_VERSION,
    ensure_bucket,
    reference_data,
    restore_bucket,
    s3_client,
)
from mlplat.local.files import display
from mlplat.local.registry import (
    EXAMPLE_FILE,
    champion_info,
    predict_example,
    predict_once,
    served_version,
    wait_for_version,
)
from mlplat.local.report import StepFailed, UpReport
from mlplat.local.run_parts import RunParts
from mlplat.local.state import Part

DEFAULT_SERVING_PORT = 8080
SERVING_POLL_SECONDS = 2
# How long a reused serving server may take to hot-swap to a new champion before it is restarted.
SWAP_WAIT = 30.0


class UpRun(RunParts):
    """One invocation of `up`: its six steps, in order, on the bookkeeping of `RunParts`."""

    def execute(self) -> UpReport:
        s3, fresh_store, restored = self.step_store()
        mlflow = self.step_tracking()
        # The serving server imports for seconds and retries the registry until the champion exists: starting it
        # now overlaps its start-up with the upload and the training job.
        with self.attributed(5, self.log("serving")):
            self.prespawn_serving(s3, mlflow)
        self.step_data(s3)
        # A fresh store holds what the last `down` saved; a model trained after that (the store then died) is gone.
        stale = restored is None or restored < float(self.state.model.get("trained_at", 0.0))
        champion, trained = self.step_train(s3, mlflow, must_train=fresh_store and stale)
        serving = self.step_serve(s3, mlflow, champion)
        prediction = self.step_predict(serving, mlflow, champion)
        elapsed = time.monotonic() - self.began
        self.state.model = champion
        self.save()
        parts = self.state.parts
        return UpReport(
            home=self.home,
            stack=self.state.stack,
            db=self.state.db,
            bucket=self.state.bucket,
            urls={name: part.url for name, part in self.state.ordered_parts()},
            pids={name: part.pid for name, part in self.state.ordered_parts()},
            started=list(self.started),
            reused=list(self.reused),
            trained=trained,
            model=champion,
            prediction=prediction,
            seconds_to_first_prediction=elapsed,
            step_seconds=dict(self.timings),
            first_prediction_at=self.first_prediction_at,
            logs={name: display(Path(part.log)) for name, part in parts.items()}
            | ({"train": display(self.log("train"))} if trained else {}),
        )

    def step_store(self) -> tuple[Part, bool, float | None]:
        """1: moto's server mode, the bucket and its prefixes; a fresh store gets the last snapshot back."""
        log = self.log("s3")
        with self.step(1, log) as detail:
            part = self.healthy_part("s3")
            fresh = part is None
            restored: float | None = None
            service = None
            if part is None:
                port = self.port_for("s3", self.previous_ports.get("s3"))
                service = services.spawn_s3(port, log, umask=self.umask, cwd=self.workdir())
                part = self.record(service, services.s3_health_url(service.url))
            # MLflow imports for seconds and needs the store only when artifacts move: start it meanwhile.
            with self.attributed(2, self.log("mlflow")):
                self.prespawn_tracking(part.url)
            if service is not None:
                services.wait_healthy(part.health_url, service.process, self.options.start_timeout, "s3 (moto server)")
            client = s3_client(part.url)
            ensure_bucket(client, self.state.bucket)
            if fresh:
                restored = restore_bucket(client, self.state.bucket, self.home / "s3" / self.state.bucket)
            detail(f"{part.url} bucket {self.state.bucket}" + (" (restored)" if restored is not None else ""))
        return part, fresh, restored

    def prespawn_tracking(self, s3_url: str) -> None:
        if self.state.db != "sqlite" or self.healthy_part("mlflow", upstream=s3_url) is not None:
            return
        self.spawned_mlflow = self.spawn_mlflow(f"sqlite:///{self.home / 'mlflow.db'}", s3_url)

    def spawn_mlflow(self, backend: str, s3_url: str) -> services.Service:
        port = self.port_for("mlflow", self.previous_ports.get("mlflow"))
        service = services.spawn_mlflow(
            port,
            self.log("mlflow"),
            backend,
            layout.s3_uri(self.state.bucket, layout.mlflow_artifacts_key()),
            s3_url,
            umask=self.umask,
            cwd=self.workdir(),
        )
        self.record(service, services.mlflow_health_url(service.url), upstream=s3_url)
        return service

    def step_tracking(self) -> Part:
        """2: (PostgreSQL and) `mlflow server`, artifacts proxied to s3://<bucket>/mlflow."""
        log = self.log("mlflow")
        with self.step(2, log) as detail:
            s3 = self.state.parts["s3"]
            service = self.spawned_mlflow
            if service is None and self.state.db == "postgres":
                detail.log = self.log("postgres")
                backend = self.ensure_postgres()
                detail.log = log
                if self.healthy_part("mlflow", upstream=s3.url) is None:
                    service = self.spawn_mlflow(backend, s3.url)
            if service is not None:
                services.wait_healthy(
                    services.mlflow_health_url(service.url),
                    service.process,
                    self.options.start_timeout,
                    name="mlflow server",
                )
            part = self.state.parts["mlflow"]
            detail(part.url)
        return part

    def ensure_postgres(self) -> str:
        pg_home = self.home / "postgres"
        password = services.postgres_password(pg_home)
        part = self.healthy_part("postgres")
        if part is None:
            port = self.port_for("postgres", self.previous_ports.get("postgres"))
            service = services.start_postgres(
                port, pg_home / "data", self.log("postgres"), password, timeout=self.options.start_timeout
            )
            part = self.record(
                service, f"tcp://{services.LOOPBACK}:{port}", url=f"postgresql://{services.LOOPBACK}:{port}/mlflow"
            )
        return services.postgres_uri(part.port, password)

    def step_data(self, s3: Part) -> None:
        """3: the reference data set under datasets/abalone/v1/ (skipped when the same bytes are there)."""
        with self.step(3) as detail:
            if self.options.project is not None:
                detail("none: your script reads its own data")
                return
            source = reference_data()
            key = layout.dataset_prefix(DATASET_NAME, DATASET_VERSION) + source.name
            client = s3_client(s3.url)
            body = source.read_bytes()
            try:
                head = client.head_object(Bucket=self.state.bucket, Key=key)
                same = int(head["ContentLength"]) == len(body)
            except client.exceptions.ClientError:
                same = False
            if not same:
                client.put_object(Bucket=self.state.bucket, Key=key, Body=body)
            detail(f"s3://{self.state.bucket}/{key}")

    def step_train(self, s3: Part, mlflow: Part, must_train: bool) -> tuple[dict[str, Any], bool]:
        """4: the training entrypoint as a process; registers the model and promotes it to champion.

        Skipped when the registry already has a champion whose artifacts are in the store (unless --retrain).
        """
        log = self.log("train")
        with self.step(4, log) as detail:
            champion = champion_info(mlflow.url, self.model_name)
            project = self.options.project
            # A user's project trains again when its files changed since the champion was trained from them.
            same_source = project is None or (
                self.state.model.get("name") == self.model_name
                and self.state.model.get("source_sha256") == project.digest
            )
            if champion is not None and not must_train and not self.options.retrain and same_source:
                if self.state.model.get("version") == champion["version"]:
                    known = {k: v for k, v in champion.items() if v not in (None, "", {})}
                    champion = {**self.state.model, **known}
                detail(f"{self.model_name} v{champion['version']} is already champion (--retrain to train again)")
                return self.with_endpoint(champion), False
            result = self.run_training(s3, mlflow, log)
            champion = champion_info(mlflow.url, self.model_name)
            if champion is None:
                raise StepFailed(4, "train", f"the job finished but {self.model_name}@{CHAMPION} does not exist", log)
            if project is not None:
                result["source_sha256"] = project.digest
            job_version = str(result.get("version"))
            rmse = _score(result, project is not None)
            if job_version == champion["version"]:
                merged = {**champion, **{k: v for k, v in result.items() if k not in ("aliases", "version")}}
                detail(f"run {result.get('run_id')} → {self.model_name} v{job_version} (champion); {rmse}")
            else:
                # The promotion gate kept the current champion: serve it, and say what became of the new one.
                merged = {**champion, "last_job": result}
                detail(
                    f"run {result.get('run_id')} → {self.model_name} v{job_version} ({result.get('decision')}), "
                    f"{rmse}; v{champion['version']} stays champion"
                )
        return self.with_endpoint(merged), True

    def with_endpoint(self, model: dict[str, Any]) -> dict[str, Any]:
        return {
            **model,
            "name": self.model_name,
            "alias": CHAMPION,
            "uri": model_uri(self.model_name),
            "endpoint_name": self.endpoint,
        }

    def run_training(self, s3: Part, mlflow: Part, log: Path) -> dict[str, Any]:
        project = self.options.project
        job = launcher.LocalTrainingJob(
            bucket=self.state.bucket,
            dataset=DATASET_NAME,
            dataset_version=DATASET_VERSION,
            model_name=self.model_name,
            experiment=f"mlplat-local-{self.state.stack}",
            job_name=f"{self.model_name}-local-{time.strftime('%Y%m%d-%H%M%S')}",
            tracking_uri=mlflow.url,
            s3_url=s3.url,
            work=self.home / "job",
            log=log,
            epochs=self.options.epochs if project is None else project.epochs,
            timeout=self.options.train_timeout,
            command=self.options.training_command,
            cwd=self.workdir(),
            entry_point=project.entry_point if project else None,
            source_dir=project.source_dir if project else None,
        )
        try:
            result = launcher.run(job, on_start=self.started_training)
        except launcher.LaunchError as error:
            raise StepFailed(4, "train", error.reason, error.log) from None
        return {**result.to_json(), "trained_at": time.time()}

    def started_training(self, process: "subprocess.Popen[bytes]") -> None:
        self.training = process

    def serving_upstream(self, s3: Part, mlflow: Part) -> str:
        # A user's project serves another registered model: a server loading the stack's model is not reused.
        served = f" {model_uri(self.model_name)}" if self.options.project is not None else ""
        return f"{mlflow.url} {s3.url}{served}"

    def serving_port(self) -> int:
        """The asked port, else the port a revived server had, else 8080; a free port when that is busy; a clear
        error when the asked port is busy. Clients keep the endpoint they were given."""
        explicit = self.options.port is not None
        preferred = self.options.port or self.previous_ports.get("serving") or DEFAULT_SERVING_PORT
        return self.port_for("serving", preferred, explicit=explicit)

    def prespawn_serving(self, s3: Part, mlflow: Part) -> None:
        if self.healthy_part("serving", upstream=self.serving_upstream(s3, mlflow)) is not None:
            return
        if self.options.port is not None and not services.port_is_free(self.options.port):
            return  # step 5 reports the busy port
        self.spawned_serving = self.spawn_serving(self.serving_port(), s3, mlflow)

    def spawn_serving(self, port: int, s3: Part, mlflow: Part) -> services.Service:
        service = services.spawn_serving(
            port,
            self.log("serving"),
            tracking_uri=mlflow.url,
            model_uri=model_uri(self.model_name),
            env=self.serving_env(s3),
            command=list(self.options.serving_command),
            cwd=self.workdir(),
            umask=self.umask,
        )
        self.record(service, services.serving_health_url(service.url), upstream=self.serving_upstream(s3, mlflow))
        return service

    def step_serve(self, s3: Part, mlflow: Part, champion: dict[str, Any]) -> Part:
        """5: the serving server on 127.0.0.1:8080 (or a free port), loading models:/<name>@champion.

        It captures invocations to s3://<bucket>/data-capture/<endpoint>/ at the stack's capture percentage, as the
        cloud endpoint does, so the drift monitor reads the same layout locally. A reused server that still serves
        an older version gets SWAP_WAIT seconds to hot-swap to the new champion (it polls the alias), then is
        restarted.
        """
        log = self.log("serving")
        wanted = str(champion["version"])
        with self.step(5, log) as detail:
            service = self.spawned_serving
            if service is None and self.healthy_part("serving", self.serving_upstream(s3, mlflow)) is None:
                service = self.spawn_serving(self.serving_port(), s3, mlflow)
            part = self.state.parts["serving"]
            if service is not None:
                services.wait_healthy(part.health_url, service.process, self.options.start_timeout, "serving server")
            if not wait_for_version(part.url, wanted, SWAP_WAIT):
                self.reporter.note(f"serving (pid {part.pid}) still serves an older model; restarting it")
                if "serving" in self.reused:
                    self.reused.remove("serving")
                st.stop_part(part)
                del self.state.parts["serving"]
                self.save()
                port = part.port if services.port_is_free(part.port) else self.serving_port()
                service = self.spawn_serving(port, s3, mlflow)
                part = self.state.parts["serving"]
                services.wait_healthy(part.health_url, service.process, self.options.start_timeout, "serving server")
            detail(f"{part.url} serving {self.model_name} v{served_version(part.url)}")
        return part

    def serving_env(self, s3: Part) -> dict[str, str]:
        env = {
            "MLPLAT_MODEL_CACHE": str(self.home / "model-cache"),
            "MLPLAT_ENDPOINT_NAME": self.endpoint,
            "AWS_ENDPOINT_URL": s3.url,
            # Poll the alias often: the first load follows the training job within seconds, and so does a swap.
            "MLPLAT_MODEL_POLL_INTERVAL": str(SERVING_POLL_SECONDS),
        }
        if self.capture_percent > 0:
            env["MLPLAT_CAPTURE_DESTINATION"] = layout.s3_uri(self.state.bucket, layout.capture_prefix(self.endpoint))
            env["MLPLAT_CAPTURE_PERCENT"] = f"{self.capture_percent:g}"
        return env

    def step_predict(self, serving: Part, mlflow: Part, champion: dict[str, Any]) -> dict[str, Any]:
        """6: a real request to /invocations: a row of the reference data, or a user's model's own example."""
        with self.step(6, Path(serving.log)) as detail:
            try:
                if self.options.project is None:
                    prediction = predict_once(serving.url, reference_data())
                else:
                    prediction = predict_example(serving.url, mlflow.url, self.model_name, str(champion["version"]))
            except ValueError as error:
                raise StepFailed(6, "predict", str(error), None) from None
            self.first_prediction_at = time.time()
            if prediction["actual"] is None:
                detail(f"predicted {prediction['prediction']} (for the model's {EXAMPLE_FILE})")
            else:
                detail(f"predicted {prediction['prediction']} (actual {prediction['actual']:g})")
        return prediction


def _score(result: dict[str, Any], script: bool) -> str:
    """The job's test score for the step's line: the built-in trainer's RMSE, or the test_* metrics a script logged."""
    if not script:
        return f"test RMSE {float(result.get('test_rmse', 'nan')):.3f}"
    logged = {k: v for k, v in result.items() if isinstance(v, float) and k.startswith("test_")}
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(logged.items())) or "no test metric logged"
