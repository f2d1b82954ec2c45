"""Not yet available: this stage of the paper's pipeline is being built (see README.md)."""

import sys

if __name__ == "__main__":
    print("GAN.py is not yet available in this version; see README.md for what works now.", file=sys.stderr)
    sys.exit(2)
