"""MLflow models-from-code: a generic pyfunc (no fast-path spec) that sleeps for the `delay` it is sent.

It keeps requests in flight for as long as a test needs (SIGTERM, inference timeout, in-flight limit) through the
server's ordinary generic path, with no test switch in the server.
"""

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class SlowPyfunc(PythonModel):
    """Sleeps for the largest `delay` (seconds) in the batch, then echoes each row's delay."""

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None) -> list[float]:
        import time

        delays = [float(value) for value in model_input["delay"]]
        time.sleep(max(delays))
        return delays


mlflow.models.set_model(SlowPyfunc())
