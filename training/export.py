"""The serving fast path's files: the network as a `torch.export` program, and the JSON that says how to feed it.

Both are pyfunc artifacts of the logged MLflow model, so they sit in the model directory as

- `artifacts/model.pt2`: `torch.export.save` of the trained network (eval mode). Input: float32 tensor
  `[batch, n_encoded_features]` of already encoded and standardised features (batch size is dynamic, >= 1).
  Output: float32 `[batch]`, **in target units**: the network de-standardises its output itself.
- `artifacts/mlplat_model.json`, format `mlplat-mlp/1`:

  ```
  {"format": "mlplat-mlp/1",
   "target": "Rings",
   "columns": [raw input columns, in order],
   "numeric": [numeric raw columns, in order],
   "categorical": {"Sex": ["F", "I", "M"]},
   "encoded_features": ["Length", ..., "Sex=F", "Sex=I", "Sex=M"],   # the program's input order
   "mean": [per encoded feature], "std": [per encoded feature],
   "target_mean": null, "target_std": null,     # null: the program already returns target units
   "output": "target_units",
   "program": "model.pt2"}
  ```

- classification (`mlplat-mlp-classifier/1`): the same keys, plus `"task": "classification"` and `"classes"` (the
  labels as the data spells them: strings, or ints for an integer target; index i = logit i), `"output": "logits"`.
  The program returns logits, float32 `[batch, n_classes]`; probabilities are their softmax.

To encode a raw row: numeric columns first (in `numeric` order) as floats, then for each categorical column (in
`categorical` order) one 0/1 value per listed category (a category not in the list gives all zeros); then
`(value - mean[i]) / std[i]` per position. One-hot positions have mean 0 and std 1.
"""

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.data import Encoding

PROGRAM = "model.pt2"
METADATA = "mlplat_model.json"


def metadata(encoding: Encoding) -> dict[str, Any]:
    """`mlplat_model.json` for the encoding's task (the recipe decides the format)."""
    from training.recipes import RECIPES

    return RECIPES[encoding.task]().metadata(encoding)


def export_program(net: nn.Module, n_features: int, path: Path) -> None:
    """Save the network, on CPU and in eval mode, with a dynamic batch dimension."""
    import copy

    module = copy.deepcopy(net).cpu().eval()
    # Inference only: a program whose weights require grad would make every caller wrap it in no_grad().
    module.requires_grad_(False)
    example = torch.zeros(4, n_features, dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, path)


def write_model_files(net: nn.Module, encoding: Encoding, directory: Path) -> dict[str, Path]:
    """Write `model.pt2` and `mlplat_model.json` into `directory`; returns them as pyfunc artifacts."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / PROGRAM
    export_program(net, len(encoding.encoded_features), program)
    document = directory / METADATA
    document.write_text(json.dumps(metadata(encoding), indent=2), encoding="utf-8")
    return {"program": program, "metadata": document}
