"""The paper's CNN: train it with one of its four loss setups, or evaluate a trained model.

python3 CNN.py train SSIM_then_MSE
python3 CNN.py evaluate CNN_models/CNN_SSIM_then_MSE_model.keras SSIM_then_MSE
"""

import sys

from mrisr.commands.cnn import main

if __name__ == "__main__":
    sys.exit(main())
