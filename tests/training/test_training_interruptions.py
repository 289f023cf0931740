"""Interruptions on the run: a real training process gets SIGTERM, or a spot notice from a fake IMDS on 127.0.0.1."""

import json
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from training_support import job_dirs, run_training, start_training

EPOCHS = 6
TOKEN = "AQAEAFakeImdsV2Token=="


class FakeImds:
    """IMDSv2 as EC2 answers it: a PUT for a token, then reads that must carry it; a spot notice once armed."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.requests: list[tuple[str, str, str | None]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: str = "") -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def do_PUT(self) -> None:
                imds.requests.append(("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")))
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._answer(200, TOKEN)
                return self._answer(400)

            def do_GET(self) -> None:
                imds.requests.append(("GET", self.path, self.headers.get("X-aws-ec2-metadata-token")))
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    return self._answer(401)
                if self.path == "/latest/meta-data/instance-life-cycle":
                    return self._answer(200, "spot")
                if self.path == "/latest/meta-data/spot/instance-action" and imds.armed.is_set():
                    return self._answer(200, json.dumps({"action": "terminate", "time": "2026-12-06T04:30:00Z"}))
                return self._answer(404)

        return Handler


@pytest.fixture
def imds() -> Iterator[tuple[FakeImds, str]]:
    fake = FakeImds()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def arguments(tmp_path: Path, data: Path, bucket: str, job: str) -> list[str]:
    return [
        "--data", str(data), *job_dirs(tmp_path), "--epochs", str(EPOCHS), "--patience", "0", "--batch-size", "32",
        "--job-name", job, "--checkpoint-s3-uri", f"s3://{bucket}/checkpoints/{job}",
        "--registered-model-name", f"abalone-{job}", "--experiment-name", "training-interruptions",
    ]  # fmt: skip


def run_id_of(stdout: str) -> str:
    return next(line.split("MLflow run ")[1].split()[0] for line in stdout.splitlines() if "MLflow run " in line)


def test_sigterm_records_the_interruption_and_the_restart_shows_its_attempts_and_time_lost(
    tmp_path: Path, large_abalone: Path, tracking_env: dict[str, str], s3_server: Any, mlflow_client: Any
) -> None:
    args = arguments(tmp_path, large_abalone, s3_server.bucket, "interrupt-sigterm")
    first = start_training(args, env={**tracking_env, "MLPLAT_CAPACITY_TYPE": "on-demand"})
    first.wait_for("epoch 2/")
    first.process.send_signal(signal.SIGTERM)
    stopped = first.finish()
    run_id = run_id_of(stopped.stdout)

    assert stopped.returncode == 143, stopped.stderr
    tags = mlflow_client.get_run(run_id).data.tags
    event = json.loads(tags["mlplat.last_interruption"])
    assert (event["event"], event["kind"], event["capacity_type"], tags["mlplat.interruptions"]) == (
        "interrupted", "sigterm", "on-demand", "1",
    )  # fmt: skip
    assert isinstance(event["epoch"], int) and 1 <= event["epoch"] < EPOCHS
    recorded = json.loads(
        Path(mlflow_client.download_artifacts(run_id, "interruptions/interruption-1.json")).read_text()
    )
    assert recorded == event

    resumed = run_training(args, env=tracking_env)

    assert resumed.returncode == 0, resumed.stderr
    run = mlflow_client.get_run(run_id)
    assert (run.info.status, run.data.tags["mlplat.attempts"]) == ("FINISHED", "2")
    assert float(run.data.tags["mlplat.time_lost_seconds"]) > 0
    assert [m.step for m in mlflow_client.get_metric_history(run_id, "time_lost_seconds")] == [2]


def test_a_spot_notice_from_instance_metadata_checkpoints_at_once_and_is_recorded_as_spot(
    tmp_path: Path,
    large_abalone: Path,
    tracking_env: dict[str, str],
    s3_server: Any,
    mlflow_client: Any,
    imds: tuple[FakeImds, str],
) -> None:
    fake, endpoint = imds
    env = {
        **tracking_env,
        "MLPLAT_WATCH_SPOT": "1",
        "MLPLAT_IMDS_ENDPOINT": endpoint,
        "MLPLAT_SPOT_POLL_SECONDS": "0.2",
    }
    first = start_training(arguments(tmp_path, large_abalone, s3_server.bucket, "interrupt-spot"), env=env)
    first.wait_for("epoch 2/")
    fake.armed.set()
    stopped = first.finish()

    assert stopped.returncode == 143, stopped.stderr
    assert stopped.stderr_lines[-1].startswith("stopped by SIGTERM: checkpoint ckpt-")
    event = json.loads(mlflow_client.get_run(run_id_of(stopped.stdout)).data.tags["mlplat.last_interruption"])
    assert (event["kind"], event["capacity_type"], event["notice"]) == (
        "spot", "spot", {"action": "terminate", "time": "2026-12-06T04:30:00Z"},
    )  # fmt: skip
    assert fake.requests[0] == ("PUT", "/latest/api/token", "21600")
    assert {token for method, _, token in fake.requests if method == "GET"} == {TOKEN}


def test_the_gang_launcher_passes_the_runtimes_bad_input_status_through_torchrun(tmp_path: Path) -> None:
    launched = run_training(
        [
            str(Path(sys.executable).parent / "torchrun"),
            "--nnodes=1",
            "--nproc-per-node=1",
            "-m",
            "training",
            "--data",
            str(tmp_path / "missing.csv"),
        ],
        module=["-m", "training.gang"],
    )

    assert launched.returncode == 2, launched.stderr
