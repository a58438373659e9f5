"""A search's results: scikit-learn's `cv_results_` layout, results.json, the CSV, the plot."""

import csv
import io
import json

import numpy as np

from kerascnn import figures


def public_values(values):
    """A trial's hyperparameter values without KerasTuner's bookkeeping ("tuner/...")."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def ranks(scores, direction):
    """1 for the best score, ties share the lowest rank (scikit-learn's `rank_test_score`)."""
    scores = np.asarray(scores, dtype=float)
    better = -scores if direction == "max" else scores
    return [int(1 + np.sum(better < b)) for b in better]


def cv_results(trials, direction):
    """Returns the completed trials in scikit-learn's `cv_results_` layout (plain lists).

    Keys: `mean_fit_time`, `std_fit_time`, `param_<name>`, `params`, `split<k>_test_score`,
    `mean_test_score`, `std_test_score` (population standard deviation, as scikit-learn),
    `rank_test_score`, and `trial_id`. Test scores follow scikit-learn's convention that
    greater is better: a minimised objective (a loss or an error) is negated, as its
    "neg_log_loss", "neg_mean_squared_error" and "neg_mean_absolute_error" scorers report
    them; results.json keeps each objective's own sign.

    Args:
        trials: trial records (dicts with hyperparameters, fold_scores, folds).
        direction: the objective's direction, "max" or "min".
    """
    sign = 1.0 if direction == "max" else -1.0
    done = [t for t in trials if t["status"] == "completed"]
    params = [public_values(t["hyperparameters"]) for t in done]
    names = sorted({name for p in params for name in p})
    fit_times = [[f["seconds"] for f in t["folds"]] for t in done]
    results = {
        "mean_fit_time": [float(np.mean(s)) for s in fit_times],
        "std_fit_time": [float(np.std(s)) for s in fit_times],
        **{f"param_{name}": [p.get(name) for p in params] for name in names},
        "params": params,
    }
    scores = [sign * np.asarray(t["fold_scores"], dtype=float) for t in done]
    splits = max((len(s) for s in scores), default=0)
    for k in range(splits):
        results[f"split{k}_test_score"] = [float(s[k]) for s in scores]
    means = [float(np.mean(s)) for s in scores]
    results["mean_test_score"] = means
    results["std_test_score"] = [float(np.std(s)) for s in scores]
    results["rank_test_score"] = ranks(means, "max")
    results["trial_id"] = [t["trial_id"] for t in done]
    return results


def cv_results_csv(results):
    """Formats a `cv_results` dict as CSV text, one row per trial (`params` as JSON)."""
    columns = list(results)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for i in range(len(results["params"])):
        writer.writerow([json.dumps(results[c][i], sort_keys=True) if c == "params"
                         else results[c][i] for c in columns])
    return out.getvalue()


def ranked_table(trials, direction, objective, limit=10):
    """A text table of the best trials: rank, score ± spread, fold scores, hyperparameters."""
    done = [t for t in trials if t["status"] == "completed"]
    order = sorted(done, key=lambda t: -t["score"] if direction == "max" else t["score"])
    lines = [f"{'rank':>4}  {'trial':>5}  {objective + ' (mean ± std)':>24}  folds  hyperparameters"]
    for rank, t in enumerate(order[:limit], 1):
        folds = " ".join(f"{s:.3f}" for s in t["fold_scores"])
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in public_values(t["hyperparameters"]).items())
        lines.append(f"{rank:>4}  {t['trial_id']:>5}  {t['score']:>15.4f} ± {t['std']:.4f}  "
                     f"[{folds}]  {values}")
    return "\n".join(lines)


def write_plot(path, trials, objective):
    """Writes a PNG of each trial's mean score with its fold spread, atomically."""
    done = [t for t in trials if t["status"] == "completed"]
    figure = figures.figure(max(4.0, 0.4 * len(done) + 2), 3.2, layout="tight")
    axes = figure.subplots()
    for i, t in enumerate(done):
        axes.scatter([i] * len(t["fold_scores"]), t["fold_scores"], s=10, color="0.6", zorder=1)
    axes.errorbar(range(len(done)), [t["score"] for t in done], yerr=[t["std"] for t in done],
                  fmt="o", color="C0", capsize=3, zorder=2, label="mean ± std over folds")
    axes.set_xticks(range(len(done)), [t["trial_id"] for t in done], rotation=90, fontsize=7)
    axes.set_xlabel("trial")
    axes.set_ylabel(objective)
    axes.legend(fontsize=8)
    figures.write_png(figure, path)
