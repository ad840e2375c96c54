"""The runtime stays light: no TensorFlow, and only the four runtime dependencies."""

import configparser
import pkgutil
import subprocess
import sys
from pathlib import Path

import edge_infer

ROOT = Path(__file__).resolve().parent.parent


def test_importing_every_runtime_module_never_imports_tensorflow():
    modules = [m.name for m in pkgutil.walk_packages(edge_infer.__path__, "edge_infer.")
               if m.name != "edge_infer.__main__"]
    assert "edge_infer.cli" in modules and "edge_infer.runtime" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'tensorflow', 'keras', 'tf2onnx', 'onnx', 'torch', 'matplotlib', 'ray', 'pyarrow'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_install_requires_only_the_runtime_dependencies():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    requires = [line.split(">")[0].split("=")[0].strip()
                for line in config["options"]["install_requires"].strip().splitlines()]
    assert sorted(requires) == ["click", "numpy", "onnxruntime", "pillow"]
    assert "tensorflow" not in config["options"]["install_requires"]


def test_training_data_helpers_import_without_tensorflow():
    """Export (int8 calibration) and benchmarks use these: they must not pull in Keras."""
    code = (
        "import sys\n"
        "import train.photo_pool, train.provenance\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_runtime_core_does_not_load_the_evaluation_side():
    """Classifying needs files, preprocess, segment, runtime, classifier: nothing from evaluation/."""
    code = (
        "import sys\n"
        "from edge_infer import Classifier\n"
        "import edge_infer.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('edge_infer.evaluation'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
