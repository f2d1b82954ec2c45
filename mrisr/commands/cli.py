"""Shared command-line plumbing: one clear line and an exit status for every failure, never a traceback.

- `UserError`: bad input (a file, an option): exit status 2.
- `RunFailed`: the input was fine but the work could not finish safely (training diverged, a model
  gives non-finite values): exit status 1.
- An `OSError` (unwritable folder, full disk, a path that is a folder...) is bad input too: one line
  naming the file, exit status 2.
- Ctrl-C and SIGTERM raise `KeyboardInterrupt`, so every half-written file is removed on the way out.
"""

import contextlib
import functools
import math
import os
import re
import signal
import sys
import threading
from pathlib import Path

from mrisr.core.messages import show_messages
from mrisr.errors import RunFailed, Terminated, UserError, describe_os_error  # noqa: F401 (re-exported)
from mrisr.paper.splits import SplitOptions
from mrisr.paper.splits import read_split_crops as read_and_split
from mrisr.version import __version__


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


BACKENDS = ("tensorflow", "jax", "torch")  # each the name of its package


def check_keras_backend():
    """UserError unless KERAS_BACKEND (when set) names a backend these tools run on that is installed."""
    import importlib.util

    name = os.environ.get("KERAS_BACKEND")
    if name is None:
        return
    if name not in BACKENDS:
        raise UserError(f"KERAS_BACKEND={name!r}: these tools run on tensorflow (the default), jax or torch")
    if importlib.util.find_spec(name) is None:
        raise UserError(f"KERAS_BACKEND={name} but {name} is not installed: pip install \".[backends]\" (or unset "
                        "KERAS_BACKEND for TensorFlow)")


def documents_folder():
    """Where the docs/ the help names are: the source tree's, or the copy installed with the package."""
    package = Path(__file__).resolve().parents[1]
    source = package.parent / "docs"
    return source if (source / "upscaling.md").is_file() else package / "docs"


def add_standard_options(parser, subparsers=()):
    """--version and --verbose (TensorFlow's own start-up lines shown) on a command and its sub-commands, and
    where the documents are, at the end of each one's help."""

    parser.add_argument("--version", action="version", version=f"%(prog)s (mrisr {__version__})")
    for each in (parser, *subparsers):
        each.add_argument("--verbose", action="store_true",
                          help="show TensorFlow's own start-up and log lines (hidden by default)")
        each.epilog = ((each.epilog + "\n\n") if each.epilog else "") + f"docs/: {documents_folder()}"


# The parameters whose flag is not their name with dashes.
FLAGS_OF_PARAMETERS = {"learning_rate": "lr", "precision": "mixed-precision", "save_model_path": "save-model",
                       "time_limit_minutes": "time-limit"}


def option_name(name):
    """The flag of a parameter or of an option's destination: volume_index -> --volume-index."""
    return "--" + FLAGS_OF_PARAMETERS.get(name, name.replace("_", "-"))


def as_flags(message):
    """A library message as the command line reads it: each parameter it names in backticks (`volume_index`)
    shown as its flag (--volume-index)."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda match: option_name(match[1]), str(message))


def script_main(main):
    """Wrap a script's `main(argv)` so failures end with one line and a clear exit status, the library's
    lines are shown, and TensorFlow's start-up lines stay hidden unless --verbose."""

    @functools.wraps(main)
    def wrapper(argv=None):

        show_messages(as_flags)  # the library's lines (logging) on standard output, parameters as flags
        if "--verbose" not in (sys.argv[1:] if argv is None else argv):
            from mrisr.core.quiet import hide_tensorflow_start_up

            hide_tensorflow_start_up()
        try:
            with _sigterm_as_interrupt():
                check_keras_backend()
                return main(argv) or 0
        except UserError as error:
            print(f"error: {as_flags(error)}", file=sys.stderr)
            return 2
        except RunFailed as error:
            print(f"error: {as_flags(error)}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"error: {describe_os_error(error)}", file=sys.stderr)
            return 2
        except MemoryError:
            print("error: not enough memory for this input (try smaller tiles, a smaller --scale or a "
                  "machine with more memory)", file=sys.stderr)
            return 2
        except Terminated:
            print("terminated", file=sys.stderr)
            return 143
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper




def check_numbers(args, positive=(), non_negative=(), finite=()):
    """Raise UserError unless each named option (attributes of `args`, None allowed) is a finite
    number, above 0 for `positive`, at least 0 for `non_negative`."""
    for names, test, wording in ((positive, lambda v: v > 0, "must be positive (a finite number above 0)"),
                                 (non_negative, lambda v: v >= 0, "must not be negative (a finite number)"),
                                 (finite, lambda v: True, "must be a finite number")):
        for name in names:
            value = getattr(args, name)
            if value is None:
                continue
            if not math.isfinite(value) or not test(value):
                raise UserError(f"{option_name(name)} {wording}, got {value!r}")


def parse_int_list(text, name="value", count=None, minimum=1, maximum=None):
    """Parse '25,50' into [25, 50]; raise UserError with the option's name otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{name} must be comma-separated whole numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise UserError(f"{name} needs exactly {count} numbers, got {text!r}")
    if not values or any(value < minimum for value in values):
        raise UserError(f"{name} must be whole numbers of at least {minimum}, got {text!r}")
    if maximum is not None and any(value > maximum for value in values):
        raise UserError(f"{name} must be whole numbers of at most {maximum}, got {text!r}")
    return values


def add_split_options(parser, default_model="CNN", training=False, evaluating=False):
    """The split options, shared by balance_data.py, CNN.py, GAN.py and the figures; `--splits` for
    training and evaluating, `--allow-overlap` for evaluating."""
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
    if training or evaluating:
        parser.add_argument("--splits", default=None, metavar="FILE",
                            help="splits.csv written by balance_data.py (crop_index,split): use exactly that "
                            "split" + (" (the way to make the split once for every run)" if training else ""))
    if evaluating:
        parser.add_argument("--allow-overlap", action="store_true",
                            help="evaluate even when the test set chosen by the split options shares crops with "
                            "the model's training or validation crops (the overlap is printed)")


def split_options(args):
    """The split options of a parsed command line as plain values for mrisr.splits."""

    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be a whole number of at least 0, got {args.seed}")
    return SplitOptions(seed=args.seed, by_patient=args.by_patient, test_split=args.test_split,
                        test_split_model=args.test_split_model, splits_file=getattr(args, "splits", None))


def read_split_crops(args):
    """The crops of --crops and their split by the split options, said in one line (training commands)."""

    return read_and_split(args.crops, split_options(args))


def split_options_record(args, split):
    """What a training run records of the crops and split options it was given (its history's extras)."""
    from mrisr.paper.provenance import options_record

    return options_record(args.crops, split, split_options(args))


def add_pairs_options(parser, evaluating=False):
    """--pairs and --scale, shared by training and evaluation."""
    recorded = " (default: what the model was trained on, from its history file; else paper)" if evaluating \
        else " (default paper)"
    parser.add_argument("--pairs", choices=("paper", "consistent"), default=None if evaluating else "paper",
                        help="paper: the crops as they are, input and target each min-max normalised "
                        "on its own; consistent: the target crop and its area-averaged downsample as input "
                        "(made on the fly), the standard super-resolution set-up" + recorded)
    parser.add_argument("--scale", type=int, default=None,
                        help="upscaling factor: with --pairs consistent the downsampling factor (default 2; "
                        "targets are cut to a multiple of it); with paper pairs it must match the crops' sizes")


def add_precision_option(parser, what="training", default="float32, the paper"):
    """--mixed-precision [auto|float32|float16|bfloat16] (see mrisr.precision)."""
    parser.add_argument("--mixed-precision", nargs="?", const="auto", default=None,
                        choices=("auto", "float32", "float16", "bfloat16"), metavar="{auto,float32,float16,bfloat16}",
                        help=f"{what} with convolutions and matrix products in 16 bits, outputs, losses and "
                        f"metrics in float32 (default {default}). auto (also the option alone): a trial of a few "
                        "seconds measures float32 against float16 (GPU) or bfloat16 (CPU) on this machine and "
                        "keeps the faster, said in one line; an explicit 16-bit type is used as asked")


def add_run_options(parser, interrupted="an interrupted run of the same model"):
    """The options every training command shares: --resume, --overwrite, --mixed-precision, --devices,
    --quiet."""
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last checkpoint; every setting and the crops "
                        "must be those of the interrupted run (a difference is named and refused)")
    parser.add_argument("--overwrite", action="store_true",
                        help=f"start afresh even though {interrupted} is checkpointed (deletes that checkpoint; "
                        "default: refuse and say so)")
    add_precision_option(parser)
    parser.add_argument("--devices", type=int, default=None, metavar="N",
                        help="train data-parallel on N devices of this machine: the global --batch-size (a "
                        "multiple of N) split evenly over them, the same result as one device (TensorFlow: "
                        "MirroredStrategy over N GPUs; JAX: Keras's DataParallel; PyTorch: not available; "
                        "without a GPU, N logical CPU devices, no faster). The last, smaller batch of an epoch "
                        "is cut to a multiple of N. Several machines: KERAS_BACKEND=jax and Keras's "
                        "KERAS_DISTRIBUTION_* variables on each (docs/gpu.md). Default: one device")
    parser.add_argument("--quiet", action="store_true", help="no per-batch progress bar")
