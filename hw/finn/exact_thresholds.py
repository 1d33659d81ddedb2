"""FINN's integer thresholds recomputed exactly from the exported graph's parameters.

FINN folds each layer's scales, batch norm and bias into thresholds on the integer
accumulator in float32 (ConvertQONNXtoFINN, BatchNormToAffine, the Mul/Add absorptions)
and takes the ceiling at the end (RoundAndClipThresholds). An exact boundary a hair above
an integer, k + 1.4e-5 say, has no float32 value between k and the next float32 (1.2e-4
higher at 1377), so any float32 store before the ceiling can land on k: the threshold is
then one too low, and an accumulator equal to k gets the next code where the exported
network gives the lower one (measured: `docs/finn-notes.md`).

`exact_thresholds(qonnx, hw)` recomputes every threshold of the HW graph from the QONNX
graph it was converted from, in exact rationals (`fractions.Fraction` of the float32
parameters; the batch norm's square root is compared through squares, never evaluated),
and writes the exact values where FINN's differ. For each quantized activation of the
exported graph

    z = gamma * (s_in * s_w * acc + bias - mean) / sqrt(var + eps) + beta,
    code = clip(round(z / s_act), q_min, q_max)

(batch norm, bias and the ReLU before it optional), the threshold of code q is the least
integer accumulator with z >= (q - 1/2) * s_act: the convention of FINN's thresholds,
`x >= T`, for a value exactly halfway (which a batch norm's irrational square root makes
all but impossible). Where FINN negated a channel's weights to keep its thresholds
ascending, the accumulator is negated too. Thresholds that no accumulator can reach on
either side stay as FINN clipped them.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hw.finn.convert import DataflowError, node_attributes

MATRIX_OPS = ("Conv", "Gemm", "MatMul")
PASS_THROUGH = ("MaxPool", "Reshape", "Flatten", "Transpose")  # keep the codes and their scale


@dataclass
class ExactActivation:
    """One quantized activation of the exported graph as a function of its integer input:
    the accumulator of a matrix layer, or the input codes themselves (no weights)."""

    quant: str  # the export graph's activation Quant node
    scale: Fraction  # s_in * s_w: accumulator -> float value
    weights: np.ndarray | None  # (MW, MH) integer weights in FINN's layout, None without a matrix layer
    bias: list[Fraction] | None  # (MH,) added after the product
    batchnorm: tuple[list[Fraction], list[Fraction], list[Fraction], list[Fraction]] | None
    """(gamma, beta, mean, var + eps) per channel."""
    act_scale: Fraction
    q_min: int
    q_max: int

    def reaches(self, acc: int, channel: int, code: int) -> bool:
        """Whether accumulator `acc` of `channel` gives at least `code` (exactly)."""
        y = self.scale * acc + (self.bias[channel] if self.bias is not None else 0)
        t = (code - Fraction(1, 2)) * self.act_scale
        if self.batchnorm is None:
            return y >= t
        gamma, beta, mean, var = (p[channel] for p in self.batchnorm)
        lhs, d = gamma * (y - mean), t - beta  # z >= t  <=>  lhs >= d * sqrt(var)
        if d <= 0:
            return lhs >= 0 or lhs * lhs <= d * d * var
        return lhs > 0 and lhs * lhs >= d * d * var


def _fractions(values) -> list[Fraction]:
    return [Fraction(float(v)) for v in np.asarray(values, np.float64).reshape(-1)]


def _scalar(model, name: str, where: str) -> Fraction:
    value = model.get_initializer(name)
    if value is None or np.asarray(value).size != 1:
        raise DataflowError(f"{where}: {name!r} is not one constant scale")
    return Fraction(float(np.asarray(value, np.float64).reshape(-1)[0]))


def _codes_scale(model, tensor: str, where: str) -> Fraction:
    """The scale of the integer codes in `tensor`: the activation Quant or the input Mul
    that made them, through layers that keep codes (pooling, reshapes)."""
    while True:
        node = model.find_producer(tensor)
        if node is None:
            raise DataflowError(f"{where}: the codes in {tensor!r} come from no quantizer")
        if node.op_type == "Quant":
            return _scalar(model, node.input[1], where)
        if node.op_type == "Mul" and node.input[0] == model.graph.input[0].name:
            return _scalar(model, node.input[1], where)
        if node.op_type == "Add" and all(model.get_initializer(t) is None for t in node.input):
            # a residual add: the sum of two code tensors of one scale is codes of that scale
            scales = {_codes_scale(model, t, where) for t in node.input}
            if len(scales) != 1:
                raise DataflowError(f"{where}: the residual add {node.name!r} sums codes of different scales")
            return scales.pop()
        if node.op_type not in PASS_THROUGH:
            raise DataflowError(f"{where}: node {node.name!r} ({node.op_type}) between two quantizers")
        tensor = node.input[0]


def _weight_codes(model, node, where: str) -> tuple[np.ndarray, Fraction]:
    """(integer weights in FINN's (MW, MH) layout, weight scale) of a matrix node."""
    quant = model.find_producer(node.input[1])
    if quant is None or quant.op_type != "Quant":
        raise DataflowError(f"{where}: weights of {node.name!r} are not quantized by a Quant node")
    w = np.asarray(model.get_initializer(quant.input[0]), np.float64)
    s_w = _scalar(model, quant.input[1], where)
    codes = np.rint(w / float(s_w))
    if model.get_initializer(quant.input[2]) is not None and np.any(model.get_initializer(quant.input[2])):
        raise DataflowError(f"{where}: weight quantizer {quant.name!r} has a zero point")
    if node.op_type == "Conv":  # (O, I, kh, kw) -> (kh, kw, I) x O, channels fastest
        o = codes.shape[0]
        codes = codes.transpose(2, 3, 1, 0).reshape(-1, o)
    elif node.op_type == "Gemm" and node_attributes(node).get("transB", 0):
        codes = codes.T
    return codes.astype(np.int64), s_w


def export_activations(model, where: str) -> list[ExactActivation]:
    """Every activation Quant of an exported segment graph, in order, with the exact
    function from its integer input to its codes."""
    out = []
    for node in model.graph.node:
        if node.op_type != "Quant" or model.get_initializer(node.input[0]) is not None:
            continue  # weight quantizers
        at = f"{where}: node {node.name!r}"
        attrs = node_attributes(node)
        if any(model.get_initializer(node.input[2]).reshape(-1)):
            raise DataflowError(f"{at}: the activation has a zero point")
        bits = int(np.asarray(model.get_initializer(node.input[3])).reshape(-1)[0])
        if attrs.get("signed", 1):  # a residual add's input codes
            q_min, q_max = -(2 ** (bits - 1)) + int(attrs.get("narrow", 0)), 2 ** (bits - 1) - 1
        else:
            q_min, q_max = 0, 2 ** bits - 1 - int(attrs.get("narrow", 0))
        act_scale = _scalar(model, node.input[1], at)
        tensor, relu, bn, bias = node.input[0], False, None, None
        producer = model.find_producer(tensor)
        if producer is not None and producer.op_type == "Relu":
            relu, tensor = True, producer.input[0]
            producer = model.find_producer(tensor)
        if producer is not None and producer.op_type == "BatchNormalization":
            gamma, beta, mean, var = (_fractions(model.get_initializer(i)) for i in producer.input[1:5])
            eps = Fraction(float(node_attributes(producer).get("epsilon", 1e-5)))
            bn = (gamma, beta, mean, [v + eps for v in var])
            tensor = producer.input[0]
            producer = model.find_producer(tensor)
        if producer is not None and producer.op_type in MATRIX_OPS:
            weights, s_w = _weight_codes(model, producer, at)
            if len(producer.input) > 2 and producer.input[2]:
                bias = _fractions(model.get_initializer(producer.input[2]))
            scale = _codes_scale(model, producer.input[0], at) * s_w
        elif bn is None and (not relu or q_min >= 0):  # a ReLU before unsigned codes changes nothing
            weights, scale = None, _codes_scale(model, tensor, at)
        else:
            raise DataflowError(f"{at}: its input is not a matrix layer's output")
        out.append(ExactActivation(node.name, scale, weights, bias, bn, act_scale, q_min, q_max))
    return out


def _hw_threshold_layers(hw) -> list[tuple]:
    """(threshold layer, the MVAU whose accumulator it thresholds or None) in graph order:
    an MVAU with embedded thresholds is its own matrix layer; a standalone Thresholding
    fed by an MVAU without activation (the RTL-ready graphs) thresholds that MVAU's
    accumulator; any other Thresholding reads codes without a matrix layer."""
    out = []
    for n in hw.graph.node:
        if n.op_type == "MVAU" and len(n.input) > 2:
            out.append((n, n))
        elif n.op_type == "Thresholding":
            producer = hw.find_producer(n.input[0])
            is_matrix = producer is not None and producer.op_type == "MVAU" and len(producer.input) == 2
            out.append((n, producer if is_matrix else None))
    return out


def _channel_signs(hw_weights: np.ndarray, export: np.ndarray, where: str) -> np.ndarray:
    """(MH,) +1 where FINN kept a channel's weights, -1 where it negated them."""
    if hw_weights.shape != export.shape:
        raise DataflowError(f"{where}: weights of shape {hw_weights.shape}, the exported layer's are "
                            f"{export.shape}")
    same = np.all(hw_weights == export, axis=0)
    negated = np.all(hw_weights == -export, axis=0)
    if not np.all(same | negated):
        bad = int(np.flatnonzero(~(same | negated))[0])
        raise DataflowError(f"{where}: channel {bad}'s weights are not the exported layer's")
    return np.where(same, 1, -1)


def _least_reaching(act: ExactActivation, channel: int, code: int, sign: int, start: int, lo: int,
                    hi: int) -> int:
    """The least integer h in [lo, hi + 1] with act.reaches(sign * h): lo when every
    value reaches, hi + 1 when none does. Steps from FINN's own threshold `start`."""
    reaches = lambda h: act.reaches(sign * h, channel, code)  # noqa: E731
    h = min(max(start, lo), hi + 1)
    while h > lo and reaches(h - 1):
        h -= 1
    while h <= hi and not reaches(h):
        h += 1
    return h


def _pair_layers(acts: list[ExactActivation], layers: list[tuple], hw, where: str) -> list[tuple]:
    """(activation, threshold layer, matrix layer or None) triples: a layer thresholding an
    MVAU's accumulator with the activation whose weights that MVAU holds (up to negated
    channels), a Thresholding of plain codes with the weight-less activations in graph order."""
    if len(acts) != len(layers):
        raise DataflowError(f"{where}: {len(layers)} HW layers with thresholds for {len(acts)} quantized "
                            "activations in the exported graph")
    plain = [a for a in acts if a.weights is None]
    matrix = [a for a in acts if a.weights is not None]
    pairs = []
    for node, mvau in layers:
        if mvau is None:
            if not plain:
                raise DataflowError(f"{where}: node {node.name!r}: more Thresholding layers than activations "
                                    "without a matrix layer")
            pairs.append((plain.pop(0), node, None))
            continue
        w = np.abs(np.asarray(hw.get_initializer(mvau.input[1]), np.int64))
        shaped = [a for a in matrix if a.weights.shape == w.shape]
        if not shaped:
            raise DataflowError(f"{where}: node {node.name!r}: no matrix layer of the exported graph has weights "
                                f"of shape {w.shape}")
        # the exported layer whose weights it holds; with none equal, the closest one, so
        # that the weight check names the channel that differs
        best = max(shaped, key=lambda a: int(np.all(np.abs(a.weights) == w, axis=0).sum()))
        matrix.remove(best)
        pairs.append((best, node, mvau))
    return pairs


def exact_thresholds(qonnx, hw, where: str) -> tuple[object, list[dict]]:
    """(hw with every threshold exact, the corrections made: layer, channel, code, FINN's
    value, the exact one). A layer that cannot be related to the exported graph, or whose
    thresholds differ from the exact ones by more than FINN's float32 rounding can (one
    step), is a DataflowError naming it."""
    acts = export_activations(qonnx, where)
    corrections = []
    for act, node, mvau in _pair_layers(acts, _hw_threshold_layers(hw), hw, where):
        at = f"{where}: node {node.name!r} ({node.op_type}, from {act.quant})"
        t_name = node.input[2] if node.op_type == "MVAU" else node.input[1]
        thresholds = np.asarray(hw.get_initializer(t_name), np.float64)  # (C, levels)
        if thresholds.shape[1] != act.q_max - act.q_min:
            raise DataflowError(f"{at}: {thresholds.shape[1]} thresholds per channel for codes "
                                f"{act.q_min}..{act.q_max}")
        act_val = int(node_attributes(node).get("ActVal", 0))
        if act_val != act.q_min:
            raise DataflowError(f"{at}: ActVal {act_val}, the activation's lowest code is {act.q_min}")
        if mvau is not None:
            in_type = hw.get_tensor_datatype(mvau.input[0])
            weights = np.asarray(hw.get_initializer(mvau.input[1]), np.int64)
            signs = _channel_signs(weights, act.weights, f"{where}: node {mvau.name!r} (MVAU, thresholded by "
                                                         f"{node.name!r}, from {act.quant})")
            reach = np.abs(weights).sum(axis=0) * int(max(abs(in_type.min()), abs(in_type.max())))  # (MH,)
            lo_hi = [(-int(r), int(r)) for r in reach]
        else:
            if act.weights is not None:
                raise DataflowError(f"{at}: a Thresholding layer for a matrix layer's activation")
            in_type = hw.get_tensor_datatype(node.input[0])
            signs = np.ones(thresholds.shape[0], np.int64)
            lo_hi = [(int(in_type.min()), int(in_type.max()))] * thresholds.shape[0]
        exact = thresholds.copy()
        for c in range(thresholds.shape[0]):
            lo, hi = lo_hi[c]
            for j in range(thresholds.shape[1]):
                finn = int(thresholds[c, j])
                value = _least_reaching(act, c, act.q_min + j + 1, int(signs[c]), finn, lo, hi)
                finn_clamped = min(max(finn, lo), hi + 1)
                if value != finn_clamped:  # both beyond the reachable range on one side: equivalent
                    if abs(value - finn_clamped) > 1:
                        raise DataflowError(f"{at}: channel {c}, code {act.q_min + j + 1}: FINN's threshold "
                                            f"{finn} is {value - finn_clamped:+d} from the exact {value}; more "
                                            "than float32 rounding explains: the layer is not the activation's")
                    exact[c, j] = value
                    corrections.append({"layer": node.name, "channel": c, "code": act.q_min + j + 1,
                                        "finn": finn, "exact": value})
        if np.any(np.diff(exact, axis=1) < 0):
            raise DataflowError(f"{at}: the exact thresholds are not ascending")
        hw.set_initializer(t_name, exact.astype(np.float32))
    return hw, corrections
