"""A fast stand-in for `python -m training`: same flags and result line, registers a version over MLflow's REST API.

`STANDIN_TRAIN_FAIL=1` makes it fail the way the real job does on bad input: one `error: ...` line, exit 2.
"""

import argparse
import json
import os
import sys
import urllib.request


def call(method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        os.environ["MLFLOW_TRACKING_URI"] + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        if "RESOURCE_ALREADY_EXISTS" in text:
            return {}
        raise


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in (
        "--data",
        "--model-dir",
        "--output-data-dir",
        "--checkpoint-dir",
        "--registered-model-name",
        "--epochs",
        "--experiment-name",
        "--job-name",
    ):
        parser.add_argument(flag, required=True)
    parser.add_argument("--promote", action="store_true")
    parser.add_argument("--checkpoint-s3-uri")
    parser.add_argument("--hyperparameters")
    args = parser.parse_args()
    if os.environ.get("STANDIN_TRAIN_FAIL"):
        print(f"error: no CSV files under {args.data}", file=sys.stderr)
        return 2
    name = args.registered_model_name
    call("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
    version = call("POST", "/api/2.0/mlflow/model-versions/create", {"name": name, "source": "s3://standin/model"})
    number = version["model_version"]["version"]
    decision = os.environ.get("STANDIN_TRAIN_DECISION", "champion")
    call("POST", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": decision, "version": number})
    with open(os.path.join(args.checkpoint_dir, "last.pt"), "w") as out:
        out.write("standin")
    result = {
        "run_id": "standin-run",
        "model_uri": f"models:/{name}/{number}",
        "registered_model_name": name,
        "version": int(number),
        "test_rmse": 2.1,
        "rmse_ratio_to_mean": 0.21,
        "decision": decision,
        "aliases": [decision],
    }
    print("MLPLAT_RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
