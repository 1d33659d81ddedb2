"""Training: the loss falls, a killed run resumes losing at most one epoch, DDP agrees,
and every tensor handed to a collective sits on the training device (NCCL's rule)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from conftest import ROOT, TINY_CONFIG, btsee, write_config
from qat.data import ImageSet
from qat.image_fit import ImageFit, fit_images
from qat.distributed import DistEnv
from qat.models import ModelSpec, build_backbone
from qat.train import InputScaling, learning_rate, load_checkpoint, train


def _opts(**kw):
    base = dict(epochs=3, batch_size=32, optimizer="adam", lr=0.005, weight_decay=0.0,
                schedule="constant", warmup_epochs=0.0, augment=False, seed=0, label_smoothing=0.0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_a_few_epochs_lower_the_loss(fmnist, tmp_path):
    tr = fmnist["train"]
    data = ImageSet(fit_images(tr.images[:256], ImageFit(32)), tr.labels[:256], tr.classes)
    torch.manual_seed(0)
    model = build_backbone(ModelSpec(name="cnv", width=0.125))
    env = DistEnv(0, 1, torch.device("cpu"))
    history = train(model, data, data, _opts(), InputScaling(), env, tmp_path / "ck.pt", "fp",
                    log=lambda _m: None)
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.8 * losses[0], losses
    state = load_checkpoint(tmp_path / "ck.pt")  # weights_only=True
    assert state["epoch"] == 2 and state["fingerprint"] == "fp"


class _Recorder:
    """A stand-in for torch.distributed's collectives that records the device of every
    tensor handed to it and then stops the caller (meta tensors hold no values)."""

    class Stop(Exception):
        pass

    def __init__(self):
        self.devices: list[torch.device] = []

    def __call__(self, tensor, *args, **kwargs):
        self.devices.append(tensor.device)
        raise self.Stop


@pytest.mark.parametrize("collective", ["all_reduce", "broadcast"])
def test_collective_tensors_are_made_on_the_training_device(monkeypatch, collective):
    """With NCCL (any CUDA run) a collective fails on a CPU tensor. The meta device stands
    in for the GPU this machine lacks: each collective must get a tensor on env.device."""
    from qat import distributed

    recorder = _Recorder()
    monkeypatch.setattr(distributed.dist, collective, recorder)
    env = DistEnv(0, 2, torch.device("meta"))
    with pytest.raises(_Recorder.Stop):
        if collective == "all_reduce":
            distributed.all_reduce_sum([1.0, 2.0, 3.0], env)
        else:
            distributed.broadcast_flag(env, True)
    assert recorder.devices == [torch.device("meta")]


def test_training_reduces_its_epoch_totals_through_the_device_helper(fmnist, monkeypatch, tmp_path):
    """One epoch as rank 0 of two, torch.distributed and DDP replaced by stand-ins: the
    epoch totals go through `all_reduce_sum` (which places them on env.device), never a
    CPU tensor of the training loop's own."""
    import qat.train

    calls = []

    def record(values, env):
        calls.append((list(values), env.device))
        return [2 * v for v in values]  # what the second process would add: the same totals

    def no_direct_collective(*args, **kwargs):
        raise AssertionError("training called torch.distributed.all_reduce itself")

    monkeypatch.setattr(qat.train, "all_reduce_sum", record)
    monkeypatch.setattr(torch.distributed, "all_reduce", no_direct_collective)
    monkeypatch.setattr(torch.distributed, "barrier", lambda *a, **k: None)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", lambda model, **kw: model)
    tr = fmnist["train"]
    data = ImageSet(fit_images(tr.images[:64], ImageFit(32)), tr.labels[:64], tr.classes)
    env = DistEnv(0, 2, torch.device("cpu"))
    history = train(build_backbone(ModelSpec(name="cnv", width=0.125)), data, data,
                    _opts(epochs=1, batch_size=32), InputScaling(), env, tmp_path / "ck.pt", "fp",
                    log=lambda _m: None)
    assert len(calls) == 1 and calls[0][1] == env.device
    loss_sum, correct, seen = calls[0][0]
    assert seen == 32  # rank 0's half of two batches of 32
    assert history[0]["train_loss"] == pytest.approx(loss_sum / seen)


def test_learning_rate_schedule():
    assert learning_rate(0, 100, 10, 1.0, "cosine") == pytest.approx(0.1)
    assert learning_rate(9, 100, 10, 1.0, "cosine") == pytest.approx(1.0)
    assert learning_rate(55, 100, 10, 1.0, "cosine") == pytest.approx(0.5)
    assert learning_rate(100, 100, 10, 1.0, "cosine") == pytest.approx(0.0)
    assert learning_rate(70, 100, 0, 0.3, "constant") == 0.3


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    values = json.loads(json.dumps(TINY_CONFIG))
    values["data"]["limit_train"] = 1024
    values["train"].update(epochs=3, batch_size=64)
    cfg = write_config(tmp_path / "cfg.json", values)
    full = tmp_path / "full"
    btsee("run", str(cfg), "--out", str(full), "--device", "cpu", "--to", "backbone")

    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "btsee.cli", "run", str(cfg), "--out", str(killed),
                             "--device", "cpu", "--to", "backbone"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "backbone" / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and load_checkpoint(ckpt)["epoch"] >= 0:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch_at_kill = load_checkpoint(ckpt)["epoch"]
    assert epoch_at_kill < 2, "the run finished before it could be killed; make it longer"
    assert not (killed / "backbone" / "model.pt").exists()

    out = btsee("run", str(cfg), "--out", str(killed), "--device", "cpu", "--resume", "--to", "backbone")
    assert f"after epoch {epoch_at_kill + 1}" in out.stdout
    a = torch.load(full / "backbone" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / "backbone" / "model.pt", weights_only=True)["state_dict"]
    assert _states_equal(a, b)
    ra = json.loads((full / "report.json").read_text())["accuracy"]["backbone"]
    rb = json.loads((killed / "report.json").read_text())["accuracy"]["backbone"]
    assert ra == rb


@pytest.mark.slow
def test_two_process_ddp_agrees_with_one_process(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    values = json.loads(json.dumps(TINY_CONFIG))
    values["train"].update(epochs=1, augment=True)
    cfg = write_config(tmp_path / "cfg.json", values)
    btsee("run", str(cfg), "--out", str(tmp_path / "one"), "--device", "cpu", "--to", "backbone")
    # --standalone: a free local port for the rendezvous (a fixed one can be taken on a
    # shared CI machine); gloo on the loopback interface, whatever the host name resolves to.
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    two_procs = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "btsee.cli", "run",
                                str(cfg), "--out", str(tmp_path / "two"), "--device", "cpu",
                                "--to", "backbone"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert two_procs.returncode == 0, (two_procs.stdout + two_procs.stderr)[-4000:]
    one = json.loads((tmp_path / "one" / "backbone" / "history.json").read_text())
    two = json.loads((tmp_path / "two" / "backbone" / "history.json").read_text())
    # Same global batches, gradients and batch-norm statistics: only the order of
    # floating-point sums differs between one process and two.
    assert two[0]["train_loss"] == pytest.approx(one[0]["train_loss"], rel=1e-3)
    a = torch.load(tmp_path / "one" / "backbone" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "two" / "backbone" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    assert worst < 1e-3, worst
