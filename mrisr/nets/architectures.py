"""The names of the networks `CNN.py train --arch` and `GAN.py train --generator` build (models.py builds
them): one list, importable without Keras."""

ARCHITECTURES = ("paper", "espcn", "edsr", "edsr_global", "edsr_minmax")
GENERATORS = ("paper", "espcn", "edsr")
