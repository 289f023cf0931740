"""The classifier fast path (`mlplat-mlp-classifier/1`): labels by default, probabilities on request, as the pyfunc of
the same contract answers, and one clear 400 for an output it does not know."""

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from serving_models import IRIS_COLUMNS, iris_frame, save_iris_classifier

from serving.handler import invoke
from serving.model import MlpClassifier, ModelLoadError, load_model_dir
from serving.protocol import CSV, JSON

ROWS = iris_frame()[IRIS_COLUMNS].iloc[::10]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("iris-classifier")
    return save_iris_classifier(root / "model", root / "artifacts")


@pytest.fixture(scope="module")
def classifier(classifier_dir: Path) -> MlpClassifier:
    model = load_model_dir(classifier_dir, "iris", "1", str(classifier_dir), 1000)
    assert isinstance(model, MlpClassifier)
    model.warm()
    return model


def _ask(model: MlpClassifier, body: dict[str, object], accept: str | None = None) -> tuple[int, bytes]:
    response = invoke(model, orjson.dumps(body), JSON, accept, 1000)
    return response.status, response.body


def test_a_classifier_spec_is_served_on_the_fast_path(classifier: MlpClassifier) -> None:
    assert (classifier.info.flavor, classifier.batchable) == ("mlplat-mlp-classifier/1", True)


def test_labels_are_answered_by_default_as_the_pyfunc_answers_them(
    classifier: MlpClassifier, classifier_dir: Path
) -> None:
    import mlflow.pyfunc

    expected = mlflow.pyfunc.load_model(str(classifier_dir)).predict(ROWS)
    status, body = _ask(classifier, {"dataframe_split": json.loads(ROWS.to_json(orient="split", index=False))})
    assert status == 200
    assert orjson.loads(body) == {"predictions": list(expected)}
    assert set(expected) == {"setosa", "versicolor", "virginica"}


def test_probabilities_on_request_equal_the_pyfuncs_within_a_millionth(
    classifier: MlpClassifier, classifier_dir: Path
) -> None:
    import mlflow.pyfunc

    expected = mlflow.pyfunc.load_model(str(classifier_dir)).predict(ROWS, params={"output": "probabilities"})
    records = ROWS.to_dict(orient="records")
    status, body = _ask(classifier, {"dataframe_records": records, "params": {"output": "probabilities"}})
    got = orjson.loads(body)["predictions"]
    assert status == 200
    assert [sorted(row) for row in got] == [["setosa", "versicolor", "virginica"]] * len(ROWS)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose([mine[k] for k in sorted(mine)], [theirs[k] for k in sorted(theirs)], atol=1e-6)
        assert abs(sum(mine.values()) - 1) < 1e-9


def test_an_unknown_output_gets_400_naming_the_allowed_values(classifier: MlpClassifier) -> None:
    status, body = _ask(classifier, {"inputs": ROWS.to_numpy().tolist(), "params": {"output": "logits"}})
    assert (status, orjson.loads(body)) == (
        400,
        {"error": "params.output must be one of 'labels', 'probabilities'; got 'logits'"},
    )


def test_labels_as_csv_are_one_label_a_line(classifier: MlpClassifier) -> None:
    status, body = _ask(classifier, {"inputs": ROWS.head(3).to_numpy().tolist()}, accept=CSV)
    labels = orjson.loads(_ask(classifier, {"inputs": ROWS.head(3).to_numpy().tolist()})[1])["predictions"]
    assert (status, body.decode()) == (200, "".join(f"{label}\n" for label in labels))


def test_integer_classes_are_answered_as_integers_and_keyed_as_strings(classifier_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(classifier_dir, copy)
    spec_path = next(copy.glob("artifacts/**/mlplat_model.json"))
    spec = json.loads(spec_path.read_text())
    spec_path.write_text(json.dumps({**spec, "classes": [0, 1, 2]}))
    model = load_model_dir(copy, "iris", "1", str(copy), 100)
    rows = ROWS.head(2).to_numpy().tolist()
    labels = orjson.loads(_ask(model, {"inputs": rows})[1])["predictions"]  # type: ignore[arg-type]
    probabilities = orjson.loads(_ask(model, {"inputs": rows, "params": {"output": "probabilities"}})[1])  # type: ignore[arg-type]
    assert all(isinstance(label, int) for label in labels)
    assert sorted(probabilities["predictions"][0]) == ["0", "1", "2"]


def test_a_spec_without_classes_is_refused_at_load_with_the_reason(classifier_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(classifier_dir, copy)
    spec_path = next(copy.glob("artifacts/**/mlplat_model.json"))
    spec = json.loads(spec_path.read_text())
    del spec["classes"]
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError) as raised:
        load_model_dir(copy, "iris", "1", str(copy), 100)
    assert str(raised.value) == "mlplat_model.json: 'classes' must list at least two labels (strings or integers)"
