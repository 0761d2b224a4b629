"""Fault injection for tests and drills: flip chosen bits in weights or gradients, overflow
the gradients as a bad loss scale would, or make a module compute wrong values like a faulty
core."""

from __future__ import annotations

import torch


def flip_bit(tensor: torch.Tensor, index: int, bit: int) -> tuple[float, float]:
    """Flip ``bit`` (0 = least significant) of element ``index`` of a float32 tensor, in
    place; returns (before, after). Bit 30 is the exponent's top bit, 31 the sign."""
    if tensor.dtype != torch.float32:
        raise TypeError("flip_bit works on float32 tensors")
    flat = tensor.detach().view(-1)
    with torch.no_grad():
        before = float(flat[index])
        as_int = flat[index : index + 1].view(torch.int32)
        as_int ^= torch.tensor(1 << bit if bit < 31 else -(1 << 31), dtype=torch.int32)
    return before, float(flat[index])


def parameter(model: torch.nn.Module, name: str | None = None) -> tuple[str, torch.Tensor]:
    params = dict(model.named_parameters())
    key = name or next(iter(params))
    return key, params[key]


def flip_weight(model: torch.nn.Module, *, name: str | None = None, index: int = 0,
                bit: int = 30) -> tuple[float, float]:
    return flip_bit(parameter(model, name)[1].data, index, bit)


def flip_gradient(model: torch.nn.Module, *, name: str | None = None, index: int = 0,
                  bit: int = 30) -> tuple[float, float]:
    grad = parameter(model, name)[1].grad
    if grad is None:
        raise RuntimeError("no gradient yet: inject after backward()")
    return flip_bit(grad, index, bit)


def overflow_gradients(model: torch.nn.Module) -> None:
    """What an overflowing loss scale leaves behind: infinite gradients."""
    for p in model.parameters():
        if p.grad is not None:
            p.grad.fill_(float("inf"))


class FaultyDevice:
    """A forward hook that makes ``module`` return one corrupted element (a flipped mantissa
    bit: a small error no norm band can see) while active."""

    def __init__(self, module: torch.nn.Module, *, bit: int = 18, index: int = 0):
        self.bit, self.index, self.active = bit, index, False
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        if self.active:
            output = output.clone()
            flip_bit(output, self.index, self.bit)
            return output
        return None

    def remove(self) -> None:
        self.handle.remove()
