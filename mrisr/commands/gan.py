"""The paper's GAN: train it for a number of epochs, or evaluate its generator.

    python3 GAN.py train 1000
    python3 GAN.py evaluate GAN_models
"""

import argparse
import sys

from mrisr.commands.cli import (
    add_run_options,
    add_split_options,
    add_standard_options,
    check_numbers,
    parse_int_list,
    read_split_crops,
    script_main,
    split_options,
    split_options_record,
)
from mrisr.errors import UserError
from mrisr.nets.architectures import GENERATORS


def build_parser():
    parser = argparse.ArgumentParser(
        description="Train or evaluate the paper's GAN (generator 25x25x4 -> 50x50x4, discriminator -> "
        "probability). Every default is the paper's; options that depart from it say so.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train the GAN; writes GAN_models/ and GAN_Score_plot/",
        description="Each step takes one batch of pairs: the discriminator learns real targets (1) against "
        "the generator's images of the batch's inputs (0), then the generator learns through the frozen "
        "discriminator (labels 1), both with binary cross-entropy. After each epoch the paper's scores "
        "(scoreGenerator = mean D(G(x)), scoreDiscriminator = 0.5 mean D(y) + 0.5 mean(1 - D(G(x)))) and the "
        "generator's PSNR and SSIM are computed on the validation set.")
    train.add_argument("epochs", type=int, metavar="EPOCHS", help="number of epochs (the paper: 1000)")
    add_split_options(train, default_model="GAN", training=True)
    train.add_argument("--models-dir", default="GAN_models", help="where models go (default GAN_models)")
    train.add_argument("--score-plot-dir", default="GAN_Score_plot",
                       help="where the score plot goes (default GAN_Score_plot)")
    train.add_argument("--batch-size", type=int, default=128, help="default 128 = the paper")
    train.add_argument("--limit", type=int, default=None, help="train on the first N training pairs only")
    train.add_argument("--disc-strides", default="1,1,1,1",
                       help="strides of the discriminator's four convolutions (default 1,1,1,1 = the paper's "
                       "text; 1,2,2,2 = the authors' code)")
    train.add_argument("--generator", default="paper", choices=GENERATORS,
                       help="generator network: paper (default), or the fully convolutional espcn or edsr of "
                       "CNN.py --arch (beyond the paper; best with --content-loss)")
    train.add_argument("--content-loss", choices=("none", "mse", "ssim", "l1"), default="none",
                       help="beyond the paper: SRGAN's objective, content loss + adversarial weight x "
                       "adversarial loss (default none = the paper's pure adversarial loss)")
    train.add_argument("--adversarial-weight", type=float, default=None,
                       help="weight of the adversarial loss beside a content loss (default 1e-3)")
    train.add_argument("--pretrain-epochs", type=int, default=0,
                       help="first train the generator on the content loss alone for N epochs (default 0)")
    train.add_argument("--snapshot-every", type=int, default=10,
                       help="save a figure of validation samples every N epochs (default 10; 0 = never)")
    train.add_argument("--xla", action="store_true",
                       help="compile the training step with XLA (default off: on this CPU XLA's convolutions "
                       "made the step slower; try it on a GPU)")
    add_run_options(train, "an interrupted run in --models-dir")

    evaluate = commands.add_parser(
        "evaluate", help="predict the test set with the generator; metrics.csv and a summary against bicubic")
    evaluate.add_argument("model_path", metavar="MODEL_PATH", help="generator .keras file, or the GAN models folder")
    add_split_options(evaluate, default_model="GAN", evaluating=True)
    evaluate.add_argument("--out", default=None,
                          help="output folder (default: <generator path without suffix>_testing_predictions/)")
    add_standard_options(parser, (train, evaluate))
    return parser


def command_train(args):
    from mrisr.core.distribution import devices_for_batch
    from mrisr.core.precision import choose_policy
    from mrisr.paper.gan import GANSettings, train_gan

    if args.epochs <= 0:
        raise UserError("EPOCHS must be positive")
    check_numbers(args, positive=("batch_size", "limit", "devices"), non_negative=("adversarial_weight",))
    if args.pretrain_epochs < 0 or args.snapshot_every < 0:
        raise UserError("--pretrain-epochs and --snapshot-every must not be negative")
    strides = tuple(parse_int_list(args.disc_strides, "--disc-strides", count=4))
    if args.content_loss == "none" and args.adversarial_weight is not None:
        raise UserError("--adversarial-weight needs a --content-loss")
    devices = devices_for_batch(args.devices, args.batch_size)  # before anything runs on the backend
    crops, split = read_split_crops(args)
    settings = GANSettings(
        epochs=args.epochs, batch_size=args.batch_size, disc_strides=strides, generator=args.generator,
        content_loss=args.content_loss, adversarial_weight=args.adversarial_weight,
        pretrain_epochs=args.pretrain_epochs, limit=args.limit, seed=args.seed, xla=args.xla,
        snapshot_every=args.snapshot_every,
        precision=choose_policy(args.mixed_precision),
    )
    extra = split_options_record(args, split)
    try:
        run = train_gan(crops, split, settings, args.models_dir, args.score_plot_dir, resume=args.resume,
                        verbose=2 if args.quiet else 1, extra=extra, overwrite=args.overwrite,
                        devices=devices)
    except ValueError as error:  # an unknown generator name
        raise UserError(str(error)) from None
    print(f"Saved {run.generator_path}, {run.discriminator_path} and {run.history_path}; "
          f"score plot in {run.score_plot_dir}/ ({run.seconds:.0f} s)")


def command_evaluate(args):
    from mrisr.paper.evaluation import evaluate_model_file
    from mrisr.paper.gan import find_generator

    evaluate_model_file(find_generator(args.model_path), args.crops, split_options(args), "GAN",
                        out_dir=args.out, allow_overlap=args.allow_overlap)


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "train":
        command_train(args)
    else:
        command_evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
