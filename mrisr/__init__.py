"""mrisr: MRI super-resolution, a reproduction of Hincey, Fry and Dylewski (2021) and beyond.

The package holds the logic; the top-level scripts only parse arguments.
"""

__version__ = "0.1.0"
