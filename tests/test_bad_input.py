"""Bad input, table-driven: each case gives one line naming the problem, exit code 2, no traceback,
and leaves the user's files as they were."""

import copy
import json
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
    return d


def cli_cases(d: Path) -> list[tuple[str, list[str], str]]:
    train = ["train", *TINY]
    return [
        ("unknown command", ["fly"], "invalid choice"),
        ("unknown task", ["train", "--task", "nope", "--n-train", "5", "--steps", "1", "--out", str(d / "o.h5")], "unknown task"),
        ("non-prime p for division", [*train, "--task", "div", "--p", "12", "--n-train", "5", "--out", str(d / "o.h5")], "prime"),
        ("p too small", [*train, "--p", "2", "--n-train", "2", "--out", str(d / "o.h5")], "p must be at least 3"),
        ("D = 0", [*train, "--n-train", "0", "--out", str(d / "o.h5")], "positive integer"),
        ("D larger than the dataset", [*train, "--n-train", "500", "--out", str(d / "o.h5")], "impossible"),
        ("non-numeric D", [*train, "--n-train", "many", "--out", str(d / "o.h5")], "expected an integer"),
        ("negative weight decay", [*train, "--n-train", "5", "--weight-decay", "-1", "--out", str(d / "o.h5")], "weight decay must be >= 0"),
        ("non-numeric weight decay", [*train, "--n-train", "5", "--weight-decay", "lots", "--out", str(d / "o.h5")], "expected a number"),
        ("zero learning rate", [*train, "--n-train", "5", "--lr", "0", "--out", str(d / "o.h5")], "learning rate must be > 0"),
        ("negative learning rate", [*train, "--n-train", "5", "--lr", "-0.1", "--out", str(d / "o.h5")], "learning rate must be > 0"),
        ("negative steps", ["train", "--n-train", "5", "--steps", "-5", "--out", str(d / "o.h5")], "integer >= 0"),
        ("non-numeric steps", ["train", "--n-train", "5", "--steps", "ten", "--out", str(d / "o.h5")], "expected an integer"),
        ("missing --out", ["train", "--n-train", "5", "--steps", "1"], "--out"),
        ("no runs given", [*train, "--out", str(d / "o.h5")], "either --n-train"),
        ("both run forms", [*train, "--n-train", "5", "--runs", "5:1:0", "--out", str(d / "o.h5")], "either --n-train"),
        ("malformed run triple", [*train, "--runs", "5:x:0", "--out", str(d / "o.h5")], "D:WEIGHT_DECAY:SEED"),
        ("duplicate runs", [*train, "--n-train", "5", "5", "--out", str(d / "o.h5")], "duplicate runs"),
        ("negative seed", [*train, "--n-train", "5", "--seed", "-1", "--out", str(d / "o.h5")], "integer >= 0"),
        ("zero width", [*train, "--n-train", "5", "--d-model", "0", "--out", str(d / "o.h5")], "positive integer"),
        ("zero threads", [*train, "--n-train", "5", "--threads", "0", "--out", str(d / "o.h5")], "positive integer"),
        ("missing --init-from", [*train, "--n-train", "5", "--init-from", str(d / "none.pt"), "--out", str(d / "o.h5")], "does not exist"),
        ("corrupt --init-from", [*train, "--n-train", "5", "--init-from", str(d / "corrupt.pt"), "--out", str(d / "o.h5")], "corrupt or not a grokpipe checkpoint"),
        ("--init-from of another task", [*train, "--n-train", "5", "--init-from", str(d / "sub.pt"), "--out", str(d / "o.h5")], "another task"),
        ("--out a user's file", [*train, "--n-train", "5", "--out", str(d / "notes.txt")], "refusing to overwrite"),
        ("--out a foreign HDF5 file", [*train, "--n-train", "5", "--out", str(d / "foreign.h5")], "refusing to overwrite"),
        ("--checkpoint of another shard", [*train, "--n-train", "7", "--checkpoint", str(d / "add.pt"), "--out", str(d / "o.h5")], "different shard"),
        ("--out under a regular file", [*train, "--n-train", "5", "--out", str(d / "notes.txt" / "o.h5")], "cannot write"),
        ("bench with D = 0", ["bench", "--case", "0", "1"], "positive integer"),
        ("simulate with zero steps", ["simulate", "--steps", "0", "--json", str(d / "s.json")], "positive integer"),
        ("aggregate a corrupt shard", ["aggregate", "--out", str(d / "m.h5"), str(d / "corrupt.h5")], "cannot read"),
        ("aggregate a foreign HDF5 file", ["aggregate", "--out", str(d / "m.h5"), str(d / "foreign.h5")], "not a grokpipe shard file"),
        ("aggregate a missing shard", ["aggregate", "--out", str(d / "m.h5"), str(d / "gone.h5")], "no such results file"),
        ("aggregate bad simulation JSON", ["aggregate", "--out", str(d / "m.h5"), "--simulation", str(d / "bad.json"), str(d / "add.h5")], "cannot read simulation"),
        ("claims on a missing file", ["claims", "--metrics", str(d / "gone.h5")], "no such results file"),
        ("claims on a corrupt file", ["claims", "--metrics", str(d / "corrupt.h5")], "cannot read"),
        ("claims on a shard file", ["claims", "--metrics", str(d / "add.h5")], "not a grokpipe metrics file"),
        ("figures: unknown figure", ["figures", "--metrics", str(d / "add.h5"), "--only", "fig99"], "unknown figure"),
        ("figures: unknown format", ["figures", "--metrics", str(d / "add.h5"), "--formats", "gif"], "unknown format"),
        ("figures on a foreign file", ["figures", "--metrics", str(d / "foreign.h5"), "--out-dir", str(d / "f")], "not a grokpipe metrics file"),
        ("tui on a file", ["tui", str(d / "notes.txt")], "not a results directory"),
        ("plan: a config missing a key", ["plan", "--config", str(d / "project" / "config.yaml")], "'p' is a required"),
        ("plan: a config outside a project", ["plan", "--config", str(d / "bad.json")], "no workflow/schemas"),
    ]


def test_every_bad_command_line_gives_one_line_and_exit_2(files, capsys):
    if torch.cuda.is_available():
        pytest.skip("the CUDA case below assumes no GPU")
    cases = cli_cases(files) + [("cuda without a GPU", ["train", *TINY, "--n-train", "5", "--device", "cuda",
                                                         "--out", str(files / "o.h5")], "no CUDA device")]
    assert len(cases) >= 40
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
    ("empty weight decay grid", lambda c: _grid(c).update(weight_decay=[]), "weight_decay"),
    ("empty seeds", lambda c: _grid(c).update(seeds=[]), "seeds"),
    ("D larger than the dataset", lambda c: _grid(c).update(n_train=[99999]), "impossible"),
    ("fraction above 1", lambda c: _grid(c, "pretrain")[0].update(n_train_fraction=[1.5]), "n_train_fraction"),
    ("steps and lr_wd_steps", lambda c: _grid(c).update(lr_wd_steps=5), "exactly one of steps and lr_wd_steps"),
    ("neither steps nor lr_wd_steps", lambda c: _grid(c).pop("steps"), "exactly one of steps and lr_wd_steps"),
    ("unknown task", lambda c: _grid(c).update(tasks=["fly"]), "fly"),
    ("non-prime p for division", lambda c: c["scales"]["quick"].update(p=60), "prime"),
    ("duplicate seeds", lambda c: _grid(c).update(seeds=[0, 0]), "duplicate"),
    ("negative weight decay", lambda c: _grid(c).update(weight_decay=[-1.0]), "weight_decay"),
    ("lr_wd_steps with zero weight decay", lambda c: _grid(c, "ungrok").update(weight_decay=[0.0]), "weight decay > 0"),
    ("ungrok seeds missing from pretrain", lambda c: _grid(c, "ungrok").update(seeds=[7]), "pretrain"),
    ("bad init", lambda c: _grid(c).update(init="warm"), "init"),
    ("zero shard size", lambda c: c["scales"]["quick"].update(shard_size=0), "shard_size"),
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
    verdicts = {c["id"]: c["verdict"] for c in json.loads((tmp_path / "c.json").read_text())}
    assert set(verdicts.values()) == {"NOT RUN"}
