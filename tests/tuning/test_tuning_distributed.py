"""KerasTuner's chief/worker mode: one chief serving the Oracle, two workers on 127.0.0.1."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_share_one_search(tmp_path):
    port = _free_port()
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    script = str(HERE / "tuning_worker_job.py")
    chief = subprocess.Popen([sys.executable, script, str(tmp_path)], text=True,
                             env={**base, "KERASTUNER_TUNER_ID": "chief"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers = [subprocess.Popen([sys.executable, script, str(tmp_path)], text=True,
                                env={**base, "KERASTUNER_TUNER_ID": f"worker{i}"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i in range(2)]
    outputs = []
    for process in [*workers, chief]:
        stdout, stderr = process.communicate(timeout=400)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    *worker_runs, chief_run = outputs
    # Each worker's result lists the trials in the folder when it stopped; the chief sees all.
    assert sorted(chief_run["trials"]) == ["0", "1", "2", "3"]
    assert chief_run["test_accuracy"] > 0.5
    folders = sorted(p.name for p in (tmp_path / "trials").iterdir())
    assert folders == ["0", "1", "2", "3"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["trials"]) == 4
    assert {t["tuner_id"] for t in results["trials"]} == {"worker0", "worker1"}
    assert all(w["trials"] for w in worker_runs)
