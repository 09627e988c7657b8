"""The model card: a human-readable ``MODEL_CARD.md`` from an artifact's model.json (data and
licence, protocol, cross-validation metrics, per-class recall, calibration, known limits)."""

from __future__ import annotations

from typing import Any

from emovox import __version__
from emovox.corpora.base import speakers_text
from emovox.labels import LABELS

#: licence line of the model card for each corpus a model may be trained on
CORPUS_LICENCES: dict[str, str] = {
    "ravdess": "RAVDESS (Livingstone & Russo 2018) is CC BY-NC-SA 4.0",
    "emovo": "EMOVO (Costantini et al., LREC 2014) is for research use",
    "urdu": "URDU (Latif et al., FIT 2018) is for research use only",
}


def _corpus_lines(trained_on: dict[str, Any]) -> list[str]:
    """The card's lines on the training corpora: clips per corpus and their licences."""
    corpora = trained_on.get("corpora") or {trained_on.get("corpus", "ravdess"): None}
    lines = []
    if len(corpora) > 1:
        lines.append("- corpora: " + ", ".join(f"{c} ({n} clips)" for c, n in corpora.items())
                     + (", balanced per corpus" if trained_on.get("balance_corpora") else ""))
    if trained_on.get("validation_speakers"):
        lines.append(f"- of those, {trained_on.get('validation_clips', '?')} clips of "
                     f"{len(trained_on['validation_speakers'])} speakers "
                     f"({', '.join(trained_on['validation_speakers'])}) were used only to "
                     "choose the epoch (early stopping), not to fit the weights")
    if (never := [e for e, n in (trained_on.get("emotions") or {}).items() if not n]):
        lines.append(f"- never seen in training: {', '.join(never)} (the model answers only "
                     "the emotions it was trained on: these get probability 0)")
    if read_as := trained_on.get("labels_read_as"):  # own-data QA, stop 39: renamed and
        pairs = list(read_as.items())  # dropped labels left no trace
        lines.append("- the data's labels read as: " + ", ".join(
            f"{raw} → {emo}" for raw, emo in pairs[:12]) + (
            f" and {len(pairs) - 12} more" if len(pairs) > 12 else ""))
    if left := trained_on.get("labels_left_out"):
        lines.append("- left out (labels outside the eight emotions): " + ", ".join(
            f"{raw} ({n} clip{'s' if n != 1 else ''})" for raw, n in left.items()))
    licences = [CORPUS_LICENCES.get(c, f"{c}: see its licence") for c in corpora]
    lines.append(f"- training data licence: {'; '.join(licences)}; this model is for research "
                 "and non-commercial use.")
    return lines


def _per_corpus_lines(per_corpus: dict[str, Any]) -> list[str]:
    """The card's table of each test corpus's figures (several corpora only)."""
    if len(per_corpus) < 2:
        return []
    return [
        "Per test corpus (pooled over its folds; UA over the classes it has):",
        "",
        "| corpus | clips | classes | UA | WA | macro-F1 | worst class |",
        "|---|---|---|---|---|---|---|",
        *(f"| {c} | {m['n']} | {len(m['classes'])} | {m['ua']:.1f} | {m['wa']:.1f} | "
          f"{m['macro_f1']:.1f} | {_worst(m)} |" for c, m in per_corpus.items()),
        "",
    ]


def _recall_cell(pooled: dict[str, Any], label: str) -> str:
    """A class's pooled recall, or "–" when no test clip carries it (e.g. calm outside
    RAVDESS): 0/0 is not a recall of 0."""
    confusion = pooled.get("confusion")
    if confusion is not None:
        row = confusion[pooled["labels"].index(label)]
        if not sum(row):
            return "–"
    return f"{pooled['recall'][label]:.1f}"


def _worst(m: dict[str, Any]) -> str:
    recall = {k: v for k, v in m.get("recall", {}).items() if k in m["classes"]}
    if not recall:
        return "?"
    label = min(recall, key=recall.__getitem__)
    return f"{label} {recall[label]:.1f}"


def _calibration_lines(per_corpus: dict[str, Any]) -> list[str]:
    """The card's ECE per test corpus, with the temperature fitted without that corpus."""
    if not per_corpus:
        return []
    return [
        "ECE per test corpus: raw; with the temperature above (fitted on every corpus, this "
        "one included); and with a temperature fitted on the other corpora only (this corpus "
        "unseen by the calibration too, the figure to expect on a new corpus):",
        "",
        "| corpus | clips | ECE raw | ECE (T above) | T without it | ECE (T without it) |",
        "|---|---|---|---|---|---|",
        *(f"| {c} | {r['n']} | {r['ece_before']:.3f} | {r['ece_after']:.3f} | "
          f"{r.get('temperature_without', float('nan')):.3f} | "
          f"{r.get('ece_without', float('nan')):.3f} |" for c, r in per_corpus.items()),
        "",
    ]


def _domain_line(trained_on: dict[str, Any]) -> str:
    """The card's out-of-domain line; conditions every network's training augmentation
    simulated (noise, rooms, band limits) are named as simulated, not out of domain (the
    channel-augmented `default`'s card called them out of domain: QA, stop 40)."""
    corpora = set(trained_on.get("corpora") or [trained_on.get("corpus", "ravdess")])
    augs = trained_on.get("member_augment") or [trained_on.get("augment") or ""]
    simulated = [word for word, marks in (("noisy", ("noise",)), ("reverberant", ("reverb",)),
                                          ("telephone", ("band-limit", "telephone band")))
                 if all(any(m in str(a) for m in marks) for a in augs)]
    unseen = [w for w in ("noisy", "telephone") if w not in simulated]
    rest = f"{_joined(unseen, 'or')} audio" if unseen else ""
    seen = (f"; {_joined(simulated, 'and')} audio was simulated in training (augmented "
            "copies): real recordings of that kind may still be less accurate" if simulated
            else "")
    if corpora <= {"ravdess"}:
        return ("- Acted, read English speech (RAVDESS: 24 North-American actors, two "
                "sentences); spontaneous speech, other languages, children"
                f"{', ' + rest if rest else ''} are out of domain and will be less accurate"
                f"{seen}.")
    return (f"- Trained on {', '.join(sorted(corpora))} only: other languages, speaking "
            f"styles, children{', ' + rest if rest else ''} are out of domain{seen}; "
            "leave-one-corpus-out figures, where the card has them, are what to expect on a "
            "corpus never heard.")


def _joined(words: list[str], last: str) -> str:
    """``a, b and c`` (``last``: "and" or "or")."""
    return f"{', '.join(words[:-1])} {last} {words[-1]}" if len(words) > 1 else words[0]


def _also_text(cal: dict[str, Any]) -> str:
    """How a calibration pooled further runs, for the card ("" when it did not)."""
    n = len(cal.get("also") or [])
    if not n:
        return ""
    return (f" above pooled with {n} more run{'s' if n > 1 else ''} of the same recipe (rows "
            "'corpus (protocol)' below; a fit without a corpus leaves out all its rows)")


def _loco_lines(cv: dict[str, Any]) -> list[str]:
    """What a leave-one-corpus-out table means, naming any test-only corpora."""
    test_only = cv.get("test_only_corpora") or []
    also = (f" {', '.join(c.upper() for c in test_only)} is never trained on: it was only "
            "tested, by models trained on all the other corpora, as the recipe leaves it out."
            if test_only else "")
    where = ("are in the 'Also measured' section below" if cv.get("also")
             else "are not part of this card")
    return ["Each corpus above was tested by models trained on the other corpora only "
            f"(never on its speakers or its language).{also} Figures on new speakers of the "
            f"training corpora (e.g. RAVDESS EmoBox folds) {where}.", ""]


def _val_text(val_speakers: int | None) -> str:
    """How the CV run's folds used their training speakers (empty when not recorded)."""
    if val_speakers is None:
        return ""
    if val_speakers == 0:
        return ", every training speaker trained (no validation speakers)"
    return f", {val_speakers} training speaker(s) per fold held out for validation"


def _caveat_lines(cal: dict[str, Any]) -> list[str]:
    """What ``calibrate`` warned about the run it attached: the figures below and the
    temperature are then not this model's (own-data QA, stop 39: said once, on the
    terminal, while the card showed the figures as the model's)."""
    if not cal.get("caveats"):
        return []
    return [f"**Not this model's figures**: {'; '.join(cal['caveats'])}. The cross-validation "
            "figures and the temperature below come from that run, not from this model's "
            "recipe and data.", ""]


def _params_lines(config: Any) -> list[str]:
    """The training parameters given (``-p``), threads aside: a 2-epoch model read like
    the standard recipe (own-data QA, stop 39)."""
    try:
        params = dict(config["model"]["params"])
    except (KeyError, TypeError, ValueError):
        return []
    params.pop("threads", None)
    params.pop("members", None)  # an ensemble's member folders: its members line says them
    return ([f"- training parameters (the rest at their defaults): "
             f"{', '.join(f'{k}={v}' for k, v in sorted(params.items()))}"] if params else [])


def _classes_line(trained_on: dict[str, Any]) -> str:
    """The known limit on classes: the eight, or the ones a model heard (a 3-class model's
    card said "Eight fixed classes": own-data QA, stop 39)."""
    heard = [e for e, n in (trained_on.get("emotions") or {}).items() if n]
    if heard and len(heard) < len(LABELS):
        return (f"- {len(heard)} classes ({', '.join(heard)}); mixed or other emotions are "
                "forced onto them.")
    return "- Eight fixed classes; mixed or other emotions are forced onto them."


def _own_data_lines(config: Any, members_own: list[str] | None = None) -> list[str]:
    """Which manifest or folder of one's own data the model was trained on, by name (the
    card said only "csv": own-data QA, stop 33); an ensemble's, from its members'
    (``trained_on.own_data``: its own config reads no data; QA, stop 37)."""
    from emovox.experiment.recipe import own_data

    try:
        own = own_data(config)
    except (KeyError, TypeError, AttributeError):  # no config, or one of another shape
        own = []
    own = own or list(members_own or [])
    return [f"- own data (reader=name): {', '.join(own)}"] if own else []


def _folds_text(cv: dict[str, Any]) -> str:
    """``folds``, or which folds when the run had only some of its protocol's (``--folds``:
    the card said "over folds" as if all were run: own-data QA, stop 33)."""
    run = cv.get("fold_indices") or [f.get("index") for f in cv.get("folds") or []]
    total = cv.get("protocol_folds")
    if not isinstance(total, int) or not 0 < len(run) < total:
        return "folds"
    return (f"{len(run)} of the protocol's {total} folds only "
            f"({', '.join(str(i) for i in run)})")


def _cv_lines(cv: dict[str, Any], *, also: bool = False) -> list[str]:
    """A CV run's section of the card: headline metrics, per-class recall, per corpus.
    ``also``: a further run of the same recipe (pooled into the calibration)."""
    loco = cv.get("protocol") == "loco"
    title = ("Leave-one-corpus-out (corpora never heard)" if loco
             else "Speaker-independent cross-validation (actors never heard)")
    lines = [f"## {'Also measured: ' if also else ''}{title}", ""]
    if not cv:
        return [*lines, "No cross-validation run was attached.", ""]
    from emovox.experiment.report import speakers_only

    s, pooled = cv["summary"], cv["pooled"]
    only = speakers_only(cv.get("speakers"))  # named as `report` names them (stop 53)
    lines += [
        f"Protocol `{cv['protocol']}`{_val_text(cv.get('val_speakers'))}"
        f"{', ' + only if only else ''}; mean ± std over {_folds_text(cv)}:",
        "",
        "| UA | WA | macro-F1 | weighted-F1 |",
        "|---|---|---|---|",
        "| " + " | ".join(f"{s[k]['mean']:.1f} ± {s[k]['std']:.1f}"
                         for k in ("ua", "wa", "macro_f1", "weighted_f1")) + " |",
        "",
        "Per-class recall (pooled over folds):",
        "",
        "| " + " | ".join(pooled["labels"]) + " |",
        "|" + "---|" * len(pooled["labels"]),
        "| " + " | ".join(_recall_cell(pooled, k) for k in pooled["labels"]) + " |",
        "",
    ]
    lines += _per_corpus_lines(cv.get("per_corpus") or {})
    if loco:
        lines += _loco_lines(cv)
    return lines


def _members_text(trained_on: dict[str, Any]) -> str:
    """An ensemble's members for its card, each with its training augmentation if any; a
    functional member's narrow-band alternative (the last name) is shown with it."""
    names = list(trained_on["members"])
    augs = trained_on.get("member_augment") or [""] * len(names)
    texts = [f"{name} ({aug})" if aug else name
             for name, aug in zip(names, augs, strict=False)]
    narrow = trained_on.get("narrow_band")
    if isinstance(narrow, dict) and len(texts) >= 2 and names[-1] == narrow.get("member"):
        texts[-2:] = [f"{texts[-2]} (for narrow-band input, a band ratio below "
                      f"{narrow.get('floor_db', '?')} dB: {texts[-1]})"]
    return ", ".join(texts)


def _environment_text(env: dict[str, Any]) -> str:
    """``torch 2.13.0, numpy 2.4.6, ... (Python 3.11.7, <cpu>)``."""
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
    cpu = " ".join([str(env.get("cpu", "?")), *(env.get("cpu_features") or [])])
    return f"{packages} (Python {env.get('python', '?')}, {cpu})"


def _environment_lines(trained_on: dict[str, Any]) -> list[str]:
    """Where the model (or each member) was trained: package versions and CPU."""
    if isinstance(trained_on.get("environment"), dict):
        return [f"- trained with: {_environment_text(trained_on['environment'])}"]
    envs = trained_on.get("member_environment") or []
    names = trained_on.get("members") or []
    return [f"- {name} trained with: {_environment_text(env)}"
            for name, env in zip(names, envs, strict=False) if isinstance(env, dict)]


def _input_line(inp: dict[str, Any]) -> str:
    """The card's line on the input, from ``model.json``'s preprocessing (it said "about 2.6
    s" whatever the model read: code review, stop 46)."""
    window = inp.get("window_s") or 2.56
    line = (f"- Input is {inp.get('sr', 16000) / 1000:g} kHz mono; a clip is read as one "
            f"window of about {window:.1f} s of speech, a longer recording in such windows "
            "over its speech, averaged (`emovox timeline` shows them)")
    if speeds := [s for s in inp.get("speeds") or [] if s != 1.0]:
        line += (f"; each window is also read played at {' and '.join(f'{s:g}' for s in speeds)}"
                 " times its speed, the answers averaged")
    return line + "."


def model_card(meta: dict[str, Any]) -> str:
    """A human-readable card from an artifact's model.json."""
    cv = meta.get("cross_validation") or {}
    tr = meta.get("trained_on") or {}
    lines = [
        f"# emovox model card: {meta.get('name', '?')}",
        "",
        f"- package version: {meta.get('package_version', __version__)}",
        f"- parameters: {meta.get('n_params', '?'):,}" if isinstance(meta.get("n_params"), int)
        else "- parameters: ?",
        f"- labels (order): {', '.join(meta.get('labels', LABELS))}",
        f"- trained on: {tr.get('clips', '?')} clips of {speakers_text(tr.get('speakers', []))} "
        f"({tr.get('corpus', '?')}, {', '.join(tr.get('channels', []))}), "
        f"{tr.get('seconds', '?')} s on CPU" if tr.get("clips") is not None else
        "- trained on (members on different data): " + "; ".join(tr["member_data"])
        if tr.get("member_data") else
        "- trained on: not recorded (a member was a cross-validation fold model)",
        *([f"- members (probabilities averaged, one ONNX graph): {_members_text(tr)}"]
          if tr.get("members") else []),
        *([f"- training augmentation: {tr['augment']}"] if tr.get("augment") else []),
        *_params_lines(meta.get("config")),
        *_environment_lines(tr),
        *_corpus_lines(tr),
        *_own_data_lines(meta.get("config"), tr.get("own_data")),
        "",
        *_caveat_lines(meta.get("calibration") or {}),
        *_cv_lines(cv),
    ]
    for extra in cv.get("also") or []:
        lines += _cv_lines(extra, also=True)
    cal = meta.get("calibration")
    if cal:
        lines += [
            "## Calibration",
            "",
            f"Temperature {cal['temperature']:.3f}, fitted on the out-of-fold predictions of the "
            f"cross-validation{_also_text(cal)}. Expected calibration error on those same "
            "predictions (in-sample) "
            f"{cal['ece_before']:.3f} → "
            f"{cal['ece_after']:.3f}; NLL {cal['nll_before']:.3f} → {cal['nll_after']:.3f}.",
            "",
            *_calibration_lines(cal.get("per_corpus") or {}),
        ]
    lines += [
        "## Known limits",
        "",
        _domain_line(tr),
        _classes_line(tr),
        "- Arousal/valence are derived from the class probabilities, not predicted.",
        _input_line(meta.get("input") or {}),
        "",
    ]
    return "\n".join(lines)
