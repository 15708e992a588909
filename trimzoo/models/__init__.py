"""trimzoo models: the backbone, the preset factories, the task models
(classifier, masked LM, text embedder) with their preprocessors, the
tokenizers and Poor Man's BERT. Pretrained weights are read by
``trimzoo.checkpoints`` (``trimzoo.from_pretrained``,
``trimzoo.load_preset``)."""

from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.classifier import TrimzooClassifier
from trimzoo.models.extract import extract, to_trimbert
from trimzoo.models.layer_drop import (
    drop_layers,
    layers_to_drop,
    parse_drop_spec,
)
from trimzoo.models.masked_lm import TrimzooMaskedLM
from trimzoo.models.preprocessors import (
    TrimzooMaskedLMPreprocessor,
    TrimzooTextClassifierPreprocessor,
)
from trimzoo.models.presets import PRESETS
from trimzoo.models.text_embedder import TrimzooTextEmbedder
from trimzoo.models.tokenizers import (
    BertWordPieceTokenizer,
    RobertaBPETokenizer,
    load_tokenizer,
)
from trimzoo.models.zoo import (
    bert_base,
    bert_large,
    bert_mini,
    bert_tiny,
    bort,
    bort_mini,
    create,
    list_models,
    preset_config,
    trimbert_base,
    trimbert_mini,
)

# keras-hub's ``Tokenizer.from_preset`` picks a preset's tokenizer class by
# the class of its backbone: trimzoo's tokenizers belong to TrimzooBackbone.
BertWordPieceTokenizer.backbone_cls = TrimzooBackbone
RobertaBPETokenizer.backbone_cls = TrimzooBackbone
