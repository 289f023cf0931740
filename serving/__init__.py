"""The serving container: one server for a SageMaker endpoint, a Kubernetes Deployment and the local platform.

Run it as `python -m serving [serve] [--model-uri URI] [--host H] [--port P] [--workers N] [--log-level L]`.
Every flag has an environment variable (the flag wins); the rest are environment only:

- `MLPLAT_MODEL_URI` (`--model-uri`, default `/opt/ml/model`): an MLflow model directory,
  `models:/<name>@<alias>` (polled for moves), or `models:/<name>/<version>`.
- `MLFLOW_TRACKING_URI`: the registry for `models:/` URIs (an http(s) URL, or a SageMaker MLflow ARN with the
  `sagemaker-mlflow` plugin installed).
- `MLPLAT_HOST` (`--host`, default `0.0.0.0`): bind address; tests and the local platform pass `127.0.0.1`.
- `SAGEMAKER_BIND_TO_PORT` (`--port`, default 8080): listen port.
- `SAGEMAKER_MODEL_SERVER_WORKERS` (`--workers`, default: usable CPUs, a cgroup CPU limit included): worker
  processes, each loading the model once.
- `MLPLAT_INFERENCE_TIMEOUT` (default `SAGEMAKER_MODEL_SERVER_TIMEOUT`, else 10 s): how long a request waits for
  off-loop inference (the generic pyfunc path, or the fast path with `MLPLAT_INLINE_INFERENCE=0`); then 504.
- `MLPLAT_REQUEST_TIMEOUT` (10 s): a request must arrive, first byte to last, within this; else 408 and close.
- `MLPLAT_MAX_BODY_BYTES` (6 MiB): larger bodies get 413, decided from Content-Length before reading, or as soon
  as a chunked body passes the limit.
- `MLPLAT_MAX_ROWS` (10000): rows per request; more get 422.
- `MLPLAT_MAX_IN_FLIGHT` (64): invocations in progress per worker; past it, 503 with Retry-After at once.
- `MLPLAT_MODEL_POLL_INTERVAL` (30 s, 0 = never): registry checks of an alias; a moved alias is loaded in the
  background, warmed, and swapped in atomically.
- `MLPLAT_MODEL_NAME`, `MLPLAT_MODEL_VERSION`: labels of a directory model in /version and /metrics.
- `MLPLAT_MODEL_CACHE` (system temp): where registry versions are downloaded.
- `MLPLAT_TORCH_THREADS` (1): torch intra-op threads per worker (inter-op is 1).
- `MLPLAT_INLINE_INFERENCE` (1): run the fast path on the event loop (its work is bounded and sub-millisecond).
- `MLPLAT_MICRO_BATCH` (1), `MLPLAT_MICRO_BATCH_ROWS` (1024), `MLPLAT_MICRO_BATCH_WAIT_MS` (0): stack concurrent
  fast-path requests into one forward pass, up to that many rows, waiting that long to gather them.
- `MLPLAT_GRACEFUL_TIMEOUT` (25 s): on SIGTERM, time to finish in-flight requests before they are cancelled.
- `MLPLAT_KEEP_ALIVE_TIMEOUT` (75 s): idle keep-alive connections close after this; longer than the idle timeout
  of the load balancer or SageMaker front end in front, so the server is never the side that closes mid-request.
- `MLPLAT_LOG_LEVEL` (`--log-level`, info); `MLPLAT_ACCESS_LOG` (0: uvicorn's access log costs throughput).

Endpoints:
- `GET /ping`: 200 with an empty body once the model is loaded and warmed in every worker, 503 (empty) before, so
  no request routed after a 200 can meet a worker that is still loading.
- `POST /invocations`: `application/json` (`{"inputs": [[...]]}`, `{"inputs": {"col": [...]}}`,
  `{"instances": [...]}`, `{"dataframe_split": {"columns": [...], "data": [[...]]}}`, `{"dataframe_records": [...]}`,
  or a bare list of rows or records) or `text/csv` (header optional). Answers `{"predictions": [...]}` or CSV (one
  prediction a line), by `Accept`. Errors are `{"error": "<message>"}`: 400 malformed body, wrong shape, feature
  count or columns; 408 request not received in time; 413 body too large; 415 Content-Type; 406 Accept; 422 values
  (non-numeric, NaN or infinity, beyond float32, unknown category, too many rows, a non-finite prediction); 503 not
  loaded or too many in flight (Retry-After); 504 inference timeout; 500 anything unexpected, never with a trace.
- `POST /invocations` with `application/jsonlines` (Batch Transform's SplitType=Line for JSON): one row or record a
  line; `Accept: application/jsonlines` answers one prediction a line, in order (CSV does the same for CSV).
- `GET /execution-parameters`: `{"MaxConcurrentTransforms": <workers>, "BatchStrategy": "MULTI_RECORD",
  "MaxPayloadInMB": <body limit>}` for SageMaker Batch Transform.
- `GET /version`: `{"status", "name", "version", "run_id", "source", "flavor"}` of the serving model (and
  `"error"`, why not, while it is still loading).
- `GET /metrics`: Prometheus text: `mlplat_serving_requests_total{path,status}`,
  `mlplat_serving_request_duration_seconds`, `mlplat_serving_in_flight_requests`, `mlplat_serving_model_info`,
  `mlplat_serving_model_swaps_total`, `mlplat_serving_predicted_rows_total`, `mlplat_serving_model_loaded`,
  `mlplat_serving_model_load_failures_total`, summed over workers.

Data capture (`serving/capture.py`, MLPLAT_CAPTURE_DESTINATION and friends) plugs into the one hook the app has
for observers of scored requests (`runtime.PredictionListener`), off the hot path.

Models: an MLflow model directory whose pyfunc artifacts include `mlplat_model.json` with a format in the fast-path
registry (`serving.model.FAST_PATHS`: `mlplat-mlp/1`, `mlplat-mlp-classifier/1`) and its `torch.export` program
serves on the fast path (numpy encoding, no pandas, no pickles; extra columns ignored and named in the
`x-mlplat-ignored-columns` header; classifiers answer labels, or probabilities with `params.output`); any other MLflow
model is served by `serving.generic` with MLflow's own parsing, params validation and answer shapes (its errors also
carry MLflow's `error_code`). There, a `dataframe_split` or `dataframe_records` body naming exactly the signature's
columns (double, float, long, integer, boolean, string; all required) with values of their JSON types is parsed by a
fast parser into the frame MLflow's parser builds; anything else, and every error, goes through MLflow's own code.
Requests that wait for the inference thread together are scored as one frame when the model is row-wise (a
scikit-learn predict function), and each alone if that batch fails (`MLPLAT_MICRO_BATCH=0`: never together).
On SIGTERM the server stops accepting, finishes in-flight requests and exits (within MLPLAT_GRACEFUL_TIMEOUT + a few
seconds).

This package stands alone: it ships in its own image and never imports the platform's other packages.
"""
