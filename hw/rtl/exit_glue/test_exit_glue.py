"""Block tests of the exit glue (fork.sv, exit_buffer.sv, exit_merge.sv, queue.sv) in Verilator
against their Python model, driven by the real decisions of the default run's heads and
final classifier on 1,200 test images (hw/rtl/exit_decision/vectors.npz), with random
stalls on every stream and a reset in the middle of the stream."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.rtl.exit_decision.model import VECTORS, class_bits, decisions, pack_result
from hw.rtl.exit_glue.model import exit_buffer, exit_merge, fork, queue
from hw.rtl.stream import TESTBENCH_TOP, Port, multi_stream_testbench, simulate_streams
from hw.rtl.tools import verilate

HERE = Path(__file__).parent
K, LOGIT_BITS = 10, 16
CW = class_bits(K)
DECISION_BITS = CW + 1 + LOGIT_BITS + 2
DECISION_WIDTH = (DECISION_BITS + 7) // 8 * 8
STALLS = [(0, 0), (30, 45), (70, 10)]  # % of cycles the inputs hold back, the outputs refuse


def _decisions() -> tuple[list[np.ndarray], np.ndarray]:
    """Per head (N, 3) (class, exits, score) on the vectors' images, and the final
    classifier's (N, 3) (exits always 0)."""
    d = np.load(VECTORS)
    heads = []
    for i in range(3):
        table = [int(t) if on else None for t, on in zip(d[f"head{i}_thresholds"], d[f"head{i}_enabled"])]
        heads.append(decisions(d[f"head{i}_logits"].astype(np.int64), table, "margin"))
    final = decisions(d["final_logits"].astype(np.int64), [None] * K, "margin")
    return heads, final


def _build(tmp_path: Path, dut: str, sources: list[Path], inputs: list[Port], outputs: list[Port]) -> Path:
    tb = tmp_path / "tb.sv"
    tb.write_text(multi_stream_testbench(dut, inputs, outputs))
    return verilate(TESTBENCH_TOP, [tb, *sources], tmp_path / "build")


def test_fork_with_stalls_and_reset(tmp_path):
    heads, _ = _decisions()
    words = np.concatenate([pack_result(h, K, LOGIT_BITS) for h in heads])[:, None]  # (3,600, 1)
    src, a, b = Port("in0_V", 1, DECISION_WIDTH), Port("out0_V", 1, DECISION_WIDTH), Port("out1_V", 1, DECISION_WIDTH)
    binary = _build(tmp_path, f"btsee_fork #(.WIDTH({DECISION_WIDTH}))", [HERE / "fork.sv"], [src], [a, b])
    expected = fork(words)
    for seed, (in_stall, out_stall) in enumerate(STALLS, start=1):
        run = simulate_streams(binary, tmp_path / f"run{seed}", {src: words}, {a: len(words), b: len(words)},
                               stalls={"in0_V": in_stall, "out0_V": out_stall, "out1_V": 100 - out_stall - 10},
                               seed=seed, reset_at=len(words) // 3, max_cycles=200 * len(words))
        assert np.array_equal(run.outputs["out0_V"], expected[0]), f"stalls {in_stall}/{out_stall}%"
        assert np.array_equal(run.outputs["out1_V"], expected[1]), f"stalls {in_stall}/{out_stall}%"


@pytest.mark.parametrize("frame,depth,bits", [(7, 7, 8), (7, 16, 8), (1, 1, 8), (5, 12, 6)])
def test_exit_buffer_with_stalls_and_reset(frame, depth, bits, tmp_path):
    """Frames of `frame` words tagged by image and position (so a lost, repeated or
    reordered word shows), kept or dropped by head 0's real exit decisions; with `bits` < 8
    the buffer keeps the low bits of each 8-bit word (the values) and pads with zeros."""
    heads, _ = _decisions()
    exits = heads[0][:, 1]  # (N,)
    n = len(exits)
    frames = (np.arange(n * frame) % 251 % (1 << bits)).reshape(n, frame, 1)  # (N, FRAME, 1) tags
    data, dec, out = Port("in0_V", 1, 8), Port("in1_V", 1, DECISION_WIDTH), Port("out0_V", 1, 8)
    binary = _build(tmp_path, f"btsee_exit_buffer #(.WIDTH(8), .BITS({bits}), .FRAME({frame}), .DEPTH({depth}), "
                              f".DECISION_WIDTH({DECISION_WIDTH}), .EXIT_BIT({CW}))",
                    [HERE / "exit_buffer.sv"], [data, dec], [out])
    expected = exit_buffer(frames, exits).reshape(-1, 1)
    assert 0 < len(expected) < n * frame  # some images exit at head 0, some go on
    for seed, (in_stall, out_stall) in enumerate(STALLS, start=1):
        run = simulate_streams(binary, tmp_path / f"run{seed}",
                               {data: frames.reshape(-1, 1), dec: pack_result(heads[0], K, LOGIT_BITS)[:, None]},
                               {out: len(expected)}, stalls={"in0_V": in_stall, "in1_V": out_stall, "out0_V": out_stall},
                               seed=seed, reset_at=n * frame // 2 + frame // 2, max_cycles=200 * n * frame)
        assert np.array_equal(run.outputs["out0_V"], expected), f"stalls {in_stall}/{out_stall}%"


def test_exit_merge_with_stalls_and_reset(tmp_path):
    """Three exits and the final classifier: each stream carries the decisions of the
    images that reach it (the real cascade of the vectors' images)."""
    heads, final = _decisions()
    streams, open_ = [], np.arange(len(final))
    for h in heads:
        d = h[open_]
        streams.append(d)
        open_ = open_[d[:, 1] == 0]
    streams.append(final[open_])
    expected = exit_merge([s[:, :2] for s in streams[:-1]], streams[-1][:, 0])  # (N, 2) class, exit
    assert set(expected[:, 1]) == {0, 1, 2, 3}
    ports = [Port(f"in{k}_V", 1, DECISION_WIDTH) for k in range(4)]
    out = Port("out0_V", 1, 8)
    wrapper = tmp_path / "merge_top.sv"
    data = ", ".join(f"in{k}_V_TDATA" for k in reversed(range(4)))
    valid = ", ".join(f"in{k}_V_TVALID" for k in reversed(range(4)))
    ready = ", ".join(f"in{k}_V_TREADY" for k in reversed(range(4)))
    wrapper.write_text(
        "module merge_top(input ap_clk, input ap_rst_n,\n"
        + "".join(f"  input [{DECISION_WIDTH - 1}:0] in{k}_V_TDATA, input in{k}_V_TVALID, output in{k}_V_TREADY,\n"
                  for k in range(4))
        + "  output [7:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);\n"
        f"  btsee_exit_merge #(.EXITS(3), .CLASS_BITS({CW}), .DECISION_WIDTH({DECISION_WIDTH})) merge (\n"
        f"    .ap_clk, .ap_rst_n, .in_V_TDATA({{{data}}}), .in_V_TVALID({{{valid}}}), .in_V_TREADY({{{ready}}}),\n"
        "    .out0_V_TDATA, .out0_V_TVALID, .out0_V_TREADY);\nendmodule\n")
    binary = _build(tmp_path, "merge_top", [HERE / "exit_merge.sv", wrapper], ports, [out])
    words = {p: pack_result(s, K, LOGIT_BITS)[:, None] for p, s in zip(ports, streams)}
    for seed, (in_stall, out_stall) in enumerate(STALLS, start=1):
        run = simulate_streams(binary, tmp_path / f"run{seed}", words, {out: len(expected)},
                               stalls={**{p.name: in_stall for p in ports}, "out0_V": out_stall},
                               seed=seed, reset_at=len(streams[0]) // 2, max_cycles=200 * len(expected))
        got = run.outputs["out0_V"][:, 0]
        assert np.array_equal(np.stack([got & ((1 << CW) - 1), got >> CW], axis=1), expected), \
            f"stalls {in_stall}/{out_stall}%"


def test_queue_with_stalls_and_reset(tmp_path):
    """The decision queue: words out unchanged and in order, its peak occupancy within DEPTH."""
    heads, _ = _decisions()
    words = np.concatenate([pack_result(h, K, LOGIT_BITS) for h in heads])[:, None]  # (3,600, 1)
    src, out = Port("in0_V", 1, DECISION_WIDTH), Port("out0_V", 1, DECISION_WIDTH)
    wrapper = tmp_path / "queue_top.sv"
    wrapper.write_text(
        f"module queue_top(input ap_clk, input ap_rst_n, input [{DECISION_WIDTH - 1}:0] in0_V_TDATA,\n"
        f"  input in0_V_TVALID, output in0_V_TREADY, output [{DECISION_WIDTH - 1}:0] out0_V_TDATA,\n"
        "  output out0_V_TVALID, input out0_V_TREADY);\n"
        f"  btsee_queue #(.WIDTH({DECISION_WIDTH}), .DEPTH(6)) queue (.*, .peak());\nendmodule\n")
    binary = _build(tmp_path, "queue_top", [HERE / "queue.sv", wrapper], [src], [out])
    for seed, (in_stall, out_stall) in enumerate(STALLS, start=1):
        run = simulate_streams(binary, tmp_path / f"run{seed}", {src: words}, {out: len(words)},
                               stalls={"in0_V": in_stall, "out0_V": out_stall}, seed=seed,
                               reset_at=len(words) // 3, max_cycles=200 * len(words))
        assert np.array_equal(run.outputs["out0_V"], queue(words)), f"stalls {in_stall}/{out_stall}%"
