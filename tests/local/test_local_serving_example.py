"""The first prediction of a user's model is its own `serving_input_example.json`, read through the tracking server."""

import uuid
from typing import Any

import pytest

from mlplat.local.registry import serving_example


def register(tracking_uri: str, name: str, **log_args: Any) -> str:
    import mlflow
    from mlflow.pyfunc import PythonModel

    class Model(PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("serving-examples")
    with mlflow.start_run():
        logged = mlflow.pyfunc.log_model(name="model", python_model=Model(), **log_args)
    return str(mlflow.register_model(logged.model_uri, name).version)


def test_a_model_logged_with_an_input_example_yields_its_request_body(mlflow_server: Any, aws_env: Any) -> None:
    import pandas as pd

    name = f"with-example-{uuid.uuid4().hex[:6]}"
    version = register(mlflow_server.tracking_uri, name, input_example=pd.DataFrame({"x": [1.0, 2.0]}))

    assert serving_example(mlflow_server.tracking_uri, name, version) == {
        "dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0]]}
    }


def test_a_model_without_one_fails_with_one_line_saying_how_to_fix_it(mlflow_server: Any, aws_env: Any) -> None:
    name = f"no-example-{uuid.uuid4().hex[:6]}"
    version = register(mlflow_server.tracking_uri, name)

    with pytest.raises(ValueError) as caught:
        serving_example(mlflow_server.tracking_uri, name, version)

    assert str(caught.value) == (
        f"model {name} v{version} has no serving_input_example.json to predict with: log it with an input example "
        '(e.g. mlflow.pytorch.log_model(model, name="model", input_example=batch))'
    )
