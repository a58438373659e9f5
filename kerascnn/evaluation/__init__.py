"""Evaluation of classifiers: scikit-learn metrics, plots, fit diagnosis and uncertainty."""

from kerascnn.evaluation.diagnosis import Diagnosis
from kerascnn.evaluation.diagnosis import FitThresholds
from kerascnn.evaluation.diagnosis import diagnose
from kerascnn.evaluation.evaluator import evaluate
from kerascnn.evaluation.metrics import classification_metrics
from kerascnn.evaluation.report import EvaluationReport
from kerascnn.evaluation.uncertainty import monte_carlo_model
