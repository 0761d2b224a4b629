"""Fault injection for tests and drills: flip chosen bits in weights or gradients, overflow
the gradients as a bad loss scale would, or make a kernel compute wrong values like a faulty
core (:class:`FaultyKernel`).

What the :class:`FaultyKernel` simulation proves, and what it does not. The fault lives where a
faulty core acts, in the computation rather than in the model: an ATen kernel of the training
process is replaced, so every caller in that process (the training step, the live canary
pass, a deep copy of the model) gets the wrong value, and no model hook exists that a copy
could drop. The monitor's process replay runs in another interpreter, which never registered
the override: it shows that the replay executes somewhere the injected fault does not reach,
with its own process state, and that the comparison catches a one-element, one-bit error. It
does not show that a real faulty core would spare the worker: both processes may be scheduled
on the same core, and a fault shared by both executors is invisible to any replay (pin the
worker elsewhere, or replay on another device). Nor does it cover a fault in the worker itself:
that raises the same alert, so an alert says the two executors disagree, not which one is
wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

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


def _addmm(input: torch.Tensor, mat1: torch.Tensor, mat2: torch.Tensor, *, beta=1,
           alpha=1) -> torch.Tensor:
    out = torch.empty(0, dtype=input.dtype)
    return torch.ops.aten.addmm.out(input, mat1, mat2, beta=beta, alpha=alpha, out=out)


def _mm(input: torch.Tensor, mat2: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.mm.out(input, mat2, out=torch.empty(0, dtype=input.dtype))


def _bmm(input: torch.Tensor, mat2: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.bmm.out(input, mat2, out=torch.empty(0, dtype=input.dtype))


def _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
                 groups) -> torch.Tensor:
    # what aten::convolution itself calls, with the same global flags
    cudnn = torch.backends.cudnn
    deterministic = cudnn.deterministic or torch.are_deterministic_algorithms_enabled()
    return torch.ops.aten._convolution.default(
        input, weight, bias, stride, padding, dilation, transposed, output_padding, groups,
        cudnn.benchmark, deterministic, cudnn.enabled, cudnn.allow_tf32)


#: the ops FaultyKernel can corrupt, each computed exactly as the replaced CPU kernel does (the
#: ``out=`` variant or the op it forwards to shares its implementation), so the only change is
#: the flipped bit. ``addmm`` is nn.Linear's forward on 2-D input, ``mm`` its backward.
KERNELS: dict[str, Callable[..., torch.Tensor]] = {
    "addmm": _addmm, "mm": _mm, "bmm": _bmm, "convolution": _convolution}


class FaultyKernel:
    """While active, the CPU kernel of ``aten::<op>`` in this process returns its output with
    one mantissa bit flipped (``bit`` of element ``index``, modulo the output's size) on every
    call: a small error no norm band can see. The override is registered with
    ``torch.library`` only while active and removed when deactivated, so the kernel is exact
    otherwise. Another process (the monitor's replay worker) never has it. Use as a context
    manager, or set ``active``."""

    def __init__(self, op: str = "addmm", *, bit: int = 18, index: int = 0):
        if op not in KERNELS:
            raise ValueError(f"op={op!r}: FaultyKernel covers {', '.join(KERNELS)}")
        if not 0 <= bit < 23:
            raise ValueError("bit must be a float32 mantissa bit (0-22)")
        self.op, self.bit, self.index = op, bit, index
        self.corrupted = 0  # outputs corrupted so far
        self._library: torch.library.Library | None = None

    def _kernel(self, *args, **kwargs) -> torch.Tensor:
        out = KERNELS[self.op](*args, **kwargs)
        if out.dtype == torch.float32 and out.numel() and out.is_contiguous():
            flip_bit(out, self.index % out.numel(), self.bit)
            self.corrupted += 1
        return out

    @property
    def active(self) -> bool:
        return self._library is not None

    @active.setter
    def active(self, on: bool) -> None:
        if on and self._library is None:
            library = torch.library.Library("aten", "IMPL")
            with warnings.catch_warnings():  # "overriding a previously registered kernel"
                warnings.simplefilter("ignore", UserWarning)
                library.impl(self.op, self._kernel, "CPU")
            self._library = library
        elif not on and self._library is not None:
            self._library._destroy()  # the original kernel is back
            self._library = None

    def remove(self) -> None:
        self.active = False

    def __enter__(self) -> FaultyKernel:
        self.active = True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False
