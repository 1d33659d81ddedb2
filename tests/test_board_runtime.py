"""The board runtime (boards/): stream packing against finn-plus-driver's, input checks, a
package refused for a changed, missing or unlisted file, the pynq backend's code path
against a stand-in `pynq` module whose DMA is the RTL simulation, `btsee board-test` and
`make deploy`'s errors."""
from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from boards import streams
from boards.board_test import board_test
from boards.package import PackageError, open_package, package_files
from boards.streams import StreamError, StreamLayout
from calib.schema import sha256_of
from conftest import btsee


def _layout(elems: int, bits: int, signed: bool, in_bytes: int, shape=(3, 4, 4)) -> StreamLayout:
    words = int(np.prod(shape)) // elems
    return StreamLayout(shape, elems, bits, signed, words, in_bytes, class_bits=4, exits=3, classes=10, out_bytes=2)


LAYOUTS = [_layout(1, 8, False, 1), _layout(3, 4, False, 2), _layout(3, 4, True, 4), _layout(3, 7, True, 4),
           _layout(6, 8, False, 8, shape=(6, 2, 2))]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: f"{lay.elems}x{lay.bits}{'s' if lay.signed else 'u'}")
def test_the_numpy_packing_is_finn_plus_drivers_byte_for_byte(layout):
    assert streams.default_packing() == streams.FINN_PACKING  # requirements.lock installs it
    rng = np.random.default_rng(layout.bits)
    images = rng.integers(layout.min_code, layout.max_code + 1, (5, *layout.image_shape))  # (5, C, H, W)
    finn = streams.pack_images(images, layout)
    ours = streams.pack_images(images, layout, packing=streams.NUMPY_PACKING)
    assert finn.shape == ours.shape == (5 * layout.words_per_image, layout.in_bytes)
    assert np.array_equal(finn, ours)
    assert np.array_equal(streams.images_from_buffer(finn, layout), images)
    # value i of a word sits at bits [i*bits, (i+1)*bits), byte 0 lowest: FINN's stream order
    word0 = int.from_bytes(finn[0].tobytes(), "little")
    first = images.transpose(0, 2, 3, 1).reshape(-1, layout.elems)[0]  # NHWC, channel fastest
    assert [(word0 >> (i * layout.bits)) & ((1 << layout.bits) - 1) for i in range(layout.elems)] == \
        [int(v) & ((1 << layout.bits) - 1) for v in first]
    classes, exits = rng.integers(0, 10, 7), rng.integers(0, 4, 7)
    buffer = streams.decisions_to_buffer(classes, exits, layout)  # (7, out_bytes)
    for packing in (streams.FINN_PACKING, streams.NUMPY_PACKING):
        got_classes, got_exits = streams.unpack_decisions(buffer, layout, packing)
        assert np.array_equal(got_classes, classes) and np.array_equal(got_exits, exits)


def test_images_the_design_cannot_take_are_refused_with_the_reason():
    layout = _layout(3, 4, False, 2)
    good = np.zeros((2, 3, 4, 4), np.uint8)
    assert streams.check_images(good, layout) is good
    cases = [(good.tolist(), "must be a numpy array"), (good.astype(np.float32), "integer pixel codes"),
             (good[:, :2], "must be (N, 3, 4, 4)"), (good[:0], "the batch is empty"),
             (good + 16, "must lie in [0, 15]")]
    for images, message in cases:
        with pytest.raises(StreamError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            streams.check_images(images, layout)


def _rehash(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {name: sha256_of(folder / name) for name in package_files(folder)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def package_copy(tiny_run, tmp_path) -> Path:
    dst = tmp_path / "package"
    shutil.copytree(tiny_run / "package", dst)
    return dst


def test_a_changed_missing_or_unlisted_file_is_refused_by_name(package_copy):
    pkg = open_package(package_copy)
    assert {"golden/manifest.json", "rtl/multi_exit.json", "test_vectors.npz"} <= set(pkg.manifest["files"])
    source = next(n for n in pkg.manifest["files"] if n.startswith("rtl/src/") and n.endswith(".sv"))
    thresholds = package_copy / "thresholds.json"
    original = thresholds.read_bytes()
    thresholds.write_bytes(original.replace(b"{", b"{ ", 1))
    with pytest.raises(PackageError, match=f"{thresholds}: changed since the package was made"):
        open_package(package_copy)
    thresholds.write_bytes(original)
    (package_copy / source).rename(package_copy / "moved.sv")
    with pytest.raises(PackageError, match=f"{package_copy / source}: missing from the package"):
        open_package(package_copy)
    (package_copy / "moved.sv").rename(package_copy / source)
    (package_copy / "golden" / "extra.onnx").write_bytes(b"x")
    with pytest.raises(PackageError, match="extra.onnx: not listed in"):
        open_package(package_copy)
    (package_copy / "golden" / "extra.onnx").unlink()
    assert open_package(package_copy).manifest == pkg.manifest


class _StandInPynq:
    """A `pynq` module stand-in: records Overlay, allocate, GPIO and DMA calls, and runs the
    DMA's transfers through `device` (the RTL simulation) when the receive channel is waited on."""

    def __init__(self, device):
        self.calls: list[tuple] = []
        self.device = device
        pynq = self

        class Buffer(np.ndarray):
            def flush(self):
                pynq.calls.append(("flush", self.shape))

            def invalidate(self):
                pynq.calls.append(("invalidate", self.shape))

            def freebuffer(self):
                pynq.calls.append(("freebuffer", self.shape))

        class Channel:
            def __init__(self, name):
                self.name, self.buffer = name, None

            def transfer(self, buffer):
                pynq.calls.append((f"{self.name}.transfer", buffer.shape))
                self.buffer = buffer

            def wait(self):
                pynq.calls.append((f"{self.name}.wait",))
                if self.name == "recvchannel":  # the design answers the images sent
                    sent = overlay.dma.sendchannel.buffer
                    self.buffer[:] = pynq.device.transfer(np.asarray(sent), pynq.gpio_value)

        class Gpio:
            def write(self, value, mask):
                pynq.calls.append(("batch.write", value, mask))
                pynq.gpio_value = value

        class Overlay:
            def __init__(self, bitfile):
                nonlocal overlay
                pynq.calls.append(("Overlay", Path(bitfile).name))
                self.ip_dict = {"dma": {}, "batch": {}, "ps": {}}
                self.dma = types.SimpleNamespace(sendchannel=Channel("sendchannel"),
                                                 recvchannel=Channel("recvchannel"))
                self.batch = types.SimpleNamespace(channel1=Gpio())
                overlay = self

        overlay = None
        self.module = types.ModuleType("pynq")
        self.module.Overlay = Overlay
        self.module.allocate = lambda shape, dtype: pynq.calls.append(("allocate", shape)) or \
            np.zeros(shape, dtype).view(Buffer)


def test_the_pynq_backend_runs_its_board_code_path_on_a_stand_in(tiny_run, package_copy, monkeypatch):
    from hw.devices.rtl_device import RtlDevice

    (package_copy / "design.bit").write_bytes(b"stand-in bitstream")
    (package_copy / "design.hwh").write_text("<stand-in hardware handoff/>")
    _rehash(package_copy)
    rtl = RtlDevice(open_package(package_copy), 64, build=tiny_run / "rtl" / "multi_exit" / "build")
    stand_in = _StandInPynq(rtl)
    monkeypatch.setitem(sys.modules, "pynq", stand_in.module)
    report = board_test(package_copy, "pynq", batch=8, images=20)  # batches of 8, 8 and 4
    rtl.close()
    assert report["mismatched_images"] == 0 and report["images"] == 20
    calls = stand_in.calls
    assert calls[0] == ("Overlay", "design.bit")
    driver = json.loads((package_copy / "driver.json").read_text())
    words, in_bytes, out_bytes = (driver["input"]["words_per_image"], driver["input"]["dma_bytes"],
                                  driver["output"]["dma_bytes"])
    one_batch = [("flush", (8 * words, in_bytes)), ("batch.write", 8, 0xFFFFFFFF),
                 ("recvchannel.transfer", (8, out_bytes)), ("sendchannel.transfer", (8 * words, in_bytes)),
                 ("sendchannel.wait",), ("recvchannel.wait",), ("invalidate", (8, out_bytes))]
    assert calls[1:3] == [("allocate", (8 * words, in_bytes)), ("allocate", (8, out_bytes))]
    assert calls[3:10] == one_batch and calls[10:17] == one_batch  # buffers allocated once per size
    assert calls[17:19] == [("allocate", (4 * words, in_bytes)), ("allocate", (4, out_bytes))]
    assert calls[19:21] == [("flush", (4 * words, in_bytes)), ("batch.write", 4, 0xFFFFFFFF)]
    assert [c[0] for c in calls[-4:]] == ["freebuffer"] * 4


def test_the_pynq_backend_refuses_a_package_without_a_bitstream_and_a_batch_beyond_the_dma(package_copy,
                                                                                            monkeypatch):
    from boards.devices import open_device

    with pytest.raises(PackageError, match="design.bit: the package has no design.bit"):
        open_device(open_package(package_copy), "pynq")
    (package_copy / "design.bit").write_bytes(b"stand-in")
    (package_copy / "design.hwh").write_text("<stand-in/>")
    _rehash(package_copy)
    monkeypatch.setitem(sys.modules, "pynq", _StandInPynq(None).module)
    with pytest.raises(StreamError, match=r"batch 100000 is larger than the pynq device's buffers allow \(\d+ "):
        open_device(open_package(package_copy), "pynq", batch=100000)


def test_btsee_board_test_writes_the_report_and_refuses_a_changed_package(package_copy, tmp_path):
    out = tmp_path / "virtual.json"
    r = btsee("board-test", str(package_copy), "--backend", "virtual", "--json", str(out))
    assert "match golden" in r.stdout and "exit fractions" in r.stdout
    report = json.loads(out.read_text())
    assert report["mismatched_images"] == 0 and report["device"] == "virtual"
    exits = json.loads((package_copy / "driver.json").read_text())["output"]["exits"]
    assert len(report["exit_fractions"]) == exits + 1
    (package_copy / "test_vectors.npz").unlink()
    r = btsee("board-test", str(package_copy), "--backend", "virtual", check=False)
    assert r.returncode == 1 and f"{package_copy / 'test_vectors.npz'}: missing from the package" in r.stderr


def test_deploy_prints_the_usage_without_host_and_names_an_unreachable_host(package_copy, capsys):
    from boards.deploy import main

    assert main(["--board", "pynq-z2"]) == 2
    assert "usage: make deploy BOARD=pynq-z2 HOST=user@board" in capsys.readouterr().err
    assert main(["--board", "pynq-z2", "--host", "nobody@127.0.0.1", "--package", str(package_copy)]) == 1
    assert "no design.bit in the package" in capsys.readouterr().err
    (package_copy / "design.bit").write_bytes(b"stand-in")
    (package_copy / "design.hwh").write_text("<stand-in/>")
    _rehash(package_copy)
    assert main(["--board", "pynq-z2", "--host", "nobody@127.0.0.1", "--port", "1",
                 "--package", str(package_copy)]) == 1
    err = capsys.readouterr().err
    assert "reaching nobody@127.0.0.1 over ssh" in err and "failed" in err
