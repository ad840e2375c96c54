"""Checks that fail an export loudly: structure, interface, parity with Keras, int8 agreement."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort

from edge_infer.evaluation.metrics import accuracy
from edge_infer.runtime import INPUT_NAME, OUTPUT_NAME, run_batched

RANDOM_OPS = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial",
              "Bernoulli", "Dropout"}


@dataclass
class Thresholds:
    max_abs_diff: float = 1e-4  # fp32 ONNX vs Keras probabilities
    fp32_agreement: float = 1.0  # top-1 agreement fp32 ONNX vs Keras
    int8_agreement: float = 0.99  # top-1 agreement int8 vs fp32
    int8_max_drop: float = 0.005  # accuracy drop int8 vs fp32 (fraction)


@dataclass
class Check:
    name: str
    value: str
    limit: str
    passed: bool


@dataclass
class Report:
    model: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, value: str, limit: str, passed: bool) -> None:
        self.checks.append(Check(name, value, limit, bool(passed)))

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def table(self) -> str:
        rows = [(c.name, c.value, c.limit, "ok" if c.passed else "FAIL") for c in self.checks]
        widths = [max(len(r[i]) for r in rows + [("check", "value", "limit", "")]) for i in range(4)]
        lines = [f"{self.model}"] + [
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows
        ]
        return "\n".join(lines)


class VerificationError(Exception):
    pass


def session(proto: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(proto_or_session, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    sess = proto_or_session if isinstance(proto_or_session, ort.InferenceSession) else session(proto_or_session)
    return run_batched(sess, images, batch_size)


def check_structure(proto: onnx.ModelProto, report: Report) -> None:
    try:
        onnx.checker.check_model(proto)
        report.add("onnx checker", "passes", "passes", True)
    except onnx.checker.ValidationError as exc:
        report.add("onnx checker", str(exc).splitlines()[0][:60], "passes", False)
    ops = {node.op_type for node in proto.graph.node}
    random_ops = sorted(ops & RANDOM_OPS)
    report.add("random/training ops", ", ".join(random_ops) or "none", "none", not random_ops)
    inputs = [(i.name, i.type.tensor_type.elem_type) for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    ok = inputs == [(INPUT_NAME, onnx.TensorProto.FLOAT)] and outputs == [OUTPUT_NAME]
    report.add("interface", f"{[i[0] for i in inputs]} -> {outputs}", f"['{INPUT_NAME}'] -> ['{OUTPUT_NAME}']", ok)


def check_fp32(proto: onnx.ModelProto, keras_probs: np.ndarray, images: np.ndarray, report: Report,
               limits: Thresholds) -> np.ndarray:
    onnx_probs = run(proto, images)
    diff = float(np.abs(onnx_probs - keras_probs).max())
    agreement = accuracy(onnx_probs, keras_probs.argmax(1))
    report.add(f"fp32 vs Keras max |diff| ({len(images)} imgs)", f"{diff:.2e}", f"<= {limits.max_abs_diff:.0e}",
               diff <= limits.max_abs_diff)
    report.add("fp32 vs Keras top-1 agreement", f"{agreement:.4f}", f">= {limits.fp32_agreement:.4f}",
               agreement >= limits.fp32_agreement)
    check_rows_sum_to_one(onnx_probs, report)
    return onnx_probs


def check_rows_sum_to_one(probs: np.ndarray, report: Report) -> None:
    error = float(np.abs(probs.sum(1) - 1).max())
    report.add("rows sum to 1", f"{error:.1e}", "<= 1e-4", error <= 1e-4)


def check_int8(fp32_probs: np.ndarray, int8_probs: np.ndarray, labels: np.ndarray, report: Report,
               limits: Thresholds) -> None:
    check_rows_sum_to_one(int8_probs, report)
    agreement = accuracy(int8_probs, fp32_probs.argmax(1))
    fp32_acc = accuracy(fp32_probs, labels)
    int8_acc = accuracy(int8_probs, labels)
    report.add(f"int8 vs fp32 top-1 agreement ({len(labels)} imgs)", f"{agreement:.4f}",
               f">= {limits.int8_agreement:.4f}", agreement >= limits.int8_agreement)
    report.add("int8 accuracy drop", f"{(fp32_acc - int8_acc) * 100:+.2f} pts ({fp32_acc:.4f} -> {int8_acc:.4f})",
               f"<= {limits.int8_max_drop * 100:.1f} pts", fp32_acc - int8_acc <= limits.int8_max_drop)
