"""Crop the tumours out of the brain tumour MRI data set, as in the paper (step 1).

python3 extract_crops.py                      # reads ./brain_tumor_dataset/
python3 extract_crops.py --source demo --out-dir demo_run
"""

import sys

from mrisr.commands.extract_crops import main

if __name__ == "__main__":
    sys.exit(main())
