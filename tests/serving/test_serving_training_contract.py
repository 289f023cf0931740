"""The real producer: a model written by `python -m training` serves on the fast path with its pyfunc's numbers."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serving_support import ServingServer, start_serving


@pytest.fixture(scope="module")
def trained_model_dir(background) -> Path:  # type: ignore[no-untyped-def]
    """The model directory of the training run the session started in the background."""
    return background.training.wait()


@pytest.fixture(scope="module")
def trained_server(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingServer]:
    started = start_serving("serving-trained", str(trained_model_dir), tmp_path_factory.mktemp("serving-trained"))
    yield started
    started.service.stop()


def test_the_training_containers_model_serves_on_the_fast_path_with_its_pyfuncs_predictions(
    trained_model_dir: Path, trained_server: ServingServer
) -> None:
    import mlflow.pyfunc

    example = json.loads((trained_model_dir / "serving_input_example.json").read_text())
    split = example["dataframe_split"]
    expected = mlflow.pyfunc.load_model(str(trained_model_dir)).predict(
        pd.DataFrame(split["data"], columns=split["columns"])
    )
    response = trained_server.invoke(json.dumps(example))
    assert response.status_code == 200
    np.testing.assert_allclose(response.json()["predictions"], np.asarray(expected, dtype=np.float64), rtol=1e-5)
    assert httpx.get(f"{trained_server.url}/version").json()["flavor"] == "mlplat-mlp/1"
