"""accelerate's TensorBoard tracker: init_trackers with a config, log, log_images, end_training.

Run in the directory it should log into.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed


def main() -> None:
    torch.set_num_threads(1)
    set_seed(0)
    acc = Accelerator(log_with="tensorboard", project_dir="acc", cpu=True)
    acc.init_trackers(
        "proj", config={"lr": 0.05, "batch_size": 4, "optimizer": "sgd", "amp": False}
    )
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=g)
    y = (x[:, 0] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    model, opt, loader = acc.prepare(model, opt, loader)
    step = 0
    for epoch in range(2):
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            acc.backward(loss)
            opt.step()
            opt.zero_grad()
            acc.log({"train/loss": loss.item(), "train/lr": 0.05}, step=step)
            step += 1
        acc.log({"epoch": {"done": float(epoch), "loss": loss.item()}}, step=step)  # add_scalars
        acc.log({"note": f"epoch {epoch} finished"}, step=step)  # add_text
    tracker = acc.get_tracker("tensorboard")
    pixels = np.linspace(0.0, 1.0, 2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    tracker.log_images({"samples": pixels}, step=step)
    acc.end_training()


if __name__ == "__main__":
    main()
