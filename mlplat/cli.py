"""The `mlplat` command line: one Typer app, each noun's commands registered from its own module."""

import typer

from mlplat import cloud_train, config_cmd, deploy, plan, policy, release, transform
from mlplat.cost import cli as cost_cli
from mlplat.local import cli as local_cli
from mlplat.monitor import cli as monitor_cli

app = typer.Typer(
    name="mlplat",
    help="Plan, check, price, deploy and run the mlplat ML platform, in the cloud or on one machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each command module exposes `register(app)`; this order is the order of `mlplat --help`:
# the offline tools first, then the cloud loop, then the local platform and monitoring.
for module in (plan, config_cmd, policy, cost_cli, deploy, cloud_train, release, transform, local_cli, monitor_cli):
    module.register(app)
