"""The training package's pieces, in process: maths, settings, encoding, export, profile, gate, metric buffering."""

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from training_support import ABALONE

from training import config, data, export, profile, registry
from training.errors import InputError
from training.model import FlatAdamW, FlatParameters, FusedStep, MLPRegressor, StandardisedView, autograd_step
from training.tracking import AsyncMetricSink

NUMERIC = ["Length", "Diameter", "Height", "WholeWeight", "ShuckedWeight", "VisceraWeight", "ShellWeight"]


def twin_networks(dropout: float) -> tuple[MLPRegressor, MLPRegressor]:
    torch.manual_seed(0)
    net = MLPRegressor(10, [16, 8], dropout, target_mean=9.9, target_std=3.2)
    return net, copy.deepcopy(net)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_step_updates_weights_exactly_as_autograd_does(dropout: float) -> None:
    fused_net, autograd_net = twin_networks(dropout)
    fused_flat, autograd_flat = FlatParameters(fused_net), FlatParameters(autograd_net)
    fused_opt, autograd_opt = FlatAdamW(fused_flat, 1e-2, 1e-3), FlatAdamW(autograd_flat, 1e-2, 1e-3)
    step = FusedStep(fused_net, fused_opt)
    view = StandardisedView(autograd_net)
    for seed in range(5):
        x, y = torch.randn(32, 10), torch.randn(32, 1)
        fused_loss, autograd_loss = torch.zeros(1, 1), torch.zeros(1, 1)
        torch.manual_seed(seed)
        step(x, y, fused_loss)
        torch.manual_seed(seed)
        autograd_step(view, autograd_flat, autograd_opt, x, y, autograd_loss)
        torch.testing.assert_close(fused_loss, autograd_loss)
        torch.testing.assert_close(fused_flat.grad, autograd_flat.grad)
    torch.testing.assert_close(fused_flat.flat, autograd_flat.flat)


def test_flat_adamw_matches_torch_adamw() -> None:
    net, reference = twin_networks(0.0)
    flat = FlatParameters(net)
    optimizer = FlatAdamW(flat, 1e-2, 1e-2)
    torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=1e-2)
    for _ in range(5):
        x, y = torch.randn(32, 10), torch.randn(32, 1)
        autograd_step(StandardisedView(net), flat, optimizer, x, y, torch.zeros(1, 1))
        torch_optimizer.zero_grad()
        (reference.core(x).unsqueeze(1) - y).square().mean().backward()
        torch_optimizer.step()
    expected = torch.cat([parameter.detach().reshape(-1) for parameter in reference.parameters()])
    torch.testing.assert_close(flat.flat.detach(), expected)


def test_network_output_is_in_target_units() -> None:
    net, _ = twin_networks(0.0)
    net.eval()
    x = torch.randn(4, 10)
    torch.testing.assert_close(net(x), net.core(x) * 3.2 + 9.9)


def test_flag_overrides_env_which_overrides_json_which_overrides_default(tmp_path: Path) -> None:
    hp = tmp_path / "hyperparameters.json"
    hp.write_text(json.dumps({"epochs": "7", "lr": "0.5", "batch-size": "16", "hidden": [8, 4]}))
    env = {"MLPLAT_HYPERPARAMETERS": str(hp), "MLPLAT_LR": "0.25", "MLPLAT_EPOCHS": "9"}

    settings = config.resolve(["train", "--epochs", "11"], env)

    assert settings.epochs == 11  # flag beats env (9) and json (7)
    assert settings.lr == 0.25  # env beats json (0.5)
    assert settings.batch_size == 16  # json beats the default (64)
    assert settings.hidden == (8, 4)
    assert settings.weight_decay == 0.0001  # default


def test_sagemaker_paths_come_from_sagemaker_variables() -> None:
    env = {"SM_CHANNEL_TRAIN": "/data/train", "SM_MODEL_DIR": "/m", "SM_OUTPUT_DATA_DIR": "/o"}

    settings = config.resolve([], env)

    assert (settings.data, settings.model_dir, settings.output_data_dir) == ("/data/train", Path("/m"), Path("/o"))
    assert settings.checkpoint_dir == Path("/opt/ml/checkpoints")
    assert settings.hyperparameters == Path("/opt/ml/input/config/hyperparameters.json")


def test_sagemaker_arn_tracking_uri_without_the_plugin_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    env = {"MLFLOW_TRACKING_URI": "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/dev"}

    with pytest.raises(InputError, match="sagemaker-mlflow plugin is not installed"):
        config.resolve([], env)


@pytest.fixture(scope="module")
def abalone_splits(tmp_path_factory: pytest.TempPathFactory) -> data.Splits:
    table = data.load_table(str(ABALONE), "Rings", tmp_path_factory.mktemp("work"))
    return data.prepare(table, seed=42, val_fraction=0.15, test_fraction=0.15)


def test_split_is_deterministic_and_disjoint() -> None:
    first = data.split_indices(1000, seed=7, val_fraction=0.15, test_fraction=0.15)
    again = data.split_indices(1000, seed=7, val_fraction=0.15, test_fraction=0.15)
    other = data.split_indices(1000, seed=8, val_fraction=0.15, test_fraction=0.15)

    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["test"], other["test"])
    rows = np.concatenate(list(first.values()))
    assert sorted(rows.tolist()) == list(range(1000))
    assert [len(first[name]) for name in ("train", "val", "test")] == [700, 150, 150]


def test_standardisation_is_fitted_on_the_training_split_only(abalone_splits: data.Splits) -> None:
    encoding = abalone_splits.encoding
    rows = data.split_indices(4177, seed=42, val_fraction=0.15, test_fraction=0.15)["train"]
    train = pd.read_csv(ABALONE).iloc[rows]

    assert encoding.mean[0] == pytest.approx(train["Length"].mean())
    assert encoding.std[0] == pytest.approx(train["Length"].std(ddof=0))
    assert abalone_splits.x["train"][:, 0].mean() == pytest.approx(0.0, abs=1e-5)
    assert abalone_splits.x["test"][:, 0].mean() != pytest.approx(0.0, abs=1e-5)
    assert encoding.encoded_features[-3:] == ["Sex=F", "Sex=I", "Sex=M"]


def test_exported_program_and_json_reproduce_the_network(tmp_path: Path, abalone_splits: data.Splits) -> None:
    encoding = abalone_splits.encoding
    torch.manual_seed(0)
    net = MLPRegressor(len(encoding.encoded_features), [8], 0.0, encoding.target_mean, encoding.target_std).eval()

    files = export.write_model_files(net, encoding, tmp_path)

    spec = json.loads(files["metadata"].read_text())
    assert spec == {
        "format": "mlplat-mlp/1",
        "target": "Rings",
        "columns": ["Sex", *NUMERIC],
        "numeric": NUMERIC,
        "categorical": {"Sex": ["F", "I", "M"]},
        "encoded_features": [*NUMERIC, "Sex=F", "Sex=I", "Sex=M"],
        "mean": encoding.mean,
        "std": encoding.std,
        "target_mean": None,
        "target_std": None,
        "output": "target_units",
        "program": "model.pt2",
    }  # fmt: skip
    program = torch.export.load(files["program"]).module()
    x = torch.from_numpy(abalone_splits.x["test"])
    for rows in (x[:1], x):
        torch.testing.assert_close(program(rows), net(rows))


def test_pyfunc_encoding_matches_training_encoding_including_unknown_categories(abalone_splits: data.Splits) -> None:
    from training.pyfunc_model import encode

    spec = export.metadata(abalone_splits.encoding)
    raw = abalone_splits.test_frame.head(20).copy()
    raw.loc[0, "Sex"] = "unknown"

    encoded = encode(raw, spec)

    np.testing.assert_allclose(encoded, abalone_splits.encoding.encode(raw), rtol=1e-6)
    assert encoded[0, -3:].tolist() == [0.0, 0.0, 0.0]


def test_reference_profile_has_the_documented_shape() -> None:
    train = pd.read_csv(ABALONE)
    predictions = np.linspace(5.0, 15.0, len(train))

    document = profile.reference_profile(train, ["Length"], ["Sex"], predictions)

    assert document["format"] == "mlplat-profile/1"
    assert document["n"] == len(train)
    length = document["features"]["Length"]
    assert length["type"] == "numeric"
    assert len(length["quantiles"]) == 21
    assert length["quantiles"][0] == train["Length"].min() and length["quantiles"][-1] == train["Length"].max()
    assert len(length["counts"]) == len(length["bins"]) - 1 and sum(length["counts"]) == len(train)
    assert len(length["sample"]) == 500
    sex = document["features"]["Sex"]
    assert sex["type"] == "categorical" and set(sex["frequencies"]) == {"F", "I", "M"}
    assert sum(sex["frequencies"].values()) == pytest.approx(1.0)
    assert document["prediction"]["mean"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("new", "champion", "margin", "promote", "decision", "aliases"),
    [
        (2.0, None, 0.0, False, "challenger", ["challenger"]),
        (2.0, None, 0.0, True, "champion", ["challenger", "champion"]),
        (2.0, 2.1, 0.0, False, "challenger", ["challenger"]),
        (2.0, 2.1, 0.0, True, "champion", ["challenger", "champion"]),
        (2.0, 2.0, 0.0, True, "rejected", []),
        (2.0, 2.1, 0.1, True, "rejected", []),
        (2.3, 2.1, 0.0, False, "rejected", []),
    ],
    ids=["first", "first-promoted", "beats", "beats-promoted", "ties", "within-margin", "worse"],
)
def test_promotion_gate(
    new: float, champion: float | None, margin: float, promote: bool, decision: str, aliases: list[str]
) -> None:
    outcome = registry.decide(new, champion, margin, promote)

    assert (outcome.decision, outcome.aliases) == (decision, aliases)


@pytest.mark.parametrize(
    ("new", "champion", "margin", "passed", "reason"),
    [
        (1.9949, 2.1, 0.05, True, "test RMSE 1.9949 beats champion 2.1000 * (1 - 0.05) = 1.9950"),
        (1.995, 2.0, 0.0025, False, "test RMSE 1.9950 does not beat champion 2.0000 * (1 - 0.0025) = 1.9950"),
        (2.0, 2.1, 0.05, False, "test RMSE 2.0000 does not beat champion 2.1000 * (1 - 0.05) = 1.9950"),
    ],
    ids=["just-under-the-bar", "at-the-bar", "over-the-bar"],
)
def test_the_gate_for_a_lower_is_better_metric_passes_only_strictly_under_the_bar_and_says_why(
    new: float, champion: float, margin: float, passed: bool, reason: str
) -> None:
    outcome = registry.decide(new, champion, margin, promote=False)
    assert outcome == registry.Decision(
        "challenger" if passed else "rejected", ["challenger"] if passed else [], None, champion, reason
    )


@pytest.mark.parametrize(
    ("new", "passed", "reason"),
    [
        (0.8801, True, "test accuracy 0.8801 beats champion 0.8000 * (1 + 0.1) = 0.8800"),
        (0.88, False, "test accuracy 0.8800 does not beat champion 0.8000 * (1 + 0.1) = 0.8800"),
        (0.85, False, "test accuracy 0.8500 does not beat champion 0.8000 * (1 + 0.1) = 0.8800"),
    ],
    ids=["just-over-the-bar", "at-the-bar", "under-the-bar"],
)
def test_the_gate_for_a_higher_is_better_metric_passes_only_strictly_over_the_bar_and_says_why(
    new: float, passed: bool, reason: str
) -> None:
    outcome = registry.decide(new, 0.8, 0.1, True, "test accuracy", higher_is_better=True)
    expected = ("champion", ["challenger", "champion"]) if passed else ("rejected", [])
    assert outcome == registry.Decision(*expected, None, 0.8, reason)


def test_a_higher_is_better_score_exactly_at_the_bar_is_rejected() -> None:
    # 0.5 * (1 + 0.5) is exactly 0.75 in binary floating point, so this is the bar itself, not a rounding of it.
    assert registry.decide(0.75, 0.5, 0.5, False, "test AUC", higher_is_better=True) == registry.Decision(
        "rejected", [], None, 0.5, "test AUC 0.7500 does not beat champion 0.5000 * (1 + 0.5) = 0.7500"
    )


def test_the_first_model_passes_because_there_is_no_champion() -> None:
    assert registry.decide(5.0, None, 0.5, False, "test log loss", True) == registry.Decision(
        "challenger", ["challenger"], None, None, "no champion exists"
    )


class RegistryClient:
    """The tracking client calls the registry helpers make, answered from memory."""

    def __init__(self, versions: list[Any] | None = None, champion: Any = None, error: str | None = None) -> None:
        self.versions = versions or []
        self.champion = champion
        self.error = error
        self.calls: list[tuple[str, ...]] = []

    def search_model_versions(self, query: str) -> list[Any]:
        self.calls.append(("search_model_versions", query))
        return self.versions

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import ErrorCode

        self.calls.append(("get_model_version_by_alias", name, alias))
        if self.error is not None:
            raise MlflowException(f"no {alias}", error_code=ErrorCode.Value(self.error))
        return self.champion


def test_register_returns_the_version_this_run_already_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setattr(mlflow, "register_model", lambda *args, **kwargs: pytest.fail("registered twice"))
    client = RegistryClient(versions=["version-3", "version-4"])
    assert registry.register(client, "abalone", None, "run-1") == "version-3"
    assert client.calls == [("search_model_versions", "name = 'abalone' and run_id = 'run-1'")]


def test_register_registers_the_logged_model_and_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(mlflow, "register_model", lambda *args, **kwargs: calls.append((*args, kwargs)) or "v1")
    info = type("Info", (), {"model_uri": "runs:/run-1/model"})()
    assert registry.register(RegistryClient(), "abalone", info, "run-1") == "v1"
    assert calls == [("runs:/run-1/model", "abalone", {"await_registration_for": 300})]


def test_the_champion_is_the_version_under_the_champion_alias() -> None:
    client = RegistryClient(champion="version-7")
    assert registry.champion_version(client, "abalone") == "version-7"
    assert client.calls == [("get_model_version_by_alias", "abalone", "champion")]


@pytest.mark.parametrize("code", ["RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"])
def test_no_champion_when_the_alias_or_model_does_not_exist(code: str) -> None:
    assert registry.champion_version(RegistryClient(error=code), "abalone") is None


def test_a_tracking_failure_while_looking_for_the_champion_is_raised() -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="no champion"):
        registry.champion_version(RegistryClient(error="INTERNAL_ERROR"), "abalone")


def version(number: str, tags: dict[str, str] | None) -> Any:
    return type("Version", (), {"version": number, "tags": tags})()


def test_the_champion_is_scored_by_loading_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.pyfunc

    monkeypatch.setattr(mlflow.pyfunc, "load_model", lambda uri: f"loaded {uri}")
    scored: list[Any] = []
    assert (
        registry.score_version(
            "abalone", version("4", {"mlplat.test_rmse": "9.0"}), "test_rmse", lambda m: scored.append(m) or 2.5
        )
        == 2.5
    )
    assert scored == ["loaded models:/abalone/4"]


@pytest.mark.parametrize(
    ("tags", "metric_tag", "expected"),
    [
        ({"mlplat.test_rmse": "2.25", "mlplat.test_log_loss": "0.5"}, None, 2.25),
        ({"mlplat.test_rmse": "2.25", "custom.score": "0.75"}, "custom.score", 0.75),
        ({"mlplat.other": "1.0"}, None, None),
        (None, None, None),
    ],
    ids=["recorded-metric", "named-tag", "not-recorded", "no-tags"],
)
def test_a_champion_that_cannot_be_loaded_falls_back_to_its_recorded_score(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tags: dict[str, str] | None,
    metric_tag: str | None,
    expected: float | None,
) -> None:
    import mlflow.pyfunc

    def unloadable(uri: str) -> Any:
        raise OSError("artifact store down")

    monkeypatch.setattr(mlflow.pyfunc, "load_model", unloadable)
    with caplog.at_level("WARNING", logger="training.registry"):
        score = registry.score_version("abalone", version("4", tags), "test_rmse", lambda m: 1.0, metric_tag)
    assert score == expected
    assert [record.getMessage() for record in caplog.records] == [
        "could not score champion version 4 (artifact store down); using its recorded test_rmse"
    ]


def test_model_arguments_list_the_code_artifacts_signature_example_and_pinned_requirements() -> None:
    import mlflow

    example = pd.DataFrame({"Length": [0.5]})
    arguments = registry.model_arguments({"network": Path("/m/net.pt2")}, example, pd.Series([9.5]))
    assert arguments["python_model"] == str(Path(registry.__file__).with_name("pyfunc_model.py"))
    assert arguments["artifacts"] == {"network": "/m/net.pt2"}
    assert arguments["input_example"] is example
    assert arguments["signature"].params is None
    assert arguments["signature"].inputs.input_names() == ["Length"]
    assert arguments["signature"].outputs.to_dict() == [{"type": "double", "required": True}]
    assert arguments["pip_requirements"] == [
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
    ]
    assert "+" not in arguments["pip_requirements"][0]


def test_a_classifiers_signature_declares_the_output_parameter_defaulting_to_labels() -> None:
    arguments = registry.model_arguments({}, pd.DataFrame({"x": [1.0]}), pd.Series(["benign"]), classifier=True)
    (param,) = arguments["signature"].params.params
    assert (param.name, param.default) == ("output", "labels")


def test_save_to_directory_writes_the_model_into_an_existing_or_new_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow.pyfunc

    def save_model(path: str, **arguments: Any) -> None:
        Path(path).mkdir()
        (Path(path) / "MLmodel").write_text(json.dumps(arguments))

    monkeypatch.setattr(mlflow.pyfunc, "save_model", save_model)
    fresh = tmp_path / "a" / "model"
    registry.save_to_directory({"python_model": "p.py"}, fresh)
    assert json.loads((fresh / "MLmodel").read_text()) == {"python_model": "p.py"}
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "code.tar.gz").write_text("kept")
    registry.save_to_directory({"python_model": "q.py"}, existing)
    assert sorted(p.name for p in existing.iterdir()) == ["MLmodel", "code.tar.gz"]


def test_log_model_logs_under_the_run_as_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    import mlflow

    calls: list[Any] = []

    @contextlib.contextmanager
    def start_run(run_id: str) -> Any:
        calls.append(("start_run", run_id))
        yield
        calls.append(("end_run", run_id))

    def log_model(**arguments: Any) -> str:
        calls.append(("log_model", arguments))
        return "model-info"

    monkeypatch.setattr(mlflow, "start_run", start_run)
    monkeypatch.setattr(mlflow.pyfunc, "log_model", log_model)
    assert registry.log_model("run-9", {"python_model": "p.py"}) == "model-info"
    assert calls == [
        ("start_run", "run-9"),
        ("log_model", {"name": "model", "python_model": "p.py"}),
        ("end_run", "run-9"),
    ]


class FlakyClient:
    """A tracking client whose server is down until `up` is set."""

    def __init__(self) -> None:
        self.up = False
        self.received: list[Any] = []

    def log_batch(self, run_id: str, metrics: list[Any]) -> None:
        if not self.up:
            from mlflow.exceptions import MlflowException

            raise MlflowException("API request failed: Connection refused", error_code="INTERNAL_ERROR")
        self.received.extend(metrics)


def test_metric_sink_keeps_metrics_through_an_outage_and_sends_them_once_it_ends() -> None:
    client = FlakyClient()
    sink = AsyncMetricSink(client, "run-1", interval=0.05, max_backoff=0.1)
    for step in range(1, 6):
        sink.log_metrics({"val_rmse": float(step), "train_loss": 0.5}, step)

    assert sink.flush(timeout=0.3) is False
    assert len(sink.pending()) == 10
    client.up = True
    assert sink.close(timeout=5.0) is True

    assert sorted((m.key, m.step) for m in client.received) == sorted(
        (key, step) for step in range(1, 6) for key in ("val_rmse", "train_loss")
    )
    assert sink.pending() == []


def test_metric_sink_restores_metrics_carried_by_a_checkpoint() -> None:
    client = FlakyClient()
    first = AsyncMetricSink(client, "run-1", interval=60)
    first.log_metrics({"val_rmse": 2.0}, 3)
    carried = first.pending()
    client.up = True
    second = AsyncMetricSink(client, "run-1", interval=60)

    second.restore(carried)

    assert second.close(timeout=5.0)
    assert [(m.key, m.value, m.step, m.timestamp) for m in client.received] == [("val_rmse", 2.0, 3, carried[0][2])]


def test_categories_are_fitted_on_the_training_split_only() -> None:
    rows = 20
    only_in_test = int(data.split_indices(rows, 3, 0.2, 0.2)["test"][0])
    codes = np.zeros(rows, dtype=np.int32)
    codes[only_in_test] = 1
    columns = {
        "c": data.Column(codes, ["a", "b"]),
        "x": data.Column(np.arange(rows, dtype=np.float32)),
        "y": data.Column(np.arange(rows, dtype=np.float32)),
    }
    table = data.Table(columns, ["c", "x", "y"], "y", rows, "mem", ["mem"], "0")

    splits = data.prepare(table, 3, 0.2, 0.2)

    assert splits.encoding.categorical == {"c": ["a"]}
    assert splits.x["test"][:, 1].tolist().count(0.0) == 1  # the row of "b" encodes as all zeros


def test_numeric_columns_are_read_as_float32_and_text_columns_as_codes(tmp_path: Path) -> None:
    table = data.load_table(str(ABALONE), "Rings", tmp_path)

    assert table.columns["Length"].values.dtype == np.float32
    assert table.columns["Sex"].values.dtype == np.int32
    assert sorted(table.columns["Sex"].labels or []) == ["F", "I", "M"]
    assert table.rows == 4177


def test_splits_are_column_major_views_so_each_feature_is_written_alone(abalone_splits: data.Splits) -> None:
    x = abalone_splits.x["train"]

    assert x.dtype == np.float32 and x.flags["F_CONTIGUOUS"] and not x.flags["C_CONTIGUOUS"]


def test_auto_task_makes_a_text_target_a_classification_with_labels_as_spelled(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(40)))
    table = data.load_table(str(path), "y", tmp_path)

    task = table.resolve_task("auto")
    splits = data.prepare(table, 1, 0.2, 0.2, task)

    assert task == "classification"
    assert splits.encoding.classes == ["no", "yes"]
    assert splits.y["train"].dtype == np.int64


def test_auto_task_keeps_an_integer_target_with_many_values_a_regression(tmp_path: Path) -> None:
    assert data.load_table(str(ABALONE), "Rings", tmp_path).resolve_task("auto") == "regression"


def test_auto_task_makes_a_zero_one_target_a_classification_with_int_labels(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    table = data.load_table(str(path), "y", tmp_path)

    splits = data.prepare(table, 1, 0.2, 0.2, table.resolve_task("auto"))

    assert splits.encoding.classes == [0, 1]


def test_classification_metrics_match_hand_computed_values() -> None:
    from training.recipes import classification_metrics

    probability = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    truth = np.array([0, 1, 1, 0])

    scores = classification_metrics(probability, truth)

    assert scores["accuracy"] == 0.5
    assert scores["f1_macro"] == pytest.approx(0.5)
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.3])))
    # positives score 0.8 and 0.4, negatives 0.1 and 0.7: 3 of the 4 pairs are ordered right
    assert scores["roc_auc"] == pytest.approx(0.75)
