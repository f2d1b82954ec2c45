"""The paper's CNN: train it with one of its four loss setups, or evaluate a trained model.

    python3 CNN.py train SSIM_then_MSE
    python3 CNN.py evaluate CNN_models/CNN_SSIM_then_MSE_model.keras SSIM_then_MSE
"""

import argparse
import sys

from mrisr.commands.cli import (
    add_pairs_options,
    add_run_options,
    add_split_options,
    add_standard_options,
    check_numbers,
    read_split_crops,
    script_main,
    split_options,
    split_options_record,
)
from mrisr.errors import UserError
from mrisr.nets.architectures import ARCHITECTURES
from mrisr.nets.losses import ALL_LOSS_SETUPS, LOSS_SETUPS
from mrisr.paper.recipes import architecture_defaults


def build_parser():
    parser = argparse.ArgumentParser(
        description="Train or evaluate the paper's CNN (25x25 RGBA crop in, 50x50 RGBA crop out). "
        "Every default is the paper's; options that depart from it say so.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a CNN and save CNN_models/CNN_<LOSS>_model.keras and its history",
        description="Train the paper's CNN with a loss setup: MSE; SSIM (1 - tf.image.ssim over all four "
        "channels); SSIM_and_MSE (0.6 SSIM + 0.4 MSE); SSIM_then_MSE (SSIM until early stopping, then MSE "
        "from the same weights with a fresh optimiser until early stopping again).")
    train.add_argument("loss", choices=ALL_LOSS_SETUPS, metavar="LOSS",
                       help="one of " + ", ".join(LOSS_SETUPS) + " (the paper's), or L1 or PSNR (beyond the paper; "
                       "PSNR maximises the mean of the per-image PSNR directly)")
    add_split_options(train, training=True)
    train.add_argument("--arch", choices=ARCHITECTURES, default="paper",
                       help="network: paper (default, the paper's CNN, fixed 25x25 -> 50x50); espcn (sub-pixel "
                       "network, 21k parameters); edsr (residual network, 631k parameters); edsr_global (edsr "
                       "plus a per-image gain and offset from pooled features, for paper pairs). All but paper "
                       "are fully convolutional, work on the crops' grey value (the colour map inverted) and "
                       "add their output to the cubic upscaling of the input")
    add_pairs_options(train)
    train.add_argument("--models-dir", default="CNN_models", help="where models go (default CNN_models)")
    train.add_argument("--epochs", type=int, default=1000,
                       help="most epochs per phase (default 1000 = the paper; early stopping usually ends sooner)")
    train.add_argument("--batch-size", type=int, default=32, help="default 32 = the paper")
    train.add_argument("--lr", type=float, default=None,
                       help="Adam learning rate, above 0 and at most 1 (default 1e-5 = the paper for --arch paper, "
                       "5e-4 for the others)")
    train.add_argument("--lr-schedule", choices=("inverse-time", "cosine", "constant"), default=None,
                       help="inverse-time: lr / (1 + decay * step), the paper's (default for --arch paper); "
                       "cosine: from lr to lr/100 over --epochs (default for the other networks); constant")
    train.add_argument("--decay", type=float, default=1e-6,
                       help="learning-rate decay, old Keras meaning lr / (1 + decay * step) (default 1e-6 = the paper)")
    train.add_argument("--patience", type=int, default=5,
                       help="early-stopping patience on val_loss, in epochs (default 5 = the paper)")
    train.add_argument("--restore-best", action="store_true",
                       help="keep the weights of the best validation epoch (default off = the paper)")
    train.add_argument("--augment", action="store_true",
                       help="random flips and 90-degree rotations of every training pair (default off = the paper)")
    train.add_argument("--ema", action="store_true",
                       help="keep an exponential moving average of the weights (momentum 0.99): validation, "
                       "early stopping and the saved model use it (default off = the paper)")
    train.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                       help="stop training after this many minutes, all phases together (default: none)")
    train.add_argument("--limit", type=int, default=None,
                       help="train on the first N training pairs only (quick runs; default: all)")
    train.add_argument("--no-xla", action="store_true",
                       help="do not compile the training step with XLA (default: XLA on; it changes "
                       "speed, not the arithmetic's meaning)")
    add_run_options(train)

    evaluate = commands.add_parser(
        "evaluate", help="predict the test set, write the predictions and metrics.csv, print model vs bicubic",
        description="Predict the test crops with a trained model; write testing_sample_{k}.png and metrics.csv "
        "(PSNR and SSIM of the model and of bicubic per sample: RGB only, data range 1, scikit-image SSIM).")
    evaluate.add_argument("model_path", metavar="MODEL_PATH", help="a .keras file written by CNN.py train, or "
                          "shipped weights by short name (mri-x2, mri-x4, demo-x2)")
    evaluate.add_argument("loss", nargs="?", choices=ALL_LOSS_SETUPS, metavar="LOSS",
                          help="the loss setup the model was trained with (only names the output; optional)")
    add_split_options(evaluate, evaluating=True)
    add_pairs_options(evaluate, evaluating=True)
    evaluate.add_argument("--self-ensemble", action="store_true",
                          help="average the predictions of the eight flips and rotations of each input "
                          "(beyond the paper; for square crops)")
    evaluate.add_argument("--out", default=None,
                          help="output folder (default: <model path without suffix>_testing_predictions/)")
    add_standard_options(parser, (train, evaluate))
    return parser


def command_train(args):
    from mrisr.core.distribution import devices_for_batch
    from mrisr.core.precision import choose_policy
    from mrisr.paper.training import CNNSettings, train_cnn

    check_numbers(args, positive=("epochs", "batch_size", "patience", "limit", "time_limit", "lr", "devices"),
                  non_negative=("decay",))
    if args.scale is not None and args.scale < 2:
        raise UserError(f"--scale must be at least 2, got {args.scale}")
    if args.lr is not None and args.lr > 1:
        raise UserError(f"--lr must be at most 1 (Adam's step size: larger ones only saturate or diverge the "
                        f"network; the paper uses 1e-5), got {args.lr:g}")
    devices = devices_for_batch(args.devices, args.batch_size)  # before anything runs on the backend
    crops, split = read_split_crops(args)
    paper = args.arch == "paper"
    recipe = architecture_defaults(args.arch)
    if paper and args.pairs != "paper":
        raise UserError("the paper's CNN has a fixed 25x25 input: use --pairs consistent with a fully "
                        "convolutional --arch")
    settings = CNNSettings(
        loss_setup=args.loss, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr if args.lr is not None else recipe["learning_rate"],
        lr_schedule=args.lr_schedule or recipe["lr_schedule"],
        decay=args.decay, patience=args.patience, restore_best=args.restore_best, limit=args.limit,
        seed=args.seed, xla=not args.no_xla, augment=args.augment, ema=args.ema,
        time_limit_minutes=args.time_limit, pairs=args.pairs, scale=args.scale,
        precision=choose_policy(args.mixed_precision),
    )
    extra = split_options_record(args, split)
    run = train_cnn(crops, split, settings, args.models_dir, resume=args.resume,
                    verbose=2 if args.quiet else 1, extra=extra, overwrite=args.overwrite,
                    devices=devices)
    print(("Saved" if run.writes else f"Process {devices.process}: trained alongside process 0, which saved")
          + f" {run.model_path} and {run.history_path} after {len(run.history['epoch'])} epoch(s) in "
          f"{run.seconds:.0f} s")


def command_evaluate(args):
    from mrisr.paper.evaluation import evaluate_model_file

    if args.scale is not None and args.scale < 2:
        raise UserError(f"--scale must be at least 2, got {args.scale}")
    evaluate_model_file(args.model_path, args.crops, split_options(args), "CNN",
                        f" ({args.loss or 'loss setup not given'})", pairs=args.pairs, scale=args.scale,
                        out_dir=args.out, self_ensemble=args.self_ensemble, allow_overlap=args.allow_overlap)


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "train":
        command_train(args)
    else:
        command_evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
