"""What a benchmark run measures: its rows (presets, layer-dropped presets)
and settings.

Examples:

>>> specs = resolve_specs(BenchmarkConfig(models=("bert_tiny",),
...                                       drops=("bert_tiny:1",)))
>>> [(s.name, s.drop_top) for s in specs]
[('bert_tiny', 0), ('bert_tiny-drop1', 1)]
>>> resolve_reference(BenchmarkConfig(models=("bort_mini", "bert_mini")),
...                   resolve_specs(BenchmarkConfig(
...                       models=("bort_mini", "bert_mini"))))
'bert_mini'
"""

import dataclasses

from trimzoo.models import create, drop_layers, list_models
from trimzoo.models.layer_drop import parse_preset_drop
from trimzoo.models.precision import QUANTIZATIONS

#: ``make bench``: one mini model per paper, minutes on two cores.
DEFAULT_MODELS = ("bert_mini", "trimbert_mini", "bort_mini")
#: The run the goals are about (``docs/benchmarks.md``).
FULL_MODELS = ("bert_base", "trimbert_base", "bort", "bert_large")
#: Layer-dropped rows (Poor Man's BERT, top strategy): ``preset:k``.
DEFAULT_DROPS = ("bert_base:4",)
#: Second part of the round-robin key of a row's keras-hub peer.
PEER = "keras_hub"
#: What the ``precisions`` phase can time against float32: Keras dtype
#: policies (``trimzoo.models.precision.with_precision``) and Keras
#: post-training quantization modes (``trimzoo.models.precision.quantized``).
PRECISIONS = ("float32", "bfloat16") + QUANTIZATIONS
#: ``make bench``: bfloat16 and Keras int8 against float32.
DEFAULT_PRECISIONS = ("float32", "bfloat16", "int8")
#: The Keras dtype policies among them: timed in the training step too,
#: and with the keras-hub peer. Quantized models are inference only and
#: timed without the peer (on a CPU they run slower than float32:
#: docs/benchmarks.md).
POLICY_PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass
class ModelSpec:
    """One row of the benchmark: a preset, optionally with its top ``k``
    layers dropped."""

    name: str
    preset: str
    overrides: dict = dataclasses.field(default_factory=dict)
    drop_top: int = 0

    def to_json(self):
        return {"preset": self.preset, "overrides": self.overrides,
                "drop_top": self.drop_top}


def build_backbone(spec):
    """The backbone of a row, from its JSON form (``ModelSpec.to_json()``:
    ``{"preset", "overrides", "drop_top"}``), so that a phase in a fresh
    process builds the same model: the preset with its overrides, its top
    ``drop_top`` layers dropped."""
    backbone = create(spec["preset"], **spec.get("overrides", {}))
    if spec.get("drop_top"):
        backbone = drop_layers(backbone, strategy="top",
                               k=int(spec["drop_top"]))
    return backbone


@dataclasses.dataclass
class BenchmarkConfig:
    """What to measure and how often.

    Attributes:
        models: preset names (rows), see ``trimzoo.models.list_models()``.
        reference: the row ratios are taken against; defaults to
            ``bert_base`` when present, else the first BERT row, else the
            first row.
        drops: ``"preset:k"`` rows with the top ``k`` layers dropped
            (skipped when ``preset`` is not in ``models``).
        overrides: ``TrimzooBackbone`` arguments applied to every preset
            (to shrink models, e.g. in tests).
        seq_len, batch_size, train_batch_size: the shapes (tokens per
            sequence; batch of the throughput column; batch of the
            training step).
        infer_rounds, train_rounds, tflite_rounds, scaling_rounds: timed
            rounds per phase.
        seq_lens, batch_sizes: the scaling sweeps (batch 1 / ``seq_len``).
        precisions: what the ``precisions`` phase times against float32
            (see :data:`PRECISIONS`; float32 is always in): each row's
            inference at batch 1 and ``batch_size`` in each, and in each
            of :data:`POLICY_PRECISIONS` its training step and the
            keras-hub peer in the same precision. Only float32: the
            phase is off.
        peers, tflite, scaling, memory, variants, profile, flops_check:
            switch phases on or off.
        train_peer_max_params: rows above this size get no keras-hub
            training peer: two AdamW states of a BERT-large (4 GB each) do
            not fit next to everything else on a small machine.
        tflite_isolate: convert in a fresh process (TF's converter leaks
            memory per call; off only for small models).
        isolate_phases: run every phase in a fresh process (see
            ``trimzoo.bench.runner.Run``); off only for small models
            (tests).
        classifier: a fine-tuned classifier folder (``RUN/best`` of
            ``tools/finetune.py``) to time and compare in every precision
            of ``precisions`` (``trimzoo.bench.phases.classifier``), or
            None.
        classifier_examples: texts of the Rotten Tomatoes test split its
            labels are compared on (0: all).
        onednn_probe: record what oneDNN dispatches to in the report
            header (``trimzoo.utils.hardware.onednn_info``, 5-10 s; off
            in tests).
    """

    models: tuple = DEFAULT_MODELS
    reference: str = None
    drops: tuple = DEFAULT_DROPS
    overrides: dict = dataclasses.field(default_factory=dict)
    seq_len: int = 128
    batch_size: int = 8
    train_batch_size: int = 4
    infer_rounds: int = 15
    train_rounds: int = 5
    tflite_rounds: int = 15
    scaling_rounds: int = 3
    seq_lens: tuple = (64, 128, 256, 512)
    batch_sizes: tuple = (1, 2, 4, 8, 16)
    precisions: tuple = DEFAULT_PRECISIONS
    peers: bool = True
    train_peer_max_params: int = 200_000_000
    tflite: bool = True
    tflite_isolate: bool = True
    scaling: bool = True
    memory: bool = True
    variants: bool = True
    profile: bool = True
    flops_check: bool = True
    seed: int = 0
    progress: bool = True
    isolate_phases: bool = True
    classifier: str = None
    classifier_examples: int = 0
    onednn_probe: bool = True


def parse_drops(drops, models):
    """``ModelSpec`` rows for ``"preset:k"`` entries whose preset runs
    (``trimzoo.models.layer_drop.parse_preset_drop`` reads each)."""
    specs = []
    for entry in drops:
        preset, k = parse_preset_drop(entry)
        if preset in models:
            specs.append(ModelSpec(f"{preset}-drop{k}", preset, drop_top=k))
    return specs


def resolve_specs(config):
    """The rows of a run, checked against the preset table."""
    valid = list_models()
    unknown = [m for m in config.models if m not in valid]
    if unknown:
        raise ValueError(f"Unknown models {unknown}. Valid names: {valid}.")
    if not config.models:
        raise ValueError("No models to benchmark.")
    if len(set(config.models)) != len(config.models):
        raise ValueError(f"Duplicate models in {list(config.models)}.")
    specs = [ModelSpec(m, m) for m in config.models]
    specs += parse_drops(config.drops, config.models)
    for spec in specs:
        spec.overrides = dict(config.overrides)
    return specs


def resolve_precisions(config):
    """The precisions of a run, float32 first; a ValueError for an unknown
    one, listing :data:`PRECISIONS`.

    >>> resolve_precisions(BenchmarkConfig(precisions=("int8",)))
    ('float32', 'int8')
    """
    unknown = [p for p in config.precisions if p not in PRECISIONS]
    if unknown:
        raise ValueError(f"Unknown precisions {unknown}. Valid values: "
                         f"{list(PRECISIONS)}.")
    return ("float32",) + tuple(dict.fromkeys(
        p for p in config.precisions if p != "float32"))


def resolve_reference(config, specs):
    """The row ratios are taken against (see ``BenchmarkConfig``)."""
    names = [s.name for s in specs]
    if config.reference:
        if config.reference not in names:
            raise ValueError(f"reference {config.reference!r} is not one of "
                             f"the rows {names}.")
        return config.reference
    for candidate in ("bert_base", *[n for n in names
                                    if n.startswith("bert_")]):
        if candidate in names:
            return candidate
    return names[0]


def round_key(key):
    """The JSON name of a round-robin key.

    >>> round_key("bert_base"), round_key(("bert_base", PEER))
    ('bert_base', 'bert_base@keras_hub')
    """
    if isinstance(key, tuple):
        return "@".join(str(k) for k in key)
    return str(key)
