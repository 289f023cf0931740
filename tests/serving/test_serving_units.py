"""In-process checks of the pieces: settings, model URIs, the pure invoke function, model loading, the ASGI layer."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from serving_models import COLUMNS, sample_rows

from serving import __main__ as entrypoint
from serving.app import ServingApp
from serving.codec import Table, decode, encode
from serving.config import Settings, SettingsError
from serving.handler import invoke
from serving.model import Answer, MlpModel, ModelInfo, ModelLoadError, Prepared, load_model_dir
from serving.protocol import JSON, Response
from serving.runtime import Inference, ModelHolder
from serving.source import ModelSource


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MLPLAT_MAX_ROWS", "0", "MLPLAT_MAX_ROWS='0': must be a positive integer"),
        ("SAGEMAKER_BIND_TO_PORT", "70000", "SAGEMAKER_BIND_TO_PORT='70000': must be a TCP port (1-65535)"),
        (
            "MLPLAT_INFERENCE_TIMEOUT",
            "soon",
            "MLPLAT_INFERENCE_TIMEOUT='soon': could not convert string to float: 'soon'",
        ),
        (
            "MLPLAT_MICRO_BATCH",
            "maybe",
            "MLPLAT_MICRO_BATCH='maybe': must be one of 1, 0, true, false, yes, no, on, off",
        ),
    ],
)
def test_a_bad_environment_value_is_refused_naming_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value) == message


def test_settings_follow_the_sagemaker_variables() -> None:
    settings = Settings.from_env(
        {"SAGEMAKER_BIND_TO_PORT": "9090", "SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "7"}
    )
    assert (settings.port, settings.workers, settings.inference_timeout) == (9090, 3, 7.0)
    assert (settings.model_uri, settings.host, settings.max_body_bytes) == ("/opt/ml/model", "0.0.0.0", 6 * 1024 * 1024)


def test_the_entrypoint_exits_2_with_the_problem_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLPLAT_MODEL_URI", "/opt/ml/model")  # main() writes its flags here; restored after
    monkeypatch.setenv("MLPLAT_MAX_IN_FLIGHT", "-1")
    assert entrypoint.main(["serve", "--model-uri", "/opt/ml/model"]) == 2
    assert capsys.readouterr().err == "serving: MLPLAT_MAX_IN_FLIGHT='-1': must be a positive integer\n"


def test_the_entrypoint_refuses_a_model_uri_it_cannot_load(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLPLAT_MODEL_URI", "/opt/ml/model")  # main() writes its flags here; restored after
    assert entrypoint.main(["--model-uri", "s3://bucket/model"]) == 2
    assert capsys.readouterr().err == (
        "serving: model URI 's3://bucket/model': only a local directory or a models:/ registry URI is supported\n"
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/abalone@champion", ModelSource("models:/abalone@champion", name="abalone", alias="champion")),
        ("models:/abalone/3", ModelSource("models:/abalone/3", name="abalone", version="3")),
        ("/opt/ml/model", ModelSource("/opt/ml/model", path=Path("/opt/ml/model"))),
        ("file:///opt/ml/model", ModelSource("file:///opt/ml/model", path=Path("/opt/ml/model"))),
    ],
)
def test_model_uris_parse_into_a_directory_or_a_registry_reference(uri: str, expected: ModelSource) -> None:
    assert ModelSource.parse(uri) == expected


def test_only_an_alias_is_worth_polling() -> None:
    assert ModelSource.parse("models:/abalone@champion").follows_alias
    assert not ModelSource.parse("models:/abalone/3").follows_alias
    assert not ModelSource.parse("/opt/ml/model").follows_alias


def test_a_malformed_registry_uri_is_refused() -> None:
    with pytest.raises(ValueError, match="must look like models:/<name>@<alias> or models:/<name>/<version>"):
        ModelSource.parse("models:/abalone")


@pytest.fixture(scope="module")
def fast_model(abalone_model_dir: Path) -> MlpModel:
    model = load_model_dir(abalone_model_dir, "abalone", "1", str(abalone_model_dir), 1000)
    assert isinstance(model, MlpModel)
    model.warm()
    return model


def test_invoke_is_a_pure_function_from_bytes_and_content_type_to_a_response(
    fast_model: MlpModel, reference_predictions: np.ndarray
) -> None:
    response = invoke(fast_model, orjson.dumps({"inputs": sample_rows(50)}), JSON, None, max_rows=1000)
    assert (response.status, response.media_type) == (200, JSON)
    np.testing.assert_allclose(orjson.loads(response.body)["predictions"], reference_predictions, rtol=1e-5)


def test_invoke_turns_a_client_error_into_a_response_with_its_status(fast_model: MlpModel) -> None:
    response = invoke(fast_model, orjson.dumps({"inputs": [["Z", *sample_rows(1)[0][1:]]]}), JSON, None, 1000)
    assert response == Response(
        422, b"{\"error\":\"column 'Sex', row 0: unknown category 'Z'; expected one of 'F', 'I', 'M'\"}", JSON
    )


def test_a_spec_without_target_scaling_returns_the_programs_output_as_is(
    abalone_model_dir: Path, tmp_path: Path, fast_model: MlpModel
) -> None:
    # The training container's programs return target units themselves and say so with null target_mean/std.
    copy = tmp_path / "model"
    shutil.copytree(abalone_model_dir, copy)
    spec_path = copy / "artifacts" / "mlplat_model.json"
    spec = json.loads(spec_path.read_text())
    scale, shift = spec["target_std"], spec["target_mean"]
    spec.update(target_mean=None, target_std=None, output="target_units")
    spec_path.write_text(json.dumps(spec))
    raw = load_model_dir(copy, "abalone", "1", str(copy), 1000)
    raw.warm()
    features = fast_model.encode(Table(names=None, columns=tuple(zip(*sample_rows(5), strict=True)), n_rows=5))
    np.testing.assert_allclose(raw.predict(features) * scale + shift, fast_model.predict(features), rtol=1e-5)


def test_a_directory_without_mlmodel_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as raised:
        load_model_dir(tmp_path, "x", None, str(tmp_path), 10)
    assert str(raised.value) == f"{tmp_path} is not an MLflow model directory (no MLmodel file)"


def test_a_spec_that_does_not_cover_its_encoded_features_is_refused(abalone_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(abalone_model_dir, copy)
    spec_path = copy / "artifacts" / "mlplat_model.json"
    spec = json.loads(spec_path.read_text())
    spec["categorical"] = {"Sex": ["F", "M"]}
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError) as raised:
        load_model_dir(copy, "x", None, str(copy), 10)
    assert str(raised.value) == "mlplat_model.json: encoded_features has entries no column produces"


class _ExplodingModel:
    """A model whose encoding fails unexpectedly, with a message that must not reach the client."""

    info = ModelInfo("boom", "1", None, "memory", "test")
    batchable = False

    def prepare(self, body: bytes, content_type: str, max_rows: int) -> Prepared:
        raise RuntimeError("secret internal detail at /srv/app.py line 3")

    def predict(self, features: Any) -> Any:  # pragma: no cover - never reached
        return features

    def respond(self, prepared: Prepared, outputs: Any, output_type: str) -> Answer:  # pragma: no cover
        raise AssertionError("never reached")

    def warm(self) -> None:
        pass


def _call(app: ServingApp, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_an_unexpected_failure_is_a_500_without_a_trace_or_detail() -> None:
    settings = Settings()
    holder = ModelHolder(settings, ModelSource.parse("/nonexistent"))
    holder.model = _ExplodingModel()
    app = ServingApp(settings, holder, Inference(settings))
    body = orjson.dumps({"inputs": [[1.0]]})
    status, content = _call(app, "/invocations", body, [(b"content-type", b"application/json")])
    assert (status, content) == (500, b'{"error":"internal error"}')


def test_invocations_before_the_model_is_loaded_get_503_with_retry_after() -> None:
    settings = Settings()
    app = ServingApp(settings, ModelHolder(settings, ModelSource.parse("/nonexistent")), Inference(settings))
    status, content = _call(app, "/invocations", b"{}", [(b"content-type", b"application/json")])
    assert (status, content) == (503, b'{"error":"the model is not loaded yet"}')


def test_columns_of_the_test_model_match_the_training_contract() -> None:
    assert COLUMNS == [
        "Sex", "Length", "Diameter", "Height", "WholeWeight", "ShuckedWeight", "VisceraWeight", "ShellWeight",
    ]  # fmt: skip


class _EchoModel:
    """A generic-path model that predicts each row's first value."""

    info = ModelInfo("echo", "1", None, "memory", "test")
    batchable = False

    def prepare(self, body: bytes, content_type: str, max_rows: int) -> Prepared:
        table = decode(body, content_type, max_rows)
        return Prepared(list(table.columns[0]), table)

    def predict(self, features: Any) -> Any:
        return features

    def respond(self, prepared: Prepared, outputs: Any, output_type: str) -> Answer:
        body, media = encode(outputs, output_type)
        return Answer(Response(200, body, media), len(outputs), prepared.table, outputs)

    def warm(self) -> None:
        pass


class _BrokenListener:
    def observe(self, info: ModelInfo, table: Table, predictions: Any) -> None:
        raise RuntimeError("capture backend down")


class _RecordingListener:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, Any]] = []

    def observe(self, info: ModelInfo, table: Table, predictions: Any) -> None:
        self.seen.append((info.name, table.n_rows, predictions))


def test_listeners_see_every_scored_request_and_a_failing_one_costs_the_client_nothing() -> None:
    settings = Settings()
    holder = ModelHolder(settings, ModelSource.parse("/nonexistent"))
    holder.model = _EchoModel()
    recorder = _RecordingListener()
    app = ServingApp(settings, holder, Inference(settings), [_BrokenListener(), recorder])
    body = orjson.dumps({"inputs": [[1.5], [2.5]]})
    status, content = _call(app, "/invocations", body, [(b"content-type", b"application/json")])
    assert (status, content) == (200, b'{"predictions":[1.5,2.5]}')
    assert recorder.seen == [("echo", 2, [1.5, 2.5])]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_default_workers_follow_a_cgroup_cpu_limit(files: dict[str, str], expected: int | None, tmp_path: Path) -> None:
    import os

    from serving.config import available_cpus

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    usable = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (usable if expected is None else min(usable, expected))


def test_an_empty_multiprocess_dir_variable_leaves_no_metric_files_in_the_working_directory(tmp_path: Path) -> None:
    script = (
        "from serving import metrics\n"
        "metrics.REQUESTS.labels(path='/ping', status='200').inc()\n"
        "print(metrics.render().decode().count('mlplat_serving_requests_total'))\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": "", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_supervisor_entrypoint_imports_neither_torch_nor_mlflow_nor_pandas() -> None:
    # What `python -m serving --workers N` runs in the parent process before uvicorn starts the workers.
    script = (
        "import sys\n"
        "from serving import __main__, server\n"
        "from serving.source import ModelSource\n"
        "ModelSource.parse('/opt/ml/model')\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'pandas', 'numpy') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


class _GatheringModel:
    """A generic-path stand-in: its first call blocks until released; it records each call's requests."""

    batchable = False

    def __init__(self) -> None:
        import threading

        self.calls: list[tuple[list[Any], bool]] = []
        self.release = threading.Event()

    def predict_many(self, requests: list[Any], combine: bool = True) -> list[Any]:
        self.calls.append((list(requests), combine))
        self.release.wait(5)
        return [ValueError(f"refused {r}") if r == "bad" else f"answer {r}" for r in requests]


def test_generic_requests_arriving_while_the_inference_thread_is_busy_are_handed_over_together() -> None:
    model = _GatheringModel()
    inference = Inference(Settings())

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(inference.predict(model, "a"))
        while not model.calls:  # the first request has reached the inference thread, which now blocks
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(inference.predict(model, name)) for name in ("b", "bad", "c")]
        await asyncio.sleep(0.01)
        model.release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        outcomes = asyncio.run(scenario())
    finally:
        inference.close()
    assert model.calls == [(["a"], True), (["b", "bad", "c"], True)]
    assert [str(outcome) for outcome in outcomes] == ["answer a", "answer b", "refused bad", "answer c"]


def test_with_micro_batching_off_generic_requests_are_never_combined() -> None:
    model = _GatheringModel()
    model.release.set()
    inference = Inference(Settings(micro_batch=False))
    try:
        assert asyncio.run(inference.predict(model, "a")) == "answer a"
    finally:
        inference.close()
    assert model.calls == [(["a"], False)]
