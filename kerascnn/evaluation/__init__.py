"""Evaluation: scikit-learn metrics (classes or regression), plots, fit diagnosis, uncertainty."""

from kerascnn.evaluation.diagnosis import Diagnosis
from kerascnn.evaluation.diagnosis import FitThresholds
from kerascnn.evaluation.diagnosis import diagnose
from kerascnn.evaluation.evaluator import evaluate
from kerascnn.evaluation.metrics import classification_metrics
from kerascnn.evaluation.metrics import regression_metrics
from kerascnn.evaluation.report import EvaluationReport
from kerascnn.evaluation.uncertainty import monte_carlo_model
