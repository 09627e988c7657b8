"""Options that make no sense together, or no sense at all, are usage errors (exit 2) before
anything is loaded; a batch that finds no audio says so."""

from __future__ import annotations

from cli_helpers import invoke, ok, read_csv, text


def test_batch_option_checks(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad in ("0", "-3"):
        res = invoke(["batch", empty, "--out", tmp_path / "w.csv", "--workers", bad])
        ok(res, 2)
        assert "--workers" in text(res)
    res = invoke(["batch", empty, "--out", tmp_path / "s.csv", "--scheduler", "tcp://x:1"])
    ok(res, 2)
    assert "needs --engine dask" in text(res)
    assert not (tmp_path / "w.csv").exists() and not (tmp_path / "s.csv").exists()
    # a value out of its set names the set, and no output file is left behind (stop 29)
    for args, option, choices in (
            (["batch", empty, "--out", tmp_path / "b.csv", "--backend", "foo"], "--backend",
             ("auto", "onnx", "torch")),
            (["batch", empty, "--out", tmp_path / "e.jsonl", "--engine", "foo"], "--engine",
             ("local", "dask")),
            (["timeline", tmp_path / "x.wav", "--adapt", "foo"], "--adapt", ("none", "self"))):
        res = invoke(args)
        ok(res, 2)
        assert option in text(res) and all(c in text(res) for c in choices), text(res)
    assert not (tmp_path / "b.csv").exists() and not (tmp_path / "e.jsonl").exists()


def test_a_value_out_of_an_options_set_is_a_clean_usage_error(tmp_path):
    """Every option with a set of values (a Literal or an Enum) says the set in the CLI's own
    words: typer's check said "Invalid value for '--adapt': Value error, 'other' is not one
    of 'none', 'self'.", a phrase of pydantic's (user review, stop 54)."""
    wav, out = tmp_path / "x.wav", tmp_path / "o.csv"
    for args, said in (
            (["timeline", wav, "--adapt", "other"], "--adapt must be one of: none, self"),
            (["timeline", wav, "--backend", "gpu"], "--backend must be one of: auto, onnx, torch"),
            (["predict", wav, "--backend", "gpu"], "--backend must be one of: auto, onnx, torch"),
            (["batch", tmp_path, "--out", out, "--engine", "ray"],
             "--engine must be one of: local, dask"),
            (["listen", "-", "--backend", "gpu"], "--backend must be one of: auto, onnx, torch"),
            (["evaluate", "--data", tmp_path, "--protocol", "lopo"],
             "--protocol must be one of: emobox, loso, random, loco"),
            (["evaluate", "--data", tmp_path, "--adapt", "self"],
             "--adapt must be one of: none, speaker, corpus"),
            (["train", "--data", tmp_path, "--out", out, "--augment-recipe", "x"],
             "--augment-recipe must be one of: classic, channel,"),
            (["serve", "--log-level", "loud"], "--log-level must be one of: critical, error,")):
        res = invoke(args)
        ok(res, 2)
        assert said in text(res) and "got '" in text(res), (args, text(res))
        assert "Value error" not in text(res) and "is not one of" not in text(res), text(res)
    assert not out.exists()
    res = invoke(["timeline", wav, "--adapt", "self"])  # a valid value goes on to the file
    ok(res, 2)
    assert "must be one of" not in text(res) and "x.wav" in text(res)


def test_a_batch_that_finds_no_audio_warns(tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    res = invoke(["batch", tmp_path, "--out", tmp_path / "e.csv"])
    ok(res)
    assert "no audio files found" in text(res) and "0 files" in text(res)


def test_timeline_csv_and_json_together_are_refused(tmp_path):
    res = invoke(["timeline", tmp_path / "x.wav", "--csv", "--json"])
    ok(res, 2)
    assert "choose one" in text(res)


def test_a_folder_scan_takes_what_predict_decodes(tmp_path, caplog):
    from emovox.serving.inputs import collect_inputs

    # WMA and Matroska were skipped without a word (QA, stop 37), Android's .3ga (stop 39)
    names = ["a.wav", "b.WEBM", "c.mp4", "d.flac", "e.wma", "f.mkv", "g.mov", "h.caf",
             "i.3ga"]
    for name in (*names, "notes.txt", ".hidden.wav", "cover.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in collect_inputs([str(tmp_path)])] == names
    # ... and the files of other names are counted, not skipped without a word (stop 39)
    assert "2 other file(s) not read, by their names (e.g. cover.jpg, notes.txt)" in caplog.text
    caplog.clear()
    assert [p.name for p in collect_inputs([str(tmp_path / "*")])] == names
    assert "2 other file(s) not read" in caplog.text
    caplog.clear()  # a batch's own output in the folder is not one of them
    collect_inputs([str(tmp_path)], ours=[tmp_path / "notes.txt"])
    assert "1 other file(s) not read, by their names (e.g. cover.jpg)" in caplog.text


def test_a_file_reached_twice_is_listed_once_and_said(tmp_path, caplog):
    """A link to a file already in the batch gave no row and no word (QA stop 30)."""
    from emovox.serving.inputs import collect_inputs

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a.wav").write_bytes(b"x")
    (tmp_path / "store" / "b.wav").write_bytes(b"x")
    (tmp_path / "store" / "link.wav").symlink_to(tmp_path / "store" / "a.wav")
    with caplog.at_level("WARNING", logger="emovox.serving.inputs"):
        got = collect_inputs([str(tmp_path / "store")])
    assert [p.name for p in got] == ["a.wav", "b.wav"]
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("1 input reach") and "link.wav" in msg and "answered once" in msg
    caplog.clear()
    with caplog.at_level("WARNING", logger="emovox.serving.inputs"):
        assert len(collect_inputs([str(tmp_path / "store" / "b.wav")])) == 1
    assert not caplog.records


def test_research_option_checks(tmp_path):
    res = invoke(["export", tmp_path / "m", "--opset", "3"])
    ok(res, 2)
    assert "--opset" in text(res) and "Traceback" not in res.output
    res = invoke(["fuse", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "f",
                  "--weights", "a,b"])
    ok(res, 2)
    assert "--weights: numbers separated by commas" in text(res)
    (tmp_path / "afile").write_text("mine")  # a file given as the cache folder (stop 39)
    res = invoke(["evaluate", "--data", tmp_path, "--cache-dir", tmp_path / "afile"])
    ok(res, 2)
    assert "'--cache-dir'" in text(res) and "is a file" in text(res)
    assert (tmp_path / "afile").read_text() == "mine"


def test_negative_counts_are_usage_errors(tmp_path):
    for args in (["--val-speakers", "-1"], ["--augment", "-2"], ["-j", "0"]):
        res = invoke(["evaluate", "--data", tmp_path, *args])
        ok(res, 2)
        assert "Invalid value" in res.output, args


def test_the_duration_limit_is_read_from_the_environment_too(tmp_path, tiny_model):
    """README: the limit is `--max-duration` or EMOVOX_MAX_DURATION_S (predict read only the
    option before stop 29)."""
    from signals import SR, voice, write_clip

    clip = write_clip(tmp_path / "three_s.wav", voice(3.0), SR)
    env = {"EMOVOX_MAX_DURATION_S": "2"}
    said = "is 3.00 s long, longer than the 2 s limit."  # the path: wrapped by the table
    res = invoke(["predict", clip, "-m", tiny_model], env=env)
    ok(res, 1)
    assert said in text(res), text(res)
    res = invoke(["batch", clip, "--out", tmp_path / "r.csv", "-m", tiny_model], env=env)
    ok(res, 1)
    (row,) = read_csv(tmp_path / "r.csv")  # batch says it in the file's error column
    assert row["status"] == "error" and row["error"].startswith(f"{clip}: {said}"), row
    ok(invoke(["predict", clip, "-m", tiny_model, "--max-duration", "5"], env=env))


def test_a_batch_that_fails_before_any_answer_leaves_no_file(tmp_path):
    """A model folder that does not load (or an unreachable Dask scheduler) failed the run
    after --out was created: an empty file (JSON lines) or a bare header (CSV) was left."""
    from signals import SR, voice, write_clip

    clip = write_clip(tmp_path / "c.wav", voice(1.0), SR)
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    for out in (tmp_path / "r.csv", tmp_path / "r.jsonl"):
        res = invoke(["batch", clip, "--out", out, "-m", broken, "--workers", "1"])
        assert res.exit_code != 0 and "model.json" in text(res)
        assert not out.exists()


def test_a_double_star_glob_over_a_very_deep_tree(tmp_path):
    """`**` matching recursed once per folder: RecursionError at 1,500 levels (QA, stop 31)."""
    import os

    from emovox.serving.inputs import collect_inputs

    deep, levels = str(tmp_path / "t"), []
    os.mkdir(deep)
    for _ in range(1200):
        deep = os.path.join(deep, "d")
        os.mkdir(deep)
        levels.append(deep)
    try:
        with open(os.path.join(deep, "x.wav"), "wb") as f:
            f.write(b"x")
        (found,) = collect_inputs([str(tmp_path / "t" / "**" / "*.wav")])
        assert found.name == "x.wav"
    finally:  # pytest's clean-up recurses: take the tree down here
        os.remove(os.path.join(deep, "x.wav"))
        for d in reversed(levels):
            os.rmdir(d)


def test_the_model_is_read_from_the_environment_too(tmp_path, tiny_model):
    """`EMOVOX_MODEL` chose the model of `serve` and `app` only; predict, batch and timeline
    ignored it (CLI QA, stop 33). `--model` still wins over it."""
    from signals import SR, voice, write_clip

    clip = write_clip(tmp_path / "three_s.wav", voice(3.0), SR)
    env = {"EMOVOX_MODEL": str(tmp_path / "no_such_model")}
    for args in (["predict", clip], ["batch", clip, "--out", tmp_path / "r.csv"],
                 ["timeline", clip]):
        res = invoke(args, env=env)
        ok(res, 2)
        assert "no_such_model" in text(res), text(res)
        ok(invoke([*args, "-m", tiny_model], env=env))
        (tmp_path / "r.csv").unlink(missing_ok=True)


def test_predict_tells_files_of_the_same_name_apart(tmp_path, tiny_model, monkeypatch):
    """Two `a.wav` of two folders were two rows named `a.wav` (CLI QA, stop 33)."""
    from signals import SR, voice, write_clip

    monkeypatch.chdir(tmp_path)
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        write_clip(tmp_path / d / "a.wav", voice(2.0), SR)
    write_clip(tmp_path / "b.wav", voice(2.0), SR)
    res = invoke(["predict", "x/a.wav", "y/a.wav", "b.wav", "-m", tiny_model])
    ok(res)
    from cli_helpers import ANSI

    rows = [line for line in ANSI.sub("", res.stdout).splitlines() if ".wav" in line]
    assert [r.split()[1] for r in rows] == ["x/a.wav", "y/a.wav", "b.wav"], rows
    res = invoke(["predict", "x/a.wav", "y/a.wav", "-m", tiny_model, "--truth"])
    ok(res)
    truth = ANSI.sub("", res.stdout).split("true label")[1]  # the --truth table too
    rows = [line for line in truth.splitlines() if ".wav" in line]
    assert [r.split()[1] for r in rows] == ["x/a.wav", "y/a.wav"], rows


def test_a_batch_interrupted_before_its_first_answer_says_nothing_was_written(
        tmp_path, tiny_model, monkeypatch):
    """It said "the 0 answers of this run are kept in OUT" of a file it had removed, and a
    Ctrl-C while the model loaded exited 130 without a word (QA re-check, stop 34)."""
    from emovox.serving import batch as batch_mod
    from signals import SR, voice, write_clip

    clip = write_clip(tmp_path / "a.wav", voice(2.0), SR)
    for stop in (batch_mod.BatchInterrupted(batch_mod.BatchSummary(found=1)),
                 KeyboardInterrupt()):
        def interrupted(*a, stop=stop, **k):
            raise stop

        monkeypatch.setattr(batch_mod, "run_batch", interrupted)
        res = invoke(["batch", clip, "--out", tmp_path / "r.csv", "-m", tiny_model])
        ok(res, 130)
        assert "interrupted before the first answer: nothing was written" in text(res)
        assert "kept in" not in text(res) and not (tmp_path / "r.csv").exists()


def test_a_corpus_where_no_clip_decodes_is_said(tmp_path):
    """`train` ended in scikit-learn's "Expected 2D array", `evaluate` in NumPy's "need at
    least one array to concatenate" (re-check, stop 35); no run folder is left."""
    for actor in ("01", "02"):
        folder = tmp_path / "junk" / f"Actor_{actor}"
        folder.mkdir(parents=True)
        for emo in ("01", "03", "04"):
            (folder / f"03-01-{emo}-01-01-01-{actor}.wav").write_text(f"not audio {actor}{emo}\n")
    for args in (["train", "--out", tmp_path / "model"],
                 ["evaluate", "--protocol", "loso", "--out", tmp_path / "run"]):
        res = invoke([*args[:1], "--data", tmp_path / "junk", "--model", "prosody_logreg",
                      *args[1:]])
        ok(res, 2)
        assert "none of the 6 clips could be read (the first: " in text(res), args
        assert "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk"]


def test_a_failed_export_suggests_the_default_opset_only_when_another_was_used(monkeypatch,
                                                                              tmp_path):
    """At opset 17 the advice was "try the default, 17" (QA, stop 40)."""
    import emovox.training.export as export

    def fails(model, opset):
        raise RuntimeError("cannot allocate 512000000000 bytes\nmore")

    monkeypatch.setattr(export, "export_onnx", fails)
    res = invoke(["export", tmp_path / "m"])
    assert res.exit_code == 2 and "failed (cannot allocate 512000000000 bytes)" in text(res)
    assert "try the default" not in text(res)
    res = invoke(["export", tmp_path / "m", "--opset", "12"])
    assert "at opset 12 failed" in text(res) and "try the default, 17" in text(res)


def test_predict_of_no_file_is_a_usage_error_as_timeline_of_one(tmp_path, tiny_model):
    """`predict` of a missing file exited 1 ("1 of 1 files failed") where `timeline` of it
    exits 2 (code review): when no path given is a file it is a usage error, said in the
    same words (after the model's check: a bad model is said first); a file that is there
    but does not decode, or a bad path beside a good file, is still an error row, exit 1."""
    import json

    from signals import SR, voice, write_clip

    missing, empty = tmp_path / "missing.wav", tmp_path / "empty.wav"
    empty.write_bytes(b"")
    good = write_clip(tmp_path / "good.wav", voice(2.0), SR)
    said = f"{missing}: no such file. Check the path and try again."
    res = invoke(["timeline", missing, "-m", tiny_model])
    ok(res, 2)
    assert said in text(res)

    res = invoke(["predict", missing, "-m", tiny_model])
    ok(res, 2)
    assert text(res) == f"error: {said}"  # one line
    (tmp_path / "refs").mkdir()  # said before any reference clip is read (review, stop 50)
    res = invoke(["predict", missing, "-m", tiny_model, "--reference", tmp_path / "refs"])
    ok(res, 2)
    assert text(res) == f"error: {said}"
    res = invoke(["predict", missing, "-m", tiny_model, "--json"])
    ok(res, 2)
    assert json.loads(res.stdout)["error"] == said and said in " ".join(res.stderr.split())
    res = invoke(["predict", missing, tmp_path, "-m", tiny_model])
    ok(res, 2)
    assert "none of the 2 paths is a file" in text(res) and "is a directory" in text(res)
    res = invoke(["batch", missing, "--out", tmp_path / "r.csv", "-m", tiny_model])
    ok(res, 2)  # batch already refused it (a path, folder or glob that matches nothing)
    assert str(missing) in text(res) and not (tmp_path / "r.csv").exists()

    res = invoke(["predict", empty, "-m", tiny_model])  # there, but not audio: its error row
    ok(res, 1)
    assert "1 of 1 files failed" in text(res)
    res = invoke(["predict", missing, good, "-m", tiny_model])
    ok(res, 1)
    assert "1 of 2 files failed" in text(res) and "good.wav" in text(res)


def test_shell_completion_parses_without_a_usage_error(capsys):
    """Completion parses the command line as it stands (resilient parsing): a value out of
    an option's set, or ``--reference`` given twice, so far, must not print a usage error
    into the prompt (the error was printed, then its exit swallowed by the parser: code
    review, stop 54). The app installs no completion itself (``add_completion=False``); a
    command's context is made as completion makes it."""
    import typer

    from emovox.cli import app

    group = typer.main.get_command(app)
    for name, args, option, value in (
            ("predict", ["x.wav", "--reference", "a", "--reference", "b"], "reference",
             ["a", "b"]),
            ("predict", ["x.wav", "--backend", "gpu"], "backend", "gpu"),
            ("timeline", ["x.wav", "--adapt", "other"], "adapt", "other"),
            ("serve", ["--log-level", "loud"], "log_level", "loud")):
        with group.make_context("emovox", [name], resilient_parsing=True) as parent:
            command = group.get_command(parent, name)
            ctx = command.make_context(name, list(args), parent=parent,
                                       resilient_parsing=True)
        assert [str(v) for v in ctx.params[option]] == value if option == "reference" \
            else ctx.params[option] == value, (name, ctx.params[option])  # as it stands
        said = capsys.readouterr()
        assert said.err == "" and said.out == "", said
    res = invoke(["predict", "x.wav", "--reference", "a", "--reference", "b"])
    ok(res, 2)  # a real run still refuses both
    assert "--reference is given 2 times" in text(res)
    res = invoke(["predict", "x.wav", "--backend", "gpu"])
    ok(res, 2)
    assert "--backend must be one of: auto, onnx, torch; got 'gpu'" in text(res)


def test_valid_values_reach_the_command_as_their_enum_members(monkeypatch):
    """``choice`` hands the command the member (``Protocol.LOSO``), not its text: the
    commands use ``.value`` and ``.label`` of them. Each command is replaced by one that
    keeps what it is called with (its signature, hence its options, unchanged)."""
    import functools

    from emovox.augment import AugmentRecipe
    from emovox.cli import app
    from emovox.cli.servers import LogLevel
    from emovox.config import Adapt, Protocol

    seen: dict = {}
    for info in app.registered_commands:
        if info.name in ("evaluate", "serve"):
            kept = functools.wraps(info.callback)(lambda *a, **kw: seen.update(kw))
            monkeypatch.setattr(info, "callback", kept)
    for args, want in (
            (["evaluate", "--data", "d", "--protocol", "loso", "--adapt", "speaker",
              "--augment-recipe", "channel_hum"],
             {"protocol": Protocol.LOSO, "adapt": Adapt.SPEAKER,
              "augment_recipe": AugmentRecipe.CHANNEL_HUM}),
            (["evaluate", "--data", "d"],  # the defaults too
             {"protocol": Protocol.EMOBOX, "adapt": Adapt.NONE,
              "augment_recipe": AugmentRecipe.CLASSIC}),
            (["serve", "--log-level", "debug"], {"log_level": LogLevel.DEBUG}),
            (["serve"], {"log_level": LogLevel.INFO})):
        seen.clear()
        ok(invoke(args))
        assert all(seen[k] is v for k, v in want.items()), (args, seen)
