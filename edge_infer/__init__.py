"""edge-infer: a Fashion-MNIST clothing classifier for real photos, on onnxruntime.

    >>> from edge_infer import Classifier
    >>> records = Classifier().classify(["unseen/"])   # doctest: +SKIP

Importing this package never imports TensorFlow.
"""

from .classes import CLASS_NAMES
from .classifier import Classifier, Record
from .runtime import ModelError, OnnxModel

__all__ = ["CLASS_NAMES", "Classifier", "Record", "ModelError", "OnnxModel"]
__version__ = "0.1.0"
