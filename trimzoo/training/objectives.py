"""Objectives: one training objective each, with its model(s) and metrics.

An Objective owns the model it trains (and any frozen model it learns from),
computes its loss with one function of ``trimzoo.training.losses`` and
derives its metrics from per-batch sums. ``Objective.train_step`` is the one
training step of every objective: the pretraining loop
(``trimzoo.training.loop.Trainer``), the benchmark's training step
(``trimzoo.bench.workloads.TrainStep``) and the tests all call it, so the
step that is measured and tested is the step that trains.

A new objective is a small subclass that defines ``call`` (the forward
pass of its models), ``compute_loss`` (one function of ``losses``) and,
where its average is not over examples, ``count``.

Batches are ``(x, labels, weights)`` tuples: ``x`` a dict of model inputs,
``weights`` 1 for real items (masked positions, examples) and 0 for
padding; classification and hidden-state batches may leave out
``weights`` (``(x, labels)``).

Loss scaling across replicas: each replica divides its summed loss by the
number of items in the **global** batch (an all-reduce of the counts); the
gradients are summed over replicas once, before clipping and the
optimizer update. The result is the gradient of the global-batch mean,
identical to one replica holding the whole batch.
"""

import keras
import tensorflow as tf

from trimzoo.models.layer_drop import hidden_states_model
from trimzoo.training import losses

#: Default of ``jit_compile`` (XLA) for train steps. Off: on a 2-core AMD
#: EPYC without AVX-512 (Zen 3; 2026-11-30, docs/benchmarks.md "The
#: compiled train step, re-measured") the XLA-compiled masked-LM step of
#: bert_mini ran 0.56-0.75x the speed of the plain one, and fine-tuning's
#: 0.54x (``tools/benchmark.py`` variants table); on the AMD EPYC with
#: AVX-512 that the README's numbers come from, XLA made the bert_mini
#: step 1.18-1.29x faster (docs/benchmarks.md, ``make bench``).
#: ``jit_compile=True`` turns it on where it pays off (GPUs, TPUs, some
#: CPUs): measure first.
JIT_COMPILE = False

_SUM = tf.distribute.ReduceOp.SUM


class Objective:
    """The base class: a model to train, its objective and its metrics.

    Subclasses define ``call(batch, training)``,
    ``compute_loss(batch, outputs, denominator)`` and the names of what they
    return (``loss_names``; ``metric_names`` for ``metric_sums``);
    ``accuracy_name`` names the accuracy metric when ``metric_sums`` counts
    ``correct`` predictions.

    Args:
        model: ``keras.Model``. The model that is trained.
    """

    #: Keys of ``compute_loss``'s dict (``loss`` first).
    loss_names = ("loss",)
    #: Keys of ``metric_sums``'s dict.
    metric_names = ()
    #: Name of the accuracy metric (``correct / count``), or None.
    accuracy_name = None

    def __init__(self, model):
        self.model = model

    # -- what subclasses define ------------------------------------------

    def call(self, batch, training=False):
        """The forward pass: the outputs ``compute_loss`` reads."""
        raise NotImplementedError

    def compute_loss(self, batch, outputs, denominator=None):
        """A dict of scalar means; ``loss`` is the objective."""
        raise NotImplementedError

    def count(self, batch):
        """Number of items (float32) the loss of ``batch`` averages over:
        the sum of the weights, or the batch size."""
        if len(batch) > 2:
            return tf.reduce_sum(tf.cast(batch[2], tf.float32))
        return tf.cast(tf.shape(batch[1])[0], tf.float32)

    def metric_sums(self, batch, outputs):
        """Sums over the batch besides the losses (e.g. ``correct``)."""
        return {}

    # -- shared by every objective -----------------------------------------

    @property
    def trainable_variables(self):
        return self.model.trainable_variables

    def stat_names(self):
        """Names of the per-batch sums ``step_stats`` returns."""
        return (tuple(f"{name}_sum" for name in self.loss_names)
                + ("count", "examples", "tokens") + self.metric_names)

    def step_stats(self, batch, training=False, denominator=None):
        """Forward pass and loss of ``batch``.

        Returns:
            ``(loss, stats)``: the scalar objective (divided by
            ``denominator``, by default the batch's count) and a dict of
            sums: ``<name>_sum`` for every loss component, ``count``,
            ``tokens``, ``examples`` and the ``metric_sums``.
        """
        count = self.count(batch)
        if denominator is None:
            denominator = tf.maximum(count, 1.0)
        outputs = self.call(batch, training=training)
        terms = self.compute_loss(batch, outputs, denominator=denominator)
        stats = {f"{name}_sum": tf.cast(value, tf.float32) * denominator
                 for name, value in terms.items()}
        stats["count"] = count
        x = batch[0]
        first = next(iter(x.values())) if isinstance(x, dict) else x
        stats["examples"] = tf.cast(tf.shape(first)[0], tf.float32)
        if isinstance(x, dict) and "padding_mask" in x:
            stats["tokens"] = tf.reduce_sum(
                tf.cast(x["padding_mask"], tf.float32))
        else:
            stats["tokens"] = tf.cast(tf.size(first), tf.float32)
        stats.update(self.metric_sums(batch, outputs))
        return terms["loss"], stats

    def evaluate_step(self, batch):
        """The sums of ``step_stats`` without dropout or updates."""
        return self.step_stats(batch, training=False)[1]

    def train_step(self, batch, optimizer, num_replicas=1):
        """One training step on this replica's part of the global batch.

        Forward pass with dropout, the loss divided by the global count,
        gradients summed over replicas, global-norm clipping and the
        update (both done by ``optimizer``). Weights the objective does not
        reach (e.g. the pooler under masked LM) get no update.

        Args:
            batch: this replica's batch.
            optimizer: ``keras.optimizers.Optimizer``, built on
                ``trainable_variables``; with several replicas it must not
                reduce gradients itself (``use_pre_reduced_gradients``).
            num_replicas: int. Replicas in sync. Defaults to 1.

        Returns:
            dict of the ``step_stats`` sums plus ``grad_norm``.
        """
        grads, variables, stats = self._gradients(batch, optimizer,
                                                  num_replicas)
        return self._apply(grads, variables, stats, optimizer, num_replicas)

    def _gradients(self, batch, optimizer, num_replicas):
        count = self.count(batch)
        if num_replicas > 1:
            count = tf.distribute.get_replica_context().all_reduce(_SUM,
                                                                   count)
        denominator = tf.maximum(count, 1.0)
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss, stats = self.step_stats(batch, training=True,
                                          denominator=denominator)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        return [g for g, _ in pairs], [v for _, v in pairs], stats

    def _apply(self, grads, variables, stats, optimizer, num_replicas):
        if num_replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(_SUM,
                                                                   grads)
        grad_norm = tf.linalg.global_norm(grads)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            grad_norm = grad_norm / optimizer.scale_loss(1.0)
        optimizer.apply(grads, variables)
        stats = dict(stats)
        stats["grad_norm"] = grad_norm / num_replicas
        return stats

    def compiled_train_step(self, optimizer, num_replicas=1,
                            jit_compile=JIT_COMPILE):
        """``train_step`` as a function of a batch.

        On one replica, a ``tf.function``, XLA-compiled with
        ``jit_compile``. On several, a Python function for the caller's
        ``strategy.run`` inside its ``tf.function`` (a nested function may
        not hold the optimizer's cross-replica merge calls); with
        ``jit_compile`` its forward and backward passes are XLA-compiled
        (the cross-replica sums and the update stay outside XLA, which
        cannot compile them).
        """
        if num_replicas == 1:
            return tf.function(
                lambda batch: self.train_step(batch, optimizer, 1),
                jit_compile=bool(jit_compile))
        if not jit_compile:
            return lambda batch: self.train_step(batch, optimizer,
                                                 num_replicas)
        count_fn = self.count

        def forward_backward(batch, denominator):
            variables = self.trainable_variables
            with tf.GradientTape() as tape:
                loss, stats = self.step_stats(batch, training=True,
                                              denominator=denominator)
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, variables)
            return grads, stats

        compiled = tf.function(forward_backward, jit_compile=True)

        def step(batch):
            ctx = tf.distribute.get_replica_context()
            denominator = tf.maximum(ctx.all_reduce(_SUM, count_fn(batch)),
                                     1.0)
            grads, stats = compiled(batch, denominator)
            variables = self.trainable_variables
            pairs = [(g, v) for g, v in zip(grads, variables)
                     if g is not None]
            return self._apply([g for g, _ in pairs], [v for _, v in pairs],
                               stats, optimizer, num_replicas)

        return step

    def metrics(self, sums):
        """Metrics from summed stats: ``<name>`` = ``<name>_sum / count``
        for every loss component, and the accuracy.

        Examples:

        >>> objective = MaskedLMObjective(None)
        >>> objective.metrics({"loss_sum": 6.0, "mlm_loss_sum": 6.0,
        ...               "correct": 1.0, "count": 4.0})
        {'loss': 1.5, 'mlm_loss': 1.5, 'mlm_accuracy': 0.25}
        """
        count = max(float(sums["count"]), 1.0)
        values = {name[:-len("_sum")]: float(value) / count
                  for name, value in sums.items()
                  if name.endswith("_sum") and name != "grad_norm_sum"}
        if self.accuracy_name and "correct" in sums:
            values[self.accuracy_name] = float(sums["correct"]) / count
        return values


def _correct(logits, labels, weights=None):
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32),
                           tf.cast(labels, tf.int32)), tf.float32)
    if weights is not None:
        hit = hit * tf.cast(weights, tf.float32)
    return tf.reduce_sum(hit)


def _logits(model, x, training):
    return tf.cast(model(x, training=training), tf.float32)


class MaskedLMObjective(Objective):
    """Masked-LM pretraining: ``losses.masked_lm_loss`` on the masked
    positions; metrics ``loss``, ``mlm_loss``, ``mlm_accuracy``.

    Args:
        model: a keras-hub ``MaskedLM`` (``TrimzooMaskedLM``,
            ``BertMaskedLM``): inputs with ``mask_positions``, logits
            ``[batch, predictions, vocab]`` out.

    Examples:

    >>> import numpy as np
    >>> from trimzoo.models import TrimzooBackbone, TrimzooMaskedLM
    >>> model = TrimzooMaskedLM(TrimzooBackbone(
    ...     vocabulary_size=20, num_layers=1, num_heads=1, hidden_dim=8,
    ...     intermediate_dim=8, max_sequence_length=8))
    >>> x = {"token_ids": np.ones((2, 6), "int32"),
    ...      "segment_ids": np.zeros((2, 6), "int32"),
    ...      "padding_mask": np.ones((2, 6), "int32"),
    ...      "mask_positions": np.array([[1, 2], [3, 4]], "int32")}
    >>> batch = (x, np.array([[5, 6], [7, 8]]), np.ones((2, 2), "float32"))
    >>> loss, stats = MaskedLMObjective(model).step_stats(batch)
    >>> bool(abs(float(loss) - np.log(20)) < 0.5), float(stats["count"])
    (True, 4.0)
    """

    loss_names = ("loss", "mlm_loss")
    metric_names = ("correct",)
    accuracy_name = "mlm_accuracy"

    def call(self, batch, training=False):
        return {"logits": _logits(self.model, batch[0], training)}

    def compute_loss(self, batch, outputs, denominator=None):
        _, labels, weights = batch
        return losses.masked_lm_loss(outputs["logits"], labels, weights,
                                     denominator=denominator)

    def metric_sums(self, batch, outputs):
        _, labels, weights = batch
        return {"correct": _correct(outputs["logits"], labels, weights)}


class DistillationObjective(MaskedLMObjective):
    """Bort's distillation: the student trains on
    ``losses.distillation_loss`` against a frozen masked-LM teacher that
    sees the same masked inputs (without dropout); metrics ``loss``,
    ``mlm_loss``, ``kd_loss``, ``mlm_accuracy``.

    Healing after surgery (a student cut from its teacher: layers dropped,
    pruned, TrimBERT-converted) adds, with ``hidden_weight > 0``,
    ``hidden_weight · losses.hidden_state_loss`` between student layer
    ``i`` and teacher layer ``floor(i · L_t / L_s)`` (metric
    ``hidden_loss``). A teacher without a masked-LM head (a sentence
    encoder such as all-MiniLM-L6-v2) is given as its backbone: then there
    are no teacher logits, and the loss is ``alpha · MLM + hidden_weight ·
    hidden``.

    Args:
        model: the student, a keras-hub ``MaskedLM``.
        teacher: a keras-hub ``MaskedLM`` with the same vocabulary, or a
            ``TrimzooBackbone`` (no head; needs ``hidden_weight > 0``);
            frozen here (``trainable = False``).
        alpha: float. Defaults to ``losses.ALPHA``.
        beta: float. Defaults to ``losses.BETA``.
        temperature: float. Defaults to ``losses.TEMPERATURE``.
        hidden_weight: float. Weight of the hidden-state term (same hidden
            width). Defaults to 0 (left out).

    Examples:

    >>> import numpy as np
    >>> from trimzoo.models import TrimzooBackbone, TrimzooMaskedLM
    >>> kw = dict(vocabulary_size=20, num_heads=1, hidden_dim=8,
    ...           intermediate_dim=8, max_sequence_length=8)
    >>> teacher = TrimzooBackbone(num_layers=2, **kw)
    >>> objective = DistillationObjective(TrimzooMaskedLM(TrimzooBackbone(
    ...     num_layers=1, **kw)), teacher, hidden_weight=1.0)
    >>> objective.loss_names
    ('loss', 'mlm_loss', 'hidden_loss')
    """

    def __init__(self, model, teacher, alpha=losses.ALPHA, beta=losses.BETA,
                 temperature=losses.TEMPERATURE, hidden_weight=0.0):
        super().__init__(model)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha, self.beta = float(alpha), float(beta)
        self.temperature = float(temperature)
        self.hidden_weight = float(hidden_weight)
        # A backbone teacher has no token distribution to match.
        self.teacher_has_head = hasattr(teacher, "backbone")
        if not self.teacher_has_head and not self.hidden_weight:
            raise ValueError(
                "The teacher has no masked-LM head, so only its hidden "
                "states can be matched: set hidden_weight > 0.")
        self.loss_names = (("loss", "mlm_loss")
                           + (("kd_loss",) if self.teacher_has_head else ())
                           + (("hidden_loss",) if self.hidden_weight else ()))
        if self.hidden_weight:
            self._states = _HiddenStates(
                model.backbone,
                teacher.backbone if self.teacher_has_head else teacher)

    def call(self, batch, training=False):
        outputs = super().call(batch, training)
        x = batch[0]
        if self.teacher_has_head:
            outputs["teacher_logits"] = tf.stop_gradient(
                _logits(self.teacher, x, False))
        if self.hidden_weight:
            outputs.update(self._states(x, training))
        return outputs

    def compute_loss(self, batch, outputs, denominator=None):
        _, labels, weights = batch
        if self.teacher_has_head:
            terms = losses.distillation_loss(
                outputs["logits"], outputs["teacher_logits"], labels,
                weights, alpha=self.alpha, beta=self.beta,
                temperature=self.temperature, denominator=denominator)
        else:
            mlm = losses.masked_lm_loss(outputs["logits"], labels, weights,
                                        denominator=denominator)["mlm_loss"]
            terms = {"loss": self.alpha * mlm, "mlm_loss": mlm}
        return _with_hidden_term(self, terms, batch, outputs, denominator)


def _with_hidden_term(objective, terms, batch, outputs, denominator):
    """``terms`` plus ``objective.hidden_weight · hidden_loss`` when it has
    a hidden-state term. The hidden-state loss averages over this replica's
    tokens; weighted by its share of the global count, the replicas' terms
    add up to one average (as the terms that divide by the global
    ``denominator`` do)."""
    if not objective.hidden_weight:
        return terms
    hidden = losses.hidden_state_loss(
        outputs["student_states"], outputs["teacher_states"],
        batch[0]["padding_mask"])["hidden_loss"]
    if denominator is not None:
        hidden = hidden * objective.count(batch) / denominator
    terms["hidden_loss"] = hidden
    terms["loss"] = terms["loss"] + objective.hidden_weight * hidden
    return terms


class ClassificationObjective(Objective):
    """Sequence classification (``losses.classification_loss``): cross-
    entropy, or mean squared error when ``num_classes == 1``; metrics
    ``loss`` and ``accuracy``.

    Args:
        model: a classifier: inputs in, logits ``[batch, num_classes]`` out.
        num_classes: int. 1 for regression.

    Examples:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> objective = ClassificationObjective(model, num_classes=2)
    >>> stats = objective.evaluate_step((np.ones((4, 3), "float32"),
    ...                             np.array([0, 1, 1, 0])))
    >>> float(stats["count"]), sorted(objective.metrics(stats))
    (4.0, ['accuracy', 'loss'])
    """

    accuracy_name = "accuracy"

    def __init__(self, model, num_classes):
        super().__init__(model)
        self.num_classes = int(num_classes)
        if self.num_classes > 1:
            self.metric_names = ("correct",)
        else:
            self.accuracy_name = None

    def call(self, batch, training=False):
        return {"logits": _logits(self.model, batch[0], training)}

    def compute_loss(self, batch, outputs, denominator=None):
        return losses.classification_loss(outputs["logits"], batch[1],
                                          self.num_classes,
                                          denominator=denominator)

    def metric_sums(self, batch, outputs):
        if self.num_classes == 1:
            return {}
        return {"correct": _correct(outputs["logits"], batch[1])}


class _HiddenStates:
    """The hidden-state term's forward pass, one for every objective that
    has it: the student's and the (frozen) teacher's per-layer outputs on
    the same inputs, ``{"student_states", "teacher_states"}``, and with
    ``inputs`` the input of every layer too (``"student_inputs"``,
    ``"teacher_inputs"``: where attention maps are computed from). The two
    backbones must have equal widths unless ``equal_widths=False`` (the
    caller then compares chosen coordinates itself)."""

    def __init__(self, student, teacher, equal_widths=True, inputs=False):
        if equal_widths and student.hidden_dim != teacher.hidden_dim:
            raise ValueError(
                "Hidden-state distillation needs equal widths: student "
                f"{student.hidden_dim}, teacher {teacher.hidden_dim}.")
        # Each model gives the L + 1 states: layer 0's input, then every
        # layer's output.
        self.student = hidden_states_model(student)
        self.teacher = hidden_states_model(teacher)
        self.inputs = bool(inputs)
        # The backbone inputs (a masked-LM batch also has mask_positions).
        self.names = list(student.input)

    def __call__(self, x, training):
        inputs = {name: x[name] for name in self.names}
        student = self.student(inputs, training=training)
        teacher = self.teacher(inputs, training=False)
        outputs = {"student_states": student[1:],
                   "teacher_states": teacher[1:]}
        if self.inputs:
            outputs.update(student_inputs=student[:-1],
                           teacher_inputs=teacher[:-1])
        return outputs


class ClassifierDistillationObjective(ClassificationObjective):
    """Task distillation of a classifier from a fine-tuned teacher:
    ``losses.classifier_distillation_loss`` on the logits plus, with
    ``hidden_weight > 0``, ``hidden_weight · losses.hidden_state_loss``
    between student layer ``i`` and teacher layer
    ``floor(i · L_t / L_s)``.

    Args:
        model: the student classifier (keras-hub ``TextClassifier`` with a
            ``backbone`` when ``hidden_weight > 0``).
        teacher: the teacher classifier; frozen here.
        num_classes: int (> 1).
        alpha: float. Weight of the label cross-entropy. Defaults to
            ``losses.CLASSIFIER_ALPHA``.
        temperature: float. Defaults to ``losses.TEMPERATURE``.
        hidden_weight: float. Weight of the hidden-state loss; 0 leaves it
            out. Defaults to 0.
    """

    def __init__(self, model, teacher, num_classes,
                 alpha=losses.CLASSIFIER_ALPHA,
                 temperature=losses.TEMPERATURE, hidden_weight=0.0):
        super().__init__(model, num_classes)
        if self.num_classes < 2:
            raise ValueError("Distillation of logits needs num_classes > 1.")
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha, self.temperature = float(alpha), float(temperature)
        self.hidden_weight = float(hidden_weight)
        self.loss_names = ("loss", "ce_loss", "kd_loss") + (
            ("hidden_loss",) if self.hidden_weight else ())
        if self.hidden_weight:
            self._states = _HiddenStates(model.backbone, teacher.backbone)

    def call(self, batch, training=False):
        x = batch[0]
        outputs = {"logits": _logits(self.model, x, training),
                   "teacher_logits": tf.stop_gradient(
                       _logits(self.teacher, x, False))}
        if self.hidden_weight:
            outputs.update(self._states(x, training))
        return outputs

    def compute_loss(self, batch, outputs, denominator=None):
        terms = losses.classifier_distillation_loss(
            outputs["logits"], outputs["teacher_logits"], batch[1],
            alpha=self.alpha, temperature=self.temperature,
            denominator=denominator)
        return _with_hidden_term(self, terms, batch, outputs, denominator)


class HiddenStateDistillationObjective(Objective):
    """Heals a compressed backbone (layers dropped, pruned) from its
    teacher backbone with ``losses.hidden_state_loss`` (no masked-LM head is
    needed) and, with ``attention_weight > 0``, ``attention_weight ·
    losses.attention_loss`` on the attention weights. Student layer ``i``
    learns teacher layer ``floor(i · L_t / L_s)`` (or ``mapping``), student
    head ``h`` of layer ``i`` teacher head ``heads[i][h]`` of that layer
    (default: the same head); metrics ``loss``, ``hidden_loss`` and
    ``attention_loss``.

    Args:
        model: the student backbone (``transformer_layers``, dict inputs
            with ``padding_mask``).
        teacher: the teacher backbone, same hidden width; frozen here.
        mapping: list of int or None. Defaults to ``losses.layer_map``.
        attention_weight: float. Weight of the attention term; 0 leaves it
            out. Defaults to 0.
        heads: list (per student layer) of lists of teacher head indices,
            or None: the student's heads are the teacher's first ones
            (equal head counts).

    Batches are ``(x,)`` or ``(x, anything)``; the loss averages over the
    real tokens of ``x["padding_mask"]``.

    Examples:

    >>> import numpy as np
    >>> from trimzoo.models import TrimzooBackbone
    >>> kw = dict(vocabulary_size=20, num_heads=1, hidden_dim=8,
    ...           intermediate_dim=8, max_sequence_length=8)
    >>> teacher = TrimzooBackbone(num_layers=2, **kw)
    >>> objective = HiddenStateDistillationObjective(TrimzooBackbone(num_layers=1, **kw),
    ...                                    teacher)
    >>> x = {"token_ids": np.ones((1, 4), "int32"),
    ...      "segment_ids": np.zeros((1, 4), "int32"),
    ...      "padding_mask": np.array([[1, 1, 1, 0]], "int32")}
    >>> float(objective.evaluate_step((x,))["count"])
    3.0
    """

    # A subclass that compares chosen teacher coordinates sets this False.
    equal_widths = True

    def __init__(self, model, teacher, mapping=None, attention_weight=0.0,
                 heads=None):
        super().__init__(model)
        self.teacher = teacher
        self.teacher.trainable = False
        self.mapping = mapping or losses.layer_map(
            len(model.transformer_layers), len(teacher.transformer_layers))
        self.attention_weight = float(attention_weight)
        if self.attention_weight < 0:
            raise ValueError(f"attention_weight must be >= 0, got "
                             f"{attention_weight}.")
        self.loss_names = ("loss", "hidden_loss") + (
            ("attention_loss",) if self.attention_weight else ())
        self.heads = None
        if self.attention_weight:
            self.heads = self._check_heads(heads)
        self._states = _HiddenStates(model, teacher, self.equal_widths,
                                     inputs=bool(self.attention_weight))

    def _check_heads(self, heads):
        student = [block.attention for block in self.model.transformer_layers]
        teacher = [block.attention
                   for block in self.teacher.transformer_layers]
        if heads is None:
            heads = [list(range(s.num_heads)) for s in student]
        heads = [[int(h) for h in layer] for layer in heads]
        for i, (layer, j) in enumerate(zip(heads, self.mapping)):
            if len(layer) != student[i].num_heads or (
                    layer and max(layer) >= teacher[j].num_heads):
                raise ValueError(
                    f"heads[{i}] = {layer} does not match student layer {i} "
                    f"({student[i].num_heads} heads) and teacher layer {j} "
                    f"({teacher[j].num_heads} heads).")
        return heads

    def count(self, batch):
        return tf.reduce_sum(tf.cast(batch[0]["padding_mask"], tf.float32))

    def call(self, batch, training=False):
        x = batch[0]
        outputs = self._states(x, training)
        if self.attention_weight:
            outputs.update(self._attention_maps(x, outputs))
        return outputs

    def _attention_maps(self, x, outputs):
        """Each student layer's attention weights and those of the teacher
        heads it learns (computed from each layer's input)."""
        mask = x["padding_mask"]
        student_in = outputs.pop("student_inputs")
        teacher_in = outputs.pop("teacher_inputs")
        student, teacher = [], []
        for i, j in enumerate(self.mapping):
            student.append(self.model.transformer_layers[i].attention
                           .attention_weights(student_in[i], mask))
            maps = self.teacher.transformer_layers[j].attention \
                .attention_weights(teacher_in[j], mask)
            teacher.append(tf.stop_gradient(
                tf.gather(maps, self.heads[i], axis=1)))
        return {"student_attention": student, "teacher_attention": teacher}

    def compute_loss(self, batch, outputs, denominator=None):
        mask = batch[0]["padding_mask"]
        terms = losses.hidden_state_loss(
            outputs["student_states"], outputs["teacher_states"], mask,
            mapping=self.mapping, denominator=denominator)
        if self.attention_weight:
            attention = losses.attention_loss(
                outputs["student_attention"], outputs["teacher_attention"],
                mask, denominator=denominator)["attention_loss"]
            terms["attention_loss"] = attention
            terms["loss"] = terms["loss"] + self.attention_weight * attention
        return terms
