"""``emovox report`` rows say what sets a run apart from a complete protocol run."""

from __future__ import annotations

import json
from pathlib import Path

from emovox.config import DataConfig, ExperimentConfig
from emovox.experiment.report import collect_report, markdown_table


def _cv_run(path: Path, data: DataConfig, n_folds: int = 2) -> Path:
    path.mkdir(parents=True)
    summary = {k: {"mean": 50.0, "std": 1.0} for k in ("ua", "wa", "macro_f1", "weighted_f1")}
    folds = [{"index": i, "fit_seconds": 1.0, "n_params": 10} for i in range(n_folds)]
    (path / "metrics.json").write_text(json.dumps({
        "model": "mlp", "speaker_independent": True, "protocol": "loso", "summary": summary,
        "pooled": {}, "worst_class": {"label": "sad", "recall": 1.0}, "folds": folds,
        "protocol_folds": n_folds}))
    ExperimentConfig(data=data).save_yaml(path / "config.yaml")
    (path / "predictions.csv").write_text("")  # what every run folder holds (stop 53)
    return path


def test_a_run_of_some_speakers_says_so_in_its_row(tmp_path):
    # review, stop 52: its folds cell read "2" as if it were the whole protocol
    some = _cv_run(tmp_path / "some", DataConfig(root="/r", speakers=("01", "02")))
    every = _cv_run(tmp_path / "every", DataConfig(root="/r"))
    rows = markdown_table(collect_report([some, every]).rows)[2:]
    assert rows[0].endswith("· speakers 01,02 only |")
    assert rows[1].endswith("every` |")


def test_many_chosen_speakers_are_counted_not_all_named(tmp_path):
    chosen = tuple(f"{i:02d}" for i in range(1, 21))
    run = _cv_run(tmp_path / "many", DataConfig(root="/r", speakers=chosen))
    row = markdown_table(collect_report([run]).rows)[2]
    assert "20 speakers only (01,02,03,04,05,06,07,08,…)" in row


def test_a_run_without_a_readable_config_is_still_tabulated(tmp_path):
    run = _cv_run(tmp_path / "run", DataConfig(root="/r", speakers=("01",)))
    (run / "config.yaml").write_text("data: [unclosed")
    rep = collect_report([run])
    assert len(rep.rows) == 1 and rep.rows[0].recipe.endswith("run`")
