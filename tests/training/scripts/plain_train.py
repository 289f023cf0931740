"""A user's script with no platform import: argparse, mlflow, a checkpoint of its own through the helper if asked."""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--fail", default="")
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()

if args.fail:
    print("Traceback (most recent call last):", file=sys.stderr)
    print(f"ValueError: {args.fail}", file=sys.stderr)
    sys.exit(3)

stopping = False


def on_term(signum: int, frame: object) -> None:
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
from training import toolkit  # noqa: E402

state = toolkit.load_checkpoint() or {"epoch": 0}
with mlflow.start_run():
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        mlflow.log_metric("loss", 1.0 / epoch, step=epoch)
        toolkit.save_checkpoint({"epoch": epoch})
        print(f"epoch {epoch}", flush=True)
        time.sleep(args.sleep)
        if stopping:
            sys.exit(143)
env = {key: os.environ[key] for key in ("SM_HPS", "SM_MODEL_DIR", "SM_CHANNELS", "SM_CURRENT_HOST")}
train = Path(os.environ.get("SM_CHANNEL_TRAIN", "/nonexistent"))
files = sorted(str(p.relative_to(train)) for p in train.rglob("*") if p.is_file()) if train.is_dir() else []
(Path(os.environ["SM_MODEL_DIR"]) / "seen.json").write_text(json.dumps({"argv": sys.argv[1:], **env, "train": files}))
