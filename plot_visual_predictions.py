"""The paper's visual comparison figures (its figures 6 and 10): test samples as rows, models as columns.

python3 plot_visual_predictions.py CNN      # X, MSE, SSIM, SSIM and MSE, SSIM then MSE, Y
python3 plot_visual_predictions.py GAN      # X, generator, Y
"""

import sys

from mrisr.commands.plot_visual_predictions import main

if __name__ == "__main__":
    sys.exit(main())
