"""Shared command-line plumbing: one clear line and exit status 2 for bad input."""

import functools
import sys


class UserError(Exception):
    """Bad input from the user: reported as one line, exit status 2, no traceback."""


def script_main(main):
    """Wrap a script's `main(argv)` so user errors and Ctrl-C end cleanly."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv) or 0
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper


def parse_int_list(text, name="value", count=None, minimum=1):
    """Parse '25,50' into [25, 50]; raise UserError with the option's name otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{name} must be comma-separated whole numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise UserError(f"{name} needs exactly {count} numbers, got {text!r}")
    if not values or any(value < minimum for value in values):
        raise UserError(f"{name} must be whole numbers of at least {minimum}, got {text!r}")
    return values


def add_split_options(parser, default_model="CNN"):
    """The split options, shared by balance_data.py, CNN.py and GAN.py."""
    parser.add_argument("--crops", default=".",
                        help="crop folder made by extract_crops.py (default: the current folder)")
    parser.add_argument("--seed", type=int, default=None,
                        help="shuffle within each class before splitting (default: off, index order, "
                        "as the paper); also seeds the random splits and, when training, the weights' "
                        "initialisation and the batch order (0 when not given)")
    parser.add_argument("--by-patient", action="store_true",
                        help="split by patient so that no patient is in two sets (needs patient ids)")
    parser.add_argument("--test-split", default=None, metavar="FILE",
                        help="CSV with a crop_index column that fixes the test set; the rest splits 8:1 "
                        "into train and validation (e.g. the paper's paper_test_split.csv)")
    parser.add_argument("--test-split-model", default=default_model,
                        help="with --test-split: keep the rows whose 'model' column is this "
                        f"(default {default_model}; the paper's file has CNN and GAN)")


def add_pairs_options(parser):
    """--pairs and --scale, shared by training and evaluation."""
    parser.add_argument("--pairs", choices=("paper", "consistent"), default="paper",
                        help="paper (default): the crops as they are, input and target each min-max normalised "
                        "on its own; consistent: the target crop and its area-averaged downsample as input "
                        "(made on the fly), the standard super-resolution set-up")
    parser.add_argument("--scale", type=int, default=None,
                        help="upscaling factor: with --pairs consistent the downsampling factor (default 2; "
                        "targets are cut to a multiple of it); with paper pairs it must match the crops' sizes")
