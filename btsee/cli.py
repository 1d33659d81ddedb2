"""The `btsee` command.

    btsee [--debug] run CONFIG --out DIR [--from STEP] [--to STEP] [--resume] [--force] [--device D]
    btsee sweep CONFIG --out DIR     # bts vs joint vs global threshold over the sweep section
    btsee simulate RUN [--images F.npy] [--thresholds F.json] [--save F.npz]
                                     # the golden simulator: class and exit index per image
    btsee board-test PACKAGE [--backend pynq|virtual|rtl] [--json F]
                                     # a device against the package's golden outputs (boards/board_test.py)
    btsee steps                      # list the steps
    btsee config [CONFIG]            # print the (default or loaded) configuration as JSON

Runs the same way on one CPU, one GPU, or under `torchrun --nproc_per_node=N -m btsee.cli run ...`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from btsee.config import Config, ConfigError, load_config
from calib.errors import BtseeError
from calib.progress import note_output

DEBUG_VARIABLE = "BTSEE_DEBUG"
EXIT_RUN_ERROR = 1
"""Exit status of an error of the run: bad data or input, a run-folder artifact, a tool that failed."""
EXIT_CONFIG_ERROR = 2
"""Exit status of a configuration or command-line error (a ConfigError, or argparse's)."""
EXIT_TOOL_MISSING = 3
"""Exit status when a tool the command needs is missing (Vivado for `bitstream`): not an
error of the configuration nor of the run; the build folder is complete."""
EXIT_MISMATCH = 4
"""Exit status of a run that finished with a bit-exactness check reporting mismatches
(report.json `bit_exact`: the chain, the RTL, the netlists): every artifact is written."""
MISMATCH_TOTALS = ("mismatches", "golden_vs_rtl_segments.mismatches", "golden_vs_rtl.mismatches",
                   "golden_vs_netlist.mismatches")
"""The totals under report.json `bit_exact` that count mismatched images (qonnx's float32
side check and the Brevitas agreement are reported apart, not links of the chain)."""


def _parser() -> argparse.ArgumentParser:
    from btsee import __version__

    p = argparse.ArgumentParser(prog="btsee", description="Early-exit CNNs from training to FPGA.")
    p.add_argument("--debug", action="store_true",
                   help=f"show the traceback of an error too (or set {DEBUG_VARIABLE}=1); anywhere on the line")
    p.add_argument("--version", action="version", version=f"btsee {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the flow's steps for a configuration")
    r.add_argument("config", type=Path, help="YAML or JSON configuration file")
    r.add_argument("--out", type=Path, required=True, help="run folder (created if missing)")
    r.add_argument("--from", dest="start", metavar="STEP", help="(re)run from this step on")
    r.add_argument("--to", dest="stop", metavar="STEP", help="stop after this step")
    r.add_argument("--resume", action="store_true",
                   help="continue an interrupted training from its last epoch checkpoint")
    r.add_argument("--force", action="store_true", help="rerun steps even when up to date")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    w = sub.add_parser("sweep", help="compare bts, joint and the global threshold over the "
                                     "config's sweep section (trains the backbone first if needed)")
    w.add_argument("config", type=Path)
    w.add_argument("--out", type=Path, required=True, help="run folder (its backbone is reused)")
    w.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    m = sub.add_parser("simulate", help="simulate a run's exit dataflow in software (golden model)")
    m.add_argument("run", type=Path, help="run folder with the dataflow step done")
    m.add_argument("--images", type=Path,
                   help=".npy of uint8 images (N, C, H, W); default: the run's test split")
    m.add_argument("--thresholds", type=Path, help="thresholds artifact (default: the run's own)")
    m.add_argument("--limit", type=int, help="simulate only the first N images")
    m.add_argument("--save", type=Path, help="write class, exit index and integer logits per image (.npz)")
    b = sub.add_parser("bitstream", help="run the flow up to the bitstream step for a board; exit status 3 "
                                         "when Vivado is missing (the build folder is still written)")
    b.add_argument("config", type=Path)
    b.add_argument("--out", type=Path, required=True, help="run folder (created if missing; finished steps are kept)")
    b.add_argument("--board", help="must equal the config's hardware.board (a check for `make bitstream BOARD=`)")
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sub.add_parser("board-test", add_help=False,
                   help="check a device (pynq, virtual, rtl) against a deploy package's golden class and exit "
                        "index, image by image (btsee board-test --help for its options)")
    sub.add_parser("steps", help="list the steps in order")
    c = sub.add_parser("config", help="print a configuration with all defaults filled in")
    c.add_argument("config", type=Path, nargs="?")
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs one command; its exit status: 0 done; EXIT_RUN_ERROR (1) an error of the run
    (bad input or artifact, a tool that failed), printed in one line; EXIT_CONFIG_ERROR (2)
    a usage or configuration error (argparse's, or a ConfigError), in one line;
    EXIT_TOOL_MISSING (3) when a tool the command needs is not installed (Vivado for
    bitstream), with what to run elsewhere; EXIT_MISMATCH (4) when a finished run reports
    mismatched images, naming where. With --debug (anywhere on the line) or BTSEE_DEBUG=1 a
    BtseeError's traceback is printed too. Other exceptions are bugs and keep their traceback."""
    argv = sys.argv[1:] if argv is None else argv
    if "--debug" in argv:  # anywhere: before or after the command and its arguments
        argv = [a for a in argv if a != "--debug"]
        os.environ[DEBUG_VARIABLE] = "1"
    if argv[:1] == ["board-test"]:  # its own parser and errors: the same command runs on the board
        from boards.board_test import main as board_test_main

        return board_test_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return _run_command(args)
    except BtseeError as e:
        if args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            traceback.print_exc()
        config = isinstance(e, ConfigError)
        print(f"btsee: {'config error' if config else 'error'}: {e}", file=sys.stderr)
        return EXIT_CONFIG_ERROR if config else EXIT_RUN_ERROR


def mismatches_found(out: Path) -> str:
    """'' when the run's report.json counts no mismatched image under MISMATCH_TOTALS (or
    has none of them yet), else one line naming each non-zero total."""
    from btsee.report import read_report

    bit_exact = read_report(out).get("bit_exact", {})
    found = []
    for key in MISMATCH_TOTALS:
        value = bit_exact
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int) and value:
            found.append(f"{value} in {out / 'report.json'} bit_exact.{key}")
    return "; ".join(found)


def _shown(message: str) -> None:
    """The flow's log: a line on stdout, noted so that the step heartbeat stays quiet."""
    print(message, flush=True)
    note_output()


def _run_command(args: argparse.Namespace) -> int:
    if args.command == "steps":
        from btsee.steps import STEPS

        for s in STEPS:
            print(f"{s.name:10s} {s.doc}")
        return 0
    if args.command == "simulate":
        from btsee.simulate_command import simulate_command

        print(json.dumps(simulate_command(args.run, args.images, args.thresholds, args.limit, args.save),
                         indent=2))
        return 0
    cfg = load_config(args.config) if getattr(args, "config", None) else Config()
    if args.command == "config":
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0

    from btsee.flow import Context, check_applicable, run_steps, select
    from btsee.steps import STEPS
    from qat.distributed import init_distributed

    if args.command == "sweep":
        from btsee.sweep import check_sweep_points

        check_sweep_points(cfg)
    elif args.command == "bitstream":
        if args.board and args.board.lower() != cfg.hardware.board.lower():
            raise ConfigError(f"{args.config}: hardware.board is {cfg.hardware.board!r}, BOARD is {args.board!r}; "
                              "set hardware.board in the config (the folding depends on the board)")
        args.start, args.stop, args.force, args.resume = None, "bitstream", False, True
        check_applicable(select(STEPS, None, "bitstream"), cfg)
    else:  # before training starts: a step that cannot apply to this config says so now
        check_applicable(select(STEPS, args.start, args.stop), cfg)
    env = init_distributed(args.device)
    log = _shown if env.is_main else (lambda _msg: None)
    ctx = Context(config=cfg, out=args.out.resolve(), env=env, resume=getattr(args, "resume", False),
                  log=log)
    if args.command == "sweep":
        from btsee.sweep import run_sweep

        summary = run_sweep(ctx)
        print(json.dumps({k: summary[k] for k in ("chosen_on_validation", "bts_vs_joint", "seconds")},
                         indent=2))
        print(f"sweep: {ctx.out / 'sweep' / 'sweep.md'}")
        return 0
    from btsee.steps.inputs import check_input

    run_steps(STEPS, ctx, args.start, args.stop, args.force, check_input)
    if env.is_main:
        print(f"report: {ctx.out / 'report.json'}")
        if found := mismatches_found(ctx.out):
            print(f"btsee: mismatch found: {found}", file=sys.stderr)
            return EXIT_MISMATCH
    if args.command == "bitstream":
        from btsee.run_folder import BITSTREAM_FILE, read_json

        built = read_json(ctx.out, BITSTREAM_FILE)
        if not built["built"]:
            print(f"btsee: {built['missing']}", file=sys.stderr)
            return EXIT_TOOL_MISSING
        print(f"bitstream: {ctx.out / built['bitstream']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
