"""Benchmark the serving container against `mlflow models serve` on the same model, in the same run.

    .venv/bin/python bench/serve.py [--model-uri DIR|models:/name@alias] [--requests 5000] [--connections 1,8,32]

Without `--model-uri` it builds the abalone test model (the training container's format) in a temporary directory;
with `--register` (and MLFLOW_TRACKING_URI) it registers that model first and both servers load it from the
registry. Both servers run as processes on 127.0.0.1, each idle while the other is measured.

The load generator is a bounded asyncio loop over raw keep-alive HTTP/1.1 connections (no third-party client, so it
costs as little CPU as possible): for each connection count it sends a warm-up, then the same number of requests to
each server, and stops early at `--max-seconds`. It shares the machine, so by default ours gets one worker fewer than
there are cores (the generator needs the other one) and mlflow one worker per core, its best here; both counts are
printed with the results.
"""

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import benchkit
import httpx

from contracts.registry import model_uri

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
TARGET_RATIO, TARGET_P99_MS, TARGET_BATCH_MS = 15.0, 5.0, 10.0
# The generic path runs MLflow's own parsing and the model's pyfunc: its gain is everything around them.
TARGET_GENERIC_RATIO, TARGET_SUPERVISOR_MIB = 3.0, 80.0


@dataclass
class Result:
    """One server at one connection count."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def build_model(work: Path) -> str:
    """The abalone test model as an MLflow model directory (the stand-in for the training container's output)."""
    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from serving_models import save_abalone_model  # type: ignore[import-not-found]

    return str(save_abalone_model(work / "model", work / "artifacts"))


def register_model(work: Path, tracking_uri: str) -> str:
    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from serving_models import register_abalone_model  # type: ignore[import-not-found]

    register_abalone_model(tracking_uri, "mlplat-bench", work / "artifacts")
    return model_uri("mlplat-bench")


def start(argv: list[str], port: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{argv[2]} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"http://{HOST}:{port}/ping", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"{argv[2]} did not become healthy; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(port: int, payload: bytes, budget: list[int], deadline: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(payload)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            if status_line[9:12] == b"200":
                result.latencies_ms.append(elapsed * 1000)
                result.requests += 1
            else:
                result.errors += 1
    finally:
        writer.close()


async def drive(port: int, body: bytes, connections: int, requests: int, max_seconds: float) -> Result:
    """Send `requests` requests over `connections` keep-alive connections (at most `max_seconds`)."""
    payload = request_bytes(port, body)
    result = Result(0, 0, 0.0, [])
    budget = [requests]
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, payload, budget, started + max_seconds, result) for _ in range(connections))
    )
    result.seconds = time.perf_counter() - started
    return result


def measure(port: int, body: bytes, connections: int, requests: int, max_seconds: float) -> Result:
    try:  # uvloop (installed with uvicorn[standard]) makes the client cheaper; plain asyncio works too
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    run(drive(port, body, connections, max(50, requests // 20), max_seconds / 4))  # warm-up
    # The client's own garbage collections would stall requests in flight and be blamed on the server.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return run(drive(port, body, connections, requests, max_seconds))
    finally:
        gc.enable()


def payload(rows: Sequence[Sequence[object]], columns: Sequence[str]) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(columns), "data": [list(row) for row in rows]}}).encode()


def build_sklearn(work: Path) -> str:
    """A scikit-learn regressor on the abalone numeric columns: the same model for both servers' generic paths."""
    import mlflow.sklearn
    import sklearn.linear_model
    from mlflow.models import infer_signature

    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from serving_models import NUMERIC, abalone_frame  # type: ignore[import-not-found]

    frame = abalone_frame()
    model = sklearn.linear_model.Ridge().fit(frame[NUMERIC], frame["Rings"])
    path = work / "sklearn-model"
    signature = infer_signature(frame[NUMERIC].head(5), model.predict(frame[NUMERIC].head(5)))
    mlflow.sklearn.save_model(model, str(path), signature=signature, pip_requirements=["mlflow", "scikit-learn"])
    return str(path)


def build_classifier(work: Path) -> str:
    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from serving_models import save_iris_classifier  # type: ignore[import-not-found]

    return str(save_iris_classifier(work / "classifier-model", work / "classifier-artifacts"))


def supervisor_rss_mib(pid: int) -> float:
    """Resident memory of one process (not its children), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model-uri", help="a model directory or models:/ URI (default: build the test model)")
    parser.add_argument("--register", action="store_true", help="register the built model at MLFLOW_TRACKING_URI")
    parser.add_argument("--requests", type=int, default=5000, help="requests per server and connection count")
    parser.add_argument("--connections", default="1,8,32", help="comma-separated connection counts")
    parser.add_argument("--batch-requests", type=int, default=200, help="1,000-row requests per server")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap per measurement")
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, default=max(1, cores - 1), help="our server's workers")
    parser.add_argument("--mlflow-workers", type=int, default=cores, help="mlflow models serve's workers")
    parser.add_argument("--only", default="fast,generic,classifier,memory", help="which rows to measure")
    return benchkit.run(parser, run_bench, argv)


def run_bench(args: argparse.Namespace) -> benchkit.Report:
    levels = [int(level) for level in args.connections.split(",")]
    only = set(args.only.split(","))

    sys.path.insert(0, str(REPO / "tests" / "serving"))
    from serving_models import COLUMNS, IRIS_COLUMNS, NUMERIC, iris_frame, sample_rows  # type: ignore[import-not-found]

    single = payload(sample_rows(1), COLUMNS)
    batch = payload(sample_rows(1000), COLUMNS)
    numeric_single = payload([row[1:] for row in sample_rows(1)], NUMERIC)
    iris_single = payload(iris_frame()[IRIS_COLUMNS].head(1).to_numpy().tolist(), IRIS_COLUMNS)
    rows: dict[str, dict[str, dict[str, Result]]] = {}
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mlplat-bench-") as tmp:
        work = Path(tmp)
        # `mlflow models serve` execs `uvicorn` through bash: the venv's bin must be on PATH.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": path}
        model_uri = args.model_uri
        if model_uri is None:
            if args.register:
                if not os.environ.get("MLFLOW_TRACKING_URI"):
                    raise SystemExit("--register needs MLFLOW_TRACKING_URI")
                model_uri = register_model(work, os.environ["MLFLOW_TRACKING_URI"])
            else:
                model_uri = build_model(work)
        print(
            f"model: {model_uri}; {os.cpu_count()} cores; workers: ours {args.workers}, mlflow {args.mlflow_workers}; "
            f"load average {_load()}",
            flush=True,
        )
        load_before = _load()
        scenarios = []
        if "fast" in only:
            scenarios.append(("fast", model_uri, single, levels, True))
        if "generic" in only:
            scenarios.append(("generic", build_sklearn(work), numeric_single, [8], False))
        if "classifier" in only:
            scenarios.append(("classifier", build_classifier(work), iris_single, [8], False))
        for label, uri, body, counts, with_batch in scenarios:
            rows[label] = run_pair(label, uri, body, counts, batch if with_batch else None, args, work, env)
        if "memory" in only:
            memory = measure_memory(model_uri, work, env)
    bench = benchkit.Report(
        results={
            **{
                label: {name: {key: summary(res) for key, res in by.items()} for name, by in results.items()}
                for label, results in rows.items()
            },
            "memory_mib": memory,
            # Latency tails follow what else runs on the machine: the figures are read with the load they met.
            "load_average_1m": {"start": load_before, "end": _load()},
        }
    )
    if "fast" in rows:
        report(rows["fast"], levels, args.requests, bench)
    report_rows(rows, memory, bench)
    print(f"load average (1 min): {load_before} at the start, {_load()} at the end")
    errors = sum(res.errors for results in rows.values() for by in results.values() for res in by.values())
    if errors:
        bench.failed = f"{errors} requests failed"
    return bench


def run_pair(
    label: str,
    model_uri: str,
    body: bytes,
    levels: list[int],
    batch: bytes | None,
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
) -> dict[str, dict[str, Result]]:
    """Both servers on one model, one after the other, each idle while the other is measured."""
    servers = {
        "ours": [sys.executable, "-m", "serving", "--model-uri", model_uri, "--host", HOST],
        "mlflow": [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "-h", HOST,
            "--env-manager", "local", "-w", str(args.mlflow_workers),
        ],
    }  # fmt: skip
    results: dict[str, dict[str, Result]] = {}
    for name, argv_ in servers.items():
        port = free_port()
        full = [*argv_, "--port", str(port)] + (["--workers", str(args.workers)] if name == "ours" else [])
        print(f"[{label}] starting {name} on port {port} ...", flush=True)
        process = start(full, port, work / f"{label}-{name}.log", env)
        try:
            results[name] = {}
            for level in levels:
                results[name][str(level)] = measure(port, body, level, args.requests, args.max_seconds)
                print(f"  [{label}] {name} c={level}: {results[name][str(level)].rps:,.0f} req/s", flush=True)
            if batch is not None:
                results[name]["batch"] = measure(port, batch, 1, args.batch_requests, args.max_seconds)
        finally:
            stop(process)
    return results


def measure_memory(model_uri: str, work: Path, env: dict[str, str]) -> dict[str, float]:
    """RSS of our two-worker server: the supervisor alone, and each of its children, once the model is loaded."""
    port = free_port()
    argv = [sys.executable, "-m", "serving", "--model-uri", model_uri, "--host", HOST, "--port", str(port)]
    process = start([*argv, "--workers", "2"], port, work / "memory.log", env)
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        workers = [supervisor_rss_mib(int(pid)) for pid in children]
        # The children are the two workers and multiprocessing's small resource tracker.
        return {"supervisor": supervisor_rss_mib(process.pid), **{f"child{i}": rss for i, rss in enumerate(workers)}}
    finally:
        stop(process)


def report_rows(
    rows: dict[str, dict[str, dict[str, Result]]], memory: dict[str, float], bench: benchkit.Report
) -> None:
    """The targets of each row, as ratios against `mlflow models serve` measured in this run."""
    print()
    targets = {"fast": TARGET_RATIO, "generic": TARGET_GENERIC_RATIO, "classifier": TARGET_RATIO}
    for label, results in rows.items():
        ours, theirs = results["ours"].get("8"), results["mlflow"].get("8")
        if ours is None or theirs is None:
            continue
        ratio = ours.rps / theirs.rps if theirs.rps else float("inf")
        p99 = ours.percentile(0.99)
        target = targets[label]
        verdict = "met" if ratio >= target else "MISSED"
        bench.target(f"{label}: throughput at 8 connections vs mlflow", ratio, ">=", target, "x")
        p99_note = ""
        if label != "generic":
            p99_note = f", p99 {p99:.2f} ms (<= {TARGET_P99_MS:g} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'})"
            bench.target(f"{label}: p99 at 8 connections", p99, "<=", TARGET_P99_MS, " ms")
        print(
            f"{label:>10} @ 8 connections: ours {ours.rps:,.0f} req/s, mlflow {theirs.rps:,.0f} req/s -> "
            f"{ratio:.1f}x (>= {target:g}x: {verdict}){p99_note}"
        )
    if memory:
        supervisor = memory["supervisor"]
        verdict = "met" if supervisor <= TARGET_SUPERVISOR_MIB else "MISSED"
        bench.target("supervisor RSS with 2 workers", supervisor, "<=", TARGET_SUPERVISOR_MIB, " MiB")
        workers = ", ".join(f"{rss:.0f}" for key, rss in memory.items() if key != "supervisor")
        print(
            f"memory, 2 workers: supervisor {supervisor:.0f} MiB (<= {TARGET_SUPERVISOR_MIB:g} MiB: {verdict}); "
            f"its children (workers, resource tracker) {workers} MiB"
        )


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def summary(result: Result) -> dict[str, float]:
    return {
        "requests": result.requests,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.percentile(0.50), 3),
        "p99_ms": round(result.percentile(0.99), 3),
    }


def report(results: dict[str, dict[str, Result]], levels: list[int], requests: int, bench: benchkit.Report) -> None:
    ours, theirs = results["ours"], results["mlflow"]
    print()
    print(f"single-row requests ({requests} per cell; latency in ms)")
    header = f"{'conns':>5} | {'ours req/s':>10} {'p50':>7} {'p99':>7} | {'mlflow req/s':>12} {'p50':>7} {'p99':>7} |"
    print(header + f" {'req/s x':>7} {'p99 /':>7} | errors")
    print("-" * (len(header) + 26))
    for level in levels:
        a, b = ours[str(level)], theirs[str(level)]
        print(
            f"{level:>5} | {a.rps:>10,.0f} {a.percentile(0.5):>7.2f} {a.percentile(0.99):>7.2f} | "
            f"{b.rps:>12,.0f} {b.percentile(0.5):>7.2f} {b.percentile(0.99):>7.2f} | "
            f"{a.rps / b.rps if b.rps else float('inf'):>7.1f} {b.percentile(0.99) / a.percentile(0.99):>7.1f} | "
            f"{a.errors}/{b.errors}"
        )
    a, b = ours["batch"], theirs["batch"]
    print()
    print(
        f"1,000-row batch, 1 connection: ours p50 {a.percentile(0.5):.2f} ms p99 {a.percentile(0.99):.2f} ms; "
        f"mlflow p50 {b.percentile(0.5):.2f} ms p99 {b.percentile(0.99):.2f} ms"
    )
    if ours["batch"].latencies_ms:
        batch_p50 = statistics.median(ours["batch"].latencies_ms)
        bench.target("1,000-row batch p50", batch_p50, "<=", TARGET_BATCH_MS, " ms")


if __name__ == "__main__":
    sys.exit(main())
