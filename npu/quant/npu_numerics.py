"""A copy of a model that computes in the NPU's number formats, for the accuracy simulator.

Weights take the values matrix SRAM holds after the DMA dequantizes them (`formats.weights`,
MX blocks along DRAM rows, then bf16: `npu.hw.rows.dequantized_weights`); the
embedding table is stored the same way (rows along d_model); norm weights are vector-unit
values (`formats.vector`). Activations are rounded where the NPU stores them: the input of every
matrix multiply (`formats.activations`), every projection and norm output and the residual
stream after each block (`formats.vector`, vector SRAM). Attention scores and softmax stay in
float32 here (the vector unit's fp32 lanes); the KV cache's own format is the cache's business.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from npu.hw import numerics
from npu.hw.config import NPUConfig
from npu.hw.rows import dequantized_weights
from npu.models.transformer import Block, MaskedDiffusionTransformer, RMSNorm


def _round_tensor(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """Round to a format of numerics; bf16 uses torch's cast (identical RNE, much faster)."""
    if fmt == "fp32":
        return x
    if fmt == "bf16":
        return x.to(torch.bfloat16).to(x.dtype)
    values = numerics.round_to_format(x.detach().to(torch.float32).cpu().numpy(), fmt)
    return torch.from_numpy(values).to(device=x.device, dtype=x.dtype)


def _stored_matrix(weight: torch.Tensor, npu_config: NPUConfig, transpose: bool) -> torch.Tensor:
    """A weight as matrix SRAM holds it; `transpose` for nn.Linear's (out, in) layout.

    DRAM rows shorter than a multiple of the MX block (a tiny model's 12-token vocabulary) are
    padded with zeros, which never change a block's scale, and cropped again.
    """
    w = weight.detach().to(torch.float32).cpu().numpy()
    w = w.T if transpose else w
    columns = w.shape[-1]
    padded = np.zeros((w.shape[0], -(-columns // npu_config.mx_block) * npu_config.mx_block), np.float32)
    padded[:, :columns] = w
    stored = dequantized_weights(padded, npu_config)[:, :columns]
    stored = stored.T if transpose else stored
    return torch.from_numpy(np.ascontiguousarray(stored)).to(weight.dtype)


def with_npu_numerics(model: MaskedDiffusionTransformer, npu_config: NPUConfig) -> MaskedDiffusionTransformer:
    """A deep copy of `model` whose weights and activations follow `npu_config.formats`."""
    npu_model = copy.deepcopy(model).eval()
    formats = npu_config.formats
    with torch.no_grad():
        for module in npu_model.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(_stored_matrix(module.weight, npu_config, transpose=True))
                if module.bias is not None:
                    module.bias.copy_(_round_tensor(module.bias, formats.vector))
            elif isinstance(module, nn.Embedding):
                module.weight.copy_(_stored_matrix(module.weight, npu_config, transpose=False))
            elif isinstance(module, RMSNorm):
                module.weight.copy_(_round_tensor(module.weight, formats.vector))

    def round_input(module, args):
        return (_round_tensor(args[0], formats.activations),) + tuple(args[1:])

    def round_output(module, args, output):
        return _round_tensor(output, formats.vector)

    for module in npu_model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_pre_hook(round_input)
            module.register_forward_hook(round_output)
        elif isinstance(module, (RMSNorm, Block, nn.Embedding)):
            module.register_forward_hook(round_output)
    return npu_model
