"""The MLP regressor, its parameters packed in one flat buffer, and the two ways a training step is computed.

The network predicts the standardised target (`core`) and `forward` maps it back to target units with buffers, so
the exported program returns target units directly.

All parameters are views into one flat tensor, and so are their gradients. The optimiser then updates a single
tensor (one fused AdamW kernel instead of one per layer), early stopping keeps its best weights with one copy, and
two step implementations share the same parameters and optimiser state:

- `autograd_step`: the textbook forward, `backward()`, `step()`; used with DDP (its hooks need autograd) and on GPU
  (with bf16 autocast);
- `fused_step`: the same maths written out (forward, the chain rule for Linear/ReLU/dropout, gradients written
  straight into the flat buffer). On a CPU a small MLP's step costs less than its per-operator dispatch, and this
  path dispatches about a quarter of the operators. A test checks it produces the same gradients as autograd.

Dropout draws its masks with `bernoulli_` in both paths, in the same order, so both consume the RNG identically.
"""

import itertools
from collections.abc import Sequence

import torch
from torch import nn


class _MLP(nn.Module):
    """Linear → ReLU (→ dropout) per hidden width, then a Linear to `n_outputs`: the body both models share."""

    def __init__(self, n_features: int, hidden: Sequence[int], dropout: float, n_outputs: int) -> None:
        super().__init__()
        widths = [n_features, *hidden]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.output = nn.Linear(widths[-1], n_outputs)
        self.dropout = float(dropout)

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """The output layer's values, shape [batch, n_outputs]."""
        for layer in self.hidden_layers:
            x = torch.relu(layer(x))
            if self.training and self.dropout > 0.0:
                keep = 1.0 - self.dropout
                x = x * torch.empty_like(x).bernoulli_(keep).div_(keep)
        return self.output(x)


class MLPRegressor(_MLP):
    """The shared MLP body to one output, de-standardised in `forward`."""

    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(
        self, n_features: int, hidden: Sequence[int], dropout: float, target_mean: float, target_std: float
    ) -> None:
        super().__init__(n_features, hidden, dropout, 1)
        self.register_buffer("target_mean", torch.tensor(float(target_mean), dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(float(target_std), dtype=torch.float32))

    def core(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction of the standardised target, shape [batch]."""
        return self.layers(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction in target units, shape [batch]."""
        return self.core(x) * self.target_std + self.target_mean

    def linear_layers(self) -> list[nn.Linear]:
        return [*self.hidden_layers, self.output]


class MLPClassifier(_MLP):
    """The shared MLP body to one logit per class (`n_outputs` = the number of classes); `forward` returns logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape [batch, classes]."""
        return self.layers(x)


def classification_step(
    train_module: nn.Module,
    flat: "FlatParameters",
    optimizer: "FlatAdamW",
    x: torch.Tensor,
    y: torch.Tensor,
    total: torch.Tensor,
    autocast: bool = False,
) -> None:
    """One cross-entropy step through autograd; adds the batch's summed loss to `total`; `y` holds class indices."""
    flat.grad.zero_()
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = train_module(x)
    loss = nn.functional.cross_entropy(logits.float(), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        total.add_(loss.detach() * y.shape[0])


class FlatParameters:
    """Re-home a module's parameters (and their gradients) as views of one contiguous tensor."""

    def __init__(self, module: nn.Module) -> None:
        parameters = list(module.parameters())
        reference = parameters[0]
        total = sum(parameter.numel() for parameter in parameters)
        self.flat = nn.Parameter(torch.empty(total, dtype=reference.dtype, device=reference.device))
        self.grad = torch.zeros_like(self.flat)
        self.flat.grad = self.grad
        offset = 0
        for parameter in parameters:
            count = parameter.numel()
            view = self.flat.data[offset : offset + count].view_as(parameter)
            view.copy_(parameter.data)
            parameter.data = view
            parameter.grad = self.grad[offset : offset + count].view_as(parameter)
            offset += count

    def snapshot(self) -> torch.Tensor:
        return self.flat.detach().clone()

    def restore(self, values: torch.Tensor) -> None:
        with torch.no_grad():
            self.flat.copy_(values)


class FlatAdamW:
    """AdamW (decoupled weight decay, as `torch.optim.AdamW`) over the one flat parameter tensor.

    A single call of PyTorch's fused AdamW kernel per step: `torch.optim.AdamW.step()` spends more time in Python
    bookkeeping than a small MLP spends computing its step. A test checks it matches `torch.optim.AdamW`.
    """

    def __init__(
        self, flat: FlatParameters, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999)
    ) -> None:
        self.flat = flat
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = 1e-8
        self.exp_avg = torch.zeros_like(flat.flat.data)
        self.exp_avg_sq = torch.zeros_like(flat.flat.data)
        self.steps = torch.zeros((), dtype=torch.float32, device=flat.flat.device)
        self._lists: tuple[list[torch.Tensor], ...] = (
            [flat.flat.data],
            [flat.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.steps],
        )

    def step(self) -> None:
        self.steps.add_(1)
        torch._fused_adamw_(
            *self._lists,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"exp_avg": self.exp_avg.cpu(), "exp_avg_sq": self.exp_avg_sq.cpu(), "steps": self.steps.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.steps.copy_(state["steps"])


class StandardisedView(nn.Module):
    """The regressor seen as a model of the standardised target: what the loss and DDP's hooks operate on."""

    def __init__(self, net: MLPRegressor) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.core(x)


def autograd_step(
    train_module: nn.Module,
    flat: FlatParameters,
    optimizer: FlatAdamW,
    x: torch.Tensor,
    y: torch.Tensor,
    total: torch.Tensor,
    autocast: bool = False,
) -> None:
    """One step through autograd; adds the batch's summed squared error to `total` ([1, 1]); `y` is [batch, 1].

    `train_module` maps features to the standardised target: a `StandardisedView`, or DDP around one.
    """
    flat.grad.zero_()
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=autocast):
        prediction = train_module(x)
    diff = prediction.float().unsqueeze(1) - y
    loss = diff.square().mean()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        total.add_(diff.square().sum())


class FusedStep:
    """One step with hand-written backpropagation (single process, Linear/ReLU/dropout); see the module docstring.

    The tensors it touches (including the transposed weights, which are views and follow every update) are looked
    up once, here, not on every step. The caller runs it under `torch.no_grad()` (it enters that itself otherwise).
    """

    def __init__(self, model: MLPRegressor, optimizer: FlatAdamW) -> None:
        self.optimizer = optimizer
        self.keep = 1.0 - model.dropout
        self.layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for layer in model.linear_layers():
            assert layer.weight.grad is not None and layer.bias.grad is not None, "wrap the model in FlatParameters"
            weight = layer.weight.data
            self.layers.append((weight, weight.t(), layer.bias.data, layer.weight.grad, layer.bias.grad))
        self.hidden = self.layers[:-1]
        self.last = self.layers[-1]
        # Last layer first: (weight, its gradient, the bias gradient, the layer's input index).
        self.backward = [(w, wg, bg, index) for index, (w, _, _, wg, bg) in reversed(list(enumerate(self.layers)))]
        self.threshold_backward = torch.ops.aten.threshold_backward.default

    def __call__(self, x: torch.Tensor, y: torch.Tensor, total: torch.Tensor) -> None:
        """Adds the batch's summed squared error (standardised units) to `total` ([1, 1]); `y` is [batch, 1]."""
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self(x, y, total)
        inputs = [x]
        masks: list[torch.Tensor] = []
        activation = x
        for _, weight_t, bias, _, _ in self.hidden:
            activation = torch.addmm(bias, activation, weight_t).relu_()
            if self.keep < 1.0:
                mask = torch.empty_like(activation).bernoulli_(self.keep).div_(self.keep)
                activation.mul_(mask)
                masks.append(mask)
            inputs.append(activation)
        _, weight_t, bias, _, _ = self.last
        diff = torch.addmm(bias, activation, weight_t).sub_(y)
        total.addmm_(diff.t(), diff)
        # d mean((out - y)^2) / d out = 2 (out - y) / batch
        grad = diff.mul_(2.0 / y.shape[0])
        for weight, weight_grad, bias_grad, index in self.backward:
            layer_input = inputs[index]
            torch.mm(grad.t(), layer_input, out=weight_grad)
            torch.sum(grad, 0, out=bias_grad)
            if index == 0:
                break
            grad = torch.mm(grad, weight)
            if masks:
                grad.mul_(masks[index - 1])
            grad = self.threshold_backward(grad, layer_input, 0)
        self.optimizer.step()
        return None
