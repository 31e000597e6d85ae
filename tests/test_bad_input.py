"""Bad input, table-driven: each case gives one line naming the problem, exit code 2, no traceback,
and leaves the user's files as they were."""

import copy
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
import yaml

from grokpipe.cli import main
from grokpipe.config import load_plan, validate_config
from grokpipe.errors import GrokpipeError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TINY = ["--task", "add", "--p", "11", "--d-model", "8", "--n-heads", "2", "--d-head", "4", "--d-mlp", "16",
        "--threads", "1", "--quiet", "--steps", "5"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Files the cases point at: a foreign file, a corrupt checkpoint, a good checkpoint of another task..."""
    d = tmp_path_factory.mktemp("files")
    (d / "notes.txt").write_text("the user's notes")
    (d / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    (d / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with h5py.File(d / "foreign.h5", "w") as f:
        f["x"] = [1, 2, 3]
    (d / "bad.json").write_text("{not json")
    project = d / "project"  # a config inside a project, with the schema where the pipeline keeps it
    (project / "workflow" / "schemas").mkdir(parents=True)
    (project / "workflow" / "schemas" / "config.schema.yaml").write_text(SCHEMA.read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    del config["scales"]["quick"]["p"]
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", *TINY, "--task", "sub", "--n-train", "50", "--out", str(d / "sub.h5")]) == 0
    assert main(["train", *TINY, "--n-train", "50", "--out", str(d / "add.h5")]) == 0
    assert main(["train", *TINY, "--n-train", "40", "--out", str(d / "notes-run.h5"), "--checkpoint", str(d / "n.pt")]) == 0
    (d / "dir").mkdir()
    state = torch.load(d / "add.pt", weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "identity"}, d / "no-identity.pt")
    torch.save({**state, "spec": "{not json"}, d / "bad-spec.pt")
    (d / "spec.json").write_text(json.dumps({"task": "add"}))
    return d


def cli_cases(d: Path) -> list[tuple[str, list[str], str]]:
    train = ["train", *TINY]
    out = ["--out", str(d / "o.h5")]
    return [
        ("unknown command", ["fly"], "invalid choice"),
        ("unknown task", ["train", "--task", "nope", "--n-train", "5", "--steps", "1", *out], "unknown task"),
        ("non-prime p for division", [*train, "--task", "div", "--p", "12", "--n-train", "5", *out], "prime"),
        ("p too small", [*train, "--p", "2", "--n-train", "2", *out], "p must be in [3, 500]"),
        ("p too large (a 74 GiB dataset)", [*train, "--p", "100003", "--n-train", "2", *out], "p must be in [3, 500]"),
        ("huge p for division (primality)", [*train, "--task", "div", "--p", str(2**127 - 1), "--n-train", "2", *out],
         "p must be in [3, 500]"),
        ("D = 0", [*train, "--n-train", "0", *out], "positive integer"),
        ("D larger than the dataset", [*train, "--n-train", "500", *out], "impossible"),
        ("non-numeric D", [*train, "--n-train", "many", *out], "expected an integer"),
        ("negative weight decay", [*train, "--n-train", "5", "--weight-decay", "-1", *out], "weight decay must be >= 0"),
        ("NaN weight decay", [*train, "--n-train", "5", "--weight-decay", "nan", *out], "finite number"),
        ("infinite learning rate", [*train, "--n-train", "5", "--lr", "inf", *out], "finite number"),
        ("lr x wd >= 1", [*train, "--n-train", "5", "--lr", "0.5", "--weight-decay", "4", *out], "must be < 1"),
        ("non-numeric weight decay", [*train, "--n-train", "5", "--weight-decay", "lots", *out], "expected a number"),
        ("zero learning rate", [*train, "--n-train", "5", "--lr", "0", *out], "learning rate must be > 0"),
        ("negative learning rate", [*train, "--n-train", "5", "--lr", "-0.1", *out], "learning rate must be > 0"),
        ("negative steps", ["train", "--n-train", "5", "--steps", "-5", *out], "integer >= 0"),
        ("steps beyond 64 bits", [*train, "--n-train", "5", "--steps", str(2**70), *out], "steps must be in"),
        ("seed beyond 64 bits", [*train, "--n-train", "5", "--seed", str(2**70), *out], "seed must be in"),
        ("non-numeric steps", ["train", "--n-train", "5", "--steps", "ten", *out], "expected an integer"),
        ("missing --out", ["train", "--n-train", "5", "--steps", "1"], "--out"),
        ("missing --steps", ["train", "--n-train", "5", *out], "--steps is required"),
        ("no runs given", [*train, *out], "either --n-train"),
        ("both run forms", [*train, "--n-train", "5", "--runs", "5:1:0", *out], "either --n-train"),
        ("malformed run triple", [*train, "--runs", "5:x:0", *out], "D:WEIGHT_DECAY:SEED"),
        ("negative seed in --runs", [*train, "--runs", "5:1:-3", *out], "integer >= 0"),
        ("duplicate runs", [*train, "--n-train", "5", "5", *out], "duplicate runs"),
        ("-0 and 0 are one weight decay", [*train, "--n-train", "5", "--weight-decay", "0", "-0", *out], "duplicate runs"),
        ("negative seed", [*train, "--n-train", "5", "--seed", "-1", *out], "integer >= 0"),
        ("zero width", [*train, "--n-train", "5", "--d-model", "0", *out], "positive integer"),
        ("zero threads", [*train, "--n-train", "5", "--threads", "0", *out], "positive integer"),
        ("a million threads", [*train, "--n-train", "5", "--threads", "1000000", *out], "up to 1024"),
        ("missing --init-from", [*train, "--n-train", "5", "--init-from", str(d / "none.pt"), *out], "does not exist"),
        ("corrupt --init-from", [*train, "--n-train", "5", "--init-from", str(d / "corrupt.pt"), *out], "corrupt or not a grokpipe checkpoint"),
        ("--init-from of another task", [*train, "--n-train", "5", "--init-from", str(d / "sub.pt"), *out], "another task"),
        ("--init-from without identity", [*train, "--n-train", "5", "--init-from", str(d / "no-identity.pt"), *out], "'identity' is missing"),
        ("--init-from with a bad spec", [*train, "--n-train", "5", "--init-from", str(d / "bad-spec.pt"), *out], "not a grokpipe shard spec"),
        ("--checkpoint without identity", [*train, "--n-train", "5", "--checkpoint", str(d / "no-identity.pt"), *out], "'identity' is missing"),
        ("--spec that is not a spec", ["train", "--spec", str(d / "spec.json"), *out], "not a grokpipe shard spec"),
        ("--spec missing", ["train", "--spec", str(d / "gone.json"), *out], "cannot read --spec"),
        ("--out a user's file", [*train, "--n-train", "5", "--out", str(d / "notes.txt")], "refusing to overwrite"),
        ("--out a user's file with a finished checkpoint", [*train, "--n-train", "40", "--out", str(d / "notes.txt"),
                                                            "--checkpoint", str(d / "n.pt")], "refusing to overwrite"),
        ("--out a foreign HDF5 file", [*train, "--n-train", "5", "--out", str(d / "foreign.h5")], "refusing to overwrite"),
        ("--out and --checkpoint the same file", [*train, "--n-train", "5", "--out", str(d / "x.h5"), "--checkpoint",
                                                 str(d / "x.h5")], "are the same file"),
        ("--out a directory", [*train, "--n-train", "5", "--out", str(d / "dir")], "is a directory"),
        ("--checkpoint of another shard", [*train, "--n-train", "7", "--checkpoint", str(d / "add.pt"), *out], "different shard"),
        ("fewer steps than the checkpoint has", ["train", *TINY[:-2], "--steps", "2", "--n-train", "50", "--out",
                                                 str(d / "add.h5")], "beyond --steps 2"),
        ("--out under a regular file", [*train, "--n-train", "5", "--out", str(d / "notes.txt" / "o.h5")], "not a directory"),
        ("bench with D = 0", ["bench", "--case", "paper", "random", "0", "1"], "D must be in"),
        ("bench with an unknown shape", ["bench", "--case", "huge", "random", "10", "1"], "unknown shape"),
        ("bench --json over a user's file", ["bench", "--case", "quick", "random", "10", "1", "--json",
                                             str(d / "notes.txt")], "refusing to overwrite"),
        ("bench --checkpoint of a missing file", ["bench", "--checkpoint", str(d / "missing.pt")], "does not exist"),
        ("bench --checkpoint of a user's file", ["bench", "--checkpoint", str(d / "notes.txt")], "not a grokpipe checkpoint"),
        ("simulate with zero steps", ["simulate", "--steps", "0", "--json", str(d / "s.json")], "positive integer"),
        ("simulate --json a directory", ["simulate", "--json", str(d / "dir")], "is a directory"),
        ("simulate --json a user's file", ["simulate", "--json", str(d / "bad.json")], "refusing to overwrite"),
        ("aggregate a corrupt shard", ["aggregate", "--out", str(d / "m.h5"), str(d / "corrupt.h5")], "cannot read"),
        ("aggregate a foreign HDF5 file", ["aggregate", "--out", str(d / "m.h5"), str(d / "foreign.h5")], "not a grokpipe shard file"),
        ("aggregate a missing shard", ["aggregate", "--out", str(d / "m.h5"), str(d / "gone.h5")], "no such results file"),
        ("aggregate one shard twice", ["aggregate", "--out", str(d / "m.h5"), str(d / "add.h5"), str(d / "add.h5")], "given twice"),
        ("aggregate --out a directory", ["aggregate", "--out", str(d / "dir"), str(d / "add.h5")], "is a directory"),
        ("aggregate --out a user's file", ["aggregate", "--out", str(d / "notes.txt"), str(d / "add.h5")], "refusing to overwrite"),
        ("aggregate --out a shard file", ["aggregate", "--out", str(d / "sub.h5"), str(d / "add.h5")], "refusing to overwrite"),
        ("aggregate bad simulation JSON", ["aggregate", "--out", str(d / "m.h5"), "--simulation", str(d / "bad.json"), str(d / "add.h5")], "cannot read simulation"),
        ("claims on a missing file", ["claims", "--metrics", str(d / "gone.h5")], "no such results file"),
        ("claims on a corrupt file", ["claims", "--metrics", str(d / "corrupt.h5")], "cannot read"),
        ("claims on a shard file", ["claims", "--metrics", str(d / "add.h5")], "not a grokpipe metrics file"),
        ("claims --markdown a directory", ["claims", "--metrics", str(d / "add.h5"), "--markdown", str(d / "dir")], "is a directory"),
        ("claims --markdown and --json the same", ["claims", "--markdown", str(d / "c.md"), "--json", str(d / "c.md")], "same file"),
        ("claims --json a user's file", ["claims", "--json", str(d / "bad.json")], "refusing to overwrite"),
        ("figures: unknown figure", ["figures", "--metrics", str(d / "add.h5"), "--only", "fig99"], "unknown figure"),
        ("figures: unknown format", ["figures", "--metrics", str(d / "add.h5"), "--formats", "gif"], "unknown format"),
        ("figures on a foreign file", ["figures", "--metrics", str(d / "foreign.h5"), "--out-dir", str(d / "f")], "not a grokpipe metrics file"),
        ("band --out a user's file", ["band", "--sizes", "3", "--out", str(d / "notes.txt")], "refusing to overwrite"),
        ("tui on a file", ["tui", str(d / "notes.txt")], "not a results directory"),
        ("plan: a config missing a key", ["plan", "--config", str(d / "project" / "config.yaml")], "'p' is a required"),
        ("plan: a config outside a project", ["plan", "--config", str(d / "bad.json")], "no workflow/schemas"),
        ("plan: zero jobs", ["plan", "--jobs", "0"], "positive integer"),
        ("plan: a throughput file without a fit", ["plan", "--config", str(REPO / "config.yaml"), "--throughput",
                                                   str(d / "spec.json")], "no fitted throughput"),
    ]


def test_every_bad_command_line_gives_one_line_and_exit_2(files, capsys):
    if torch.cuda.is_available():
        pytest.skip("the CUDA case below assumes no GPU")
    cases = cli_cases(files) + [("cuda without a GPU", ["train", *TINY, "--n-train", "5", "--device", "cuda",
                                                         "--out", str(files / "o.h5")], "no CUDA device")]
    assert len(cases) >= 75
    for name, argv, expected in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, f"{name}: exit {code}, {err}"
        assert len(err.splitlines()) == 1 and err.startswith("grokpipe: error: "), f"{name}: {err!r}"
        assert expected in err, f"{name}: {err!r} lacks {expected!r}"
    assert (files / "notes.txt").read_text() == "the user's notes"
    with h5py.File(files / "foreign.h5") as f:
        assert list(f["x"][()]) == [1, 2, 3]


def _config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def _grid(c, experiment="grok"):
    return c["scales"]["quick"]["experiments"][experiment]


CONFIG_CASES = [
    ("unknown top-level key", lambda c: c.update(colour="blue"), "colour"),
    ("unknown scale", lambda c: c.update(scale="huge"), "unknown scale 'huge'"),
    ("unknown experiment (a path)", lambda c: c["scales"]["quick"]["experiments"].update({"../evil": _grid(c)}), "../evil"),
    ("unknown grid key", lambda c: _grid(c).update(momentum=0.9), "momentum"),
    ("wrong type", lambda c: c["scales"]["quick"].update(p="fifty-nine"), "scales.quick.p"),
    ("NaN learning rate (YAML .nan)", lambda c: _grid(c).update(lr=float("nan")), "not a finite number"),
    ("infinite weight decay", lambda c: _grid(c).update(weight_decay=[float("inf")]), "not a finite number"),
    ("p beyond the bound", lambda c: c["scales"]["quick"].update(p=100003), "p must be in"),
    ("seed beyond 32 bits", lambda c: _grid(c).update(seeds=[2**40]), "seed must be in"),
    ("band outside semigrok", lambda c: _grid(c).update(band={"sizes": 3}), "exactly one of n_train"),
    ("empty weight decay grid", lambda c: _grid(c).update(weight_decay=[]), "weight_decay"),
    ("empty seeds", lambda c: _grid(c).update(seeds=[]), "seeds"),
    ("D larger than the dataset", lambda c: _grid(c).update(n_train=[99999]), "impossible"),
    ("fraction above 1", lambda c: _grid(c, "pretrain")[0].update(n_train_fraction=[1.5]), "n_train_fraction"),
    ("steps and lr_wd_steps", lambda c: _grid(c).update(lr_wd_steps=5), "exactly one of steps and lr_wd_steps"),
    ("neither steps nor lr_wd_steps", lambda c: _grid(c).pop("steps"), "exactly one of steps and lr_wd_steps"),
    ("unknown task", lambda c: _grid(c).update(tasks=["fly"]), "fly"),
    ("non-prime p for division", lambda c: c["scales"]["quick"].update(p=60), "prime"),
    ("duplicate seeds", lambda c: _grid(c).update(seeds=[0, 0]), "non-unique"),
    ("negative weight decay", lambda c: _grid(c).update(weight_decay=[-1.0]), "weight decay must be >= 0"),
    ("lr_wd_steps with zero weight decay", lambda c: _grid(c, "ungrok").update(weight_decay=[0.0]), "weight decay > 0"),
    ("ungrok seeds missing from pretrain", lambda c: _grid(c, "ungrok").update(seeds=[7]), "pretrain"),
    ("bad init", lambda c: _grid(c).update(init="warm"), "init"),
    ("zero shard size", lambda c: c["scales"]["quick"].update(shard_size=0), "shard_size"),
    ("unknown backend", lambda c: c["scales"]["quick"].update(backend="dense"), "scales.quick.backend: unknown backend 'dense'"),
    ("deterministic not a boolean", lambda c: c["scales"]["quick"].update(deterministic="yes"), "deterministic"),
    ("a zero runtime limit", lambda c: c["scales"]["quick"].setdefault("resources", {}).update(runtime_max_minutes=0),
     "runtime_max_minutes"),
]


@pytest.mark.parametrize("name,mutate,expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_a_bad_config_is_one_line_naming_the_key(name, mutate, expected):
    config = copy.deepcopy(_config())
    mutate(config)
    with pytest.raises(GrokpipeError) as info:
        validate_config(config, SCHEMA)
        load_plan(config)
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_a_full_disk_stops_training_with_one_line_and_keeps_the_last_checkpoint(tmp_path):
    """File-size limit as a stand-in for a full disk: writes past it fail with EFBIG."""
    out = tmp_path / "s.h5"
    args = [sys.executable, "-m", "grokpipe", "train", *TINY, "--n-train", "50", "--out", str(out)]
    subprocess.run(args, check=True, timeout=120)  # a first, complete run of 5 steps
    good = (tmp_path / "s.pt").read_bytes()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    raised = args + ["--steps", "20"]  # resume to 20 steps: its writes now hit the limit
    done = subprocess.run(raised, preexec_fn=limit, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grokpipe: error: cannot write"), done.stderr
    assert (tmp_path / "s.pt").read_bytes() == good  # the last good checkpoint is untouched
    assert not list(tmp_path.glob(".*.tmp"))  # and no temporary file is left behind


def test_results_files_round_trip_as_json_claims(files, capsys, tmp_path):
    """claims on a metrics file without the experiments it needs says NOT RUN, never crashes."""
    assert main(["aggregate", "--out", str(tmp_path / "m.h5"), str(files / "add.h5")]) == 0
    assert main(["claims", "--metrics", str(tmp_path / "m.h5"), "--json", str(tmp_path / "c.json")]) == 0
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["format"] == "grokpipe-claims-1"
    assert {c["verdict"] for c in report["claims"]} == {"NOT RUN"}
    # its own outputs it may replace: a second run over them succeeds
    assert main(["claims", "--metrics", str(tmp_path / "m.h5"), "--json", str(tmp_path / "c.json")]) == 0


def test_every_command_that_writes_refuses_a_foreign_file_and_replaces_its_own(files, tmp_path, capsys):
    """One guard for every output: a user's file survives, grokpipe's own file of that kind is replaced."""
    from grokpipe.figures import render

    metrics = tmp_path / "m.h5"
    assert main(["aggregate", "--out", str(metrics), str(files / "add.h5")]) == 0
    writers = {  # command -> (arguments with OUT for the output, output file name)
        "aggregate": (["aggregate", "--out", "OUT", str(files / "add.h5")], "metrics.h5"),
        "claims --markdown": (["claims", "--metrics", str(metrics), "--markdown", "OUT"], "claims.md"),
        "claims --json": (["claims", "--metrics", str(metrics), "--json", "OUT"], "claims.json"),
        "simulate": (["simulate", "--steps", "10", "--json", "OUT"], "simulation.json"),
        "band": (["band", "--sizes", "2", "--out", "OUT", str(files / "add.h5")], "band.json"),
        "train": (["train", *TINY, "--n-train", "30", "--out", "OUT"], "shard.h5"),
        "figures": (["figures", "--metrics", str(metrics), "--only", "fig04_ungrokking", "--formats", "png",
                     "--out-dir", "DIR"], "fig04_ungrokking.png"),
    }
    for name, (argv, filename) in writers.items():
        where = tmp_path / name.replace(" ", "_")
        where.mkdir()
        target = where / filename
        target.write_text("a user's file")
        argv = [a.replace("OUT", str(target)).replace("DIR", str(where)) for a in argv]
        assert main(argv) == 2, name
        assert "refusing to overwrite" in capsys.readouterr().err, name
        assert target.read_text() == "a user's file", name
        target.unlink()
        assert main(argv) == 0, name  # writes its own
        assert main(argv) == 0, name  # and may replace it
        capsys.readouterr()
    assert render  # figures go through the same guard as the CLI (grokpipe.figures._common.save)


def test_python_m_grokpipe_delivers_all_its_output_and_its_exit_code(tmp_path):
    """`python -m grokpipe` skips the interpreter's teardown (grokpipe/__main__.py): what a command
    printed to a pipe (block-buffered) must still arrive whole, and its exit code must too."""
    loud = [flag for flag in TINY if flag != "--quiet"]  # its summary is printed, with progress lines on stderr
    args = [sys.executable, "-m", "grokpipe", "train", *loud, "--n-train", "50", "--out", str(tmp_path / "s.h5")]
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a pipe's output normally is
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=buffered)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("D=50 wd=1.0 seed=0: train_acc ") and done.stdout.endswith("\n"), done.stdout
    bad = subprocess.run([sys.executable, "-m", "grokpipe", "plan", "--scale", "nope"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert bad.returncode == 2
    assert bad.stderr == "grokpipe: error: config scale: unknown scale 'nope'; choose one of quick, paper\n"
