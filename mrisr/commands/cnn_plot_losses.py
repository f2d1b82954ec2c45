"""Plot the training and validation losses of the CNN's four loss setups (the paper's loss figures).

    python3 CNN_plot_losses.py            # reads CNN_models/, writes CNN_loss_plots/
"""

import argparse
import sys
from pathlib import Path

from mrisr.commands.cli import add_standard_options, script_main
from mrisr.errors import UserError
from mrisr.paper.names import cnn_history_path


def build_parser():
    parser = argparse.ArgumentParser(
        description="Read CNN_models/CNN_<LOSS>_model_history.json of the setups MSE, SSIM, SSIM_and_MSE and "
        "SSIM_then_MSE and write training- and validation-loss figures (all setups together and each alone, "
        "the SSIM to MSE switch marked).")
    parser.add_argument("--models-dir", default="CNN_models", help="where the histories are (default CNN_models)")
    parser.add_argument("--out-dir", default="CNN_loss_plots", help="where the figures go (default CNN_loss_plots)")
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from mrisr.nets.losses import LOSS_SETUPS
    from mrisr.paper.plots import plot_cnn_losses
    from mrisr.paper.training import read_cnn_history

    models_dir = Path(args.models_dir)
    histories, missing = {}, []
    for setup in LOSS_SETUPS:
        path = cnn_history_path(models_dir, setup)
        if path.is_file():
            histories[setup] = read_cnn_history(path)
        else:
            missing.append(path.name)
    if missing:
        print(f"Missing in {models_dir}/: {', '.join(missing)} (train them with CNN.py train <LOSS>)")
    if not histories:
        raise UserError(f"no CNN histories in {models_dir}/: nothing to plot")
    for path in plot_cnn_losses(histories, args.out_dir):
        print(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
