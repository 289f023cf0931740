"""The conformance matrix: small MLflow models of every kind the generic path serves, each with the request bodies of
every input form of MLflow's scoring protocol (and some it refuses).

The KNN-on-iris model and its requests are those of MLflow's own scoring-server tests
(`tests/pyfunc/test_scoring_server.py`: `sklearn_model`, `test_serving_model_with_param_schema`): a tensor signature
inferred from a numpy array, a `datetime` param with a default, and `dataframe_split` bodies with integer column names.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

JSON = "application/json"
CSV = "text/csv"
# Skips MLflow's requirement inference (a subprocess per model): the models are only ever loaded here.
_REQUIREMENTS = ["mlflow"]


@dataclass(frozen=True)
class Case:
    """One request to replay against both servers."""

    name: str
    content_type: str
    body: bytes


@dataclass
class MatrixModel:
    """A saved model, its requests, and the frame or array its reference predictions come from."""

    name: str
    path: Path
    cases: list[Case] = field(default_factory=list)
    reference_input: Any = None
    reference_params: dict[str, Any] | None = None


def _frame_cases(frame: pd.DataFrame, header_csv: bool = True, plain_csv: bool = True) -> list[Case]:
    split = json.loads(frame.to_json(orient="split", index=False))
    records = json.loads(frame.to_json(orient="records"))
    columnar = {str(name): json.loads(frame[name].to_json(orient="values")) for name in frame.columns}
    cases = [
        Case("dataframe_split", JSON, json.dumps({"dataframe_split": split}).encode()),
        Case("dataframe_records", JSON, json.dumps({"dataframe_records": records}).encode()),
        Case("instances", JSON, json.dumps({"instances": records}).encode()),
        Case("inputs", JSON, json.dumps({"inputs": columnar}).encode()),
        Case("charset", f"{JSON}; charset=UTF-8", json.dumps({"dataframe_split": split}).encode()),
    ]
    if header_csv:
        cases.append(Case("csv-header", CSV, frame.to_csv(index=False).encode()))
    if plain_csv:
        cases.append(Case("csv-no-header", CSV, frame.to_csv(index=False, header=False).encode()))
    return cases


def _common_errors() -> list[Case]:
    return [
        Case("malformed-json", JSON, b"this is,,,, not valid json"),
        Case("json-list", JSON, b"[1]"),
        Case("unknown-key", JSON, json.dumps({"not": "a serialized dataframe"}).encode()),
        Case("two-keys", JSON, json.dumps({"dataframe_records": [], "dataframe_split": {"data": []}}).encode()),
        Case("split-as-list", JSON, json.dumps({"dataframe_split": [{"a": 1}]}).encode()),
        Case("records-as-dict", JSON, json.dumps({"dataframe_records": {"columns": ["a"], "data": [[1]]}}).encode()),
        Case("split-index-mismatch", JSON, b'{"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}}'),
        Case("empty-csv", CSV, b""),
        Case("content-type-parameter", f"{JSON}; something=something", b'{"inputs": [[1]]}'),
    ]


def knn_iris(root: Path) -> MatrixModel:
    """MLflow's own scoring-server test model, with its param schema and request bodies."""
    import mlflow.sklearn
    import sklearn.datasets
    import sklearn.neighbors
    from mlflow.models import infer_signature
    from mlflow.types import DataType, ParamSchema, ParamSpec

    iris = sklearn.datasets.load_iris()
    x = iris.data[:, :2]
    model = sklearn.neighbors.KNeighborsClassifier().fit(x, iris.target)
    signature = infer_signature(x)
    signature.params = ParamSchema([ParamSpec("param1", DataType.datetime, np.datetime64("2023-07-01"))])
    path = root / "knn-iris"
    mlflow.sklearn.save_model(
        sk_model=model,
        path=str(path),
        signature=signature,
        pip_requirements=_REQUIREMENTS,
        skops_trusted_types=["sklearn.metrics._dist_metrics.EuclideanDistance64", "sklearn.neighbors._kd_tree.KDTree"],
    )
    frame = pd.DataFrame(x[:20])
    split = frame.to_dict(orient="split")
    cases = [
        Case("mlflow-split", JSON, json.dumps({"dataframe_split": split}).encode()),
        Case("mlflow-split-charset", f"{JSON}; charset=UTF-8", json.dumps({"dataframe_split": split}).encode()),
        Case("mlflow-bad-param", JSON, json.dumps({"dataframe_split": split, "params": {"param1": "x1"}}).encode()),
        Case("mlflow-unknown-param", JSON, json.dumps({"dataframe_split": split, "params": {"nope": "v"}}).encode()),
        Case(
            "mlflow-good-param",
            JSON,
            json.dumps({"dataframe_split": split, "params": {"param1": "2024-01-01"}}).encode(),
        ),
        Case("records", JSON, json.dumps({"dataframe_records": frame.to_dict(orient="records")}).encode()),
        Case("instances", JSON, json.dumps({"instances": x[:20].tolist()}).encode()),
        Case("inputs", JSON, json.dumps({"inputs": x[:20].tolist()}).encode()),
        Case("wrong-width", JSON, json.dumps({"inputs": x[:2, :1].tolist()}).encode()),
        Case("csv-header", CSV, frame.to_csv(index=False).encode()),
        Case("csv-no-header", CSV, frame.to_csv(index=False, header=False).encode()),
        *_common_errors(),
    ]
    return MatrixModel("knn-iris", path, cases, x[:20])


def pytorch_tensor(root: Path) -> MatrixModel:
    """A torch module logged with a float32 (-1, 8) tensor signature: the case of the issue."""
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    signature = infer_signature(x, net(torch.from_numpy(x)).detach().numpy())
    path = root / "pytorch-tensor"
    mlflow.pytorch.save_model(
        net, str(path), signature=signature, pip_requirements=_REQUIREMENTS, serialization_format="pickle"
    )
    cases = [
        Case("inputs", JSON, json.dumps({"inputs": x.tolist()}).encode()),
        Case("issue-ones", JSON, json.dumps({"inputs": [[1] * 8]}).encode()),
        Case("instances", JSON, json.dumps({"instances": x.tolist()}).encode()),
        Case("wrong-shape", JSON, json.dumps({"inputs": [[1.0] * 7]}).encode()),
        Case("strings", JSON, json.dumps({"inputs": [["a"] * 8]}).encode()),
        Case("dataframe_split", JSON, json.dumps({"dataframe_split": {"data": x.tolist()}}).encode()),
        Case("csv-no-header", CSV, pd.DataFrame(x).to_csv(index=False, header=False).encode()),
        *_common_errors(),
    ]
    return MatrixModel("pytorch-tensor", path, cases, x)


def pytorch_columns(root: Path) -> MatrixModel:
    """A torch module logged with a column signature (eight named float32 columns)."""
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(1)
    net = torch.nn.Linear(8, 1).eval()
    names = [f"f{i}" for i in range(8)]
    frame = pd.DataFrame(np.random.default_rng(1).normal(size=(6, 8)).astype(np.float32), columns=names)
    signature = infer_signature(frame, net(torch.from_numpy(frame.to_numpy())).detach().numpy())
    path = root / "pytorch-columns"
    mlflow.pytorch.save_model(
        net, str(path), signature=signature, pip_requirements=_REQUIREMENTS, serialization_format="pickle"
    )
    cases = [
        *_frame_cases(frame),
        Case("missing-column", JSON, json.dumps({"dataframe_records": [{"f0": 1.0}]}).encode()),
        Case("extra-column", JSON, json.dumps({"dataframe_split": _with_extra(frame)}).encode()),
    ]
    return MatrixModel("pytorch-columns", path, cases, frame)


def _with_extra(frame: pd.DataFrame) -> dict[str, Any]:
    wider = frame.assign(extra=1.0)
    split: dict[str, Any] = json.loads(wider.to_json(orient="split", index=False))
    return split


def _iris_frame() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    import sklearn.datasets

    iris = sklearn.datasets.load_iris(as_frame=True)
    frame = iris.data.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    return frame, iris.target.to_numpy(), list(iris.target_names)


def sklearn_regressor(root: Path) -> MatrixModel:
    import mlflow.sklearn
    import sklearn.linear_model
    from mlflow.models import infer_signature

    frame, _, _ = _iris_frame()
    x, y = frame.drop(columns="petal_width"), frame["petal_width"]
    model = sklearn.linear_model.LinearRegression().fit(x, y)
    path = root / "sklearn-regressor"
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(x, model.predict(x)), pip_requirements=_REQUIREMENTS
    )
    sample = x.head(7)
    cases = [
        *_frame_cases(sample),
        Case(
            "string-value",
            JSON,
            json.dumps({"dataframe_records": [{**sample.iloc[0].to_dict(), "sepal_length": "long"}]}).encode(),
        ),
    ]
    return MatrixModel("sklearn-regressor", path, cases, sample)


def sklearn_classifier(root: Path) -> MatrixModel:
    import mlflow.sklearn
    import sklearn.linear_model
    from mlflow.models import infer_signature

    frame, target, names = _iris_frame()
    labels = np.asarray(names, dtype=object)[target]
    model = sklearn.linear_model.LogisticRegression(max_iter=300).fit(frame, labels)
    path = root / "sklearn-classifier"
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(frame, model.predict(frame)), pip_requirements=_REQUIREMENTS
    )
    sample = frame.iloc[::15].reset_index(drop=True)
    return MatrixModel("sklearn-classifier", path, _frame_cases(sample), sample)


def custom_with_params(root: Path) -> MatrixModel:
    """A `PythonModel` whose answer depends on a declared param (`scale`, double, default 1.0) and a string param."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

    path = root / "custom-params"
    signature = ModelSignature(
        inputs=Schema([ColSpec(DataType.double, "x"), ColSpec(DataType.long, "n")]),
        outputs=Schema([ColSpec(DataType.double)]),
        params=ParamSchema([ParamSpec("scale", DataType.double, 1.0), ParamSpec("mode", DataType.string, "sum")]),
    )
    mlflow.pyfunc.save_model(
        str(path), python_model=_scaled_sum_class()(), signature=signature, pip_requirements=_REQUIREMENTS
    )
    frame = pd.DataFrame({"x": [0.5, 1.5, -2.25], "n": [1, 2, 3]})
    split = json.loads(frame.to_json(orient="split", index=False))
    cases = [
        *_frame_cases(frame),
        Case(
            "params", JSON, json.dumps({"dataframe_split": split, "params": {"scale": 2.5, "mode": "product"}}).encode()
        ),
        Case("param-wrong-type", JSON, json.dumps({"dataframe_split": split, "params": {"scale": "big"}}).encode()),
        Case("params-not-a-dict", JSON, json.dumps({"dataframe_split": split, "params": [1]}).encode()),
        Case("int-column-as-float", JSON, json.dumps({"dataframe_records": [{"x": 1.0, "n": 1.5}]}).encode()),
    ]
    return MatrixModel("custom-with-params", path, cases, frame, {"scale": 1.0})


def _scaled_sum_class() -> type:
    import mlflow.pyfunc

    class ScaledSumModel(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
            params = params or {}
            scale = float(params.get("scale", 1.0))
            if params.get("mode") == "product":
                return (model_input["x"] * model_input["n"] * scale).to_numpy()
            return ((model_input["x"] + model_input["n"]) * scale).to_numpy()

    return ScaledSumModel


def no_signature(root: Path) -> MatrixModel:
    """A `PythonModel` saved without a signature: whatever parses is passed through as MLflow parses it."""
    import mlflow.pyfunc

    path = root / "no-signature"
    mlflow.pyfunc.save_model(str(path), python_model=_row_sum_class()(), pip_requirements=_REQUIREMENTS)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.5], "b": [10, 20, 30]})
    return MatrixModel("no-signature", path, [*_frame_cases(frame), *_common_errors()], frame)


def _row_sum_class() -> type:
    import mlflow.pyfunc

    class RowSum(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
            frame = pd.DataFrame(model_input)
            return frame.select_dtypes("number").sum(axis=1).to_numpy()

    return RowSum


def string_input(root: Path) -> MatrixModel:
    """A `PythonModel` with one string column: answers each text's length and upper-case form (a DataFrame)."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    class Shout(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
            text = model_input["text"].astype(str)
            return pd.DataFrame({"length": text.str.len(), "upper": text.str.upper()})

    path = root / "string-input"
    signature = ModelSignature(inputs=Schema([ColSpec(DataType.string, "text")]))
    mlflow.pyfunc.save_model(str(path), python_model=Shout(), signature=signature, pip_requirements=_REQUIREMENTS)
    frame = pd.DataFrame({"text": ["hello", "Grüße", "a,b"]})
    cases = [
        *_frame_cases(frame, plain_csv=False),
        Case("number-for-string", JSON, json.dumps({"dataframe_records": [{"text": 5}]}).encode()),
    ]
    return MatrixModel("string-input", path, cases, frame)


def all_column_types(root: Path) -> MatrixModel:
    """A `PythonModel` with a column of each type the fast parser takes, and bodies at and past its envelope's edge."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    class Describe(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
            # Each row's numbers summed, and each column's dtype: the answer shows what the model was given.
            numbers = model_input[["d", "f", "l", "i"]].astype("float64").sum(axis=1) + model_input["b"].astype(int)
            dtypes = ",".join(str(model_input[name].dtype) for name in model_input.columns)
            return pd.DataFrame({"sum": numbers, "text": model_input["s"].astype(str), "dtypes": dtypes})

    path = root / "all-column-types"
    types = {"d": DataType.double, "f": DataType.float, "l": DataType.long, "i": DataType.integer}
    columns = [ColSpec(kind, name) for name, kind in types.items()]
    signature = ModelSignature(inputs=Schema([*columns, ColSpec(DataType.boolean, "b"), ColSpec(DataType.string, "s")]))
    mlflow.pyfunc.save_model(str(path), python_model=Describe(), signature=signature, pip_requirements=_REQUIREMENTS)
    frame = pd.DataFrame(
        {"d": [0.1, -2.5], "f": [1.25, 3.1], "l": [7, -(2**40)], "i": [3, -4], "b": [True, False], "s": ["x", "Grüße"]}
    ).astype({"f": "float32", "i": "int32"})
    row = {"d": 1.0, "f": 2.0, "l": 3, "i": 4, "b": True, "s": "t"}

    def records(*changes: dict[str, Any]) -> bytes:
        return json.dumps({"dataframe_records": [{**row, **change} for change in changes]}).encode()

    cases = [
        *_frame_cases(frame, plain_csv=False),
        # Inside the fast parser's envelope.
        Case("ints-for-floats", JSON, records({"d": 2, "f": 16777216})),
        Case("mixed-ints-and-floats", JSON, records({"d": 2}, {"d": 2.5, "f": 3})),
        Case("columns-reordered", JSON, json.dumps({"dataframe_records": [dict(reversed(row.items()))]}).encode()),
        Case(
            "integers-at-their-limits", JSON, records({"l": 2**63 - 1, "i": -(2**31)}, {"l": -(2**63), "i": 2**31 - 1})
        ),
        # Outside it: MLflow's parser decides.
        Case("null-value", JSON, records({"d": None})),
        Case("bool-for-double", JSON, records({"d": True})),
        Case("float-for-long", JSON, records({"l": 1.5})),
        Case("int-past-2-53-for-double", JSON, records({"d": 2**53 + 1})),
        Case("int-past-2-24-for-float", JSON, records({"f": 2**24 + 1})),
        Case("int-past-int32", JSON, records({"i": 2**31})),
        Case("number-for-string", JSON, records({"s": 5})),
        Case("missing-column", JSON, json.dumps({"dataframe_records": [{"d": 1.0}]}).encode()),
        Case("extra-column", JSON, records({"extra": 1})),
        Case(
            "split-with-index",
            JSON,
            json.dumps(
                {"dataframe_split": {"index": [5], "columns": list(row), "data": [list(row.values())]}}
            ).encode(),
        ),
        Case("with-params", JSON, json.dumps({"dataframe_records": [row], "params": {}}).encode()),
        Case("no-rows", JSON, json.dumps({"dataframe_records": []}).encode()),
    ]
    return MatrixModel("all-column-types", path, cases, frame)


BUILDERS = (
    knn_iris,
    pytorch_tensor,
    pytorch_columns,
    sklearn_regressor,
    sklearn_classifier,
    custom_with_params,
    no_signature,
    string_input,
    all_column_types,
)


def build_matrix(root: Path) -> dict[str, MatrixModel]:
    """Every model of the matrix, saved under `root` (a few seconds in all: the models are tiny)."""
    return {model.name: model for model in (builder(root) for builder in BUILDERS)}
