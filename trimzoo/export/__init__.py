"""Export for serving and edge: SavedModel and TFLite, proven equal to the
Keras model by a parity gate.

Entry point: :func:`export_model` (``tools/export.py``). Building blocks:

- :mod:`~trimzoo.export.saved_model`: ``export_saved_model`` (token ids in,
  loadable without trimzoo), ``export_text_saved_model`` (classifiers,
  strings in), ``load_model``, runners;
- :mod:`~trimzoo.export.tflite`: ``convert`` (float32, float16, dynamic int8,
  full int8; builtin ops only, ``FlexOpsError`` otherwise), ``TFLiteRunner``
  (``ai_edge_litert``), ``tflite_ops``;
- :mod:`~trimzoo.export.parity`: ``compare``, ``gate``, ``Thresholds``,
  ``ParityError``;
- :mod:`~trimzoo.export.quantize`: ``keras_int8`` (Keras 3
  ``quantize("int8")``, the server-side path);
- :mod:`~trimzoo.export.embedder`: ``TrimzooTextEmbedder`` exports (text-in
  SavedModel, token-ids-in TFLite);
- :mod:`~trimzoo.export.app_file`: the file an app runs as is (MediaPipe
  task metadata: vocabulary, labels; strings in), ``MediaPipeRunner``,
  ``read_app_file``, ``refusal``;
- :mod:`~trimzoo.export.benchmark`: round-robin median latencies.
"""

from trimzoo.export.app_file import (
    MediaPipeRunner,
    app_file_name,
    read_app_file,
    refusal,
)
from trimzoo.export.converter import (
    INT8_FLOAT_OPS,
    QUANTIZE_MODES,
    FlexOpsError,
    convert_saved_model,
)
from trimzoo.export.embedder import (
    export_embedder_saved_model,
    export_embedder_tflite,
)
from trimzoo.export.data import (
    ParityData,
    calibration_data,
    find_tokenizer,
    parity_data,
)
from trimzoo.export.parity import (
    ParityError,
    Thresholds,
    compare,
    gate,
    raise_on_failures,
)
from trimzoo.export.pipeline import (
    FORMATS,
    REPORT_FILE,
    export_model,
    export_tflite_int8,
    parse_list,
    verify,
)
from trimzoo.export.quantize import keras_int8
from trimzoo.export.saved_model import (
    KerasRunner,
    SavedModelRunner,
    TextSavedModelRunner,
    export_saved_model,
    export_text_saved_model,
    load_model,
    serving_function,
)
from trimzoo.export.tflite import (
    TFLITE_FORMATS,
    TFLiteRunner,
    check_builtin_only,
    convert,
    convert_file,
    tensor_types,
    tflite_ops,
)

__all__ = [
    "FORMATS", "INT8_FLOAT_OPS", "MediaPipeRunner", "app_file_name",
    "read_app_file", "refusal", "QUANTIZE_MODES", "REPORT_FILE",
    "TFLITE_FORMATS", "FlexOpsError", "KerasRunner", "ParityData",
    "ParityError", "SavedModelRunner", "TFLiteRunner",
    "TextSavedModelRunner", "Thresholds", "calibration_data",
    "check_builtin_only", "compare", "convert", "convert_file",
    "convert_saved_model", "export_embedder_saved_model",
    "export_embedder_tflite", "export_model", "export_saved_model",
    "export_tflite_int8",
    "export_text_saved_model", "find_tokenizer", "gate", "keras_int8",
    "load_model", "parity_data", "parse_list", "raise_on_failures",
    "serving_function", "tensor_types", "tflite_ops", "verify",
]
