"""The one convention every `mlplat` command follows: shared options, one error path, exit codes, pipe-safe output.

How a command adopts it (a new command should need nothing else):

    from mlplat import clikit

    def transform(
        stack: clikit.StackOption = None,
        stack_file: clikit.StackFileOption = None,
        as_json: clikit.JsonFlag = False,
        json_out: clikit.JsonOutOption = None,
    ) -> None:
        \"\"\"One sentence: this is the command's --help.\"\"\"
        name, path = clikit.resolve_stack(stack, stack_file)   # BadInput naming the stack when it is unknown
        console = clikit.console(stderr=as_json)               # whole cells and no spinners outside a terminal
        ...                                                    # raise clikit.BadInput / clikit.Failed to stop
        clikit.emit_json(report, as_json, json_out)            # `--json` -> stdout, `--json-out PATH` -> file

    def register(app: typer.Typer) -> None:
        clikit.command(app, "transform", transform, panel=clikit.CLOUD)

`clikit.command` wraps the function in the error path: an expected failure (`BadInput`, `Failed`, a config error, a
missing or malformed file, missing AWS credentials, a missing extra) prints one `error: ...` line on stderr and exits
with its status; anything else prints one line naming a log file that holds the traceback (`--debug` prints it).

Exit statuses (the README's table is the user-facing copy):

    0  success
    1  the operation failed (a job, a deploy, a retraining run, a mandatory policy violation)
    2  bad input (usage, unknown stack, missing or malformed file, invalid config, missing credentials or extra)
    3  drift over the threshold (`mlplat monitor`)
"""

import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_DRIFT = 3

# The help panels of `mlplat --help`.
GOVERNANCE = "Plan, check and price (offline)"
CLOUD = "Cloud loop (a deployed stack)"
LOCAL = "Local platform (127.0.0.1)"

PROJECT_DIR = Path(__file__).resolve().parents[1]
STACKS_DIR = PROJECT_DIR / "stacks"
DEBUG_ENV = "MLPLAT_DEBUG"
# Outside a terminal (CI logs, `| tee`, `| cat`) Rich would fall back to 80 columns and cut table cells; this is
# wide enough for any row this project prints, and tables without `expand` take only the width they need.
PIPE_WIDTH = 1000

# Python modules that an optional extra provides, and that extra's name (pyproject.toml).
EXTRAS = {"sagemaker_mlflow": "sagemaker", "sagemaker_core": "cloud", "psycopg2": "postgres"}


class CliError(Exception):
    """An expected failure: the message is the one line the user reads, `exit_status` the exit status.

    Any exception class with an integer `exit_status` attribute is treated the same way, so a module's own error
    type (`SynthesisError`, `OutputsError`, ...) joins the error path by declaring it, without importing this module.
    """

    exit_status = EXIT_FAILED

    def __init__(self, message: str, exit_status: int | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status


class BadInput(CliError):
    """Input the command cannot use: an argument, a file, a stack, the environment. Exit status 2."""

    exit_status = EXIT_BAD_INPUT


class Failed(CliError):
    """The operation itself failed. Exit status 1."""

    exit_status = EXIT_FAILED


# --- shared options -------------------------------------------------------------------------------------------------

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        "-s",
        help="The stack: dev, staging or prod (stacks/Pulumi.<stack>.yaml).",
        envvar="MLPLAT_STACK",
        show_default=False,
    ),
]
StackFileOption = Annotated[
    Path | None,
    typer.Option(
        "--stack-file",
        help="A stack file to read instead of stacks/Pulumi.<stack>.yaml; names the stack when --stack is not given.",
        envvar="MLPLAT_STACK_FILE",
        dir_okay=False,
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout (the rest on stderr).")]
JsonOutOption = Annotated[
    Path | None,
    typer.Option(
        "--json-out",
        help="Also write the JSON report to this file (parent directories are created).",
        dir_okay=False,
        show_default=False,
    ),
]
PlanOption = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        help="Use a plan record written by `mlplat plan --json-out PATH` instead of planning; refused when it is "
        "another stack's plan.",
        dir_okay=False,
        show_default=False,
    ),
]
OutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="The stack's outputs as JSON (`pulumi stack output --json`); default: read through Pulumi.",
        envvar="MLPLAT_OUTPUTS",
        dir_okay=False,
        show_default=False,
    ),
]


def known_stacks() -> list[str]:
    """The stacks this project ships: stacks/Pulumi.<name>.yaml."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def unknown_stack(stack: str) -> BadInput:
    """The one message for a stack name without a stack file."""
    return BadInput(
        f"unknown stack {stack!r}: stacks/Pulumi.{stack}.yaml does not exist "
        f"(known: {', '.join(known_stacks())}; or pass --stack-file PATH)"
    )


def stack_from_file(path: Path) -> str:
    """The stack a stack file is for: `Pulumi.<name>.yaml` names it, else its `mlplat:environment`."""
    if path.name.startswith("Pulumi.") and path.name.endswith(".yaml") and len(path.name) > len("Pulumi..yaml"):
        return path.name[len("Pulumi.") : -len(".yaml")]
    import yaml

    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise BadInput(f"{path}: no such stack file") from None
    except yaml.YAMLError:
        document = {}
    config = document.get("config") if isinstance(document, Mapping) else None
    environment = config.get("mlplat:environment") if isinstance(config, Mapping) else None
    if not isinstance(environment, str):
        raise BadInput(f"{path}: cannot tell which stack it is for; pass --stack too")
    return environment


def stack_name(stack: str | None, stack_file: Path | None) -> str:
    """The stack's name alone, for commands that read a saved record (`--plan`) rather than the stack file."""
    if stack:
        return stack
    if stack_file is not None:
        return stack_from_file(stack_file)
    raise BadInput("no stack: pass --stack NAME (or set MLPLAT_STACK) or --stack-file PATH")


def resolve_stack(stack: str | None, stack_file: Path | None) -> tuple[str, Path]:
    """The stack name and its file from `--stack` and/or `--stack-file`; BadInput when neither names a stack file."""
    if stack_file is not None:
        if not stack_file.is_file():
            raise BadInput(f"{stack_file}: no such stack file")
        return (stack or stack_from_file(stack_file)), stack_file
    if not stack:
        raise BadInput("no stack: pass --stack NAME (or set MLPLAT_STACK) or --stack-file PATH")
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise unknown_stack(stack)
    return stack, path


# --- output ---------------------------------------------------------------------------------------------------------


def is_terminal(stderr: bool = False) -> bool:
    """Whether stdout (or stderr) is a terminal a person watches."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def console(stderr: bool = False) -> Console:
    """A Rich console that, outside a terminal, never cuts a cell, wraps a line or colours the text."""
    if is_terminal(stderr):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH, no_color=True, highlight=False)


def pipe_safe_help() -> None:
    """Typer's --help outside a terminal: as wide as it needs, so option names and help are not cut at 80 columns."""
    if not is_terminal():
        from typer import rich_utils

        rich_utils.MAX_WIDTH = int(os.environ.get("TERMINAL_WIDTH") or 200)


class _PlainStatus:
    """What `status` yields outside a terminal: updates are dropped (callers print the lines that matter)."""

    def update(self, text: str) -> None:
        pass


@contextmanager
def status(out: Console, text: str) -> Iterator[Any]:
    """A spinner in a terminal (yields Rich's Status); nothing elsewhere, so logs get no spinner frames."""
    if out.is_terminal:
        with out.status(text) as spinner:
            yield spinner
    else:
        yield _PlainStatus()


def emit_json(document: Any, as_json: bool, json_out: Path | None = None) -> None:
    """The one way a report leaves as JSON: stdout with `--json`, a file with `--json-out PATH`."""
    text = json.dumps(document, indent=2) + "\n"
    if json_out is not None:
        write_text(json_out, text)
    if as_json:
        typer.echo(text, nl=False)


def write_text(path: Path, text: str) -> Path:
    """Write a user-named output file, creating its parents; BadInput when the path cannot be a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        raise BadInput(f"cannot write {path}: {_reason(exc)}") from None
    return path


def check_writable(*paths: Path | None) -> None:
    """Before any work: each user-named output can be a file (its parents are created); BadInput naming it if not."""
    for path in paths:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise BadInput(f"cannot write {path}: {_reason(exc)}") from None
        if path.is_dir():
            raise BadInput(f"cannot write {path}: it is a directory")


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return "a parent of it is a file, not a directory"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    return exc.strerror or type(exc).__name__


def read_json(path: Path, what: str, hint: str = "") -> Any:
    """A user-named JSON file; BadInput naming the file when it is missing, a directory or not JSON."""
    suffix = f"; {hint}" if hint else ""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file ({what}){suffix}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not {what}{suffix}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: is not JSON ({what}){suffix}") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: is not JSON ({exc.msg} at line {exc.lineno}); expected {what}{suffix}") from None


# --- the error path -------------------------------------------------------------------------------------------------


_debug_flag = False


def set_debug(on: bool) -> None:
    """`mlplat --debug` (the root callback sets it on every invocation)."""
    global _debug_flag
    _debug_flag = on


def _debug() -> bool:
    return _debug_flag or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def _credentials_message(exc: BaseException) -> str | None:
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    hint = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return f"no AWS credentials: {hint}"
    if isinstance(exc, bce.NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or pass a stack whose outputs name it"
    if isinstance(exc, bce.TokenRetrievalError | bce.SSOTokenLoadError):
        return f"the AWS SSO session has expired: run `aws sso login` ({hint})"
    if isinstance(exc, bce.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            return f"the AWS credentials were refused ({code}): {hint}"
    return None


def expected(exc: BaseException) -> tuple[list[str], int] | None:
    """The lines (without `error: `) and exit status of an expected failure; None for a bug."""
    problems = getattr(exc, "problems", None)  # components.config.ConfigError: one line per problem
    if isinstance(exc, ValueError) and isinstance(problems, list) and problems:
        return [str(p) for p in problems], EXIT_BAD_INPUT
    status = getattr(exc, "exit_status", None)
    if isinstance(status, int):
        return (str(exc).splitlines() or [type(exc).__name__]), status
    credentials = _credentials_message(exc)
    if credentials is not None:
        return [credentials], EXIT_BAD_INPUT
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        if top in EXTRAS:
            extra = EXTRAS[top]
            message = f"this needs the {extra!r} extra ({top} is not installed): pip install 'mlplat[{extra}]'"
            return [message], EXIT_BAD_INPUT
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return [f"{exc.filename}: no such file or directory"], EXIT_BAD_INPUT
    if isinstance(exc, FileExistsError | NotADirectoryError | IsADirectoryError) and exc.filename:
        return [f"cannot write {exc.filename}: {_reason(exc)}"], EXIT_BAD_INPUT
    if isinstance(exc, PermissionError) and exc.filename:
        return [f"{exc.filename}: permission denied"], EXIT_BAD_INPUT
    return None


def crash_log_dir() -> Path:
    """Where tracebacks of unexpected errors go: the local platform's home (`$MLPLAT_HOME`, else .mlplat/) + logs."""
    # Spelled here rather than imported from mlplat.local.state: the training image carries this module (for the
    # drift monitor's command line) but not the local platform.
    home = os.environ.get("MLPLAT_HOME")
    return (Path(home).expanduser().resolve() if home else PROJECT_DIR / ".mlplat") / "logs"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def report(exc: BaseException) -> int:
    """Print the one line (or the traceback with --debug) for `exc` on stderr; returns the exit status."""
    found = expected(exc)
    if found is not None:
        lines, code = found
        for line in lines:
            typer.echo(f"error: {line}", err=True)
        return code
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
        return EXIT_FAILED
    text = "".join(traceback.format_exception(exc))
    summary = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    try:
        directory = crash_log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        log = directory / f"error-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}.log"
        log.write_text(" ".join(sys.argv) + "\n\n" + text)
        where = f"the traceback is in {_display(log)}"
    except OSError:
        where = "the traceback could not be saved"
    typer.echo(f"error: unexpected {summary} ({where}; --debug prints it)", err=True)
    return EXIT_FAILED


F = TypeVar("F", bound=Callable[..., Any])
# Usage errors Typer reports itself (exit 2 with its usage line); Typer ships its own click, so take the class from it.
_CLICK_ERRORS: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def errors(function: F) -> F:
    """Run a command function inside the error path (Typer reads the signature through functools.wraps)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt):
            raise
        except _CLICK_ERRORS:
            raise
        except Exception as exc:  # the one place every command's failures end
            raise typer.Exit(report(exc)) from None

    return run  # type: ignore[return-value]


def fail(message: str, status: int = EXIT_FAILED) -> NoReturn:
    """Stop a command with one `error:` line (for code that cannot raise through `errors`)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def command(app: typer.Typer, name: str, function: Callable[..., Any], panel: str, **kwargs: Any) -> None:
    """Register `function` as `mlplat <name>` in a help panel, inside the error path."""
    app.command(name, rich_help_panel=panel, **kwargs)(errors(function))
