"""Backbones: bit widths, exit points, MAC counts against a hand count, save/load."""
from __future__ import annotations

import pytest
import torch

from qat.models import ModelSpec, build_backbone, load_backbone, save_backbone


def test_cnv_macs_match_hand_count():
    # Hand count for cnv with channels (2, 3, 4, 5, 6, 7, 8, 9) on a 1x32x32 input.
    # Unpadded 3x3 convs: 32->30, 30->28 (pool 14), 14->12, 12->10 (pool 5), 5->3, 3->1.
    # MACs of a conv = Hout * Wout * Cout * Cin * 9.
    hand = {
        "block1": 30 * 30 * 2 * 1 * 9,  # 16,200
        "block2": 28 * 28 * 3 * 2 * 9,  # 42,336
        "block3": 12 * 12 * 4 * 3 * 9,  # 15,552
        "block4": 10 * 10 * 5 * 4 * 9,  # 18,000
        "block5": 3 * 3 * 6 * 5 * 9,  # 2,430
        "block6": 1 * 1 * 7 * 6 * 9,  # 378
        "classifier": 7 * 8 + 8 * 9 + 9 * 10,  # three fully connected layers: 218
    }
    model = build_backbone(ModelSpec(name="cnv", channels=(2, 3, 4, 5, 6, 7, 8, 9)))
    assert model.segment_macs() == hand
    assert model.exit_points == [f"block{i}" for i in range(1, 7)]


def test_resnet8_macs_match_hand_count():
    # resnet8 at width 1 on 3x32x32: stem 3->16 (32x32); stage1 block 16->16 two 3x3 convs;
    # stage2: 16->32 stride 2 (16x16) + 32->32 + 1x1 shortcut; stage3 likewise to 64 (8x8).
    hw1, hw2, hw3 = 32 * 32, 16 * 16, 8 * 8
    hand = {
        "stem": hw1 * 16 * 3 * 9,
        "stage1": 2 * hw1 * 16 * 16 * 9,
        "stage2": hw2 * 32 * 16 * 9 + hw2 * 32 * 32 * 9 + hw2 * 32 * 16,
        "stage3": hw3 * 64 * 32 * 9 + hw3 * 64 * 64 * 9 + hw3 * 64 * 32,
        "classifier": 64 * 10,
    }
    model = build_backbone(ModelSpec(name="resnet8", in_channels=3))
    assert model.segment_macs() == hand
    assert model.exit_points == ["stem", "stage1", "stage2", "stage3"]


@pytest.mark.parametrize("name", ["cnv", "resnet8", "resnet18"])
@pytest.mark.parametrize("bits", [1, 2, 4, 8, None])
def test_backbones_run_at_every_bit_width(name, bits):
    spec = ModelSpec(name=name, width=0.125, weight_bits=bits, act_bits=bits, in_channels=3)
    model = build_backbone(spec)
    x = torch.rand(2, 3, 32, 32)
    feats, logits = model.forward_with_exits(x)
    assert logits.shape == (2, 10)
    assert list(feats) == model.exit_points
    assert torch.equal(model.eval()(x), model.eval().forward_with_exits(x)[1])
    logits.sum().backward()  # trainable at this width


def test_resnet18_stage_shapes():
    model = build_backbone(ModelSpec(name="resnet18", width=0.125, in_channels=3))
    assert model.exit_point_shapes() == {"stem": (8, 32, 32), "stage1": (8, 32, 32), "stage2": (16, 16, 16),
                                         "stage3": (32, 8, 8), "stage4": (64, 4, 4)}


@pytest.mark.parametrize("size", [8, 24, 64])
def test_resnet8_takes_any_multiple_of_8(size):
    model = build_backbone(ModelSpec(name="resnet8", channels=(4, 8, 8), in_channels=3, image_size=size))
    assert model.exit_point_shapes() == {"stem": (4, size, size), "stage1": (4, size, size),
                                         "stage2": (8, size // 2, size // 2),
                                         "stage3": (8, size // 4, size // 4)}
    assert model(torch.rand(2, 3, size, size)).shape == (2, 10)


def test_backbones_refuse_sizes_they_cannot_take():
    with pytest.raises(ValueError, match="cnv takes 32x32 images only"):
        build_backbone(ModelSpec(name="cnv", image_size=64))
    with pytest.raises(ValueError, match="multiples of 8"):
        build_backbone(ModelSpec(name="resnet8", image_size=36))


def test_input_quantizer_keeps_pixels_exact():
    model = build_backbone(ModelSpec(name="cnv", width=0.125))
    pixels = torch.randint(0, 256, (4, 1, 32, 32))
    q = model.input_quant(pixels.float() / 255)
    assert torch.equal(torch.round(q * 255).long(), pixels)


def test_bad_bits_and_names_are_errors():
    with pytest.raises(ValueError, match="weight_bits"):
        build_backbone(ModelSpec(weight_bits=9))
    with pytest.raises(ValueError, match="model.name"):
        build_backbone(ModelSpec(name="vgg"))
    with pytest.raises(ValueError, match="channels"):
        build_backbone(ModelSpec(channels=(1, 2, 3)))


def test_save_and_load_roundtrip(tmp_path):
    model = build_backbone(ModelSpec(name="cnv", width=0.125)).eval()
    save_backbone(tmp_path / "m.pt", model)
    again = load_backbone(tmp_path / "m.pt")
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(model(x), again(x))
