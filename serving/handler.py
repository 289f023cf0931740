"""The pure core of `/invocations`: bytes and a content type in, a typed `Response` out.

`invoke` is the whole exchange in one synchronous call (used by tests and tools); the HTTP layer uses its parts
(`Model.prepare`, `Model.predict`, `Model.respond`), so the model can run off the event loop and with other
requests' rows in between.
"""

from serving.codec import negotiate
from serving.model import Model
from serving.protocol import Response, ServingError, error_response


def invoke(model: Model, body: bytes, content_type: str, accept: str | None, max_rows: int) -> Response:
    """Answer one invocation synchronously; every client error becomes a response with its status."""
    try:
        output = negotiate(accept)
        prepared = model.prepare(body, content_type, max_rows)
        return model.respond(prepared, model.predict(prepared.features), output).response
    except ServingError as error:
        return error_response(error)
