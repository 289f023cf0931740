"""The training container: a runtime for a team's own PyTorch script (`script.py`), whose default recipe reads a
tabular data set, trains an MLP regressor or classifier, tracks it in MLflow and registers it.

Run it as `python -m training` (see `training/README.md` for the contract). This package stands alone: it ships in
its own image and never imports the platform code (`mlplat`, `components`, pulumi).
"""
