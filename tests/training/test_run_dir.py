"""Run folders: where a run goes, and the refusals that protect finished runs."""

from __future__ import annotations

import pytest

from mrparotid.errors import ConfigError
from mrparotid.training.run_dir import process_count, resolve_run_dir


@pytest.mark.parametrize("trainer, count", [
    ({"devices": 1, "num_nodes": 1}, 1), ({"devices": 2, "num_nodes": 1}, 2), ({"devices": "3"}, 3),
    ({"devices": [0, 1], "num_nodes": 2}, 4), ({"devices": "auto"}, None)])
def test_process_count(trainer, count):
    assert process_count(trainer) == count


def test_default_run_dir_is_timestamped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = resolve_run_dir(None, {"devices": 1})
    assert run_dir.parent.name == "runs" and run_dir.name[:2] == "20"


def test_several_processes_need_an_explicit_folder(tmp_path):
    with pytest.raises(ConfigError, match="--out"):
        resolve_run_dir(None, {"devices": 2, "strategy": "ddp"})
    assert resolve_run_dir(tmp_path / "r", {"devices": 2}) == tmp_path / "r"


def test_finished_run_is_refused_unless_overwrite(tmp_path, monkeypatch):
    for var in ("LOCAL_RANK", "NODE_RANK", "RANK"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "config.yaml").write_text("seed: 1\n", encoding="utf-8")
    assert resolve_run_dir(tmp_path, {"devices": 1}) == tmp_path    # a failed run never blocks
    (tmp_path / "summary.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="already holds a run"):
        resolve_run_dir(tmp_path, {"devices": 1})
    assert resolve_run_dir(tmp_path, {"devices": 1}, overwrite=True) == tmp_path
    monkeypatch.setenv("LOCAL_RANK", "1")   # a DDP worker joins the folder rank 0 made
    assert resolve_run_dir(tmp_path, {"devices": 2}) == tmp_path
