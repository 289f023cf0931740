"""The `mlplat` command line: one Typer app, each noun's commands registered from its own module."""

import typer

app = typer.Typer(
    name="mlplat",
    help="Plan, check, price, deploy and run the mlplat ML platform, in the cloud or on one machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each command module exposes `register(app)`; the order here is the order of `mlplat --help`.
from mlplat import config_cmd, plan  # noqa: E402

plan.register(app)
config_cmd.register(app)
from mlplat import cloud_train, release  # noqa: E402

cloud_train.register(app)
release.register(app)
from mlplat.monitor import cli as monitor_cli  # noqa: E402

monitor_cli.register(app)
from mlplat import policy  # noqa: E402
from mlplat.cost import cli as cost_cli  # noqa: E402

policy.register(app)
cost_cli.register(app)
from mlplat.local import cli as local_cli  # noqa: E402

local_cli.register(app)
from mlplat import deploy  # noqa: E402

deploy.register(app)
