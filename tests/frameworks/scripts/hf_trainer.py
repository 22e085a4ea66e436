"""Hugging Face ``Trainer`` with ``report_to="tensorboard"``: a tiny config-built BERT.

Run in the directory it should log into (relative paths: the ``args`` text
TensorBoardCallback logs is then the same in two runs).  No hub access: the
model is built from a ``BertConfig``, the data is synthetic.
"""

from __future__ import annotations

import os

os.environ["TENSORBOARD_LOGGING_DIR"] = "tb"  # transformers 5 reads it here, not from the args

import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)


class Synthetic(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 50, (n, 8), generator=g)
        self.labels = (self.ids.sum(1) % 2).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
        max_position_embeddings=16,
    )
    model = BertForSequenceClassification(config)
    args = TrainingArguments(
        output_dir="out",
        report_to="tensorboard",
        logging_steps=1,
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    Trainer(model=model, args=args, train_dataset=Synthetic(16)).train()


if __name__ == "__main__":
    main()
