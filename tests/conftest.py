"""Session-wide servers for the suite: one S3-compatible store (moto) and one real `mlflow server`, on loopback."""

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from mlplat.local import services

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACT_BUCKET = "mlplat-test-artifacts"
_UNTRACKED_AT_START = pytest.StashKey[set[str] | None]()


# Build and tool caches; anything else new in the checkout, ignored by .gitignore or not, was left behind by a test.
_CACHES = (".venv/", ".venv-checkov/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "__pycache__/", ".egg-info/")


def _untracked() -> set[str] | None:
    """Files and directories git does not track in the checkout, ignored ones too; None outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--others", "--directory"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {path for path in listed.stdout.splitlines() if not any(cache in path for cache in _CACHES)}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_UNTRACKED_AT_START] = _untracked()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Tests and the processes they start write to temporary directories only; a stray file in the checkout (metric
    # databases, an ./mlruns store) means some process ran with the repository as its working directory.
    before, after = session.stash.get(_UNTRACKED_AT_START, None), _untracked()
    if before is None or after is None or not (left := sorted(after - before)):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"the test run left {len(left)} new file(s) in the checkout: {', '.join(left[:10])}", red=True
        )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@dataclass(frozen=True)
class S3Server:
    """The moto server of this test session."""

    endpoint_url: str
    bucket: str

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.endpoint_url, **_aws_kwargs())


@dataclass(frozen=True)
class MlflowServer:
    """The tracking server of this test session, with its artifacts in the S3 server's bucket."""

    tracking_uri: str
    service: services.Service


def _aws_kwargs() -> dict[str, str]:
    env = services.LOCAL_AWS_ENV
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's server mode on a free loopback port, with the artifact bucket created."""
    logs = tmp_path_factory.mktemp("s3-logs")
    service = services.start_s3(services.free_port(), logs / "moto.log")
    server = S3Server(endpoint_url=service.url, bucket=ARTIFACT_BUCKET)
    server.client().create_bucket(Bucket=ARTIFACT_BUCKET)
    yield server
    service.stop()


@pytest.fixture(scope="session")
def mlflow_server(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` (SQLite backend) proxying artifacts to `s3://<bucket>/mlflow`."""
    home = tmp_path_factory.mktemp("mlflow")
    service = services.start_mlflow(
        port=services.free_port(),
        log=home / "mlflow.log",
        backend_store_uri=f"sqlite:///{home / 'mlflow.db'}",
        artifacts_destination=f"s3://{s3_server.bucket}/mlflow",
        s3_endpoint_url=s3_server.endpoint_url,
    )
    yield MlflowServer(tracking_uri=service.url, service=service)
    service.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> S3Server:
    """Point boto3 in this process at the session's S3 server with dummy credentials."""
    for key, value in services.LOCAL_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_server.endpoint_url)
    return s3_server


@dataclass
class LocalPlatformRun:
    """The real local platform (`mlplat up --local`) of this test session, under its own home and serving port."""

    home: Path
    port: int
    up_exit_code: int
    up_stdout: str
    up_stderr: str

    def ensure_up(self) -> None:
        """Bring it back when an earlier test took it down (tests may run in any order)."""
        from mlplat.local.platform import LocalPlatform, UpOptions

        platform = LocalPlatform(self.home)
        parts = platform.status()
        if not parts or not all(part.healthy for part in parts):
            platform.up(UpOptions(port=self.port, epochs=LOCAL_TEST_EPOCHS))


# Few epochs: the tests check the platform's wiring, not the model's quality (the training tests do that).
LOCAL_TEST_EPOCHS = 5


@pytest.fixture(scope="session")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatformRun]:
    """`mlplat up --local` once per session (real moto, mlflow, training and serving), brought down at the end."""
    from typer.testing import CliRunner

    from mlplat.cli import app
    from mlplat.local.platform import LocalPlatform

    home = tmp_path_factory.mktemp("mlplat-home") / ".mlplat"
    port = services.free_port()
    args = ["up", "--local", "--home", str(home), "--port", str(port), "--epochs", str(LOCAL_TEST_EPOCHS)]
    try:
        result = CliRunner().invoke(app, args)
        yield LocalPlatformRun(home, port, result.exit_code, result.stdout, result.stderr)
    finally:
        LocalPlatform(home).down(purge=False)
