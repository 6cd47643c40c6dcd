"""LoRA dropout whose masks come from a fast bit generator instead of torch's per-element Bernoulli draw.

On CPU, ``torch.nn.Dropout`` makes its mask with ``bernoulli_``: one Mersenne-Twister draw per element, one
element at a time under the generator's lock, while the other cores wait. With LoRA on every linear layer that is
21 masks a step on the demo workload (3 layers x 7 projections, 8 x 258 tokens): torch.profiler put
``bernoulli_`` at 22 % of the step's time there (46 ms of ~210 ms a step, 2 threads).

``PCGDropout`` keeps what defines the dropout and changes only where the random bits come from:

- the same keep probability (``1 - p``, to 2^-32: an element is kept when a uniform 32-bit draw is below
  ``round((1 - p) * 2^32)``), the same ``1 / (1 - p)`` scaling of what is kept, an independent mask for every
  module and every step, the identity in eval mode;
- the bits come from numpy's PCG64, seeded for each call by one draw from torch's default generator. A run is
  therefore reproducible from its seed, and a resumed run draws what the uninterrupted one would (the Trainer's
  checkpoints restore torch's generator). Its masks are not those of a plain peft run with the same seed:
  ``TrainSpec.dropout_rng = "torch"`` keeps peft's own ``torch.nn.Dropout`` for that;
- the backward pass keeps the mask as one byte per element (``torch.nn.Dropout`` keeps a float mask: four).

Only CPU tensors take this path; on CUDA the fused dropout kernel of ``torch.nn.Dropout`` runs as before.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["use_pcg_dropout", "pcg_dropout_class", "keep_threshold"]


def keep_threshold(p: float) -> int:
    """The 32-bit draw below which an element is kept: P(kept) = threshold / 2^32 = 1 - p, to 2^-32."""
    return min(int(round((1.0 - p) * 2**32)), 2**32 - 1)


# Elements drawn per chunk: 1 MB of bits at a time, written straight into the torch mask. numpy asks the kernel
# for huge pages on arrays of 4 MB or more (madvise), which raised the real-footage peak RSS by ~15 MB when each
# mask's bits came in one array.
_CHUNK = 2**18


def _fill_mask(out, p: float, seed: int) -> None:
    """Fill the boolean tensor ``out`` (contiguous, CPU): each element independently True with probability 1 - p."""
    flat = out.numpy().reshape(-1)
    bits = np.random.PCG64(seed)
    threshold = np.uint32(keep_threshold(p))
    for start in range(0, flat.size, _CHUNK):
        stop = min(flat.size, start + _CHUNK)
        raw = bits.random_raw((stop - start + 1) // 2).view(np.uint32)[: stop - start]
        np.less(raw, threshold, out=flat[start:stop])


@functools.cache
def pcg_dropout_class():
    """``PCGDropout`` (built on first use: torch is only imported when a model trains)."""
    import torch  # torch is heavy: loaded only when a model trains

    class _KeepAndScale(torch.autograd.Function):
        """x * mask * scale, with the one-byte mask saved for the backward pass."""

        @staticmethod
        def forward(ctx, x, mask, scale):
            ctx.save_for_backward(mask)
            ctx.scale = scale
            return torch.mul(x, mask).mul_(scale)

        @staticmethod
        def backward(ctx, grad):
            (mask,) = ctx.saved_tensors
            return torch.mul(grad, mask).mul_(ctx.scale), None, None

    class PCGDropout(torch.nn.Dropout):
        """``torch.nn.Dropout`` whose CPU masks come from PCG64 (module docstring)."""

        def forward(self, x):
            if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
                return super().forward(x)
            seed = int(torch.randint(0, 2**62, (1,)).item())  # from the run's generator: seeded, resumable
            mask = torch.empty(x.shape, dtype=torch.bool)
            _fill_mask(mask, self.p, seed)
            return _KeepAndScale.apply(x, mask, 1.0 / (1.0 - self.p))

    return PCGDropout


def use_pcg_dropout(model) -> int:
    """Swap every LoRA dropout of a peft model (``lora_dropout[<adapter>]``, a ``torch.nn.Dropout``) for
    ``PCGDropout`` with the same p; how many were swapped. Dropout holds no weights: the adapter saved is the same
    file either way."""
    import torch  # torch is heavy: loaded only when a model trains

    cls = pcg_dropout_class()
    swapped = 0
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] != "lora_dropout" or not isinstance(module, torch.nn.ModuleDict):
            continue
        for adapter, dropout in list(module.items()):
            if type(dropout) is torch.nn.Dropout:
                module[adapter] = cls(dropout.p)
                swapped += 1
    return swapped
