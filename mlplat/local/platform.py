"""The local platform's orchestration: bring the cloud's shape up on 127.0.0.1 in six steps, report it, stop it.

`LocalPlatform(home).up(options)` runs the steps (store, tracking, data, train, serve, predict), reusing parts
that are already up and healthy and restarting dead ones; `status()` probes each recorded part; `down()` stops
exactly the processes recorded in `.mlplat/state.json`. A failed step raises `StepFailed` naming the step and the
log to read, after stopping everything this invocation started. The command line (`mlplat.local.cli`) only renders.
"""

import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

from mlplat.local import services
from mlplat.local import state as st
from mlplat.local.bucket import bucket_name, s3_client, snapshot_bucket
from mlplat.local.files import display, private_umask
from mlplat.local.registry import served_model
from mlplat.local.report import (
    DEFAULT_EPOCHS,
    STEPS,
    PartStatus,
    PlatformError,
    Reporter,
    SilentReporter,
    StepFailed,
    StopResult,
    UpOptions,
    UpReport,
    UserProject,
)
from mlplat.local.state import State
from mlplat.local.steps import UpRun

__all__ = [
    "DEFAULT_EPOCHS",
    "STEPS",
    "LocalPlatform",
    "PartStatus",
    "PlatformError",
    "StepFailed",
    "StopResult",
    "UpOptions",
    "UpReport",
    "UserProject",
    "cost_estimate",
    "display",
    "s3_client",
]

DEFAULT_MODEL_NAME = "abalone"


def cost_estimate(stack: str) -> dict[str, Any]:
    """The monthly cost of the cloud stack this local platform mirrors, from `mlplat cost` when it is installed.

    Always a dict: `available` says whether the estimate could be made, `reason` why not.
    """
    try:
        from mlplat.cost.cli import stack_estimate
    except ImportError:
        return {"stack": stack, "available": False, "reason": "mlplat.cost is not installed"}
    try:
        result = stack_estimate(stack, None, None, date.today()).to_json()
    except Exception as exc:  # a broken estimate must not fail a working platform
        return {"stack": stack, "available": False, "reason": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "stack": stack,
        "available": True,
        "idle_monthly_usd": result.get("idleMonthlyUsd"),
        "peak_monthly_usd": result.get("peakMonthlyUsd"),
        "budget_usd": result.get("budgetUsd"),
        "within_budget": result.get("withinBudget"),
        "price_table": result.get("priceTable"),
    }


class LocalPlatform:
    """The local platform under one home directory (default `.mlplat/` at the project root)."""

    def __init__(self, home: Path | None = None, reporter: Reporter | None = None) -> None:
        self.home = (home or st.default_home()).resolve()
        self.reporter: Reporter = reporter or SilentReporter()
        self.logs = self.home / "logs"

    # ---- queries ------------------------------------------------------------------------------------------

    def state(self) -> State | None:
        """The recorded state, its model as serving serves it now (a retrain hot-swaps serving behind our back)."""
        current = st.load(self.home)
        if current is not None:
            current.model = served_model(current)
        return current

    def status(self) -> list[PartStatus]:
        """Each recorded part, probed now; [] when the platform is not running here."""
        current = self.state()
        if current is None:
            return []
        result = []
        for name, part in current.ordered_parts():
            alive = part.is_alive()
            result.append(
                PartStatus(
                    name=name,
                    pid=part.pid,
                    port=part.port,
                    url=part.url,
                    alive=alive,
                    healthy=alive and services.probe(part.health_url),
                    log=part.log,
                )
            )
        return result

    # ---- down ---------------------------------------------------------------------------------------------

    def down(self, purge: bool = False, snapshot: bool = True) -> list[StopResult]:
        """Stop every recorded process (serving first, the store last); keep the data unless `purge`.

        Before the store stops, its bucket is copied to `.mlplat/s3/` (moto keeps objects in memory) so the next
        `up` restores it instead of training again.
        """
        if not self.home.exists():
            return []
        with st.home_errors(self.home), private_umask(), st.locked(self.home):
            current = self.state()
            results: list[StopResult] = []
            if current is not None:
                s3 = current.parts.get("s3")
                if snapshot and not purge and s3 is not None and s3.is_healthy():
                    try:
                        snapshot_bucket(s3_client(s3.url), current.bucket, self.home / "s3" / current.bucket)
                    except Exception as exc:  # a failed copy must not keep processes running
                        self.reporter.note(f"could not snapshot the bucket ({exc}); the next up trains again")
                for name, part in reversed(current.ordered_parts()):
                    results.append(st.stop_part(part))
                    del current.parts[name]
                    st.save(self.home, current)
                st.clear(self.home)
        if purge:
            shutil.rmtree(self.home, ignore_errors=True)
        return results

    # ---- up -----------------------------------------------------------------------------------------------

    def up(self, options: UpOptions) -> UpReport:
        """Run the six steps; see the module docstring. Raises StepFailed or PlatformError."""
        from components.config import ConfigError, load_stack

        began = time.monotonic()
        try:
            stack_cfg = load_stack(options.stack)
        except ConfigError as exc:
            raise PlatformError(str(exc)) from None
        model_name = stack_cfg.endpoints[0].model if stack_cfg.endpoints else DEFAULT_MODEL_NAME
        endpoint_name = stack_cfg.endpoints[0].name if stack_cfg.endpoints else f"{model_name}-local"
        if options.project is not None:
            model_name, endpoint_name = options.project.model, f"{options.project.model}-local"
        capture_percent = stack_cfg.endpoints[0].data_capture_percent if stack_cfg.endpoints else 0.0
        with st.home_errors(self.home), private_umask(), st.locked(self.home):
            current = self.state()
            running = current is not None and any(p.is_alive() for p in current.parts.values())
            if current is not None and running and (current.stack, current.db) != (options.stack, options.db):
                raise PlatformError(
                    f"the local platform under {display(self.home)} runs stack {current.stack} with --db "
                    f"{current.db}; run `mlplat down --local` first to switch to stack {options.stack} with "
                    f"--db {options.db}"
                )
            if current is None or (current.stack, current.db) != (options.stack, options.db):
                current = State(stack=options.stack, db=options.db, bucket=bucket_name(options.stack))
            run = UpRun(self.home, self.reporter, current, options, model_name, endpoint_name, capture_percent, began)
            try:
                report = run.execute()
            except BaseException:
                run.rollback()
                raise
        return report
