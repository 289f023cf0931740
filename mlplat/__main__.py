"""`python -m mlplat` runs the command line."""

from mlplat.cli import app

app()
