"""edge-infer: a Fashion-MNIST clothing classifier for real photos, on onnxruntime.

    >>> from edge_infer import Classifier
    >>> records = Classifier().classify(["unseen/"])   # doctest: +SKIP

Importing this package never imports TensorFlow. The names below are imported on first use,
so that a module that needs no model (the decode workers' `edge_infer.loading`) does not load
onnxruntime.
"""

from importlib import import_module

from .classes import CLASS_NAMES

_LAZY = {"Classifier": ".classifier", "Record": ".classifier", "ModelError": ".runtime", "OnnxModel": ".runtime"}

__all__ = ["CLASS_NAMES", "Classifier", "ModelError", "OnnxModel", "Record"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
