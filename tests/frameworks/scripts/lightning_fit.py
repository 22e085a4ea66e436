"""Lightning ``Trainer.fit`` with a ``TensorBoardLogger``: two versions in one save_dir.

Run in the directory it should log into (paths are relative, so two runs of
this script write byte-identical hyperparameters).  ``DDP=1`` in the
environment trains with ``strategy="ddp"`` on two CPU processes (gloo).

Each fit: ``save_hyperparameters()``, ``self.log`` of two values every step
(one of them also per epoch, one synchronised across ranks), ``log_graph``
from ``example_input_array``, ``hp_metric`` (-1 at the start, the default;
the last loss at the end through ``log_hyperparams``).
"""

from __future__ import annotations

import os
import warnings

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

DDP = os.environ.get("DDP") == "1"


class Tiny(L.LightningModule):
    def __init__(self, lr: float = 0.1, width: int = 4, optimizer: str = "sgd") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 2)
        self.example_input_array = torch.zeros(1, width)
        self.last_loss = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log("train/loss", loss, sync_dist=DDP)
        self.log("train/acc", acc, on_step=True, on_epoch=True)
        self.last_loss = float(loss)
        return loss

    def on_train_end(self) -> None:
        # Lightning's documented way to give hp_metric its final value.
        assert self.logger is not None
        self.logger.log_hyperparams(self.hparams, {"hp_metric": self.last_loss})  # type: ignore[arg-type]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def fit(version: int, lr: float) -> None:
    L.seed_everything(version, verbose=False)
    g = torch.Generator().manual_seed(version)
    x = torch.randn(16, 4, generator=g)
    y = (x.sum(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=False)
    logger = TensorBoardLogger(
        "logs", name="tiny", version=version, log_graph=True, default_hp_metric=True
    )
    extra = {"strategy": "ddp", "devices": 2} if DDP else {"devices": 1}
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        **extra,
    )
    trainer.fit(Tiny(lr=lr), loader)


def main() -> None:
    torch.set_num_threads(1)
    # Lightning's advice about DataLoader workers, not this test's business.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    fit(0, 0.1)
    fit(1, 0.05)


if __name__ == "__main__":
    main()
