"""Brevitas layer factories for a given bit width; `None` bits means a float layer.

All quantizers are deterministic functions of the parameters (weight scales from the
weights' max, activation scales learned from a fixed initial value), so runs on one
process and under DDP see the same quantizers.
"""
from __future__ import annotations

import torch.nn as nn
from brevitas import nn as qnn
from brevitas.inject.enum import RestrictValueType, ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFloatMinMaxInit,
    Int8WeightPerTensorFloat,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
    Uint8ActPerTensorFloatMaxInit,
)

#: initial clipping value of learned activation scales
ACT_MAX_INIT = 6.0


class PixelQuant(Uint8ActPerTensorFloat):
    """Unsigned 8-bit input quantizer with the constant scale 1/255: pixels stay exact."""

    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    scaling_const = 1.0
    max_val = 1.0  # resolves the injector; the CONST scaling uses scaling_const


def check_bits(bits: int | None, what: str) -> None:
    if bits is not None and not (isinstance(bits, int) and 1 <= bits <= 8):
        raise ValueError(f"{what} must be an integer from 1 to 8 or null (float), got {bits!r}")


def weight_quant_kwargs(bits: int | None) -> dict:
    """Keyword arguments of a Brevitas weight layer for `bits` (1 = binary, None = float)."""
    if bits is None:
        return {"weight_quant": None}
    if bits == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits}


def conv2d(cin: int, cout: int, kernel, bits: int | None, stride=1, padding=0, bias=False) -> nn.Module:
    return qnn.QuantConv2d(cin, cout, kernel, stride=stride, padding=padding, bias=bias,
                           **weight_quant_kwargs(bits))


def linear(cin: int, cout: int, bits: int | None, bias: bool = False) -> nn.Module:
    return qnn.QuantLinear(cin, cout, bias=bias, **weight_quant_kwargs(bits))


def relu(bits: int | None) -> nn.Module:
    """Quantized ReLU with a learned per-tensor scale (unsigned `bits`), or a float ReLU."""
    if bits is None:
        return qnn.QuantReLU(act_quant=None)
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloatMaxInit, bit_width=bits,
                         max_val=ACT_MAX_INIT)


#: bits of the signed codes that meet in a residual add (both inputs share one scale)
RESIDUAL_BITS = 8


def residual_quant(bits: int | None) -> nn.Module:
    """Signed quantizer with a learned per-tensor scale that a ResNet block applies to both
    inputs of its add (the same module twice, so one scale): the add then sums integer
    codes, which the dataflow does exactly (FINN's ElementwiseAdd). None: identity."""
    if bits is None:
        return qnn.QuantIdentity(act_quant=None)
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloatMinMaxInit, bit_width=RESIDUAL_BITS,
                             min_val=-ACT_MAX_INIT, max_val=ACT_MAX_INIT)


def input_quant(bits: int | None) -> nn.Module:
    """Input quantizer: 8-bit pixels at scale 1/255 (inputs are pixel/255), or identity."""
    if bits is None:
        return qnn.QuantIdentity(act_quant=None)
    if bits != 8:
        raise ValueError(f"model.input_bits must be 8 (uint8 pixels) or null, got {bits}")
    return qnn.QuantIdentity(act_quant=PixelQuant)
