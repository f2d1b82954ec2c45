"""mrisr: MRI super-resolution, a reproduction of Hincey, Fry and Dylewski (2021) and beyond.

The package holds the logic; the top-level scripts only parse arguments.
"""

import os

# Quiet TensorFlow's start-up chatter (CUDA probing, CPU feature notes) unless the user asks for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
