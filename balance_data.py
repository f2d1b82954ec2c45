"""Split the crops into training, validation and test sets, as in the paper (step 2).

python3 balance_data.py                 # crops in the current folder, the paper's split
python3 balance_data.py --crops brain-tumor-crops --test-split brain-tumor-crops/paper_test_split.csv
"""

import sys

from mrisr.commands.balance_data import main

if __name__ == "__main__":
    sys.exit(main())
