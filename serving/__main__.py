"""`python -m serving`: the container's entrypoint (SageMaker runs it as `... serve`)."""

import argparse
import os
import sys

from serving.config import Settings, SettingsError
from serving.source import ModelSource

# Flag -> environment variable: flags only set the environment, which every worker process reads.
_FLAGS = {
    "model_uri": "MLPLAT_MODEL_URI",
    "host": "MLPLAT_HOST",
    "port": "SAGEMAKER_BIND_TO_PORT",
    "workers": "SAGEMAKER_MODEL_SERVER_WORKERS",
    "log_level": "MLPLAT_LOG_LEVEL",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Serve an MLflow model over the SageMaker hosting contract (/ping, /invocations).",
        epilog="Every flag has an environment variable; see `python -c 'import serving; help(serving)'`.",
    )
    parser.add_argument("command", nargs="?", choices=["serve"], help="accepted and ignored (SageMaker passes it)")
    parser.add_argument("--model-uri", help="model directory or models:/<name>@<alias> [MLPLAT_MODEL_URI]")
    parser.add_argument("--host", help="address to bind [MLPLAT_HOST, default 0.0.0.0]")
    parser.add_argument("--port", help="port to listen on [SAGEMAKER_BIND_TO_PORT, default 8080]")
    parser.add_argument("--workers", help="worker processes [SAGEMAKER_MODEL_SERVER_WORKERS, default: CPU count]")
    parser.add_argument("--log-level", help="critical|error|warning|info|debug [MLPLAT_LOG_LEVEL, default info]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for attribute, variable in _FLAGS.items():
        value = getattr(args, attribute)
        if value is not None:
            os.environ[variable] = str(value)
    try:
        settings = Settings.from_env()
        ModelSource.parse(settings.model_uri)
    except (SettingsError, ValueError) as error:
        print(f"serving: {error}", file=sys.stderr)
        return 2

    from serving.server import run  # after the environment is final: workers inherit it

    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
