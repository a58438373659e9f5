"""The private Keras APIs kerascnn relies on still behave as kerascnn.compat expects."""

import numpy as np
import keras
import tensorflow as tf

from kerascnn import compat


def _functional():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


def test_installed_keras_is_in_the_declared_range():
    version = tuple(int(p) for p in keras.version().split(".")[:2])
    low, high = compat.KERAS_RANGE
    assert low <= version < high
    setup = (compat.__file__.rsplit("/kerascnn/", 1)[0]) + "/setup.cfg"
    assert f"keras>={low[0]}.{low[1]},<{high[0]}" in open(setup).read()


def test_run_through_graph_visits_every_layer_in_order():
    model = _functional()
    x = np.arange(8, dtype="float32").reshape(2, 4)
    visited = []

    def operation_fn(operation):
        def call(*args, **kwargs):
            visited.append(operation.name)
            return operation(*args, **kwargs)
        return call

    outputs = compat.run_through_graph(compat.functional_graph(model), x, operation_fn)
    assert visited == ["hidden", "out"]
    np.testing.assert_allclose(outputs, model(x), rtol=1e-6)


def test_functional_graph_of_sequential_and_subclassed_models():
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert compat.has_graph(compat.functional_graph(sequential))
    assert compat.functional_graph(keras.Sequential([keras.layers.Dense(2)])) is None

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert not compat.has_graph(Subclassed())


def test_graph_function_returns_the_called_function():
    @tf.function
    def inner(x):
        return tf.matmul(x, x)

    @tf.function
    def outer(x):
        return inner(x) + 1.0

    graph = outer.get_concrete_function(tf.TensorSpec((2, 2))).graph
    calls = [op for op in graph.get_operations() if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
    assert calls
    function = compat.graph_function(graph, calls[0].get_attr("f").name)
    assert "MatMul" in [op.type for op in function.graph.get_operations()]


def test_symbolic_build_creates_optimizer_and_metric_variables():
    model = _functional()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 4), "float32"), np.zeros((4, 2), "float32"))).batch(2)
    assert not model.optimizer.built
    compat.symbolic_build(model, data.element_spec)
    assert model.optimizer.built and model.optimizer.variables


def test_the_declared_python_is_one_every_dependency_installs_on():
    # Issue 24, item 18: kerascnn claimed Python >= 3.10, where Keras >= 3.13 (and tomllib)
    # are missing.
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    ours = SpecifierSet(metadata.metadata("kerascnn")["Requires-Python"])
    lowest = min((v for v in ("3.9", "3.10", "3.11", "3.12") if v in ours), default=None)
    assert lowest is not None
    for line in metadata.requires("kerascnn"):
        requirement = Requirement(line)
        if requirement.marker is not None:
            continue  # an extra's
        needs = metadata.metadata(requirement.name).get("Requires-Python")
        if needs:
            assert lowest in SpecifierSet(needs), (requirement.name, needs, lowest)
