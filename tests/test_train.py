"""Training a shard: it learns, it resumes to the same numbers, it refuses what is not its own."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

import grokpipe
from grokpipe.errors import GrokpipeError
from grokpipe.model import ModelConfig
from grokpipe.spec import DEFAULT_BACKEND, NUMERICS_VERSION, EvalSchedule, RunSpec, ShardSpec
from grokpipe.store import read_shard
from grokpipe.train import load_checkpoint, train_shard

TINY = ["--task", "add", "--p", "11", "--d-model", "16", "--n-heads", "2", "--d-head", "8", "--d-mlp", "32",
        "--lr", "1e-2", "--threads", "1", "--quiet"]


def _spec(steps, **kw):
    runs = tuple(RunSpec(n_train=d, weight_decay=wd, seed=s, lr=1e-2) for d, wd, s in [(60, 1.0, 0), (60, 0.5, 1), (90, 1.0, 2)])
    return ShardSpec(task="add", p=11, model=ModelConfig(11, 16, 2, 8, 32), runs=runs, steps=steps,
                     schedule=EvalSchedule(every=25, per_decade=5), checkpoint_every=40, **kw)


def _curves(path):
    return {r.run_id: (r.eval_step, r.curves) for r in read_shard(path).runs}


def _assert_same_curves(a, b):
    assert a.keys() == b.keys()
    for rid in a:
        assert np.array_equal(a[rid][0], b[rid][0])
        for m in a[rid][1]:
            assert np.array_equal(a[rid][1][m], b[rid][1][m], equal_nan=True), m


def test_training_fits_the_training_set(tmp_path):
    final = train_shard(_spec(300), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    assert np.all(final["train_acc"] == 1.0)
    runs = read_shard(tmp_path / "s.h5").runs
    assert len(runs) == 3 and runs[0].progress["done"]
    assert runs[0].hparams["n_train"] == 60 and runs[2].hparams["n_train"] == 90


def test_resume_gives_identical_curves_and_parameters(tmp_path):
    train_shard(_spec(200), tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    train_shard(_spec(120), tmp_path / "b.h5", tmp_path / "b.pt", threads=1, show_progress=False)
    assert 120 in read_shard(tmp_path / "b.h5").runs[0].eval_step  # its cap's evaluation, which 200's schedule lacks
    train_shard(_spec(200), tmp_path / "b.h5", tmp_path / "b.pt", threads=1, show_progress=False)  # raise steps: resume
    _assert_same_curves(_curves(tmp_path / "a.h5"), _curves(tmp_path / "b.h5"))
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])


def test_resume_after_kill_gives_identical_curves(tmp_path):
    args = [sys.executable, "-m", "grokpipe", "train", *TINY, "--n-train", "60", "--seed", "0", "1",
            "--steps", "1500", "--checkpoint-every", "50", "--eval-every", "50"]
    subprocess.run(args + ["--out", str(tmp_path / "a.h5")], check=True, timeout=300)
    for kill_after in (1.5, 2.5):
        proc = subprocess.Popen(args + ["--out", str(tmp_path / "b.h5")])
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(args + ["--out", str(tmp_path / "b.h5")], timeout=300)
    assert done.returncode == 0
    _assert_same_curves(_curves(tmp_path / "a.h5"), _curves(tmp_path / "b.h5"))


def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path):
    args = [sys.executable, "-m", "grokpipe", "train", *TINY, "--n-train", "60", "--steps", "100000",
            "--checkpoint-every", "100000", "--out", str(tmp_path / "s.h5")]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "s.h5").exists() and time.monotonic() < deadline:  # the loop (and its handler) is up
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "checkpoint saved" in err and "Traceback" not in err
    assert load_checkpoint(tmp_path / "s.pt")["step"] > 0


def test_ungrokking_starts_from_the_checkpoint_run_of_the_same_seed(tmp_path):
    full = ShardSpec(task="add", p=11, model=ModelConfig(11, 16, 2, 8, 32),
                     runs=(RunSpec(121, 1.0, 0, 1e-2), RunSpec(121, 1.0, 1, 1e-2)), steps=50)
    train_shard(full, tmp_path / "full.h5", tmp_path / "full.pt", threads=1, show_progress=False)
    reduced = ShardSpec(task="add", p=11, model=full.model, runs=(RunSpec(40, 1.0, 1, 1e-2),), steps=0)
    train_shard(reduced, tmp_path / "r.h5", tmp_path / "r.pt", init_from=tmp_path / "full.pt", threads=1,
                show_progress=False)
    source, start = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(tmp_path / "r.pt")
    assert torch.equal(start["params"]["W_in"][0], source["params"]["W_in"][1])
    assert read_shard(tmp_path / "r.h5").runs[0].hparams["init"] == "checkpoint"


def test_ungrokking_continues_the_optimiser_so_training_goes_on_as_if_never_stopped(tmp_path):
    """Continuing on the same data from a checkpoint equals never stopping: parameters, AdamW
    moments and step count all carry over (a fresh AdamW would jolt every parameter by ~lr)."""
    model = ModelConfig(11, 16, 2, 8, 32)
    run = RunSpec(80, 1.0, 0, 1e-2)
    schedule = EvalSchedule(every=10, per_decade=0)
    straight = ShardSpec(task="add", p=11, model=model, runs=(run,), steps=60, schedule=schedule)
    train_shard(straight, tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    first = ShardSpec(task="add", p=11, model=model, runs=(run,), steps=40, schedule=schedule)
    train_shard(first, tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    rest = ShardSpec(task="add", p=11, model=model, runs=(run,), steps=20, schedule=schedule)
    train_shard(rest, tmp_path / "b.h5", tmp_path / "b.pt", init_from=tmp_path / "a.pt", threads=1,
                show_progress=False)
    end_straight, end_continued = load_checkpoint(tmp_path / "s.pt"), load_checkpoint(tmp_path / "b.pt")
    for name, value in end_straight["params"].items():
        assert torch.equal(end_continued["params"][name], value), name
    assert end_continued["optim"]["step_count"] == 60


def test_an_out_file_that_is_not_ours_is_never_overwritten(tmp_path):
    out = tmp_path / "precious.h5"
    out.write_bytes(b"the user's thesis")
    with pytest.raises(GrokpipeError, match="not a grokpipe shard file"):
        train_shard(_spec(10), out, tmp_path / "s.pt", threads=1, show_progress=False)
    assert out.read_bytes() == b"the user's thesis"
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = [1, 2, 3]
    with pytest.raises(GrokpipeError, match="not a grokpipe shard file"):
        train_shard(_spec(10), tmp_path / "other.h5", tmp_path / "o.pt", threads=1, show_progress=False)


def test_a_checkpoint_of_another_shard_is_refused(tmp_path):
    train_shard(_spec(10), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    other = _spec(10, circuits=True)
    with pytest.raises(GrokpipeError, match="different shard"):
        train_shard(other, tmp_path / "t.h5", tmp_path / "s.pt", threads=1, show_progress=False)


def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "bad.pt"
    torch.save({"format": "grokpipe-checkpoint-1", "payload": Exploit()}, bad, pickle_protocol=2)
    with pytest.raises(GrokpipeError, match="corrupt or not a grokpipe checkpoint"):
        load_checkpoint(bad)
    assert not marker.exists()
    pickle.dumps(0)  # keep the import used


def test_a_torn_checkpoint_is_refused(tmp_path):
    train_shard(_spec(10), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    data = (tmp_path / "s.pt").read_bytes()
    (tmp_path / "torn.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(GrokpipeError, match="corrupt"):
        load_checkpoint(tmp_path / "torn.pt")


def test_training_members_in_passes_matches_one_pass(tmp_path, monkeypatch):
    """The CPU's passes (each padded to its own largest D) and the GPU's single pass give the same numbers."""
    import grokpipe.train as train_module

    one_pass = train_shard(_spec(60), tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False,
                           single_pass=True)
    monkeypatch.setattr(train_module, "CPU_EXAMPLES_PER_PASS", 90)  # one member per pass
    assert train_module.member_passes([60, 60, 90], torch.device("cpu")) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert train_module.member_passes([60, 60, 90], torch.device("cpu"), single_pass=True) == [slice(0, 3)]
    chunked = train_shard(_spec(60), tmp_path / "b.h5", tmp_path / "b.pt", threads=1, show_progress=False)
    for metric in ("train_loss", "test_loss", "param_norm"):
        assert np.allclose(one_pass[metric], chunked[metric], rtol=1e-4), metric


def test_a_pass_is_padded_only_to_its_own_largest_training_set():
    from grokpipe.train import CPU_EXAMPLES_PER_PASS, ShardData

    runs = tuple(RunSpec(n_train=d, weight_decay=1.0, seed=s) for s, d in enumerate((20, 25, 100, 110)))
    spec = ShardSpec(task="add", p=11, model=ModelConfig(11, 16, 2, 8, 32), runs=runs, steps=1)
    data = ShardData(spec, torch.device("cpu"))
    assert CPU_EXAMPLES_PER_PASS >= 4 * 121  # all four fit one pass here
    (only,) = data.passes
    assert only.batch.x.shape == (4, 110)
    import grokpipe.train as train_module

    small = train_module.member_passes([20, 25, 100, 110], torch.device("cpu"))
    assert small == [slice(0, 4)]
    try:
        train_module.CPU_EXAMPLES_PER_PASS = 60
        data = ShardData(spec, torch.device("cpu"))
    finally:
        train_module.CPU_EXAMPLES_PER_PASS = CPU_EXAMPLES_PER_PASS
    assert [p.batch.x.shape for p in data.passes] == [(2, 25), (1, 100), (1, 110)]


def test_runs_with_their_own_lr_and_labels_train_as_if_alone(tmp_path):
    """A shard whose runs differ in learning rate or random labels trains each run correctly."""
    model = ModelConfig(11, 16, 2, 8, 32)
    runs = (RunSpec(60, 1.0, 0, 1e-2), RunSpec(60, 1.0, 1, 3e-3, random_labels=True), RunSpec(90, 0.5, 2, 5e-3))
    together = train_shard(ShardSpec("add", 11, model, runs, 40), tmp_path / "t.h5", tmp_path / "t.pt", threads=1,
                           show_progress=False)
    for i, run in enumerate(runs):
        alone = train_shard(ShardSpec("add", 11, model, (run,), 40), tmp_path / f"{i}.h5", tmp_path / f"{i}.pt",
                            threads=1, show_progress=False)
        for metric in ("train_loss", "train_acc", "param_norm"):
            assert np.allclose(together[metric][i], alone[metric][0], rtol=1e-4), (i, metric)


def test_a_run_alone_in_its_shard_stops_where_it_first_passes_the_stopping_criterion(tmp_path):
    """Not at the plain criterion's first pass: the margin holds whatever the shard's size."""
    from grokpipe.convergence import CRITERION, STOP_CRITERION, run_converged

    spec = ShardSpec("add", 11, ModelConfig(11, 16, 2, 8, 32), (RunSpec(121, 1.0, 0, 1e-2),), 5000,
                     schedule=EvalSchedule(every=20, per_decade=0), stop_when_converged=True)
    train_shard(spec, tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    (run,) = read_shard(tmp_path / "s.h5").runs
    assert run.progress["done"] and run.eval_step[-1] < 5000
    before = run.eval_step[:-1], {k: v[:-1] for k, v in run.curves.items()}
    assert run_converged(run.eval_step, run.curves, 1e-2, STOP_CRITERION)
    assert not run_converged(*before, 1e-2, STOP_CRITERION) and run_converged(*before, 1e-2, CRITERION)


def test_a_run_that_must_settle_its_logit_stops_where_it_first_passes_with_it(tmp_path):
    """settle_logit reaches the trainer's stopping rule and the run's record, and the run's numbers
    are those of the run without it, only longer."""
    from grokpipe.analysis import converged
    from grokpipe.convergence import STOP_CRITERION, run_converged

    plain = ShardSpec("add", 11, ModelConfig(11, 16, 2, 8, 32), (RunSpec(121, 1.0, 0, 1e-2, random_labels=True),), 3000,
                      schedule=EvalSchedule(every=20, per_decade=0), stop_when_converged=True)
    settling = dataclasses.replace(plain, settle_logit=True)
    assert settling.identity != plain.identity
    for name, spec in (("plain", plain), ("settling", settling)):
        train_shard(spec, tmp_path / f"{name}.h5", tmp_path / f"{name}.pt", threads=1, show_progress=False)
    (short,), (run,) = read_shard(tmp_path / "plain.h5").runs, read_shard(tmp_path / "settling.h5").runs
    assert run.hparams["settle_logit"] is True and short.hparams["settle_logit"] is False
    n = len(short.eval_step)
    assert len(run.eval_step) > n and np.array_equal(run.curves["train_logit"][:n], short.curves["train_logit"])
    before = run.eval_step[:-1], {k: v[:-1] for k, v in run.curves.items()}
    assert run.eval_step[-1] < 3000  # stopped by the rule, not the cap (step 540 on the AMD EPYC): where it first passed it
    assert run_converged(run.eval_step, run.curves, 1e-2, STOP_CRITERION, settle_logit=True)
    assert not run_converged(*before, 1e-2, STOP_CRITERION, settle_logit=True)
    assert converged(short) and not converged(dataclasses.replace(short, hparams={**short.hparams, "settle_logit": True}))


def _stopping_spec(steps):
    """Runs that converge at different times: the D = 121 run at lr x wd = 1e-2 long before the others."""
    runs = (RunSpec(121, 1.0, 0, 1e-2), RunSpec(60, 0.3, 1, 3e-3), RunSpec(90, 0.1, 2, 3e-3))
    return ShardSpec("add", 11, ModelConfig(11, 16, 2, 8, 32), runs, steps, schedule=EvalSchedule(every=20, per_decade=0),
                     checkpoint_every=100, stop_when_converged=True)


def test_a_run_that_has_converged_stops_while_its_shard_mates_train_on(tmp_path):
    from grokpipe.convergence import CRITERION, STOP_CRITERION, run_converged

    train_shard(_stopping_spec(1500), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    keep_going = dataclasses.replace(_stopping_spec(1500), stop_when_converged=False)
    train_shard(keep_going, tmp_path / "all.h5", tmp_path / "all.pt", threads=1, show_progress=False)
    stopping, all_along = read_shard(tmp_path / "s.h5").runs, read_shard(tmp_path / "all.h5").runs
    early = stopping[0]
    # the run's record ends at the evaluation where it first passed the stopping criterion, which is
    # stricter than the claims' (it had passed that before)
    assert early.eval_step[-1] < 1000 and len(all_along[0].eval_step) == 76
    before = early.eval_step[:-1], {k: v[:-1] for k, v in early.curves.items()}
    assert run_converged(early.eval_step, early.curves, 1e-2, STOP_CRITERION)
    assert not run_converged(*before, 1e-2, STOP_CRITERION) and run_converged(*before, 1e-2, CRITERION)
    # every run's numbers are the same as in a shard where no run stops, digit for digit
    for run, reference in zip(stopping, all_along):
        n = len(run.eval_step)
        assert np.array_equal(run.eval_step, reference.eval_step[:n])
        for m in run.curves:
            assert np.array_equal(run.curves[m], reference.curves[m][:n], equal_nan=True), (run.run_id, m)
    assert len(stopping[1].eval_step) > len(early.eval_step)
    # and its parameters stayed where it stopped
    final = load_checkpoint(tmp_path / "s.pt")["params"]
    assert np.isclose(float(sum(v[0].double().pow(2).sum() for v in final.values())) ** 0.5,
                      early.curves["param_norm"][-1], rtol=1e-12)


def test_where_a_run_ends_does_not_depend_on_its_shard_mates(tmp_path):
    """The D = 121 run trained alone ends where it ends beside two runs that converge later (it is
    its shard's largest D, so its passes are padded alike and its numbers are the same)."""
    together = _stopping_spec(1500)
    alone = dataclasses.replace(together, runs=together.runs[:1])
    train_shard(together, tmp_path / "t.h5", tmp_path / "t.pt", threads=1, show_progress=False)
    train_shard(alone, tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    in_shard, (on_its_own,) = read_shard(tmp_path / "t.h5").runs[0], read_shard(tmp_path / "a.h5").runs
    assert on_its_own.eval_step[-1] < 1000 and np.array_equal(in_shard.eval_step, on_its_own.eval_step)
    for m in in_shard.curves:
        assert np.array_equal(in_shard.curves[m], on_its_own.curves[m], equal_nan=True), m


def test_a_shard_with_a_stopped_run_resumes_to_the_same_numbers(tmp_path):
    train_shard(_stopping_spec(1200), tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    train_shard(_stopping_spec(700), tmp_path / "b.h5", tmp_path / "b.pt", threads=1, show_progress=False)
    assert len(read_shard(tmp_path / "b.h5").runs[0].eval_step) < 35  # the first run stopped before step 700
    train_shard(_stopping_spec(1200), tmp_path / "b.h5", tmp_path / "b.pt", threads=1, show_progress=False)
    _assert_same_curves(_curves(tmp_path / "a.h5"), _curves(tmp_path / "b.h5"))
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])


def test_a_shard_that_ended_converged_trains_no_further_when_run_again_or_given_more_steps(tmp_path):
    """Its results depend on its spec alone, not on how often, or with which cap, it was run."""
    def spec(steps):
        runs = (RunSpec(121, 1.0, 0, 1e-2), RunSpec(100, 1.0, 1, 1e-2))
        return ShardSpec("add", 11, ModelConfig(11, 16, 2, 8, 32), runs, steps,
                         schedule=EvalSchedule(every=20, per_decade=0), stop_when_converged=True)

    train_shard(spec(5000), tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    once = _curves(tmp_path / "a.h5")
    assert next(iter(once.values()))[0][-1] < 1000  # it ended converged, long before its cap
    train_shard(spec(5000), tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    _assert_same_curves(once, _curves(tmp_path / "a.h5"))
    train_shard(spec(8000), tmp_path / "a.h5", tmp_path / "a.pt", threads=1, show_progress=False)
    _assert_same_curves(once, _curves(tmp_path / "a.h5"))


def test_a_checkpoint_beyond_the_steps_asked_for_is_refused(tmp_path):
    train_shard(_spec(80), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    with pytest.raises(GrokpipeError, match="is at step 80, beyond --steps 40"):
        train_shard(_spec(40), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)


def test_a_checkpoint_of_another_numerics_version_is_refused(tmp_path, monkeypatch):
    import grokpipe.checkpoint

    train_shard(_spec(10), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    monkeypatch.setattr(grokpipe.checkpoint, "NUMERICS_VERSION", 99)
    with pytest.raises(GrokpipeError, match=f"numerics version {NUMERICS_VERSION} of the trainer, this is version 99"):
        load_checkpoint(tmp_path / "s.pt")


def test_a_killed_writers_temporary_files_are_cleaned_up(tmp_path):
    dead = tmp_path / ".s.pt.999999999.tmp.pt"  # no process has this pid
    dead.write_bytes(b"half a checkpoint")
    alive = tmp_path / f".s.pt.{os.getppid()}.tmp.pt"  # a live process's, still writing: left alone
    alive.write_bytes(b"being written")
    train_shard(_spec(10), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    assert not dead.exists() and alive.exists()


def test_deterministic_algorithms_change_no_bit_on_the_cpu_are_recorded_and_switched_off_after(tmp_path):
    """The CPU's kernels are deterministic already, so the switch (meant for CUDA) must change no
    number; the file says it was on, and the process-wide switch is restored after training."""
    train_shard(_spec(60), tmp_path / "plain.h5", tmp_path / "plain.pt", threads=1, show_progress=False)
    train_shard(_spec(60), tmp_path / "det.h5", tmp_path / "det.pt", threads=1, show_progress=False, deterministic=True)
    _assert_same_curves(_curves(tmp_path / "plain.h5"), _curves(tmp_path / "det.h5"))
    assert not torch.are_deterministic_algorithms_enabled()
    assert read_shard(tmp_path / "det.h5").runs[0].provenance["deterministic_algorithms"] is True
    assert read_shard(tmp_path / "plain.h5").runs[0].provenance["deterministic_algorithms"] is False
    cli = [sys.executable, "-m", "grokpipe", "train", *TINY, "--n-train", "50", "--steps", "5", "--deterministic",
           "--out", str(tmp_path / "cli.h5")]
    subprocess.run(cli, check=True, timeout=120)
    assert read_shard(tmp_path / "cli.h5").runs[0].provenance["deterministic_algorithms"] is True


def test_training_runs_in_mkls_reproducible_mode_and_records_its_branch(tmp_path):
    """grokpipe switches MKL's reproducible mode on when imported (grokpipe.MKL_BRANCH); without it
    an AMD EPYC's numbers followed a shard mate's stopping (test above). A process whose environment
    switches it off trains, and says so."""
    if not torch.backends.mkl.is_available():
        pytest.skip("torch without MKL")
    train_shard(_spec(10), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    assert read_shard(tmp_path / "s.h5").runs[0].provenance["mkl_reproducible_branch"] == grokpipe.MKL_BRANCH
    cli = [sys.executable, "-m", "grokpipe", "train", *TINY, "--n-train", "50", "--steps", "5", "--out", str(tmp_path / "off.h5")]
    subprocess.run(cli, check=True, timeout=120, env={**os.environ, "MKL_CBWR": ""})
    assert read_shard(tmp_path / "off.h5").runs[0].provenance["mkl_reproducible_branch"] == "off"


def test_the_shard_file_records_provenance_and_wall_time(tmp_path):
    train_shard(_spec(30), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    read = read_shard(tmp_path / "s.h5")
    provenance = read.runs[0].provenance
    assert provenance["numerics_version"] == NUMERICS_VERSION and provenance["threads"] == 1
    assert provenance["denormals_flushed"] in (True, False) and provenance["device_name"]
    assert provenance["backward_backend"] == DEFAULT_BACKEND
    assert set(provenance) >= {"grokpipe_version", "git_commit", "git_dirty", "torch_version", "numpy_version"}
    wall = read.runs[0].eval_wall
    assert wall[0] == 0 and np.all(np.diff(wall) >= 0) and wall[-1] > 0


def test_the_bench_times_a_checkpoint_from_its_saved_state_without_touching_it(tmp_path):
    """``grokpipe bench --checkpoint``: the shard's step from where real runs spend their epochs."""
    from grokpipe.bench import run_bench

    train_shard(_spec(40), tmp_path / "s.h5", tmp_path / "s.pt", threads=1, show_progress=False)
    before = (tmp_path / "s.pt").read_bytes()
    report = run_bench(cases=(), threads=1, min_seconds=0.05, repeats=1, checkpoints=[tmp_path / "s.pt"])
    (row,) = report["cases"]
    assert (row["regime"], row["D"], row["ensemble"], row["checkpoint"]) == ("checkpoint", 90, 3, str(tmp_path / "s.pt"))
    assert row["steps_per_s"] > 0 and row["model_steps_per_s"] == 3 * row["steps_per_s"] and "speedup" not in row
    assert (tmp_path / "s.pt").read_bytes() == before
