"""The Snakemake pipeline, run for real on a tiny configuration in a temporary directory."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny-config.yaml"
TRAINING = {"grok", "pretrain", "ungrok", "ungrok_tasks", "semigrok_scan", "semigrok", "efficiency_mem", "efficiency_gen"}


def snakemake(workdir: Path, *args: str, check: bool = True, snakefile: Path = REPO / "Snakefile",
              env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "-s", str(snakefile), "-d", str(workdir), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def planned_jobs(workdir: Path, *args: str, **kwargs) -> dict[str, int]:
    """Job counts per rule that a dry run would execute (empty when there is nothing to do)."""
    out = snakemake(workdir, "-n", "--cores", "1", *args, **kwargs).stdout
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
    """A finished tiny pipeline. Tests only read it; a test that edits copies it first (:func:`own_copy`)."""
    workdir = tmp_path_factory.mktemp("pipeline")
    shutil.copy(TINY, workdir / "config.yaml")
    snakemake(workdir, "--cores", "2", "figures")
    return workdir


def own_copy(tiny_run: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "pipeline"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    return workdir


def test_the_whole_dag_produces_every_figure_and_claims_that_follow_from_the_metrics(tiny_run):
    from grokpipe.analysis import group_by
    from grokpipe.claims import all_claims
    from grokpipe.figures import FIGURES
    from grokpipe.files import FORMATS, file_format
    from grokpipe.spec import NUMERICS_VERSION
    from grokpipe.store import read_metrics

    for name in FIGURES:
        assert file_format(tiny_run / "results" / "figures" / f"{name}.png") == FORMATS["figure"], name
    report = json.loads((tiny_run / "results" / "claims.json").read_text())
    band = json.loads((tiny_run / "results" / "semigrok_band.json").read_text())
    expected = all_claims(group_by(read_metrics(tiny_run / "results" / "metrics.h5"), "experiment"), band)
    assert [(c["id"], c["verdict"], c["measured"]) for c in report["claims"]] == \
        [(c.id, c.verdict, c.measured) for c in expected]
    assert [c["id"] for c in report["claims"]][:6] == ["grokking", "P1", "P2", "P3", "P4", "D_crit"]
    assert {"P2 sub", "P3 sub"} <= {c["id"] for c in report["claims"]}
    assert report["provenance"]["trainers"] and not report["provenance"]["mixed"]
    runs = read_metrics(tiny_run / "results" / "metrics.h5")
    assert all(r.provenance["numerics_version"] == NUMERICS_VERSION for r in runs)
    # the efficiency runs' record says their logit must settle, and the claims above judged them by it
    assert {r.hparams["experiment"] for r in runs if r.hparams["settle_logit"]} == {"efficiency_mem", "efficiency_gen"}


def test_the_adaptive_stage_runs_where_the_first_stage_turned(tiny_run):
    """The checkpoint rule wrote the band from the scan's runs, Snakemake re-evaluated the DAG and
    trained the second stage at the band's sizes with the configured seeds."""
    from grokpipe.store import read_metrics

    band = json.loads((tiny_run / "results" / "semigrok_band.json").read_text())
    assert band["format"] == "grokpipe-band-1" and band["sizes"], band
    semigrok = read_metrics(tiny_run / "results" / "metrics.h5", "semigrok")
    assert sorted({r.hparams["n_train"] for r in semigrok}) == band["sizes"]
    assert {r.hparams["seed"] for r in semigrok} == {5}
    assert len(list((tiny_run / "results" / "specs" / "semigrok").glob("*.json"))) >= 1


def test_a_second_run_has_nothing_to_do(tiny_run):
    assert planned_jobs(tiny_run, "figures") == {}


def test_each_shard_trains_from_the_spec_file_the_plan_wrote(tiny_run):
    from grokpipe.spec import ShardSpec
    from grokpipe.store import read_shard

    specs = sorted((tiny_run / "results" / "specs").glob("*/*.json"))
    assert len(specs) == len(list((tiny_run / "results" / "runs").glob("*/*.h5")))
    for path in specs:
        spec = ShardSpec.from_json(path.read_text())
        shard = read_shard(tiny_run / "results" / "runs" / path.parent.name / f"{path.stem}.h5", with_curves=False)
        assert [r.hparams["n_train"] for r in shard.runs] == [r.n_train for r in spec.runs]


def test_changing_one_weight_decay_reruns_only_the_shards_that_changed(tiny_run):
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    config["scales"]["tiny"]["experiments"]["ungrok"]["weight_decay"] = [0.5, 1.0, 3.0]
    changed = tiny_run / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(tiny_run, "figures", "--configfile", str(changed))
    assert {k: v for k, v in jobs.items() if k in TRAINING} == {"ungrok": 2}  # wd 3.0: its shards, nothing else
    assert jobs["aggregate"] == 1 and "simulate" not in jobs


def test_raising_steps_resumes_from_the_checkpoint(tiny_run, tmp_path):
    from grokpipe.store import read_metrics

    workdir = own_copy(tiny_run, tmp_path)
    before = {r.run_id.split(".")[-1]: r for r in read_metrics(workdir / "results" / "metrics.h5", "grok")}
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["scales"]["tiny"]["experiments"]["grok"]["steps"] = 200
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    assert {k for k in planned_jobs(workdir, "figures") if k in TRAINING} == {"grok"}
    snakemake(workdir, "--cores", "2", "figures")
    after = {r.run_id.split(".")[-1]: r for r in read_metrics(workdir / "results" / "metrics.h5", "grok")}
    for rid, old in before.items():
        new = after[rid]
        assert new.eval_step[-1] == 200
        # the first 150 steps are the old run's, untouched, less the evaluation its cap made at step
        # 150 if the 200-step schedule has none there (a fresh 200-step run would not have it)
        kept = np.isin(old.eval_step, new.eval_step)
        assert kept[:-1].all()
        n = int(kept.sum())
        assert (new.eval_step[:n] == old.eval_step[kept]).all()
        assert (new.curves["train_loss"][:n] == old.curves["train_loss"][kept]).all()
    log = next((workdir / "results" / "logs" / "grok").glob("*.log")).read_text()
    assert "step 150/200" in log or "step 200/200" in log


def test_raising_the_numerics_version_retrains_every_shard_and_nothing_else(tiny_run, tmp_path):
    """A copy of the project whose trainer declares the next numerics version: every training shard
    is planned again (new names), then what depends on them; the simulation is not."""
    from grokpipe.spec import NUMERICS_VERSION

    code = tmp_path / "code"
    shutil.copytree(REPO / "grokpipe", code / "grokpipe")
    shutil.copytree(REPO / "workflow", code / "workflow")
    shutil.copy(REPO / "Snakefile", code / "Snakefile")
    spec = code / "grokpipe" / "spec.py"
    spec.write_text(spec.read_text().replace(f"NUMERICS_VERSION = {NUMERICS_VERSION}\n",
                                             f"NUMERICS_VERSION = {NUMERICS_VERSION + 1}\n"))
    import os

    env = {**os.environ, "PYTHONPATH": str(code)}
    jobs = planned_jobs(tiny_run, "figures", snakefile=code / "Snakefile", env=env)
    config = yaml.safe_load(TINY.read_text())["scales"]["tiny"]["experiments"]
    assert set(config) - {"semigrok"} <= set(jobs)  # every experiment's shards (semigrok: after its checkpoint)
    from grokpipe.config import load_plan, validate_config

    full = yaml.safe_load(TINY.read_text())
    validate_config(full, REPO / "workflow" / "schemas" / "config.schema.yaml")
    plan = load_plan(full)
    assert sum(jobs[e] for e in TRAINING if e in jobs) == len(plan.jobs)
    assert "simulate" not in jobs and jobs["aggregate"] == 1 and jobs["semigrok_band"] == 1


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
    assert counts["pretrain"] == 10 and counts["figure"] == 12


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
    fresh = {r.run_id: r for r in read_metrics(tmp_path / "results" / "metrics.h5")}
    reference = {r.run_id: r for r in read_metrics(tiny_run / "results" / "metrics.h5")}
    assert fresh.keys() == reference.keys()
    for key, run in fresh.items():
        for metric, values in run.curves.items():
            assert np.array_equal(values, reference[key].curves[metric], equal_nan=True), (key, metric)
    assert len(fresh) >= 30
