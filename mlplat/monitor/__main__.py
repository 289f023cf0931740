"""`python -m mlplat.monitor`: the scheduled monitor job's entrypoint (the same command as `mlplat monitor`)."""

import typer

from mlplat import clikit
from mlplat.monitor.cli import monitor_command

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(clikit.errors(monitor_command))

if __name__ == "__main__":
    app()
