"""The evaluation report: metrics for programs, Markdown and self-contained HTML for people."""

import base64
import html
import os

from kerascnn import files

UNDEFINED = "undefined"

_CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


class EvaluationReport:
    """The result of `kerascnn.evaluate`.

    Attributes:
        metrics: JSON-ready dict of every number (what `metrics.json` holds).
        diagnosis: the learning-curve `Diagnosis`, or None without a history.
        files: the paths written by the last `save`.

    Args:
        metrics: the JSON-ready dict of numbers.
        figures: {file name: PNG bytes, or a callable returning them}; callables are drawn
            only when a figure is first needed (HTML or files), so metrics alone stay fast.
        diagnosis: the learning-curve `Diagnosis`, if any.
    """

    def __init__(self, metrics, figures, diagnosis=None):
        self.metrics = metrics
        self.diagnosis = diagnosis
        self.files = []
        self._figures = dict(figures)

    @property
    def figures(self):
        """{file name: PNG bytes}, drawn on first access."""
        for name, figure in self._figures.items():
            if callable(figure):
                self._figures[name] = figure()
        return self._figures

    def summary(self):
        """Returns the headline numbers in a few lines of text."""
        m = self.metrics
        if m.get("task") == "regression":
            lines = [f"{m['model']}: MAE {m['mae']:.4f}, RMSE {m['rmse']:.4f}, R² {m['r2']:.4f} "
                     f"on {m['num_examples']} examples ({m['num_targets']} target(s))."]
        elif m["log_loss"] is None:  # raw class scores: no probabilities
            lines = [f"{m['model']}: accuracy {m['accuracy']:.4f}, top-{m['top_k']} accuracy "
                     f"{m['top_k_accuracy']:.4f}, macro F1 {_number(m['macro_f1'])} on "
                     f"{m['num_examples']} examples (class scores: no log loss or ECE)."]
        else:
            lines = [
                f"{m['model']}: accuracy {m['accuracy']:.4f}, top-{m['top_k']} accuracy "
                f"{m['top_k_accuracy']:.4f}, macro F1 {_number(m['macro_f1'])}, log loss "
                f"{m['log_loss']:.4f}, ECE {m['ece']:.4f} ({m['ece_bins']} bins) on "
                f"{m['num_examples']} examples."
            ]
        if self.diagnosis:
            lines.append(f"Fit: {self.diagnosis.verdict}. {self.diagnosis.explanation}")
        for label, values in m.get("uncertainty", {}).items():
            if label != "single model":
                lines.append(
                    f"{label}: accuracy {values['accuracy']:.4f}, log loss "
                    f"{values['log_loss']:.4f}, ECE {values['ece']:.4f}.")
        lines += [f"Note: {note}" for note in m["notes"]]
        return "\n".join(lines)

    def to_markdown(self):
        """Returns the report as Markdown; images are the PNG files written beside it."""
        parts = []
        for kind, *content in self._blocks():
            if kind == "h1":
                parts.append(f"# {content[0]}")
            elif kind == "h2":
                parts.append(f"## {content[0]}")
            elif kind == "p":
                parts.append(content[0])
            elif kind == "list":
                parts.append("\n".join(f"- {item}" for item in content[0]))
            elif kind == "table":
                headers, rows = content
                lines = [_markdown_row(headers), "|" + "---|" * len(headers)]
                parts.append("\n".join(lines + [_markdown_row(row) for row in rows]))
            elif kind == "image":
                parts.append(f"![{content[1]}]({content[0]})")
        return "\n\n".join(parts) + "\n"

    def to_html(self):
        """Returns the report as one self-contained HTML page (images embedded as base64)."""
        parts = []
        for kind, *content in self._blocks():
            if kind in ("h1", "h2", "p"):
                parts.append(f"<{kind}>{html.escape(content[0])}</{kind}>")
            elif kind == "list":
                items = "".join(f"<li>{html.escape(item)}</li>" for item in content[0])
                parts.append(f"<ul>{items}</ul>")
            elif kind == "table":
                headers, rows = content
                head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
                body = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                    for row in rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif kind == "image":
                data = base64.b64encode(self.figures[content[0]]).decode("ascii")
                parts.append(
                    f'<img src="data:image/png;base64,{data}" alt="{html.escape(content[1])}">')
        title = html.escape(f"Evaluation of {self.metrics['model']}")
        return (
            f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n"
        )

    def save(self, out):
        """Writes metrics.json, report.md, report.html and the PNGs to `out`, atomically.

        Returns:
            The list of paths written (also kept in `self.files`).
        """
        os.makedirs(out, exist_ok=True)
        written = []
        for name, png in self.figures.items():
            written.append(os.path.join(out, name))
            files.atomic_write_bytes(written[-1], png)
        for name, write, content in (
                ("metrics.json", files.atomic_write_json, self.metrics),
                ("report.md", files.atomic_write_text, self.to_markdown()),
                ("report.html", files.atomic_write_text, self.to_html())):
            written.append(os.path.join(out, name))
            write(written[-1], content)
        self.files = written
        return written

    def _blocks(self):
        """The report as a list of (kind, content...) blocks, rendered by to_markdown/to_html."""
        m = self.metrics
        if m.get("task") == "regression":
            described = (f"regression on {m['num_targets']} target(s) "
                         f"({', '.join(m['target_names'])})")
            body = self._regression_blocks()
        else:
            described = f"{m['num_classes']} classes ({', '.join(m['class_names'])})"
            body = self._classification_blocks()
            if m["log_loss"] is not None:  # not a hinge-loss model's raw class scores
                body += self._probability_blocks()
        blocks = [("h1", f"Evaluation of {m['model']}"),
                  ("p", f"{m['num_examples']} test examples, {described}.")]
        if m["notes"]:
            blocks += [("h2", "Notes"), ("list", m["notes"])]
        blocks += [("h2", "Summary"), *body]
        if self.diagnosis:
            blocks += self._diagnosis_blocks()
        if len(m.get("uncertainty", {})) > 1:
            blocks += self._uncertainty_blocks()
        return blocks

    def _regression_blocks(self):
        """Summary, per-target and predicted-against-true blocks."""
        m = self.metrics
        return [
            ("table", ["Metric", "Value"], [
                ["Mean absolute error (MAE)", _number(m["mae"])],
                ["Root mean squared error (RMSE)", _number(m["rmse"])],
                ["Coefficient of determination (R²)", _number(m["r2"])],
            ]),
            ("table", ["Target", "MAE", "RMSE", "R²"],
             [[name, _number(v["mae"]), _number(v["rmse"]), _number(v["r2"])]
              for name, v in m["per_target"].items()]),
            ("h2", "Predicted against true values"),
            ("image", "predictions.png", "Predicted against true values"),
        ]

    def _classification_blocks(self):
        """Summary, per-class and confusion-matrix blocks, for probabilities and scores."""
        m = self.metrics
        k = m["top_k"]
        scores = m["log_loss"] is None  # a hinge-loss model's raw class scores
        return [
            ("table", ["Metric", "Value"], [
                ["Accuracy", _number(m["accuracy"])],
                [f"Top-{k} accuracy", _number(m["top_k_accuracy"])],
                ["Macro F1", _number(m["macro_f1"])],
                ["Weighted F1", _number(m["weighted_f1"])],
            ] + ([] if scores else [
                ["Log loss (nats)", _number(m["log_loss"])],
                [f"Expected calibration error ({m['ece_bins']} equal-width bins)",
                 _number(m["ece"])],
            ])),
            ("p", f"Top-k accuracy uses k = {k} (default: min(5, classes - 1)). Metrics are "
                  "computed with scikit-learn from the predicted "
                  + ("class scores; the prediction is the class of highest score." if scores
                     else "probabilities; the prediction is the class of highest probability.")),
            ("h2", "Per-class precision, recall and F1"),
            ("table", ["Class", "Precision", "Recall", "F1", "Support"],
             [[name, _number(v["precision"]), _number(v["recall"]), _number(v["f1"]),
               v["support"]] for name, v in m["per_class"].items()]
             + [[f"{average} average", _number(m[f"{average}_precision"]),
                 _number(m[f"{average}_recall"]), _number(m[f"{average}_f1"]),
                 m["num_examples"]] for average in ("macro", "weighted")]),
            ("p", f"'{UNDEFINED}' marks a ratio with a zero denominator (a class never "
                  "predicted has no precision; a class absent from the data has no recall); "
                  "it is left out of the macro average. The weighted average weights each "
                  "class by its support."),
            ("h2", "Confusion matrix"),
            ("image", "confusion_matrix.png", "Confusion matrix"),
            ("p", "Rows are the true class, columns the predicted class. Most confused pairs:"),
            ("table", ["True class", "Predicted as", "Count", "Share of true class"],
             [[p["true"], p["predicted"], p["count"], _number(p["fraction_of_true"])]
              for p in m["most_confused"]] or [["none", "", 0, ""]]),
        ]

    def _probability_blocks(self):
        """Calibration, accuracy against confidence and the most confident mistakes."""
        m = self.metrics
        mistakes = m["most_confident_mistakes"]
        return [
            ("h2", "Calibration"),
            ("p", f"Expected calibration error {m['ece']:.4f}: the top-1 confidence is split "
                  f"into {m['ece_bins']} equal-width bins and ECE is the average, weighted by "
                  "bin size, of |accuracy - mean confidence| in each bin."),
            ("image", "reliability.png", "Reliability diagram"),
            ("h2", "Accuracy against confidence"),
            ("image", "confidence.png", "Accuracy against coverage and predictive entropy"),
            ("table", ["Most confident share kept", "Accuracy", "Lowest confidence kept"],
             [[f"{c:.0%}", _number(a), _number(t)] for c, a, t in zip(
                 *(m["accuracy_by_coverage"][key]
                   for key in ("coverage", "accuracy", "min_confidence")))]),
            ("h2", "Most confident mistakes"),
            *([("image", "mistakes.png", "Most confident mistakes")]
              if "mistakes.png" in self._figures else []),
            ("table", ["Example index", "True class", "Predicted", "Confidence"],
             [[e["index"], e["true"], e["predicted"], _number(e["confidence"])]
              for e in mistakes]) if mistakes else ("p", "No mistakes."),
        ]

    def _diagnosis_blocks(self):
        d = self.diagnosis
        return [
            ("h2", f"Learning curves: {d.verdict}"),
            ("p", d.explanation),
            ("p", f"Rules: {d.thresholds.describe()}"),
            ("image", "learning_curves.png", "Learning curves"),
        ]

    def _uncertainty_blocks(self):
        uncertainty = self.metrics["uncertainty"]
        k = self.metrics["top_k"]
        rows = [
            [label, _number(v["accuracy"]), _number(v["top_k_accuracy"]),
             _number(v["macro_f1"]), _number(v["log_loss"]), _number(v["ece"]),
             _number(v["mean_entropy_correct"]), _number(v["mean_entropy_wrong"]),
             _number(v["error_detection_auroc"]),
             _number(v["mean_variance"]) if "mean_variance" in v else "n/a"]
            for label, v in uncertainty.items()
        ]
        notes = []
        if "mc dropout" in uncertainty:
            mc = uncertainty["mc dropout"]
            notes.append(
                f"MC dropout: mean of {mc['passes']} stochastic passes with only the dropout "
                f"layers active ({', '.join(mc['stochastic_layers'])}); BatchNormalization "
                "and every other layer run in inference mode.")
        if "ensemble" in uncertainty:
            ensemble = uncertainty["ensemble"]
            notes.append(
                f"Ensemble: mean of {len(ensemble['members'])} models' probabilities; member "
                "accuracies " + ", ".join(
                    f"{name} {_number(a)}" for name, a in zip(
                        ensemble["members"], ensemble["member_accuracy"]))
                + f"; majority vote accuracy {_number(ensemble['vote_accuracy'])} "
                "(ties go to the lower class index).")
        return [
            ("h2", "Uncertainty: single model, MC dropout and ensemble"),
            ("table", ["Predictor", "Accuracy", f"Top-{k}", "Macro F1", "Log loss", "ECE",
                       "Entropy (right)", "Entropy (wrong)", "Error AUROC",
                       "Mean variance"], rows),
            ("p", "Entropy is the predictive entropy (nats) of the mean prediction. Error "
                  "AUROC: how well the entropy ranks wrong predictions above right ones (0.5 "
                  "= chance). Mean variance: variance, across passes or members, of the "
                  "probability of the predicted class, averaged over examples."),
            ("list", notes),
        ]


def _number(value):
    """Formats a metric with 4 decimals; None (undefined) as 'undefined'."""
    if value is None:
        return UNDEFINED
    return f"{value:.4f}"


def _markdown_row(cells):
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
