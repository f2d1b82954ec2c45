"""Upscale a whole MRI image or volume with a trained model, or make a thick-slice volume's slices
finer with a network learned from the volume itself.

    python3 upscale.py mri-x2 scan.nii.gz scan_x2.nii.gz             # shipped weights, real MRI, x2
    python3 upscale.py CNN_models/CNN_edsr_L1_consistent_x2_model.keras slice.dcm slice_x2.dcm
    python3 upscale.py bicubic image.png image_x2.png
    python3 upscale.py self thick.nii.gz thin.nii.gz            # across slices, learned from thick.nii.gz
"""

import sys

from mrisr.commands.upscale import main

if __name__ == "__main__":
    sys.exit(main())
