"""The Snakemake pipeline, run for real on a tiny configuration in a temporary directory."""

import json
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny-config.yaml"


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Job counts per rule that a dry run would execute (empty when there is nothing to do)."""
    out = snakemake(workdir, "-n", "--cores", "1", *args).stdout
    counts = {}
    if "Job stats:" in out:
        table = out.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
        for line in table:
            name, count = line.split()
            if name != "total":
                counts[name] = int(count)
    return counts


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    shutil.copy(TINY, workdir / "config.yaml")
    snakemake(workdir, "--cores", "2", "figures")
    return workdir


def test_the_whole_dag_produces_every_figure_and_the_claims(tiny_run):
    from grokpipe.figures import FIGURES

    for name in FIGURES:
        image = matplotlib.image.imread(tiny_run / "results" / "figures" / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0.01, f"{name} is blank"
    claims = json.loads((tiny_run / "results" / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["grokking", "P1", "P2", "P3", "P4"]
    assert all(c["verdict"] in ("PASS", "FAIL", "NOT RUN") for c in claims)
    assert (tiny_run / "results" / "metrics.h5").is_file()


def test_a_second_run_has_nothing_to_do(tiny_run):
    assert planned_jobs(tiny_run, "figures") == {}


def test_changing_one_weight_decay_reruns_only_the_shards_that_changed(tiny_run):
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    config["scales"]["tiny"]["experiments"]["ungrok"]["weight_decay"] = [0.5, 1.0, 3.0]
    changed = tiny_run / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(tiny_run, "figures", "--configfile", str(changed))
    trained = {k: v for k, v in jobs.items() if k not in ("aggregate", "claims", "figure", "figures")}
    assert trained == {"ungrok": 2}  # the wd 3.0 shards (two seeds' worth of D' split in 4s) and nothing else
    assert jobs["aggregate"] == 1


def test_raising_steps_resumes_from_the_checkpoint(tiny_run):
    from grokpipe.store import read_metrics

    before = {r.run_id.split(".")[-1]: r for r in read_metrics(tiny_run / "results" / "metrics.h5", "grok")}
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    config["scales"]["tiny"]["experiments"]["grok"]["steps"] = 200
    (tiny_run / "config.yaml").write_text(yaml.safe_dump(config))
    assert {k for k in planned_jobs(tiny_run, "figures") if k not in ("aggregate", "claims", "figure", "figures")} == {"grok"}
    snakemake(tiny_run, "--cores", "2", "figures")
    after = {r.run_id.split(".")[-1]: r for r in read_metrics(tiny_run / "results" / "metrics.h5", "grok")}
    for rid, old in before.items():
        new = after[rid]
        assert new.eval_step[-1] == 200
        n = len(old.eval_step)  # the first 150 steps are the old run's, untouched
        assert (new.eval_step[:n] == old.eval_step).all()
        assert (new.curves["train_loss"][:n] == old.curves["train_loss"]).all()
    log = next((tiny_run / "results" / "logs" / "grok").glob("*.log")).read_text()
    assert "step 150/200" in log or "step 200/200" in log


def test_a_bad_config_stops_before_any_job_with_one_line(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["scales"]["tiny"]["experiments"]["grok"]["n_train"] = [5000]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "-n", "--cores", "1", check=False)
    assert done.returncode != 0
    assert "grokpipe: error: config scales.tiny.experiments.grok: n_train=5000 is impossible" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()


def test_lint_is_clean():
    done = subprocess.run(["snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_paper_scale_dry_runs():
    counts = planned_jobs(REPO, "figures", "--config", "scale=paper")
    assert counts["ungrok"] >= 9 and counts["semigrok"] == 4 and counts["pretrain"] == 10


def test_a_multi_job_run_through_a_cluster_executor_plugin(tmp_path):
    """The real cluster path, minus the cluster: every job is submitted through cluster-generic."""
    shutil.copy(TINY, tmp_path / "config.yaml")
    submit = f"bash {REPO / 'tests' / 'data' / 'local_submit.sh'}"
    snakemake(tmp_path, "--executor", "cluster-generic", "--cluster-generic-submit-cmd", submit, "--jobs", "4",
              "--latency-wait", "30", "figures")
    assert (tmp_path / "results" / "claims.md").is_file()
    assert planned_jobs(tmp_path, "figures") == {}


def test_the_slurm_profile_dry_runs_at_paper_scale():
    counts = planned_jobs(REPO, "figures", "--profile", "workflow/profiles/slurm", "--config", "scale=paper")
    assert counts["pretrain"] == 10 and counts["figure"] == 11


def test_killing_the_pipeline_and_rerunning_gives_the_same_numbers(tiny_run, tmp_path):
    """SIGKILL snakemake and its jobs mid-run; --rerun-incomplete resumes the torn shards from their
    checkpoints and ends with the same curves as the uninterrupted run (bit for bit on the CPU)."""
    import os
    import signal
    import time

    from grokpipe.store import read_metrics

    shutil.copy(TINY, tmp_path / "config.yaml")
    cmd = ["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2", "figures"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((tmp_path / "results" / "checkpoints").glob("*/*.pt"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started
    proc.wait()
    assert not (tmp_path / "results" / "metrics.h5").exists()
    snakemake(tmp_path, "--unlock")  # a hard kill leaves Snakemake's lock, as after a power loss
    snakemake(tmp_path, "--cores", "2", "--rerun-incomplete", "figures")

    def curves(path):
        return {r.run_id: r for r in read_metrics(path)}

    fresh = curves(tmp_path / "results" / "metrics.h5")
    # the module's tiny_run had its grok steps raised by an earlier test: compare every other experiment
    reference = curves(tiny_run / "results" / "metrics.h5")
    compared = 0
    for key, run in fresh.items():
        if run.params["experiment"] == "grok":
            continue
        other = reference[key]
        for metric, values in run.curves.items():
            assert np.array_equal(values, other.curves[metric], equal_nan=True), (key, metric)
        compared += 1
    assert compared >= 30
