"""One process of a distributed search; KerasTuner's environment variables say which.

Usage: KERASTUNER_TUNER_ID=chief|worker0|... KERASTUNER_ORACLE_IP=127.0.0.1
       KERASTUNER_ORACLE_PORT=N python tuning_worker_job.py OUT
"""

import json
import os
import sys

from tuning_models import SPACE, tiny

import kerascnn

result = kerascnn.tune(tiny, "digits", space=SPACE, folds=2, max_trials=4, epochs=1,
                       out=sys.argv[1], seed=0, refit=True, verbose=0)
print(json.dumps({"tuner_id": os.environ["KERASTUNER_TUNER_ID"], "pid": os.getpid(),
                  "trials": [t["trial_id"] for t in result.trials],
                  "test_accuracy": result.test_metrics.get("accuracy")}))
