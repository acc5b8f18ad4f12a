"""``ablate --missing`` end to end on a tiny cohort (16 px, one epoch, tiny_resnet): eight small
fits, then the comparison; a second call reuses every finished run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mrparotid.cli.main import main
from mrparotid.errors import ConfigError
from mrparotid.training import missing
from patients import write_cohort

pytestmark = pytest.mark.slow        # eight one-epoch fits: about half a minute on 2 cores

DIAGNOSES = ("pleomorphic_adenoma", "warthin", "malignant")
SPLITS = ("train", "train", "train", "val", "test", "test")
TINY = ["--data.image_size", "16", "--data.batch_size", "8", "--model.name", "tiny_resnet",
        "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1",
        "--trainer.precision", "32-true"]


@pytest.fixture(scope="module")
def ablated(tmp_path_factory):
    root = tmp_path_factory.mktemp("missing")
    rows = [(f"P{i:02d}", DIAGNOSES[i % 3], {"tumour_side": "LR"[i % 2]}, SPLITS[i]) for i in range(6)]
    manifest = write_cohort(root, rows)
    out = root / "abl"
    code = main(["ablate", "--missing", "--out", str(out), "-m", str(manifest), "-q", *TINY])
    return root, manifest, out, code


def test_every_subset_beside_its_dedicated_model(ablated, capsys):
    _, _, out, code = ablated
    assert code == 0
    table = pd.read_csv(out / "missing.csv")
    assert len(table) == 7 and table["subset"].iloc[0] == "T1+CE-T1+T2"
    assert set(table["missing"]) >= {"none", "CE-T1", "T2", "T1", "CE-T1,T2"}
    assert table[["dedicated_acc", "dropout_acc", "diff", "diff_lo", "diff_hi"]].notna().all().all()
    assert (table["diff"] - (table["dropout_acc"] - table["dedicated_acc"])).abs().max() < 1e-5
    for subset in ("T1+mask", "CE-T1+T2+mask", "T1+CE-T1+T2+mask"):
        assert (out / subset / "summary.json").is_file()
    drop = out / "dropout"
    assert json.loads((drop / "summary.json").read_text(encoding="utf-8"))["channels"] == ["T1", "CE-T1", "T2", "mask"]
    assert "series_dropout: 0.3" in (drop / "config.yaml").read_text(encoding="utf-8")
    assert len(list((drop / "missing").glob("predictions_*.csv"))) == 7
    result = json.loads((out / "missing.json").read_text(encoding="utf-8"))
    assert result["series_dropout"] == 0.3 and result["synthetic"] is False
    assert "dropout" in (out / "missing.md").read_text(encoding="utf-8")
    assert len(result["answers"]) == 7 and "## The answer per series subset" in (out / "missing.md").read_text()
    assert all(r["coverage"]["n"] == r["refer"]["n"] > 0 for r in result["answers"].values())


def test_a_second_call_reuses_the_runs(ablated, monkeypatch, capsys):
    _, manifest, out, _ = ablated
    before = pd.read_csv(out / "missing.csv")

    def no_fit(*args, **kw):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(missing, "fit", no_fit)
    assert main(["ablate", "--missing", "--out", str(out), "-m", str(manifest), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "reusing the finished run" in printed and "T1+CE-T1+T2" in printed
    pd.testing.assert_frame_equal(pd.read_csv(out / "missing.csv"), before)


def test_a_run_with_another_dropout_rate_is_refused(ablated, capsys):
    _, manifest, out, _ = ablated
    code = main(["ablate", "--missing", "--out", str(out), "-m", str(manifest), "-q", *TINY,
                 "--augment.series_dropout", "0.5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "series_dropout 0.3, not 0.5" in err
    assert "--overwrite" in err


def test_missing_takes_no_channels(capsys):
    assert main(["ablate", "--missing", "--channels", "T1", "-q"]) == 2
    assert "--missing" in capsys.readouterr().err


def test_run_matches_reads_the_run_record(ablated):
    _, _, out, _ = ablated
    summary = json.loads((out / "dropout" / "summary.json").read_text(encoding="utf-8"))
    splits, run = summary["splits"], out / "dropout"
    channels = ["T1", "CE-T1", "T2", "mask"]
    assert missing.run_matches(run, summary, channels, 0.3, splits) is None
    assert "channels" in missing.run_matches(run, summary, ["T1", "mask"], 0.3, splits)
    assert "split" in missing.run_matches(run, summary, channels, 0.3, dict(splits, test=["P00"]))
    assert "series_dropout" in missing.run_matches(run, summary, channels, 0.2, splits)
    with pytest.raises(ConfigError):
        missing.fit_or_reuse({"augment": {"series_dropout": 0.0}, "data": {"channels": channels}},
                             out / "dropout", manifest=out, splits=splits, progress=False,
                             overwrite=False)
