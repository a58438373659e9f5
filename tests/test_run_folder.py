"""RunFolder: a folder kerascnn writes owns only its files, is locked, and keeps paths inside."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from kerascnn.run_folder import LOCK, MANIFEST, RunFolder, RunFolderError

HOLDER = textwrap.dedent("""
    import sys
    from kerascnn.run_folder import RunFolder
    with RunFolder(sys.argv[1], "train") as run:
        run.write_text("model.txt", "held")
        print("ready", flush=True)
        sys.stdin.readline()
""")


def _start_holder(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def test_second_process_is_refused_while_first_holds_the_lock_then_takes_over_after_kill(tmp_path):
    folder = tmp_path / "run"
    holder = _start_holder(folder)
    try:
        with pytest.raises(RunFolderError, match=rf"in use by another kerascnn process \(pid {holder.pid}\)"):
            with RunFolder(folder, "train"):
                pass
        # A second real process is refused too (the lock is per process, not per object).
        other = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], input="\n",
                               capture_output=True, text=True)
        assert other.returncode != 0 and f"pid {holder.pid}" in other.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder's lock file still names it, but the kernel dropped its lock.
    assert (folder / LOCK).read_text().strip() == str(holder.pid)
    with RunFolder(folder, "train") as run:
        assert (folder / LOCK).read_text().strip() == str(os.getpid())
        assert run.owns("model.txt")


def test_foreign_files_refuse_the_folder_and_survive(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "mine.h5").write_text("keep")
    (tmp_path / "report.md").write_text("my notes")
    with pytest.raises(RunFolderError, match=r"checkpoints/mine\.h5, report\.md.*choose an empty "
                                             r"folder or another --out"):
        with RunFolder(tmp_path, "train"):
            pass
    assert (tmp_path / "checkpoints" / "mine.h5").read_text() == "keep"
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", "report.md"]  # nothing written


def test_a_file_dropped_into_a_run_folder_later_is_foreign(tmp_path):
    with RunFolder(tmp_path, "train") as run:
        run.write_json("checkpoints/state.json", {"epoch": 1})
    (tmp_path / "checkpoints" / "mine.h5").write_text("keep")
    with pytest.raises(RunFolderError, match=r"checkpoints/mine\.h5"):
        with RunFolder(tmp_path, "train"):
            pass


def test_error_names_at_most_five_foreign_entries(tmp_path):
    for i in range(7):
        (tmp_path / f"f{i}.txt").write_text("x")
    with pytest.raises(RunFolderError, match=r"f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 2 more"):
        with RunFolder(tmp_path, "train"):
            pass


def test_manifest_lists_claims_and_other_kind_is_refused(tmp_path):
    with RunFolder(tmp_path, "train") as run:
        run.write_json("run.json", {"seed": 1})
        run.write_text("history.csv", "epoch\n")
        assert run.owns("run.json") and not run.owns("other.txt")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["kind"] == "train" and manifest["files"] == ["history.csv", "run.json"]
    with pytest.raises(RunFolderError, match="holds a train run, not a search run"):
        with RunFolder(tmp_path, "search"):
            pass


@pytest.mark.parametrize("relative", ["../victim.keras", "/etc/passwd", "a/../../b", "..", ""])
def test_paths_must_stay_inside(tmp_path, relative):
    with RunFolder(tmp_path / "run", "train") as run:
        with pytest.raises(RunFolderError, match="inside"):
            run.path_of(relative)


def test_symbolic_link_leaving_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with RunFolder(tmp_path / "run", "train") as run:
        os.symlink(outside, tmp_path / "run" / "link")
        with pytest.raises(RunFolderError, match="outside the folder"):
            run.path_of("link/victim.keras")


def test_remove_deletes_only_claimed_entries(tmp_path):
    with RunFolder(tmp_path, "train") as run:
        run.write_text("checkpoints/epoch-1.keras", "model")
        run.remove("checkpoints/epoch-1.keras")
        assert not run.owns("checkpoints/epoch-1.keras")
        assert not (tmp_path / "checkpoints").exists()  # the folder it made for it goes too
        (tmp_path / "yours.txt").write_text("keep")
        with pytest.raises(RunFolderError, match="not written by kerascnn"):
            run.remove("yours.txt")
    assert (tmp_path / "yours.txt").exists()


def test_interrupted_atomic_writes_are_cleaned_on_entry(tmp_path):
    with RunFolder(tmp_path, "train") as run:
        run.write_text("checkpoints/state.json", "{}")
    (tmp_path / ".tmp-abcd1234.keras").write_text("partial")
    (tmp_path / "checkpoints" / ".tmp-zyxw9876").write_text("partial")
    with RunFolder(tmp_path, "train"):
        pass
    assert sorted(os.listdir(tmp_path)) == sorted([LOCK, MANIFEST, "checkpoints"])
    assert os.listdir(tmp_path / "checkpoints") == ["state.json"]


def test_child_folder_is_claimed_and_removed_without_touching_foreign_files(tmp_path):
    with RunFolder(tmp_path, "search") as search:
        with search.child("trials/0", "train") as trial:
            trial.write_json("run.json", {})
        (tmp_path / "trials" / "0" / "mine.txt").write_text("keep")
        assert search.owns("trials/0/run.json")
        with pytest.raises(RunFolderError, match="mine.txt"):
            search.remove("trials/0")
        assert (tmp_path / "trials" / "0" / "mine.txt").exists()
        assert not (tmp_path / "trials" / "0" / "run.json").exists()


def test_non_exclusive_workers_claim_children_concurrently(tmp_path):
    script = textwrap.dedent("""
        import sys
        from kerascnn.run_folder import RunFolder
        with RunFolder(sys.argv[1], "search", exclusive=False) as search:
            for i in range(20):
                with search.child(f"trials/{sys.argv[2]}-{i}", "train") as trial:
                    trial.write_text("done", "1")
    """)
    with RunFolder(tmp_path, "search"):
        workers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(w)])
                   for w in range(2)]
        assert [w.wait() for w in workers] == [0, 0]
    files = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert len(files) == 40  # no claim lost to a concurrent manifest rewrite
    with RunFolder(tmp_path, "search"):
        pass


def test_a_delegated_folder_owns_only_its_librarys_files_at_any_depth(tmp_path):
    with RunFolder(tmp_path, "train") as run:
        logs = run.claim("logs", delegate=("events.out.tfevents.*",))
        os.makedirs(os.path.join(logs, "train", "plugins"))
        for name in ("train/events.out.tfevents.1.v2", "train/plugins/events.out.tfevents.2"):
            with open(os.path.join(logs, name), "w") as f:
                f.write("event")
    with RunFolder(tmp_path, "train") as run:  # only the library's files: not foreign
        assert run.owns("logs/train/events.out.tfevents.1.v2")
        assert not run.owns("logs/train/notes.txt")
    (tmp_path / "logs" / "train" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"logs/train/notes\.txt"):
        with RunFolder(tmp_path, "train"):
            pass
    # A file dropped in while the run holds the folder: removing the folder deletes the
    # library's files and keeps the user's.
    (tmp_path / "logs" / "train" / "notes.txt").unlink()
    with RunFolder(tmp_path, "train") as run:
        (tmp_path / "logs" / "train" / "notes.txt").write_text("mine")
        with pytest.raises(RunFolderError, match=r"notes\.txt.*left in place"):
            run.remove("logs")
    assert (tmp_path / "logs" / "train" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "logs" / "train" / "events.out.tfevents.1.v2").exists()
    assert not (tmp_path / "logs" / "train" / "plugins").exists()


def test_a_command_refused_inside_a_new_folder_leaves_no_folder_behind(tmp_path):
    # Issue 24, item 11: a mistyped --data left an empty run folder (and its parents).
    out = tmp_path / "runs" / "new"
    with pytest.raises(ValueError, match="digitz"):
        with RunFolder(out, "train"):
            raise ValueError("unknown data set 'digitz'")
    assert os.listdir(tmp_path) == []
    # A folder that held a run before keeps it: only what this entry created goes.
    with RunFolder(out, "train") as run:
        run.write_text("model.txt", "kept")
    with pytest.raises(ValueError):
        with RunFolder(out, "train"):
            raise ValueError("refused")
    assert (out / "model.txt").read_text() == "kept"


def test_the_foreign_walk_stops_early_on_a_huge_folder(tmp_path):
    for i in range(150):
        (tmp_path / f"f{i:03d}.txt").write_text("x")
    with pytest.raises(RunFolderError, match=r"f\d{3}\.txt and over 95 more"):
        with RunFolder(tmp_path, "train"):
            pass
