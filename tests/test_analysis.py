"""Analysis and claims on synthetic runs whose answers are known."""

import numpy as np
import pytest

from grokpipe.analysis import converged as converged_run
from grokpipe.analysis import (
    crossing_point,
    efficiency,
    efficiency_triples,
    semigrok_band,
    semigrok_status,
    transitions,
)
from grokpipe.claims import claim_p2, claim_p3, claim_p4, claims_markdown
from grokpipe.convergence import CRITERION, converged
from grokpipe.dcrit import observed_dcrit
from grokpipe.provenance import provenance_summary
from grokpipe.store import Run

EVALS = 40  # enough evaluations in the last quarter for the convergence criterion


def _run(n_train, wd, seed, test_acc, train_acc=None, steps=None, provenance=None, **extra):
    test_acc = np.asarray(test_acc, float)
    steps = np.arange(len(test_acc)) * 100 if steps is None else steps
    curves = {"test_acc": test_acc, "train_acc": np.ones_like(test_acc) if train_acc is None else train_acc,
              "param_norm": np.full(len(test_acc), 30.0), **extra}
    return Run(f"r{n_train}-{wd}-{seed}", {"n_train": n_train, "weight_decay": wd, "seed": seed}, steps, curves,
               provenance=provenance or {})


def _ungrok_runs(d_crit_by_wd, sizes=(100, 150, 220, 330, 500, 750, 1100), width=0.35):
    runs = []
    for wd, d_crit in d_crit_by_wd.items():
        for seed in (0, 1):
            for d in sizes:
                acc = 1 / (1 + np.exp(-(np.log(d) - np.log(d_crit)) / width * 3))
                runs.append(_run(d, wd, seed, [1.0] * 10 + [acc] * (EVALS - 10)))
    return runs


def test_crossing_point_interpolates_in_log_d():
    assert crossing_point([100, 400], [0.0, 1.0], 0.5) == pytest.approx(200.0)
    assert np.isnan(crossing_point([100, 400], [0.6, 1.0], 0.5))


def test_d_crit_is_recovered_per_weight_decay_and_p3_judges_its_spread():
    runs = _ungrok_runs({0.5: 300, 1.0: 300, 2.0: 300})
    d_crit = {t.weight_decay: t.crossing(0.5) for t in transitions(runs)}
    assert all(v == pytest.approx(300, rel=0.05) for v in d_crit.values())
    assert claim_p3(runs).verdict == "PASS"
    assert claim_p3(_ungrok_runs({0.5: 200, 1.0: 300, 2.0: 450})).verdict == "FAIL"
    assert claim_p3(_ungrok_runs({1.0: 300})).verdict == "NOT RUN"


def test_p2_tells_a_sharp_transition_from_a_gradual_one():
    assert claim_p2(_ungrok_runs({1.0: 300}, width=0.3)).verdict == "PASS"
    gradual = _ungrok_runs({1.0: 300}, sizes=(10, 30, 100, 300, 1000, 3000, 10000), width=3.0)
    assert claim_p2(gradual).verdict == "FAIL"


def test_claims_leave_out_unconverged_runs_and_say_how_many():
    runs = _ungrok_runs({0.5: 300, 1.0: 300, 2.0: 300})
    drifting = _run(330, 1.0, 7, np.linspace(1.0, 0.2, EVALS))  # still falling at the end
    claim = claim_p3(runs + [drifting])
    assert claim.verdict == "PASS" and "1 of 43 runs had not converged and were left out" in claim.measured


def test_convergence_needs_settled_accuracy_and_norm_but_forgives_jitter():
    steps = np.arange(EVALS) * 100
    flat = np.full(EVALS, 0.6)
    jitter = 0.6 + 0.05 * np.where(np.arange(EVALS) % 2, 1, -1)  # +-0.05 every evaluation: no trend
    falling = np.linspace(1.0, 0.2, EVALS)
    norm, shrinking = np.full(EVALS, 30.0), np.geomspace(40, 20, EVALS)
    decay = 1e-3  # lr x weight decay: 3900 steps are 3.9 e-foldings of decay
    assert converged(steps, flat, norm, decay) and converged(steps, jitter, norm, decay)
    assert not converged(steps, falling, norm, decay)
    assert not converged(steps, flat, shrinking, decay)
    assert not converged(steps[:10], flat[:10], norm[:10], decay)  # too few evaluations in the window
    assert not converged(steps, flat, norm, 1e-4)  # flat, but weight decay has barely begun to act
    assert "the quarter before" in CRITERION.describe()


def test_an_efficiency_run_has_converged_only_once_its_logit_has_settled_too():
    """Its accuracy is flat from the start (C_gen runs start grokked, C_mem runs fit their random
    labels at once): what it measures is a logit and the norm that logit costs."""
    steps = np.arange(EVALS) * 100
    accuracy, norm, decay = np.ones(EVALS), np.full(EVALS, 30.0), 1e-3
    rising = np.geomspace(20, 40, EVALS)  # log logit: last quarter's mean 0.35 above the quarter before's
    settled = 40 - 0.5 * np.geomspace(1, 1e-3, EVALS)
    assert converged(steps, accuracy, norm, decay)  # without its logit it would count
    assert not converged(steps, accuracy, norm, decay, logit=rising)
    assert converged(steps, accuracy, norm, decay, logit=settled)
    assert not converged(steps, accuracy, norm, decay, logit=settled - 40)  # below zero: not a correct logit yet
    assert not converged(steps, accuracy, norm, decay, logit=np.array([]))  # no such curve recorded
    run = _run(300, 1.0, 0, accuracy)
    run.curves["train_logit"] = rising
    assert converged_run(run)  # the run's own record decides: it measures no efficiency
    run.hparams["settle_logit"] = True
    assert not converged_run(run)


def test_semigrokking_needs_a_late_rise_to_a_settled_middling_accuracy():
    settled = _run(800, 1.0, 0, [0.05] * 20 + list(np.linspace(0.05, 0.6, 20)) + [0.6] * 40)
    climbing = _run(800, 1.0, 1, [0.05] * 60 + list(np.linspace(0.05, 0.6, 20)))
    never = _run(800, 1.0, 2, [0.05] * 80)
    full = _run(800, 1.0, 3, [0.05] * 20 + [1.0] * 60)
    assert semigrok_status(settled).semi
    assert not semigrok_status(climbing).semi  # caught mid-grok, not converged
    assert not semigrok_status(never).semi and not semigrok_status(full).semi
    claim = claim_p4([settled, climbing, never, full])
    assert claim.verdict == "PASS" and "1 of 4" in claim.measured and "still changing" in claim.measured
    assert "1 grokked fully (final test acc >= 0.9), 1 stayed below 0.2" in claim.measured
    assert claim_p4([climbing, never]).verdict == "FAIL"


def test_p4_places_the_first_stages_turn_against_the_ungrokking_d_crit():
    """The first stage turns where its step budget lets runs grok; P4 says how far that lies from the
    D_crit the ungrok sweep observed (300 here, at every weight decay)."""
    scan = [_run(d, 1.0, 0, [acc] * 10) for d, acc in ((500, 0.05), (700, 0.1), (900, 1.0))]
    band = semigrok_band(scan, sizes=2)
    never = _run(800, 1.0, 0, [0.05] * 80)
    ungrok = _ungrok_runs({1.0: 300, 2.0: 300, 4.0: 300})
    d_crit = observed_dcrit(ungrok)[0]
    assert d_crit == pytest.approx(300, rel=0.05)
    claim = claim_p4([never], band, ungrok)
    assert f"turn found at D 700-900, {700 / d_crit:.1f}-{900 / d_crit:.1f}x the ungrokking D_crit ({d_crit:.0f})" in claim.measured
    assert claim.numbers["ungrok_d_crit"] == d_crit and claim.verdict == "FAIL"
    assert "ungrokking D_crit" not in claim_p4([never], band).measured  # no ungrok sweep: nothing to compare


def test_the_semigrok_band_spans_every_seeds_turn_from_chance_to_full():
    finals = {0: {600: 0.02, 700: 0.05, 800: 0.5, 900: 1.0, 1000: 1.0},   # turns between 700 and 900
              1: {600: 0.03, 700: 0.04, 800: 0.06, 900: 0.7, 1000: 0.99},  # turns between 800 and 1000
              2: {600: 1.0, 700: 1.0, 800: 1.0, 900: 1.0, 1000: 1.0}}      # never at chance: no turn seen
    runs = [_run(d, 1.0, seed, [acc] * 10) for seed, row in finals.items() for d, acc in row.items()]
    band = semigrok_band(runs, sizes=4)
    assert (band["low"], band["high"]) == (700, 1000)
    assert len(band["sizes"]) == 4 and 700 < band["sizes"][0] and band["sizes"][-1] < 1000  # inside the band
    assert np.allclose(np.diff(np.log([700, *band["sizes"], 1000])), np.log(1000 / 700) / 5, atol=0.01)
    assert band["per_seed"][2]["low"] is None
    nothing = semigrok_band([_run(d, 1.0, 0, [1.0] * 10) for d in (600, 800)], sizes=4)
    assert nothing["sizes"] == [] and nothing["searched"] == [600, 800]


def test_efficiency_slope_recovers_the_dependence_on_d():
    rng = np.random.default_rng(0)
    runs = []
    for i, (d, logit) in enumerate((d, l) for d in (200, 400, 800) for l in (20, 30, 45)):
        norm = 3 * logit**0.5 * (d / 200) ** 0.2 * np.exp(rng.normal(0, 0.01))
        runs.append(_run(d, 1.0, i, [0.0] * 5, train_logit=np.full(5, float(logit)), param_norm=np.full(5, norm)))
    fit = efficiency(runs)
    assert fit.slope_D == pytest.approx(0.2, abs=0.02) and fit.slope_logit == pytest.approx(0.5, abs=0.05)
    norms = [r.curves["param_norm"][-1] for r in runs]
    assert fit.norm_range == [min(norms), max(norms)]  # how far the fit reaches (Fig 3c/d's spread)


def test_an_efficiency_triple_is_one_state_of_the_run_even_when_it_jumps_at_the_end():
    logit = np.array([300.0] * (EVALS - 1) + [100.0])
    norm = np.array([29.0] * (EVALS - 1) + [25.0])
    run = _run(1000, 2.0, 0, [1.0] * EVALS, train_logit=logit, param_norm=norm)
    np.testing.assert_array_equal(efficiency_triples([run]), [[100.0, 25.0, 1000.0]])


def test_the_claims_report_names_its_trainer_and_warns_when_versions_mix():
    old = {"grokpipe_version": "0.1.0", "numerics_version": 1, "git_commit": "aaaa"}
    new = {"grokpipe_version": "0.2.0", "numerics_version": 2, "git_commit": "bbbb", "device_name": "CPU X",
           "threads": 1, "denormals_flushed": True}
    same = provenance_summary([_run(100, 1.0, 0, [1.0] * 5, provenance=new)] * 2)
    assert not same["mixed"] and "numerics v2" in claims_markdown([], same) and "Warning" not in claims_markdown([], same)
    mixed = provenance_summary([_run(100, 1.0, 0, [1.0] * 5, provenance=old), _run(100, 1.0, 1, [1.0] * 5, provenance=new)])
    text = claims_markdown([], mixed)
    assert mixed["mixed"] and mixed["numerics_mixed"]
    assert "Warning: these runs were made by different trainers with different numerics versions" in text


def test_the_device_line_names_every_process_setting_that_changes_the_rounding():
    from grokpipe.provenance import device_label

    gpu = {"device_name": "NVIDIA H100", "threads": 2, "denormals_flushed": False, "backward_backend": "gather",
           "deterministic_algorithms": True}
    assert device_label(gpu) == "NVIDIA H100 (2 threads, denormals kept, gather backward, deterministic algorithms)"
    older = {"device_name": "CPU X", "threads": 1, "denormals_flushed": True}  # a file from before both settings
    assert device_label(older) == "CPU X (1 threads, denormals flushed)"


def test_ungrokking_from_a_model_that_had_not_generalised_is_not_judged():
    from grokpipe.claims import all_claims

    ungrok = [_run(d, wd, s, r.curves["test_acc"]) for r in _ungrok_runs({0.5: 300, 1.0: 300, 2.0: 300})
              for d, wd, s in [(r.hparams["n_train"], r.hparams["weight_decay"], r.hparams["seed"])]]
    for run in ungrok:
        run.hparams["task"] = "sub"
    pretrain = _run(3000, 1.0, 0, [0.9] * EVALS)  # held-out accuracy 0.9: it had memorised, not grokked
    pretrain.hparams["task"] = "sub"
    claims = {c.id: c for c in all_claims({"ungrok_tasks": ungrok, "pretrain": [pretrain]})}
    assert claims["P2 sub"].verdict == claims["P3 sub"].verdict == "NOT RUN"
    assert "did not generalise (held-out accuracy 0.900" in claims["P3 sub"].measured
    pretrain.curves["test_acc"][:] = 1.0
    claims = {c.id: c for c in all_claims({"ungrok_tasks": ungrok, "pretrain": [pretrain]})}
    assert claims["P3 sub"].verdict == "PASS"


def test_ungrok_claims_say_not_run_when_pretraining_had_not_generalised():
    from grokpipe.analysis import pretrain_held_out
    from grokpipe.claims import all_claims

    def pretrain(task, held_out):
        run = _run(3000, 1.0, 0, [held_out] * EVALS)
        run.hparams["task"] = task
        return run

    pretrained = [pretrain("sub", 0.986), pretrain("mul", 1.0), pretrain("mul", 0.995)]
    assert pretrain_held_out(pretrained, "sub") == pytest.approx(0.986)
    assert pretrain_held_out(pretrained, "mul") == pytest.approx(0.995)  # the worst of the task's models
    assert pretrain_held_out(pretrained, "div") is None
    ungrok = {task: [_run(d, wd, 0, [1.0] * 10 + [0.5] * (EVALS - 10)) for d in (100, 300) for wd in (1.0, 2.0)]
              for task in ("sub", "mul")}
    for task, runs in ungrok.items():
        for r in runs:
            r.hparams["task"] = task
    claims = {c.id: c for c in all_claims({"pretrain": pretrained, "ungrok_tasks": ungrok["sub"] + ungrok["mul"]})}
    assert claims["P2 sub"].verdict == "NOT RUN" and "0.986 < 0.99" in claims["P2 sub"].measured
    assert claims["P3 sub"].verdict == "NOT RUN"
    assert "pretraining did not generalise" not in claims["P2 mul"].measured  # mul's had generalised
