"""A model folder's ``model.onnx`` may not read files outside the graph (external data).

emovox's own graphs hold every weight; a graph that names ``../secret``, an absolute path
or a link out of its folder would let a model folder (and, under ``emovox serve``, the
API's answers) read any file the process can. onnxruntime refuses all three since 1.24.1
(1.23.2 loaded them), hence the floor in ``pyproject.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from emovox.artifact import ArtifactError
from emovox.serving.runners import OnnxRunner

onnx = pytest.importorskip("onnx")


def _graph_reading(location: str, path: Path) -> Path:
    """A one-node graph ``y = x + W`` whose ``W`` is external data at ``location``."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros(4, np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("how", ["parent", "absolute", "link"])
def test_a_graph_reading_a_file_outside_its_folder_is_refused(tmp_path, how):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    location = {"parent": "../secret.bin", "absolute": str(secret), "link": "link.bin"}[how]
    if how == "link":
        os.symlink(secret, folder / "link.bin")
    graph = _graph_reading(location, folder / "model.onnx")
    with pytest.raises(ArtifactError, match="cannot be loaded by onnxruntime"):
        OnnxRunner(graph)


def test_a_graph_with_its_weights_inside_loads(tmp_path):
    """The control: the same graph with ``W`` stored in it loads and adds."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    np.testing.assert_array_equal(OnnxRunner(path)(np.ones(4, np.float32)), [1, 2, 3, 4])
