"""The paper's GAN: train it for a number of epochs, or evaluate its generator.

python3 GAN.py train 1000
python3 GAN.py evaluate GAN_models
"""

import sys

from mrisr.commands.gan import main

if __name__ == "__main__":
    sys.exit(main())
