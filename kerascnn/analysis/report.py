"""The inspector's report: per-layer rows, totals, and their text, Markdown, JSON and plot."""

import dataclasses
import json

from kerascnn import figures

CONVENTIONS = (
    "Neurons: output elements, per example, of the layers that compute new units "
    "(convolutions, dense, pooling); normalisation, activation, dropout, reshaping, "
    "padding, concatenation, addition and the input count 0.",
    "MACs: multiply-adds per example; a convolution costs output elements x kernel "
    "height x width x input channels / groups, a dense layer inputs x units; biases, "
    "normalisation, activations, merges and pooling count 0. The papers' 'FLOPs' for "
    "CNNs are these MACs; TensorFlow's profiler reports FLOPs = 2 x MACs.",
    "Receptive field: size and jump per spatial axis, in input pixels; theoretical, so "
    "it may exceed the input; 'whole input' after global pooling or flattening.",
    "Memory for batch_size examples: activations = the input plus every layer's output; "
    "forward = parameters + activations, all kept as an eager Keras call keeps them; "
    "forward peak = parameters + the most activations alive at once when each is freed "
    "after its last use, as a compiled tf.function does; training = parameters + "
    "gradients and optimizer slots of the trainable ones + all activations, kept for "
    "backpropagation. Framework workspace and caches are not included.",
)


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One layer call in an architecture report.

    Attributes:
        name: layer name, prefixed by its nested models (`"backbone/conv1"`).
        kind: the layer's class name.
        output_shape: output shape of one example, without the batch axis (a
            tuple of shapes for a layer with several outputs).
        neurons: units computed for one example (see `CONVENTIONS`).
        params: parameters (0 on a shared layer's later calls).
        trainable_params: trainable parameters, likewise.
        macs: multiply-adds for one example.
        receptive_field: one `ReceptiveField(size, jump)` per spatial axis of
            the input; `jump` None when the unit sees the whole input; None
            when unknown.
    """

    name: str
    kind: str
    output_shape: tuple
    neurons: int
    params: int
    trainable_params: int
    macs: int
    receptive_field: tuple


@dataclasses.dataclass(frozen=True)
class ArchitectureReport:
    """What `kerascnn.inspect` finds: rows per layer, totals and memory estimates.

    Attributes:
        model_name: the model's name.
        input_shapes: one example's shape per input, without the batch axis.
        batch_size: examples per batch assumed by the memory figures.
        optimizer: optimizer assumed by `training_bytes`.
        layers: a tuple of `LayerRow`, inputs first, in execution order.
        params: all parameters (equals `model.count_params()`).
        trainable_params: trainable parameters.
        neurons: neurons for one example.
        macs: multiply-adds for one example.
        param_bytes: memory of all parameters.
        activation_bytes: memory of the input and all layer outputs for a batch.
        forward_bytes: `param_bytes + activation_bytes`.
        forward_peak_bytes: parameters + the most activations alive at once.
        training_bytes: parameters, gradients, optimizer slots and activations.
        not_counted: names of layers whose multiply-adds are unknown (counted 0).
    """

    model_name: str
    input_shapes: tuple
    batch_size: int
    optimizer: str
    layers: tuple
    params: int
    trainable_params: int
    neurons: int
    macs: int
    param_bytes: int
    activation_bytes: int
    forward_bytes: int
    forward_peak_bytes: int
    training_bytes: int
    not_counted: tuple

    conventions = CONVENTIONS

    def to_dict(self):
        """Returns the report as plain JSON-ready Python data."""
        data = dataclasses.asdict(self)
        data["layers"] = [
            {**dataclasses.asdict(row), "receptive_field": _field_data(row.receptive_field)}
            for row in self.layers
        ]
        data["conventions"] = list(CONVENTIONS)
        return data

    def to_json(self):
        """Returns the report as an indented JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self):
        """Returns the report as a fixed-width table with totals, for a terminal."""
        header, rows = self._table()
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        align = ["<", "<", "<", ">", ">", ">", "<"]
        line = lambda cells: "  ".join(
            f"{cell:{a}{w}}" for cell, a, w in zip(cells, align, widths)
        ).rstrip()
        rule = "-" * len(line(header))
        totals = "\n".join(f"{label + ':':<24}{value}" for label, value in self._totals())
        notes = "\n".join(f"- {text}" for text in CONVENTIONS)
        return "\n".join(
            [f"Model: {self.model_name}", rule, line(header), rule]
            + [line(r) for r in rows]
            + [rule, totals, rule, "Conventions:", notes]
        )

    def to_markdown(self):
        """Returns the report as Markdown tables with the conventions as a list."""
        header, rows = self._table()
        table = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---", "---", "---", "--:", "--:", "--:", "---"]) + "|",
        ] + ["| " + " | ".join(r) + " |" for r in rows]
        totals = ["| Total | Value |", "|---|--:|"] + [
            f"| {label} | {value} |" for label, value in self._totals()
        ]
        return "\n".join(
            [f"## {self.model_name}", "", *table, "", *totals, "", "Conventions:", ""]
            + [f"- {text}" for text in CONVENTIONS]
        ) + "\n"

    def plot(self, path):
        """Writes a PNG of neurons, parameters and multiply-adds per layer.

        Only layers with at least one non-zero count are drawn.

        Args:
            path: the PNG file to write (atomically).
        """
        rows = [r for r in self.layers if r.neurons or r.params or r.macs]
        figure = figures.figure(min(max(8.0, 0.14 * len(rows)), 40.0), 9.0, layout="tight")
        axes = figure.subplots(3, 1, sharex=True)
        positions = range(len(rows))
        for ax, field, label in zip(
            axes,
            ("neurons", "params", "macs"),
            ("neurons", "parameters", "multiply-adds"),
        ):
            ax.bar(positions, [max(getattr(r, field), 0) for r in rows], color="tab:blue")
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylabel(label)
            ax.grid(axis="y", alpha=0.3)
        axes[-1].set_xticks(list(positions), [r.name for r in rows], rotation=90, fontsize=6)
        axes[0].set_title(
            f"{self.model_name}: {_si(self.neurons)} neurons, {_si(self.params)} "
            f"parameters, {_si(self.macs)} multiply-adds per example"
        )
        figures.write_png(figure, path, dpi=120)

    def _table(self):
        header = ("Layer", "Kind", "Output shape", "Neurons", "Params", "MACs", "Receptive field")
        rows = [
            (
                r.name,
                r.kind,
                _shape_text(r.output_shape),
                f"{r.neurons:,}",
                f"{r.params:,}",
                f"{r.macs:,}",
                _field_text(r.receptive_field),
            )
            for r in self.layers
        ]
        return header, rows

    def _totals(self):
        flops = f"{_si(2 * self.macs)}FLOPs"
        totals = [
            ("Parameters", f"{self.params:,} (trainable {self.trainable_params:,})"),
            ("Neurons", f"{self.neurons:,} per example"),
            ("Multiply-adds (MACs)", f"{self.macs:,} per example ({_si(self.macs)}MACs = {flops})"),
            ("Batch size", str(self.batch_size)),
            ("Parameter memory", _bytes(self.param_bytes)),
            ("Activation memory", _bytes(self.activation_bytes)),
            ("Forward pass", _bytes(self.forward_bytes)),
            ("Forward peak", _bytes(self.forward_peak_bytes)),
            (f"Training ({self.optimizer})", _bytes(self.training_bytes)),
        ]
        if self.not_counted:
            totals.append(("MACs not counted", ", ".join(self.not_counted)))
        return totals


def _si(value):
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}"
    return f"{value} "


def _bytes(value):
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= factor:
            return f"{value / factor:.1f} {unit} ({value:,} bytes)"
    return f"{value:,} bytes"


def _shape_text(shape):
    if shape and isinstance(shape[0], tuple):
        return ", ".join(_shape_text(s) for s in shape)
    return "x".join(str(d) for d in shape) or "scalar"


def _field_text(field):
    if field is None:
        return "?"
    if not field:
        return "-"
    if field[0].jump is None:
        return "whole input"
    sizes = "x".join(str(axis.size) for axis in field)
    jumps = "x".join(f"{axis.jump:g}" for axis in field)
    return f"{sizes} (jump {jumps})"


def _field_data(field):
    return None if field is None else [{"size": a.size, "jump": a.jump} for a in field]
