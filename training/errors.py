"""The exceptions that map to the entrypoint's exit statuses (see `training/README.md`)."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
# 128 + the signal number, as a shell reports a process ended by that signal, so schedulers read it the usual way.
EXIT_SIGTERM = 143
EXIT_SIGINT = 130


class InputError(Exception):
    """Bad input (data, channel, hyperparameters, configuration): exit 2 with this one-line message."""


class Interrupted(Exception):
    """A termination signal arrived; a checkpoint has been written and the process should exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


class TrackingUnavailable(Exception):
    """The tracking server did not answer within the configured time."""
