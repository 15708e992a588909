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
