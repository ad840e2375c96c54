"""edge-infer: a Fashion-MNIST clothing classifier for real photos, on onnxruntime.

    >>> from edge_infer import Classifier
    >>> records = Classifier().classify(["unseen/"])   # doctest: +SKIP

Importing this package never imports TensorFlow. The names below that need onnxruntime are
imported on first use, so that code which only decodes and preprocesses (`edge_infer.loading`,
`edge_infer.preprocess`: the photo pool's builder, benchmark scripts) does not load it.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from .classes import CLASS_NAMES

if TYPE_CHECKING:
    from .classifier import Classifier, Record
    from .runtime import ModelError, OnnxModel

_LAZY = {"Classifier": ".classifier", "Record": ".classifier", "ModelError": ".runtime", "OnnxModel": ".runtime"}

__all__ = ["CLASS_NAMES", "Classifier", "ModelError", "OnnxModel", "Record"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
