"""A search's results: scikit-learn's `cv_results_` layout, results.json, the CSV, the plot."""

import csv
import io
import json
import math

import numpy as np

from kerascnn import figures


def public_values(values):
    """A trial's hyperparameter values without KerasTuner's bookkeeping ("tuner/..."), floats
    rounded to 12 significant digits (a stepped range's 0.1 * 3 reads 0.3, not
    0.30000000000000004)."""
    return {k: clean_value(v) for k, v in values.items() if not k.startswith("tuner/")}


def clean_value(value):
    """`value`, a float rounded to 12 significant digits: its repr round-trips, short."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    return value


def trial_order(trial):
    """Sort key of a trial record: its id as a number (KerasTuner pads ids to the width of
    max_trials, so a grown search mixes "9" and "10")."""
    trial_id = trial["trial_id"]
    return (int(trial_id), trial_id) if str(trial_id).isdigit() else (math.inf, trial_id)


def ranks(scores, direction):
    """1 for the best score, ties share the lowest rank, NaN (failed or pruned) ranks last
    (scikit-learn's `rank_test_score`)."""
    scores = np.asarray(scores, dtype=float)
    better = -scores if direction == "max" else scores
    finite = better[~np.isnan(better)]
    last = 1 + len(finite)
    return [int(1 + np.sum(finite < b)) if not np.isnan(b) else last for b in better]


def cv_results(trials, direction):
    """Returns every trial in scikit-learn's `cv_results_` layout (plain lists), one row each.

    Keys: `mean_fit_time`, `std_fit_time`, `mean_score_time`, `std_score_time`,
    `param_<name>`, `params`, `split<k>_test_score`, `mean_test_score`, `std_test_score`
    (population standard deviation, as scikit-learn), `rank_test_score`, `status` and
    `trial_id`. Test scores follow scikit-learn's convention that greater is better: a
    minimised objective (a loss or an error) is negated, as its "neg_log_loss",
    "neg_mean_squared_error" and "neg_mean_absolute_error" scorers report them; results.json
    keeps each objective's own sign. As scikit-learn's `error_score=np.nan`, a failed
    trial's scores are NaN and it ranks last; so does a pruned one's mean (its folds run
    stay in `split<k>_test_score`, the others are NaN).

    Args:
        trials: trial records (dicts with hyperparameters, fold_scores, folds, status), in
            trial order.
        direction: the objective's direction, "max" or "min".
    """
    sign = 1.0 if direction == "max" else -1.0
    params = [public_values(t["hyperparameters"]) for t in trials]
    names = sorted({name for p in params for name in p})
    fit_times = [[f["seconds"] for f in t["folds"]] for t in trials]
    score_times = [[f.get("score_seconds", math.nan) for f in t["folds"]] for t in trials]
    results = {
        "mean_fit_time": [_mean(s) for s in fit_times],
        "std_fit_time": [_std(s) for s in fit_times],
        "mean_score_time": [_mean(s) for s in score_times],
        "std_score_time": [_std(s) for s in score_times],
        **{f"param_{name}": [p.get(name) for p in params] for name in names},
        "params": params,
    }
    scores = [sign * np.asarray(t["fold_scores"], dtype=float) for t in trials]
    splits = max((len(s) for s in scores), default=0)
    for k in range(splits):
        results[f"split{k}_test_score"] = [float(s[k]) if k < len(s) else math.nan
                                           for s in scores]
    completed = [t["status"] == "completed" for t in trials]
    means = [_mean(s) if done else math.nan for s, done in zip(scores, completed)]
    results["mean_test_score"] = means
    results["std_test_score"] = [_std(s) if done else math.nan
                                 for s, done in zip(scores, completed)]
    results["rank_test_score"] = ranks(means, "max")
    results["status"] = [t["status"] for t in trials]
    results["trial_id"] = [t["trial_id"] for t in trials]
    return results


def _mean(values):
    return float(np.mean(values)) if len(values) else math.nan


def _std(values):
    return float(np.std(values)) if len(values) else math.nan


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
    for t in trials:
        if t["status"] == "failed":
            lines.append(f"{'-':>4}  {t['trial_id']:>5}  failed: {t.get('error', '')}")
        elif t["status"] == "pruned":
            lines.append(f"{'-':>4}  {t['trial_id']:>5}  pruned after {len(t['fold_scores'])} "
                         f"fold(s), running mean {t['score']:.4f}")
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
