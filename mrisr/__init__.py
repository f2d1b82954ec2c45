"""mrisr: MRI super-resolution, a reproduction of Hincey, Fry and Dylewski (2021) and beyond.

The package holds the logic; `mrisr.commands` parses the scripts' options. The Python API
(`mrisr.upscale`, `mrisr.upscale_file`, `mrisr.upscale_study`, `mrisr.load_upscaler`, `mrisr.read_crops`,
`mrisr.evaluate`)
is in `mrisr.api`; importing `mrisr` does not import TensorFlow.
"""

import os

# Quiet TensorFlow's start-up chatter (CUDA probing, CPU feature notes) unless the user asks for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's BFC allocator on the CPU keeps freed memory for reuse. With the default allocator every
# training step of the paper CNN maps fresh pages for its 800 MB gradient and temporaries, and the page
# faults cost about a fifth of the step (benchmarks/train_throughput.py measures both).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from mrisr.version import __version__ as __version__  # noqa: E402 (after the environment settings)

API = ("upscale", "upscale_file", "upscale_study", "load_upscaler", "read_crops", "evaluate")


def __getattr__(name):
    if name in API:
        from mrisr import api

        return getattr(api, name)
    raise AttributeError(f"module 'mrisr' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(API))
