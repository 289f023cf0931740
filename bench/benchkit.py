"""What every bench script shares: `--json` and `--strict`, targets reported as PASS/FAIL, and one exit-status rule.

A script builds its argparse parser, then hands `run` a function that measures and returns a `Report`:

    def measure(args: argparse.Namespace) -> benchkit.Report:
        report = benchkit.Report()
        ...                                             # print the human table as usual
        report.results["speedup"] = speedup
        report.target("speedup >= 10x", speedup, ">=", 10, "x")
        return report

    sys.exit(benchkit.run(parser, measure))

Exit status: 0 when the measurement ran (missed targets are reported as FAIL, not as an error), 1 when it failed
(an exception, or `report.failed` set), and with `--strict` also 1 on any missed target. With `--json`, everything the
script prints goes to stderr and stdout holds one JSON document: `{"results": ..., "targets": [...], "passed": ...}`.
"""

import argparse
import json
import math
import operator
import sys
import traceback
from collections.abc import Callable
from contextlib import nullcontext, redirect_stdout
from dataclasses import asdict, dataclass, field
from typing import Any

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    """One target and how the measurement fared against it."""

    name: str
    value: float
    op: str
    limit: float
    unit: str
    passed: bool

    def line(self) -> str:
        """`PASS speedup >= 10x: 12.1x` in the script's output."""
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict} {self.name}: {self.value:.4g}{self.unit} (target {self.op} {self.limit:g}{self.unit})"


@dataclass
class Report:
    """The numbers a script measured, its targets, and why the measurement failed (if it did)."""

    results: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    failed: str | None = None

    def target(self, name: str, value: float, op: str, limit: float, unit: str = "") -> bool:
        """Record a target; a NaN value (nothing measured) never passes."""
        passed = not math.isnan(value) and _OPERATORS[op](value, limit)
        self.targets.append(Target(name, float(value), op, float(limit), unit, passed))
        return passed

    @property
    def passed(self) -> bool:
        """Every target met."""
        return all(t.passed for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "targets": [asdict(t) for t in self.targets],
            "passed": self.passed,
            "failed": self.failed,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--json` and `--strict`, with the same help in every script."""
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout (the human report goes to stderr)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed (default: report it)")


def exit_status(report: Report, strict: bool) -> int:
    """0 when measured (and, with --strict, every target met); 1 otherwise."""
    if report.failed is not None:
        return 1
    return 1 if strict and not report.passed else 0


def run(
    parser: argparse.ArgumentParser,
    measure: Callable[[argparse.Namespace], Report],
    argv: list[str] | None = None,
) -> int:
    """Parse the arguments, measure, print the targets (and the JSON), and return the exit status."""
    add_arguments(parser)
    args = parser.parse_args(argv)
    stdout = sys.stdout
    with redirect_stdout(sys.stderr) if args.json else nullcontext():
        try:
            report = measure(args)
        except Exception as exc:  # a failed measurement is reported, not a traceback in the middle of the table
            traceback.print_exc(file=sys.stderr)
            report = Report(failed=f"{type(exc).__name__}: {exc}")
        print()
        for target in report.targets:
            print(target.line())
        if report.failed is not None:
            print(f"measurement failed: {report.failed}")
    if args.json:
        stdout.write(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    return exit_status(report, args.strict)
