"""`make mutants`: mutmut over the guarded modules, one at a time, with a killed/survived table (or `--json`).

Usage: `python tests/mutants_report.py run [MODULE ...] [--json]` runs mutmut on each module (all of them when none
is named) against the tests that cover it, then prints the report; `python tests/mutants_report.py report [--json]`
prints the last report again (a survivor listed in tests/mutants-equivalent.txt since its run counts as
equivalent). mutmut's configuration is `[tool.mutmut]` in pyproject.toml; this script narrows it to
one module and that module's tests per run, because mutmut's stats run (which test covers which function, the basis
of its per-test selection) would otherwise run the whole suite, servers and training included. Each module's counts
are kept in `mutants-report.json`, so runs of different modules add up to one report. Not collected by pytest (its
name does not start with `test_`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "mutants-report.json"
EQUIVALENT = ROOT / "tests" / "mutants-equivalent.txt"

# The tests that guard each module: mutmut's stats run maps every test to the functions it reaches, and each mutant
# then runs only the tests that reach its function.
# The policy pack runs one file at a time against its direct tests (each policy called on resource dicts): the
# checkov tests run an outside tool and the shipped-stack tests synthesize whole stacks, both too slow per mutant;
# the engine-protocol tests call the pack from a gRPC server thread, where mutmut's trampolines cannot find their
# configuration.
POLICY_TESTS = [
    str(path.relative_to(ROOT))
    for path in sorted((ROOT / "tests" / "policies").glob("test_*.py"))
    if path.name not in ("test_checkov.py", "test_policy_stacks.py", "test_policy_engine_protocol.py")
]
POLICY_MODULES = [
    "base",
    "registry",
    "storage",
    "identity",
    "iam_reference",
    "network",
    "compute",
    "sagemaker",
    "kubernetes",
    "cost",
    "tagging",
    "__main__",
]
TESTS: dict[str, list[str]] = {
    **{f"policies/{name}.py": POLICY_TESTS for name in POLICY_MODULES},
    # The server tests run the codec in another process, where mutmut's stats cannot see it; the in-process unit
    # tests load a model per mutant. The direct tests cover the same refusals in milliseconds.
    "serving/codec.py": ["tests/serving/test_serving_codec.py"],
    "serving/protocol.py": ["tests/serving/test_serving_codec.py"],
    "serving/config.py": ["tests/serving/test_serving_units.py", "tests/serving/test_serving_config.py"],
    "training/checkpoint.py": ["tests/training/test_training_units.py", "tests/training/test_training_checkpoint.py"],
    # test_training_promotion.py trains in a subprocess, out of the stats' sight; the unit tests drive the same code.
    "training/registry.py": ["tests/training/test_training_units.py"],
    # Component tests over the shipped stacks synthesize whole stacks for every mutant; these build one component
    # (or call the helpers) alone and assert every input.
    "components/iam.py": ["tests/components/test_iam.py"],
    "components/artifacts.py": ["tests/components/test_artifacts.py::TestTheStoreBuiltAlone"],
}

# mutmut gives a mutant (its tests' time + 1 s) x timeout_multiplier of wall time before calling it a timeout (it
# counts as killed). Its default, 15, is for code whose mutants rarely hang; a mutant of the checkpoint writer thread
# that never signals "idle" hangs every test that waits for it, and at 15x each took minutes: 80 were left unrun.
TIMEOUT_MULTIPLIER: dict[str, float] = {"training/checkpoint.py": 4.0}

# mutmut's verdicts folded into the two that matter; a mutant no test reaches ("no tests") survived. The rest
# (not checked, skipped, suspicious) are counted apart.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests"}


def mutant_prefix(module: str) -> str:
    """mutmut names a mutant `<dotted module>.x_<function>__mutmut_<n>`."""
    return module.removesuffix(".py").replace("/", ".") + "."


def equivalent_mutants() -> set[str]:
    """Mutant names listed as equivalent (one a line: `<name>  # why it changes no behaviour`)."""
    if not EQUIVALENT.exists():
        return set()
    names = set()
    for line in EQUIVALENT.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


def count(module: str, verdicts: dict[str, str], equivalent: set[str]) -> dict[str, Any]:
    prefix = mutant_prefix(module)
    mine = {name: status for name, status in verdicts.items() if name.startswith(prefix)}
    tally = Counter(
        "equivalent"
        if name in equivalent and status in SURVIVED
        else "killed"
        if status in KILLED
        else "survived"
        if status in SURVIVED
        else "not tested"
        for name, status in mine.items()
    )
    decided = tally["killed"] + tally["equivalent"] + tally["survived"]
    return {
        "module": module,
        "mutants": len(mine),
        "killed": tally["killed"],
        "equivalent": tally["equivalent"],
        "survived": tally["survived"],
        "not_tested": tally["not tested"],
        "score": round(100 * (tally["killed"] + tally["equivalent"]) / decided, 1) if decided else None,
        "survivors": sorted(name for name, status in mine.items() if status in SURVIVED and name not in equivalent),
    }


def run_module(module: str, max_children: int) -> dict[str, str]:
    """Run mutmut on one module against its tests; the verdict of every mutant of it, by name."""
    # The dev extra; imported here so `report` works without it. Private API of the pinned mutmut version.
    from mutmut import __main__ as mutmut_main
    from mutmut.configuration import config
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    os.chdir(ROOT)
    # A fresh work dir per module: its stats and verdicts belong to that module's test selection.
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    settings = config()
    settings.only_mutate = [module]
    settings.pytest_add_cli_args_test_selection = TESTS[module]
    settings.timeout_multiplier = TIMEOUT_MULTIPLIER.get(module, settings.timeout_multiplier)
    try:
        mutmut_main._run([], max_children)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    verdicts: dict[str, str] = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            verdicts[name] = status_by_exit_code[code]
    return verdicts


def load_report() -> dict[str, Any]:
    """The saved report, with survivors listed as equivalent since their run counted as equivalent."""
    report: dict[str, Any] = json.loads(REPORT.read_text()) if REPORT.exists() else {"modules": {}}
    equivalent = equivalent_mutants()
    for row in report["modules"].values():
        listed = [name for name in row["survivors"] if name in equivalent]
        if listed:
            row["survivors"] = [name for name in row["survivors"] if name not in equivalent]
            row["equivalent"] += len(listed)
            row["survived"] -= len(listed)
            decided = row["killed"] + row["equivalent"] + row["survived"]
            row["score"] = round(100 * (row["killed"] + row["equivalent"]) / decided, 1) if decided else None
    return report


def print_table(report: dict[str, Any]) -> None:
    rows = [report["modules"][name] for name in TESTS if name in report["modules"]]
    print(f"{'module':<28} {'mutants':>7} {'killed':>7} {'equiv':>6} {'survived':>8} {'other':>8} {'score':>6}  run")
    for row in rows:
        score = "-" if row["score"] is None else f"{row['score']}%"
        print(
            f"{row['module']:<28} {row['mutants']:>7} {row['killed']:>7} {row['equivalent']:>6} "
            f"{row['survived']:>8} {row['not_tested']:>8} {score:>6}  {row['date']}"
        )
    missing = [name for name in TESTS if name not in report["modules"]]
    if missing:
        print("not run yet: " + ", ".join(missing))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("modules", nargs="*", help="modules to run (default: all): " + ", ".join(TESTS))
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant runs (default 1)")
    args = parser.parse_args(argv)
    unknown = [module for module in args.modules if module not in TESTS]
    if unknown:
        print(f"unknown module {unknown[0]!r}; one of: {', '.join(TESTS)}", file=sys.stderr)
        return 2
    report = load_report()
    if args.command == "run":
        modules = args.modules or list(TESTS)
        if len(modules) > 1:  # mutmut keeps global state: one process per module
            for module in modules:
                command = [sys.executable, __file__, "run", module, "--max-children", str(args.max_children)]
                if subprocess.run(command, check=False).returncode != 0:
                    print(f"mutmut failed on {module}", file=sys.stderr)
                    return 1
            report = load_report()
        else:
            verdicts = run_module(modules[0], args.max_children)
            row = count(modules[0], verdicts, equivalent_mutants())
            row["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
            report["modules"][modules[0]] = row
            REPORT.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
