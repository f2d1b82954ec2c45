"""The paper at full length: its four CNN loss setups, each trained with the paper's settings to its early
stop, then its GAN for as many epochs as the time allows, on the paper's test split of the real crops; the
epochs to early stop beside the paper's, the loss curves, the test split's PSNR and SSIM beside bicubic,
the visual comparison and the GAN's scores so far.

    python3 -m benchmarks.reproduce_paper CROPS [--minutes M] [--setups MSE,SSIM,SSIM_and_MSE,SSIM_then_MSE]
        [--gan-epochs 1000] [--no-gan] [--work reproduction_run] [--out results/reproduction]

Every run checkpoints each epoch. With --minutes a command pauses after the first epoch that ends M
minutes after it began (its checkpoint written; a command always trains at least one epoch) and says
so; the same command again continues where it paused, so the whole reproduction runs in commands that
each fit a time limit. The models and checkpoints stay in --work (the paper CNN is 800 MB, its checkpoint
with Adam's state 2.4 GB); the figures and reproduction.json go to --out, rewritten from what is done
after every command.

CROPS: the crop folder of the real data set (../shared/data/brain-tumor-crops, or extract_crops.py on the
figshare or Kaggle data); its paper_test_split.csv, when there, gives the paper's CNN and GAN test sets.
--epochs and --limit cut the runs short (the test runs it on a few crops for two epochs).
"""

import argparse
import functools
import sys
import time
from pathlib import Path

from mrisr.commands.cli import script_main
from mrisr.core.machine import describe_machine
from mrisr.errors import Paused

# The paper's table: epochs to early stop and minutes, on a GTX 1080 (Adam 1e-5, batch 32, patience 5).
PAPER = {"MSE": (263, 39.0), "SSIM": (242, 36.0), "SSIM_and_MSE": (195, 28.5), "SSIM_then_MSE": (324, 52.5)}
PAPER_GAN = {"epochs": 1000, "hours": 20}  # its figure 7, on the same GPU


class Budget:
    """This command's time: how many minutes are left of --minutes (None: no limit), and whether a run has
    started (a command always starts one, so that every command makes progress)."""

    def __init__(self, minutes):
        self.end = None if minutes is None else time.monotonic() + 60.0 * minutes
        self.started = False

    def left(self):
        return None if self.end is None else max(0.0, (self.end - time.monotonic()) / 60.0)

    def spent(self):
        return self.end is not None and time.monotonic() >= self.end


def split_options(crops_folder, model):
    """The paper's test set of `model` ("CNN" or "GAN") when the folder has paper_test_split.csv; else the
    paper's own 80/10/10 split."""
    from mrisr.paper.splits import SplitOptions

    test_split = Path(crops_folder) / "paper_test_split.csv"
    if test_split.is_file():
        return SplitOptions(test_split=str(test_split), test_split_model=model)
    return SplitOptions()


def train(run_files, start, budget):
    """Start or continue one run; returns "done", "paused" or "waiting" (no time left to start it)."""
    finished, checkpoint = run_files
    if finished.is_file():
        return "done"
    if budget.spent() and budget.started:
        return "waiting"
    budget.started = True
    try:
        start(resume=(checkpoint / "state.json").is_file(), pause_after_minutes=budget.left())
    except Paused:
        return "paused"
    return "done"


def run_state(history_path, checkpoint):
    """(record, finished) of a run: its history file when finished, else its checkpoint's state, else None."""
    from mrisr.core.files import load_json

    if history_path.is_file():
        return load_json(history_path), True
    if (checkpoint / "state.json").is_file():
        state = load_json(checkpoint / "state.json")
        records = state.get("phase_records") or []
        return {"history": state["history"], "training_seconds": state["seconds"], "phases": records,
                "switch_epoch": records[1]["first_epoch"] if len(records) > 1 else None}, False
    return None, False


def scores(model_path, test_set, out_dir):
    """The model's and bicubic's mean PSNR and SSIM on the test set (the project's metrics protocol)."""
    from mrisr.nets.loading import load_model
    from mrisr.paper.evaluation import evaluate

    result = evaluate(load_model(model_path), test_set, out_dir, write_images=False)
    model, bicubic = result.model_scores, result.bicubic_scores
    return {"psnr": round(model.mean_psnr, 3), "ssim": round(model.mean_ssim, 4),
            "bicubic_psnr": round(bicubic.mean_psnr, 3), "bicubic_ssim": round(bicubic.mean_ssim, 4),
            "minus_bicubic_db": round(model.mean_psnr - bicubic.mean_psnr, 3), "samples": len(test_set)}


def cnn_row(setup, record, finished, state, test_set, work, out, device):
    """What reproduction.json says of one CNN setup."""
    from mrisr.paper.names import cnn_model_path

    paper_epochs, paper_minutes = PAPER[setup]
    row = {"setup": setup, "state": state, "paper_epochs": paper_epochs, "paper_minutes": paper_minutes}
    if record is None:
        return row
    history = record["history"]
    epochs, seconds = len(history["epoch"]), float(record["training_seconds"])
    row.update({"epochs": epochs if finished else None, "epochs_so_far": epochs,
                "epochs_per_phase": [r["last_epoch"] - r["first_epoch"] + 1 for r in record.get("phases", [])],
                "stopped_early": [r["stopped_early"] for r in record.get("phases", [])],
                "switch_epoch": record.get("switch_epoch"), "minutes": round(seconds / 60, 2),
                "seconds_per_epoch": round(seconds / max(epochs, 1), 2), "device": record.get("device", device),
                "final_loss": history["loss"][-1] if epochs else None,
                "final_val_loss": history["val_loss"][-1] if epochs else None})
    if finished:
        row["within_25_percent_of_paper"] = bool(abs(epochs - paper_epochs) <= 0.25 * paper_epochs)
        row["test"] = scores(cnn_model_path(work / "CNN_models", setup), test_set, out / "test" / setup)
    return row


def gan_row(record, finished, state, test_set, work, out, epochs_asked, device):
    """What reproduction.json says of the GAN: its epochs so far, scores and the generator's test figures."""
    from mrisr.paper.names import GENERATOR

    row = {"state": state, "paper_epochs": PAPER_GAN["epochs"], "paper_hours": PAPER_GAN["hours"],
           "epochs_asked": epochs_asked}
    if record is None:
        return row
    history = record["history"]
    epochs = len(history["epoch"])
    row.update({"epochs_so_far": epochs, "finished": finished,
                "minutes": round(float(record["training_seconds"]) / 60, 2),
                "seconds_per_epoch": round(float(record["training_seconds"]) / max(epochs, 1), 2),
                "device": record.get("device", device),
                "last": {key: history[key][-1] for key in ("score_generator", "score_discriminator", "val_psnr",
                                                            "val_ssim")} if epochs else None})
    generator = work / "GAN_models" / GENERATOR
    if generator.is_file():
        row["test"] = scores(generator, test_set, out / "test" / "GAN")
    return row


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("crops", metavar="CROPS", help="the real crop folder (with paper_test_split.csv)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="pause after the first epoch that ends this long after the command began (default: "
                             "no limit); the same command again continues")
    parser.add_argument("--setups", default=",".join(PAPER), help="the CNN loss setups, in order (default: all four)")
    parser.add_argument("--gan-epochs", type=int, default=PAPER_GAN["epochs"],
                        help=f"the GAN's epochs (default the paper's {PAPER_GAN['epochs']})")
    parser.add_argument("--no-gan", action="store_true", help="the CNN setups only")
    parser.add_argument("--epochs", type=int, default=1000, help="the most epochs per loss phase (default 1000)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N training crops only")
    parser.add_argument("--samples", default="0,1,2,3,4", help="test samples of the visual comparison")
    parser.add_argument("--work", default="reproduction_run", help="models and checkpoints (default reproduction_run)")
    parser.add_argument("--out", default="results/reproduction", help="figures and reproduction.json")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from mrisr.core.files import save_json
    from mrisr.errors import UserError
    from mrisr.nets.losses import LOSS_SETUPS
    from mrisr.paper.gan import GANSettings, train_gan
    from mrisr.paper.names import GAN_HISTORY, cnn_model_path, cnn_stem
    from mrisr.paper.plots import plot_cnn_losses, plot_gan_scores
    from mrisr.paper.splits import read_split_crops
    from mrisr.paper.training import CNNSettings, train_cnn

    setups = [s for s in args.setups.split(",") if s]
    if not setups or set(setups) - set(PAPER):
        raise UserError(f"--setups: choose from {', '.join(PAPER)}")
    budget, work, out = Budget(args.minutes), Path(args.work), Path(args.out)
    machine = describe_machine()
    print(f"machine: {machine}")
    crops, split = read_split_crops(args.crops, split_options(args.crops, "CNN"))
    extra = {"device": machine}
    states = {}
    for setup in setups:
        stem = cnn_stem(setup)
        settings = CNNSettings(loss_setup=setup, epochs=args.epochs, limit=args.limit)
        start = functools.partial(train_cnn, crops, split, settings, work / "CNN_models", verbose=2, extra=extra)
        states[setup] = train((work / "CNN_models" / f"{stem}.keras", work / "CNN_models" / f"{stem}_checkpoint"),
                              start, budget)
        print(f"{setup}: {states[setup]}", flush=True)
    gan_crops, gan_split = read_split_crops(args.crops, split_options(args.crops, "GAN"))
    if not args.no_gan and all(states[s] == "done" for s in setups):
        settings = GANSettings(epochs=args.gan_epochs, limit=args.limit)
        start = functools.partial(train_gan, gan_crops, gan_split, settings, work / "GAN_models",
                                  work / "GAN_Score_plot", verbose=2, extra=extra)
        states["GAN"] = train((work / "GAN_models" / GAN_HISTORY, work / "GAN_models" / "checkpoint"), start, budget)
        print(f"GAN: {states['GAN']}", flush=True)

    figures = out / "figures"
    histories, rows = {}, []
    test_set = crops.subset(split.test)
    for setup in setups:
        stem = cnn_stem(setup)
        record, finished = run_state(work / "CNN_models" / f"{stem}_history.json",
                                     work / "CNN_models" / f"{stem}_checkpoint")
        rows.append(cnn_row(setup, record, finished, states[setup], test_set, work, out, machine))
        if record is not None and record["history"]["epoch"]:
            histories[setup] = record
    if histories:
        plot_cnn_losses(histories, figures)
    if all(cnn_model_path(work / "CNN_models", s).is_file() for s in LOSS_SETUPS):
        from mrisr.paper.figures import visual_predictions

        visual_predictions("CNN", args.crops, work / "CNN_models", [int(s) for s in args.samples.split(",")],
                           split_options(args.crops, "CNN"), figures, with_bicubic=True)
    gan_record, gan_finished = run_state(work / "GAN_models" / GAN_HISTORY, work / "GAN_models" / "checkpoint")
    gan = gan_row(gan_record, gan_finished, states.get("GAN", "waiting"), gan_crops.subset(gan_split.test), work,
                  out, args.gan_epochs, machine)
    if gan_record is not None and gan_record["history"]["epoch"]:
        plot_gan_scores(gan_record["history"], figures / "GAN_score_plot.png")
    tested = [row for row in rows if "test" in row]
    report = {"machine": machine, "command": "python3 -m benchmarks.reproduce_paper " + " ".join(argv or sys.argv[1:]),
              "setups": rows, "gan": gan,
              "ranking_by_test_psnr": [row["setup"] for row in sorted(tested, key=lambda r: -r["test"]["psnr"])]}
    save_json(out / "reproduction.json", report)
    print(f"{'setup':<15} {'state':<8} {'epochs':>7} {'paper':>6} {'min':>7} {'test PSNR':>10} {'bicubic':>8}")
    for row in rows:
        test = row.get("test", {})
        print(f"{row['setup']:<15} {row['state']:<8} {row.get('epochs_so_far', 0):>7} {row['paper_epochs']:>6} "
              f"{row.get('minutes', 0):>7.1f} {test.get('psnr', float('nan')):>10.2f} "
              f"{test.get('bicubic_psnr', float('nan')):>8.2f}")
    print(f"GAN: {gan.get('epochs_so_far', 0)} of {args.gan_epochs} epochs ({gan['state']})")
    waiting = [name for name, state in states.items() if state != "done"]
    if waiting or (not args.no_gan and "GAN" not in states):
        print("Not finished: run the same command again to continue.")
    print(f"Wrote {out / 'reproduction.json'} and {figures}/")


if __name__ == "__main__":
    sys.exit(main())
