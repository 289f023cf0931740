"""The training container: reads a tabular data set, trains an MLP regressor, tracks it in MLflow and registers it.

Run it as `python -m training` (see `training/README.md` for the contract). This package stands alone: it ships in
its own image and never imports the platform code (`mlplat`, `components`, pulumi).
"""
