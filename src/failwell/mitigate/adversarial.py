"""Adversarial training (Madry et al., 2018): fine-tune on PGD examples made on the fly."""

from __future__ import annotations

import warnings

import numpy as np

from failwell.errors import require


def adversarial_training(model, x: np.ndarray, y: np.ndarray, *, eps: float,
                         epochs: int = 5, steps: int = 7, lr: float = 1e-3,
                         batch_size: int = 64, clean_weight: float = 0.5, seed: int = 0,
                         bounds=(0.0, 1.0)):
    """Fine-tune ``model`` (an ``nn.Module``, in place) on a mix of clean and L-inf PGD
    examples at ``eps``; ``clean_weight`` keeps clean accuracy from collapsing. Returns the
    model."""
    torch = require("torch", extra="torch", purpose="Adversarial training")
    robust = require("captum.robust", extra="torch", purpose="Adversarial training")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    pgd = robust.PGD(model, loss_func=torch.nn.CrossEntropyLoss(reduction="none"),
                     lower_bound=bounds[0], upper_bound=bounds[1])
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=generator).split(batch_size):
            model.eval()
            with warnings.catch_warnings():  # captum's PGD warns on its own fresh tensors
                warnings.filterwarnings("ignore", message="Input Tensor .* did not already")
                adv = pgd.perturb(xt[idx].clone().requires_grad_(True), radius=eps,
                                  step_size=2.5 * eps / steps, step_num=steps,
                                  target=yt[idx], random_start=True).detach()
            model.train()
            optimizer.zero_grad()
            loss = (clean_weight * torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                    + (1 - clean_weight) * torch.nn.functional.cross_entropy(model(adv),
                                                                             yt[idx]))
            loss.backward()
            optimizer.step()
    return model.eval()
