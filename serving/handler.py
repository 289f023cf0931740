"""The pure core of `/invocations`: bytes and a content type in, a typed `Response` out.

`invoke` is the whole exchange in one synchronous call (used by tests and tools); the HTTP layer uses its two
halves, `prepare` and `respond`, so the model can run off the event loop and with other requests' rows in between.
"""

from typing import Any

import numpy as np

from serving.codec import Table, decode, encode, negotiate
from serving.model import Model
from serving.protocol import UNPROCESSABLE, Response, ServingError, error_response


def prepare(model: Model, body: bytes, content_type: str | None, max_rows: int) -> tuple[Table, Any]:
    """Decode a body and encode it for `model`: the table (for observers) and the model's input."""
    table = decode(body, content_type, max_rows)
    return table, model.encode(table)


def respond(predictions: Any, output_type: str) -> Response:
    """Predictions as a 200 response of the negotiated type; 422 when the model answered NaN or infinity."""
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind == "f":
        finite = np.isfinite(predictions)
        if not finite.all():
            row = int(np.argmin(finite.reshape(len(finite), -1).all(axis=1)))
            raise ServingError(
                UNPROCESSABLE, f"row {row}: the model's prediction is not a finite number (inputs far out of range?)"
            )
    body, media = encode(predictions, output_type)
    return Response(200, body, media)


def invoke(model: Model, body: bytes, content_type: str | None, accept: str | None, max_rows: int) -> Response:
    """Answer one invocation synchronously; every client error becomes a response with its status."""
    try:
        output = negotiate(accept)
        _, features = prepare(model, body, content_type, max_rows)
        return respond(model.predict(features), output)
    except ServingError as error:
        return error_response(error)
