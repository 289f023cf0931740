"""The `mlplat` command line: one Typer app, each noun's commands registered from its own module."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

import typer

from mlplat import budget, clikit, cloud_train, config_cmd, deploy, plan, policy, release, transform
from mlplat.cost import cli as cost_cli
from mlplat.jobs import listing as jobs_cli
from mlplat.local import cli as local_cli
from mlplat.monitor_cmd import cli as monitor_cli

clikit.pipe_safe_help()

app = typer.Typer(
    name="mlplat",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"mlplat {package_version('mlplat')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("mlplat (not installed)")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar=clikit.DEBUG_ENV,
            help="On an unexpected error, print the traceback instead of a log path.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print mlplat's version and exit."),
    ] = False,
) -> None:
    """Plan, check, price, deploy and run the mlplat ML platform, in the cloud or on one machine.

    Exit status: 0 success, 1 the operation failed, 2 bad input, 3 drift (`mlplat monitor`).
    """
    clikit.set_debug(debug)


# Each command module exposes `register(app)`; this order is the order of `mlplat --help` within each panel.
for module in (
    plan,
    config_cmd,
    policy,
    cost_cli,
    budget,
    deploy,
    cloud_train,
    jobs_cli,
    release,
    transform,
    local_cli,
    monitor_cli,
):
    module.register(app)
