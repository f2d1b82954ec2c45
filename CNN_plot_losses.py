"""Plot the training and validation losses of the CNN's four loss setups (the paper's loss figures).

python3 CNN_plot_losses.py            # reads CNN_models/, writes CNN_loss_plots/
"""

import sys

from mrisr.commands.cnn_plot_losses import main

if __name__ == "__main__":
    sys.exit(main())
