"""The data-capture record: SageMaker's JSON Lines format, as serving writes it and the drift monitor reads it.

One line is one invocation:

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "...",
                                       "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2025-01-01T10:00:00Z",
                       "modelName": "abalone", "modelVersion": "3"},
     "eventVersion": "0"}

Files live under `data-capture/<endpoint>/[<variant>/]YYYY/MM/DD/HH/*.jsonl`; SageMaker adds the variant directory,
mlplat's serving writer does not.
"""

from collections.abc import Sequence

CAPTURE_DATA = "captureData"
ENDPOINT_INPUT = "endpointInput"
ENDPOINT_OUTPUT = "endpointOutput"
EVENT_METADATA = "eventMetadata"
EVENT_VERSION = "eventVersion"
CUSTOM_ATTRIBUTES = "customAttributes"

# One side of the invocation.
CONTENT_TYPE = "observedContentType"
MODE = "mode"
DATA = "data"
ENCODING = "encoding"
MODE_INPUT = "INPUT"
MODE_OUTPUT = "OUTPUT"
ENCODING_BASE64 = "BASE64"

# eventMetadata.
EVENT_ID = "eventId"
INFERENCE_TIME = "inferenceTime"
MODEL_NAME = "modelName"
MODEL_VERSION = "modelVersion"

RECORD_VERSION = "0"


def is_csv_header(row: Sequence[str]) -> bool:
    """Whether the first row of a CSV body names its columns: every cell is non-empty and not a number.

    Serving decides this when it reads a request, and the drift monitor decides it again on the captured body, so
    the two read the same columns only if they share this rule.
    """
    return all(_is_name(cell) for cell in row)


def _is_name(cell: str) -> bool:
    cell = cell.strip()
    if not cell:
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False
