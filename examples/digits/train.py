"""A team's own script: a small image classifier on scikit-learn's bundled 8x8 digits, in plain PyTorch.

It runs alone (`python train.py`) or under torchrun (DDP: each rank trains on its shard of the data); on the
platform's image (`python -m training --entry-point train.py --source-dir examples/digits`) the MLflow run, the
checkpoint directory and the environment are prepared, and `training.toolkit` lets it resume after a spot
interruption.
"""

import argparse
import os

import mlflow
import mlflow.pytorch
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn

from training import toolkit

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--lr", type=float, default=0.01)
args = parser.parse_args()

distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
if distributed:
    dist.init_process_group("gloo")
rank, world = toolkit.rank(), toolkit.world_size()
torch.manual_seed(0)

digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [n, 1, 8, 8]
y = torch.tensor(digits.target)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
test, train = order[:360], order[360:]
shard = train[rank::world]

model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
)  # fmt: skip
net = nn.parallel.DistributedDataParallel(model) if distributed else model
optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
state = toolkit.load_checkpoint()
start = 1
if state is not None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    start = state["epoch"] + 1

if toolkit.is_main_process():
    mlflow.start_run()
for epoch in range(start, args.epochs + 1):
    net.train()
    for batch in shard[torch.randperm(len(shard))].split(64):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
    if toolkit.is_main_process():
        model.eval()
        with torch.no_grad():
            accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
        mlflow.log_metrics({"train_loss": loss.item(), "test_accuracy": accuracy}, step=epoch)
        print(f"epoch {epoch} test_accuracy={accuracy:.4f}", flush=True)
    toolkit.save_checkpoint({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict()})

if toolkit.is_main_process():
    mlflow.pytorch.log_model(model, name="model", input_example=x[:2].numpy())
    mlflow.end_run()
if distributed:
    dist.destroy_process_group()
