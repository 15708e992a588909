"""What this CPU offers for low-precision arithmetic, read from its flags.

Linux lists the instruction-set extensions in ``/proc/cpuinfo``; the ones
that matter for BERT inference and training on a CPU are the bfloat16
units (AMX-BF16 tiles on Intel Sapphire Rapids and later, AVX512-BF16 dot
products on Intel Cooper Lake and AMD Zen 4 and later) and the int8 dot
products (AMX-INT8, AVX512-VNNI, AVX-VNNI). TensorFlow reaches them through
oneDNN, which is on by default on x86 Linux (``TF_ENABLE_ONEDNN_OPTS=0``
turns it off) and may be capped by ``ONEDNN_MAX_CPU_ISA``.

Examples:

>>> info = '''processor : 0
... vendor_id : AuthenticAMD
... model name : AMD EPYC 9B14
... flags : fpu avx2 fma avx512f avx512_bf16 avx512_vnni
... '''
>>> features = cpu_features(info)
>>> features["bf16_units"], features["int8_units"]
(['avx512_bf16'], ['avx512_vnni'])
>>> cpu_features("flags : fpu avx2 fma")["bf16_units"]
[]
"""

import os
import re
import subprocess
import sys

#: bfloat16 units, best first.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
#: int8 dot-product units, best first.
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")
#: Vector extensions reported beside them.
VECTOR_FLAGS = ("avx512f", "avx2", "fma")


def read_text(path):
    """The text of ``path``, or None where it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def cpu_fields(cpuinfo):
    """The first processor's fields of ``/proc/cpuinfo`` text, plus the
    highest ``cpu MHz`` over all processors (a float)."""
    fields, mhz = {}, []
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if key == "cpu MHz":
            mhz.append(float(value))
        fields.setdefault(key, value)
    if mhz:
        fields["cpu MHz"] = max(mhz)
    return fields


def cpu_features(cpuinfo=None):
    """The CPU's model and low-precision units.

    Args:
        cpuinfo: str or None. ``/proc/cpuinfo`` text; None reads it (an
            empty answer where it does not exist, e.g. not Linux).

    Returns:
        dict with ``model`` (str), ``bf16_units`` and ``int8_units`` (the
        flags present, best first), ``vector`` (the vector flags present)
        and ``onednn`` (whether TensorFlow's oneDNN kernels are enabled,
        and the ISA cap if one is set).
    """
    if cpuinfo is None:
        cpuinfo = read_text("/proc/cpuinfo") or ""
    fields = cpu_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name", "unknown"),
        "bf16_units": [f for f in BF16_FLAGS if f in flags],
        "int8_units": [f for f in INT8_FLAGS if f in flags],
        "vector": [f for f in VECTOR_FLAGS if f in flags],
        "onednn": {
            "enabled": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
            "max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
        },
    }


def describe(features=None):
    """One line for reports and logs.

    >>> describe({"model": "X", "bf16_units": [], "int8_units": ["avx2"],
    ...           "vector": ["avx2"], "onednn": {"enabled": True,
    ...                                          "max_cpu_isa": "default"}})
    'X; bf16 units: none; int8 units: avx2; oneDNN on'
    """
    f = features or cpu_features()
    onednn = "on" if f["onednn"]["enabled"] else "off"
    if f["onednn"]["max_cpu_isa"] != "default":
        onednn += f" (max ISA {f['onednn']['max_cpu_isa']})"
    return (f"{f['model']}; bf16 units: {', '.join(f['bf16_units']) or 'none'}"
            f"; int8 units: {', '.join(f['int8_units']) or 'none'}; "
            f"oneDNN {onednn}")


#: Run in a fresh Python with ``ONEDNN_VERBOSE=1``: one float32, one
#: bfloat16 and one Keras int8 matrix product (the int8 x int8 -> int32
#: product of a Keras-quantized Dense layer).
_ONEDNN_PROBE = """
import keras, numpy as np, tensorflow as tf
a = tf.ones((64, 64))
tf.matmul(a, a).numpy()
tf.matmul(tf.cast(a, tf.bfloat16), tf.cast(a, tf.bfloat16)).numpy()
q = keras.ops.convert_to_tensor(np.ones((64, 64), "int8"))
keras.ops.matmul(q, q).numpy()
"""
_DATA_TYPES = {"float32": "f32", "bfloat16": "bf16", "int8": "s8"}


def parse_onednn_verbose(text):
    """What oneDNN's verbose log says: its version, the instruction set it
    dispatches to, and the kernel that ran a product of each data type
    (None: that product did not go through oneDNN).

    >>> parse_onednn_verbose('''onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)
    ... onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost
    ... onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx512_core_bf16,undef,src:bf16::blocked:ab::f0 wei:bf16::blocked:ab::f0,,,64x64:64x64,0.02
    ... ''')["kernels"]
    {'float32': None, 'bfloat16': 'matmul brg_matmul:avx512_core_bf16', 'int8': None}
    """
    out = {"version": None, "isa": None,
           "kernels": dict.fromkeys(_DATA_TYPES)}
    for line in text.splitlines():
        fields = line.strip().split(",")
        if not fields or fields[0] != "onednn_verbose":
            continue
        version = re.search(r"oneDNN (v[\d.]+)", line)
        if version:
            out["version"] = version.group(1)
        if ",info,cpu,isa:" in line:
            out["isa"] = line.split("isa:", 1)[1].strip()
        if "primitive,exec,cpu" in line and len(fields) > 9:
            kernel = " ".join(f for f in fields[5:7] if f)
            source = (fields[8].split() or [""])[0]
            for name, code in _DATA_TYPES.items():
                if re.match(rf"src[_:]{code}\b", source) and not (
                        out["kernels"][name]):
                    out["kernels"][name] = kernel
    return out


def onednn_info(timeout=120):
    """What TensorFlow's oneDNN does on this machine, from its verbose log
    in a fresh Python process (about 5 s): see
    :func:`parse_onednn_verbose`; ``{"error": ...}`` where the probe
    failed."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2")
    try:
        result = subprocess.run([sys.executable, "-c", _ONEDNN_PROBE],
                                env=env, capture_output=True, text=True,
                                timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    if result.returncode:
        return {"error": result.stderr[-500:]}
    return parse_onednn_verbose(result.stdout)


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the system does
    not report them. Timings taken with a load near the number of cores
    share the CPU with other work."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None
