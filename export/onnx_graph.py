"""A small helper for writing ONNX graphs by hand: one call per operator, names made up for you.

`onnx.helper` builds nodes one at a time and leaves the naming of every intermediate value to
the caller; written out that way, a graph of a few hundred operators is unreadable. `Graph`
keeps the nodes and constants of one (sub)graph, returns the output name of each operator so
that calls nest like ordinary expressions, and shares one counter with its subgraphs (`If`,
`Loop` bodies) so that names stay unique across the whole model.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, DOUBLE, INT64, BOOL, UINT8 = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64,
                                     TensorProto.BOOL, TensorProto.UINT8)
_NUMPY_TYPES = {FLOAT: np.float32, DOUBLE: np.float64, INT64: np.int64, BOOL: np.bool_, UINT8: np.uint8}


class Graph:
    def __init__(self, prefix: str = "", counter: itertools.count | None = None):
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self._counter = counter if counter is not None else itertools.count()
        self._constants: dict[tuple, str] = {}

    def subgraph(self) -> Graph:
        """An empty graph for an If or Loop body, naming its values from the same counter."""
        return Graph(self.prefix, self._counter)

    def new_name(self, hint: str) -> str:
        """A fresh value name (for subgraph inputs and outputs)."""
        return f"{self.prefix}{hint}_{next(self._counter)}"

    def const(self, value, dtype: int = FLOAT, scalar: bool = False) -> str:
        """A constant tensor; a scalar becomes shape [1] (which broadcasts and concatenates)
        unless `scalar` asks for a rank-0 tensor (Loop counts, Clip bounds, Range limits)."""
        array = np.asarray(value, dtype=_NUMPY_TYPES[dtype])
        if array.ndim == 0 and not scalar:
            array = array.reshape(1)
        key = (dtype, array.shape, array.tobytes())
        if key not in self._constants:
            name = self.new_name("const")
            # a Constant node, not an initializer: subgraphs cannot always see outer initializers
            self.nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name)))
            self._constants[key] = name
        return self._constants[key]

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None, **attributes):
        """Append one operator; returns its output name (or a tuple of names)."""
        hint = name or op_type.lower()
        names = [self.new_name(hint) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else tuple(names)

    def rename(self, value: str, new_name: str) -> str:
        """Give a value a fixed name (a graph output's, say) through an Identity."""
        self.nodes.append(helper.make_node("Identity", [value], [new_name]))
        return new_name

    def to_graph(self, name: str, inputs: list[onnx.ValueInfoProto],
                 outputs: list[onnx.ValueInfoProto]) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs)

    # shorthands for the operators used everywhere
    def cast(self, value: str, dtype: int) -> str:
        return self.op("Cast", value, to=dtype)

    def add(self, a: str, b: str) -> str:
        return self.op("Add", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", a, b)

    def div(self, a: str, b: str) -> str:
        return self.op("Div", a, b)

    def where(self, condition: str, a: str, b: str) -> str:
        return self.op("Where", condition, a, b)

    def minimum(self, *values: str) -> str:
        return self.op("Min", *values)

    def maximum(self, *values: str) -> str:
        return self.op("Max", *values)

    def and_(self, *values: str) -> str:
        result = values[0]
        for value in values[1:]:
            result = self.op("And", result, value)
        return result

    def slice(self, value: str, starts: str, ends: str, axes: str) -> str:
        return self.op("Slice", value, starts, ends, axes)


def value_info(name: str, dtype: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


# --- helpers for graphs of pictures: shapes, masks, branches ---


def item(g: Graph, shape: str, index: int) -> str:
    return g.op("Gather", shape, g.const([index], INT64))


def if_(g: Graph, condition: str, then: Graph, then_value: str, otherwise: Graph, else_value: str,
        dtype: int, name: str) -> str:
    """An If node choosing between a value computed in `then` and one from `otherwise` (either
    graph may be empty and return an outer value)."""
    return if_many(g, condition, then, [then_value], otherwise, [else_value], [dtype], name)


def if_many(g: Graph, condition: str, then: Graph, then_values: list[str], otherwise: Graph,
            else_values: list[str], dtypes: list[int], name: str) -> tuple[str, ...]:
    """An If node with several outputs (types in `dtypes`, shapes free to differ by branch)."""
    then_outs = [then.rename(value, g.new_name(name + "_then")) for value in then_values]
    else_outs = [otherwise.rename(value, g.new_name(name + "_else")) for value in else_values]
    return g.op("If", condition, outputs=len(dtypes),
                then_branch=then.to_graph(name + "_then", [], [value_info(v, t, None)
                                                               for v, t in zip(then_outs, dtypes)]),
                else_branch=otherwise.to_graph(name + "_else", [], [value_info(v, t, None)
                                                                    for v, t in zip(else_outs, dtypes)]))


def select_mask(g: Graph, condition: str, a: str, b: str) -> str:
    """Where() for bool tensors, which onnxruntime's Where does not take."""
    return g.op("Or", g.op("And", condition, a), g.op("And", g.op("Not", condition), b))


def any_(g: Graph, mask: str) -> str:
    return g.cast(g.op("ReduceMax", g.cast(mask, FLOAT), keepdims=0), BOOL)
