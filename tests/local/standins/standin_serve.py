"""A fast stand-in for `python -m serving`: /ping, /version and /invocations on loopback, following the alias.

Like the real server it listens at once, answers /ping 503 until the alias exists, and follows the alias when it
moves (here on every /version request, the real server polls it).
"""

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def champion_version() -> str | None:
    name, alias = os.environ["MLPLAT_MODEL_URI"].removeprefix("models:/").split("@")
    query = urllib.parse.urlencode({"name": name, "alias": alias})
    url = f"{os.environ['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(json.loads(response.read())["model_version"]["version"])
    except urllib.error.HTTPError:
        return None


class Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/ping":
            self.reply(200 if champion_version() else 503, None)
        elif self.path == "/version":
            self.reply(200, {"status": "ready", "name": "abalone", "version": champion_version()})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rows = body["dataframe_split"]["data"]
        self.reply(200, {"predictions": [9.5 for _ in rows]})

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()
