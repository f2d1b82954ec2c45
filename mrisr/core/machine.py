"""The machine a result was made on, in one line (records, benchmarks)."""

import os
import platform


def describe_machine():
    """One line: the CPU (its model name, family and model, cores), whether it computes bfloat16 natively
    (AVX-512 BF16 or AMX) and has AVX-512, a cap on oneDNN's instruction set (ONEDNN_MAX_CPU_ISA, which
    makes this CPU's math library behave as an older one's), the GPUs TensorFlow sees, the library versions."""
    info = {}
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    name = info.get("model name", platform.processor() or "unknown CPU")
    family = f" (family {info['cpu family']}, model {info['model']})" if "cpu family" in info else ""
    bfloat16 = "with native bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "without native bfloat16"
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    try:
        import keras

        from mrisr.core.precision import gpu_count

        gpus = gpu_count()
        versions = f", Keras {keras.__version__} on {keras.backend.backend()}"
    except ImportError:
        gpus, versions = 0, ""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    capped = f", oneDNN capped at {cap} (ONEDNN_MAX_CPU_ISA)" if cap and cap.upper() != "ALL" else ""
    return (f"{name}{family}, {os.cpu_count()} cores, {vector}, {bfloat16}{capped}"
            + (f", {gpus} GPU(s)" if gpus else ", no GPU") + versions)
