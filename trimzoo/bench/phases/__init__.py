"""The benchmark's phases, one module each; every phase is a function of a
:class:`trimzoo.bench.context.Context` (and, for ``train_group`` and
``precisions``, a row name) that adds columns to ``ctx.rows`` and
run-level numbers to ``ctx.results``.

Order of a run: build (parameters, FLOPs, peers) -> inference (batch 1
and ``batch_size``, with the matmul reference) -> profiles -> one training
group per row -> one precisions group per row (bfloat16 and Keras int8
against float32; bfloat16 also against the keras-hub peer in bfloat16) ->
a fine-tuned classifier in each precision (with ``classifier``) ->
TFLite -> scaling -> variants (XLA) -> FLOPs check -> peak memory.
"""

from trimzoo.bench.phases import (build, classifier, latency, memory,
                                  precisions, profiles, scaling, tflite,
                                  training, variants)

#: phase name -> function(ctx[, arg]).
PHASES = {
    "build": build.run,
    "inference": latency.run,
    "profiles_inference": profiles.run,
    "train_group": training.run,
    "precisions": precisions.run,
    "classifier": classifier.run,
    "tflite": tflite.run,
    "scaling": scaling.run,
    "variants": variants.run,
    "check_flops": profiles.check_flops,
    "memory": memory.run,
}
