"""The emovox web app (Streamlit). Start it with ``emovox app`` (or
``streamlit run src/emovox/web/app.py``); configuration comes from the environment:
``EMOVOX_MODEL`` (model folder, default the bundled model), ``EMOVOX_MAX_UPLOAD_MB`` (25),
``EMOVOX_MAX_DURATION_S`` (600) and ``EMOVOX_BACKEND`` (auto).

Two tabs: *Analyse a voice* (upload or record a clip: player, predicted emotion in its
palette colour with its confidence, all probabilities, derived arousal/valence, peak and RMS
level in dBFS with quiet/clipped warnings, true-scale waveform with the seconds that drove the
answer shaded, log-mel spectrogram, MFCCs, and for longer recordings an emotion timeline with
CSV download; a recording without speech shows the reason only; optional reference clips of
the same speaker show the answer adapted to that speaker next to the one as heard, and a
checkbox adapts the timeline to the recording's own speaker: :mod:`emovox.serving.adapt_uploads`)
and *Model card* (speaker-independent cross-validation metrics, confusion matrix, per-class
recall, MODEL_CARD.md). The logic lives in :mod:`emovox.serving.service`; every error is shown as
a message, never as a traceback.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
from pathlib import Path

import streamlit as st

from emovox.audio.limits import seconds_shown
from emovox.plots import emotion_colour
from emovox.serving import adapt_uploads, capacity, service
from emovox.serving.inputs import AUDIO_TYPES, AUDIO_TYPES_SHOWN
from emovox.web import adapted, charts, figures, view

log = logging.getLogger("emovox.web")

PAGE_TITLE = "emovox · speech emotion recognition"
_PYPLOT = threading.Lock()  # emovox.plots draws with pyplot, whose state is global


@st.cache_resource(show_spinner="Loading the model…")
def get_predictor(model: str, backend: str):
    """Loaded once per process and shared by every session (the Predictor is thread-safe)."""
    from emovox.serving.predictor import Predictor

    return Predictor.from_artifact(model or None, backend=backend)


@st.cache_data(show_spinner=False, max_entries=8)
def _png(kind: str, model_id: str, _payload: object) -> bytes:
    """A model-card figure as PNG, drawn once per model (the run directory's figures)."""
    from emovox import plots

    buf = io.BytesIO()
    with _PYPLOT:  # sessions run in threads; pyplot is not thread-safe
        if kind == "confusion":
            labels, counts = _payload  # type: ignore[misc]
            plots.plot_confusion(counts.tolist(), labels, buf, title="")  # type: ignore[arg-type]
        else:
            plots.plot_recall(dict(_payload), buf, title="")  # type: ignore[arg-type,call-overload]
    return buf.getvalue()


def _clear_other(which: str) -> None:
    """A new upload empties the recorder and a new recording empties the uploader (a widget is
    emptied by giving it a fresh key), so the page never names a clip it is not analysing."""
    other = "record" if which == "upload" else "upload"
    st.session_state[f"emovox_{other}_n"] = st.session_state.get(f"emovox_{other}_n", 0) + 1
    # a clip after another may be another speaker's: the references and the timeline's
    # "adapt" box start empty (both carried over, the answer adapted to the last clip's
    # speaker without a word on the page: code review, stop 46); references chosen before
    # the first clip stay
    if st.session_state.get("emovox_analysis") is not None:
        st.session_state["emovox_refs_n"] = st.session_state.get("emovox_refs_n", 0) + 1
    st.session_state.pop("timeline_adapt", None)


def _choose_input(settings: service.Settings):
    """The uploader and the recorder side by side; only the one used last holds a clip.
    Returns ``(the clip or None, whether the recorder made it)``."""
    left, right = st.columns(2)
    with left:
        upload = st.file_uploader(
            f"Upload a recording ({', '.join(AUDIO_TYPES_SHOWN)} and more; "
            f"up to {settings.max_upload_mb:g} MB, {settings.max_duration_s:g} s)",
            type=list(AUDIO_TYPES),
            key=f"upload-{st.session_state.get('emovox_upload_n', 0)}",
            on_change=_clear_other, args=("upload",),
            max_upload_size=max(1, math.ceil(settings.max_upload_mb)),
        )
    with right:
        recording = st.audio_input(
            "…or record from the microphone",
            key=f"record-{st.session_state.get('emovox_record_n', 0)}",
            on_change=_clear_other, args=("record",))
    return (upload, False) if upload is not None else (recording, recording is not None)


def _choose_references(settings: service.Settings) -> list:
    """The optional uploader of reference clips of the same speaker."""
    with st.expander("Same speaker's reference clips (optional): adapt the answer to the "
                     "speaker"):
        st.caption(
            "A few unlabelled clips of the SAME speaker, in several emotions: at least 3 with "
            f"speech, 16 or more recommended, at most {adapt_uploads.MAX_REFERENCES}, "
            f"together at most {settings.max_upload_mb:g} MB and {settings.max_duration_s:g} "
            "s. The answer is then also shown adapted to that speaker (its mean answer over "
            "these clips is divided out).")
        refs = st.file_uploader(
            "Same speaker's reference clips", type=list(AUDIO_TYPES),
            accept_multiple_files=True,
            key=f"references-{st.session_state.get('emovox_refs_n', 0)}",
            max_upload_size=max(1, math.ceil(settings.max_upload_mb)))
    return list(refs or [])


def _analysis(predictor, settings: service.Settings, data: bytes, name: str
              ) -> tuple[service.Analysis, view.SignalLevel, str]:
    """:func:`service.analyse` and the recording's level (at its own sample rate, so clipping
    is seen as recorded), remembered per session for the current clip (reruns caused by other
    widgets do not recompute it). Also returns the clip's digest."""
    from emovox.audio import iter_native_blocks

    digest = hashlib.sha256(data).hexdigest()
    key = (digest, name, predictor.model_id)
    cached = st.session_state.get("emovox_analysis")
    if cached is not None and cached[0] == key:
        return cached[1]
    # one of the process's analysis slots: sessions are threads of one process, and any
    # number analysed at once (code review, stop 48); ServerBusy is shown as a message
    with st.spinner(f"Analysing {view.md_name(service.display_name(name))}…", show_time=True), \
            capacity.analysis_slot():
        result = service.analyse(predictor, data, name, max_bytes=settings.max_bytes,
                                 max_duration=settings.max_duration_s)
        level = view.signal_level(iter_native_blocks(  # as recorded: rate and channels
            bytes(data), filename=name, max_duration=settings.max_duration_s))
    st.session_state["emovox_analysis"] = (key, (result, level, digest))
    return result, level, digest


def _prediction_dict(prediction) -> dict:
    return prediction.to_dict() if hasattr(prediction, "to_dict") else dict(prediction)


def _headline(pv: view.PredictionView, faint: bool = False) -> None:
    colour = emotion_colour(pv.label)
    label = view.md_text(str(pv.label).capitalize())  # from model.json: text only
    conf = f" · {service.percent_text(pv.confidence)}" if pv.confidence is not None else ""
    st.markdown(f'## <span style="color:{colour}">{label}</span>{conf}',
                unsafe_allow_html=True)
    if pv.confidence is not None and faint:  # the red box below says why (QA stop 32)
        st.markdown(":red-badge[unreliable: too faint]")
    elif pv.confidence is not None:
        lvl = service.confidence_level(pv.confidence)
        st.markdown(f":gray-badge[{lvl.name} confidence] "
                    f"(high ≥ {service.HIGH_CONFIDENCE:.0%}, medium "
                    f"{service.MEDIUM_CONFIDENCE:.0%}–{service.HIGH_CONFIDENCE:.0%}, "
                    f"low < {service.MEDIUM_CONFIDENCE:.0%})")
    if pv.status is view.Status.UNCERTAIN:
        st.info(pv.reason or "The model is uncertain about this recording: read the "
                "probabilities below rather than the top emotion alone.")
    if pv.speech_seconds is not None and pv.n_windows:
        st.caption(f"Whole recording: {pv.speech_seconds:.1f} s of speech in "
                   f"{pv.n_windows} window{'s' if pv.n_windows != 1 else ''}.")


def show_prediction(a: service.Analysis, pv: view.PredictionView) -> None:
    st.subheader("Predicted emotion")
    if not pv.has_emotion:  # no label, no chart, no arousal/valence point; a file's name
        st.warning(view.md_named(view.no_speech_box(  # is text, not Markdown (review, 52)
            a.name, pv.reason or "", getattr(a.prediction, "warnings", ()) or ()), a.name))
        return
    _headline(pv, faint=a.silent)
    left, right = st.columns([3, 2])
    with left:
        st.caption("Probability of every emotion (calibrated)")
        if pv.probabilities:
            st.altair_chart(charts.probability_chart(pv.probabilities, pv.label),
                            width="stretch")
    with right:
        if pv.arousal is not None and pv.valence is not None:
            c1, c2 = st.columns(2)
            c1.metric("Arousal", f"{pv.arousal:+.2f}")
            c2.metric("Valence", f"{pv.valence:+.2f}")
            st.pyplot(figures.circumplex_figure(pv.arousal, pv.valence), width=300)
            st.caption("Arousal and valence are derived from the class probabilities "
                       "(circumplex mapping), not predicted by the model.")


def _adapted(predictor, settings: service.Settings, a: service.Analysis, refs: list,
             digest: str):
    """:func:`adapt_uploads.adapt_to_uploads` of the analysed clip, or the message of the error
    it raised (the error itself kept, through its traceback, a copy of every reference clip
    for the rest of the session: code review, stop 46); remembered per session for the same
    clip and references."""
    try:  # their number and total size before any is read: 40 clips of 25 MB were all
        adapt_uploads.check_references(  # read and hashed first (code review, stop 48)
            [r.size for r in refs], max_bytes=settings.max_bytes)
    except service.EmovoxError as exc:
        out = service.user_message(exc)
        st.session_state["emovox_adapted"] = (None, out)  # an earlier answer is dropped
        return out
    key = (predictor.model_id, digest,  # the model too, as _analysis (review, stop 47)
           tuple((r.name, hashlib.sha256(r.getvalue()).hexdigest()) for r in refs))
    cached = st.session_state.get("emovox_adapted")
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with st.spinner(f"Adapting to {len(refs)} reference clips…", show_time=True), \
                capacity.analysis_slot():  # decodes them all: a slot, as an analysis
            out = adapt_uploads.adapt_to_uploads(
                predictor, a.prediction, [(r.getvalue(), r.name) for r in refs],
                max_bytes=settings.max_bytes, max_duration=settings.max_duration_s,
                digest=digest)
    except capacity.ServerBusy as exc:  # not remembered: the next rerun tries again
        return service.user_message(exc)
    except Exception as exc:  # shown as a message, never a traceback
        if not isinstance(exc, service.EmovoxError):
            log.exception("adaptation of %s failed", a.name)
        out = service.user_message(exc)
    st.session_state["emovox_adapted"] = (key, out)
    return out


def show_adapted(predictor, settings: service.Settings, a: service.Analysis, refs: list,
                 digest: str) -> None:
    """The answer adapted to the speaker of ``refs``, next to the answer as heard."""
    import pandas as pd

    st.subheader("Adapted to this speaker")
    out = _adapted(predictor, settings, a, refs, digest)
    if isinstance(out, str):
        st.warning(f"Not adapted: {view.md_named(out, *_names(refs))}")
        return
    ad = out.adapted
    st.markdown(adapted.change_line(out.plain.label, out.plain.confidence, ad.label,
                                    ad.confidence))
    if ad.status.value == "uncertain":
        st.info("Uncertain after adaptation: the adapted top probability is below 50 %; "
                "read the whole distribution, not only the top emotion.")
    st.dataframe(pd.DataFrame(adapted.comparison_rows(out.plain.probabilities,
                                                      ad.probabilities)), hide_index=True)
    st.caption(adapted.adaptation_caption(ad.adaptation.to_dict()))
    for warning in ad.adaptation.warnings:
        st.warning(view.md_named(warning, *_names(refs)))
    st.download_button("Download the adapted answer (JSON)", view.answer_download(ad),
                       file_name=f"{Path(a.name).stem or 'recording'}-emotion-adapted.json",
                       mime="application/json", key="adapted_json")


def _names(refs: list) -> list[str]:
    """The reference clips' names as their messages may say them: as uploaded and as
    :func:`~emovox.serving.service.display_name` writes them (review, stop 52)."""
    return [n for r in refs for n in (r.name, service.display_name(r.name))]


def show_player(a: service.Analysis, data: bytes) -> None:
    st.audio(data, format=service.mime_type(a.name))
    st.caption(f"{view.md_name(a.name)} · {seconds_shown(a.duration)} · model "
               f"{view.md_text(a.model_id)}")


def show_level(level: view.SignalLevel, warnings: tuple[str, ...] = ()) -> None:
    """The level meter, red when the answer's ``warnings`` say the recording is clipped
    (said there, as on every surface)."""
    c1, c2 = st.columns(2)
    c1.metric("Peak level", view.fmt_dbfs(level.peak_dbfs))
    c2.metric("RMS level", view.fmt_dbfs(level.rms_dbfs))
    st.altair_chart(charts.level_meter_chart(level, clipped=view.says_clipped(warnings)),
                    width="stretch")


def _evidence(a: service.Analysis, pv: view.PredictionView) -> tuple[list, str, str]:
    """``(spans, chart title, caption note)`` of the shading over the waveform: the
    prediction's own ``evidence`` when it has one, else the timeline's support for the
    predicted emotion, else nothing."""
    if not pv.has_emotion:
        return [], "Waveform", ""
    spans = view.evidence_spans(pv.evidence)
    if len(spans) == 1 and pv.n_windows == 1:  # a short clip: its silences shaded too
        return spans, "Waveform · why", (" Shaded: the part the model read, its silent "
                                         "edges trimmed and, of a longer stretch, the "
                                         "model's input length from its middle (pauses "
                                         "inside it included; the rest of the trimmed "
                                         "sound can still set the input's level "
                                         "statistics).")
    if spans:
        return spans, "Waveform · why", (" Shaded: the seconds that drove the answer, darker "
                                         "where they weighed more.")
    if a.timeline is not None and pv.label:
        bands = view.timeline_bands(a.timeline.to_dict().get("segments") or [])
        spans = view.timeline_support(bands, pv.label)
        if spans:
            return spans, "Waveform · timeline support", (
                f" Shaded: where the timeline hears {view.md_text(pv.label)}, darker where "
                f"its windows give {view.md_text(pv.label)} more probability.")
    return [], "Waveform", ""


def show_signal(a: service.Analysis, pv: view.PredictionView, digest: str) -> None:
    st.subheader("Signal")
    # A fresh key per clip: a new upload gets fresh tabs with only "Waveform" selected.
    t_wave, t_mel, t_mfcc = st.tabs(["Waveform", "Log-mel spectrogram", "MFCC"],
                                    key=f"signal-{digest[:16]}")
    with t_wave:
        spans, title, note = _evidence(a, pv)
        st.altair_chart(charts.waveform_chart(*a.envelope, spans, title=title),
                        width="stretch")
        st.caption("True scale: ±1 is digital full scale, so a quiet recording looks small."
                   + note)
    with t_mel:
        st.pyplot(figures.log_mel_figure(a.log_mel, a.frame_seconds))
    with t_mfcc:
        st.pyplot(figures.mfcc_figure(a.mfcc, a.frame_seconds))


def show_timeline(a: service.Analysis, labels) -> None:
    import pandas as pd

    tl = a.timeline
    st.subheader("Emotion timeline")
    adapt = st.checkbox("Adapt to the recording's own speaker", key="timeline_adapt", help=(
        "Divide every window's probabilities by the mean of the recording's speech windows "
        "(as `emovox timeline --adapt self`): assumes the recording holds several emotions."))
    adapted_ok = False
    if adapt:
        tl = adapt_uploads.adapted_copy(tl, labels)
        record = tl.adaptation.to_dict()
        adapted_ok = bool(record["applied"])
        (st.caption if record["applied"] else st.info)(adapted.adaptation_caption(record))
        for warning in record.get("warnings") or []:
            st.warning(warning)
    doc = tl.to_dict()
    st.markdown(view.timeline_summary_line(doc.get("summary") or {}, getattr(tl, "window", None),
                                           getattr(tl, "hop", None)))
    bands = view.timeline_bands(doc.get("segments") or [])
    if bands:
        st.altair_chart(charts.timeline_chart(bands, tl.duration), width="stretch")
        st.caption("Colour: emotion · opacity: confidence · gaps: silence. Hover a band for "
                   "every probability of its window. The timeline finds speech window by "
                   "window as it streams the recording, so its seconds of speech can differ "
                   "from the whole-recording answer's above (by up to 10-20 % on long "
                   "recordings: 287 against 253 s on a 10-minute one).")
    with st.expander("Every window (table)"):  # 14 columns: scrolls inside, never the page
        st.dataframe(pd.DataFrame(service.timeline_rows(tl)), hide_index=True)
    st.download_button("Download the timeline (CSV)", service.timeline_csv(tl),
                       file_name=view.timeline_csv_name(a.name, adapted_ok),
                       mime="text/csv", key="timeline_csv")


def _show_result(predictor, settings: service.Settings, chosen, refs: list,
                 recorded: bool = False) -> None:
    name = chosen.name or "recording.wav"
    shown = service.display_name(name)
    try:
        service.check_size(chosen.size, settings.max_bytes, shown)
        data = chosen.getvalue()
        a, level, digest = _analysis(predictor, settings, data, name)
    except Exception as exc:  # the app never shows a traceback
        st.session_state.pop("emovox_analysis", None)  # no answer shown: references chosen
        if not isinstance(exc, service.EmovoxError):  # now are for the next clip (review, 47)
            log.exception("analysis of %s failed", name)
        st.error(view.md_named(view.web_error_message(
            exc, service.user_message(exc), name=shown, max_duration_s=settings.max_duration_s,
            max_upload_mb=settings.max_upload_mb, recorded=recorded), name, shown))
        return
    pv = view.prediction_view(_prediction_dict(a.prediction))
    show_player(a, data)
    show_prediction(a, pv)
    for note in view.page_warnings(getattr(a.prediction, "warnings", ()),
                                   a.timeline.warnings if a.timeline is not None else (),
                                   no_speech=not pv.has_emotion):
        st.warning(view.md_named(note, a.name))
    if a.silent and pv.has_emotion:
        st.error("The audio is silent or nearly so (its loudest frame is below -60 dBFS): "
                 "an emotion answer on it is unreliable (noise can outweigh so faint a "
                 "voice). Record again, closer to the microphone.")
    st.download_button("Download the answer (JSON)", view.answer_download(a.prediction),
                       file_name=f"{Path(a.name).stem or 'recording'}-emotion.json",
                       mime="application/json", key="answer_json")
    if refs and pv.has_emotion:
        show_adapted(predictor, settings, a, refs, digest)
    elif refs:
        st.info(f"The {len(refs)} reference clip(s) were not used: there is no answer to "
                "adapt without speech.")
    show_level(level, tuple(getattr(a.prediction, "warnings", ()) or ()))
    show_signal(a, pv, digest)
    if a.timeline is not None and pv.has_emotion:  # no speech: its reason only
        show_timeline(a, predictor.labels)


def analyse_tab(predictor, settings: service.Settings) -> None:
    chosen, recorded = _choose_input(settings)
    refs = _choose_references(settings)
    # Everything about the clip lives in one placeholder: a new clip replaces the old result
    # at once, so "Analysing…" never sits above the previous answer.
    out = st.empty()
    if chosen is None:  # no clip shown: references chosen now stay for the next one (they
        st.session_state.pop("emovox_analysis", None)  # were dropped by its upload: review,
        out.info("Upload a recording or record your voice to see which emotion it carries.")
        return  # stop 47)
    with out.container():
        _show_result(predictor, settings, chosen, refs, recorded)


def model_card_tab(predictor) -> None:
    import pandas as pd

    card = service.model_card(predictor)  # its strings are the model folder's: text only
    text = view.md_text
    st.subheader(f"Model {text(card['model_id'])}")
    facts = [f"backend **{text(card['backend'])}**", f"calibration temperature "
             f"**{card['temperature']:.3f}**"]
    if card.get("n_params"):
        n = card["n_params"]
        facts.append(f"**{text(f'{n:,}' if isinstance(n, int) else n)}** parameters")
    tr = card.get("trained_on") or {}
    if tr:
        facts.append(f"trained on **{text(tr.get('clips', '?'))}** clips of "
                     f"**{len(tr.get('speakers') or [])}** speakers "
                     f"({text(tr.get('corpus', '?'))})")
    st.markdown(" · ".join(facts))
    cv = card.get("cross_validation")
    if not cv:
        st.info("This model carries no cross-validation results (train it with "
                "`emovox train --calibrate RUN_DIR` to attach them).")
    else:
        st.markdown(f"#### {service.cv_title(cv)}")
        st.dataframe(pd.DataFrame(service.card_summary_rows(cv)), hide_index=True)
        for more in service.further_cv(cv):
            st.markdown(f"#### Also measured: {service.cv_title(more)}")
            st.dataframe(pd.DataFrame(service.card_summary_rows(more)), hide_index=True)
        of = f" · protocol {view.md_code(cv.get('protocol', '?'))}, the first table's"
        worst = cv.get("worst_class") or {}
        if worst:
            st.caption(f"Weakest class: {text(worst.get('label'))} "
                       f"({float(worst.get('recall', 0)):.1f} % recall){of}")
        cm = service.confusion_of(cv)
        left, right = st.columns(2)
        if cm is not None:
            with left:
                st.caption("Confusion matrix (pooled over folds; colour = share of true "
                           f"class){of}")
                st.image(_png("confusion", card["model_id"], cm))
        recall = (cv.get("pooled") or {}).get("recall")
        if recall:
            with right:
                st.caption(f"Recall per class (%){of}")
                st.image(_png("recall", card["model_id"], dict(recall)))
    if card.get("model_card_markdown"):
        with st.expander("MODEL_CARD.md", expanded=not cv):
            st.markdown(view.card_markdown(card["model_card_markdown"]))


def main() -> None:
    # Even an uncaught error (a bug) shows a redacted message, never a traceback; this also
    # holds when the script is started with a plain `streamlit run`.
    st.set_option("client.showErrorDetails", "none")
    st.set_page_config(page_title=PAGE_TITLE, page_icon="🎙️", layout="wide")
    st.title("emovox")
    st.caption("Which of eight emotions does a voice carry? Evaluated on speakers never heard.")
    try:
        settings = service.Settings.from_env(api_key=False)
    except Exception as exc:
        log.error("the app's settings: %s", exc)
        st.error(f"The app is misconfigured: {service.user_message(exc)}")
        return
    try:
        predictor = get_predictor(str(settings.model or ""), settings.backend)
    except Exception as exc:  # the detail (paths, library errors) is the operator's, not a
        if not isinstance(exc, service.EmovoxError):  # visitor's (web QA, stop 32)
            log.exception("cannot load the model")
        else:
            log.error("cannot load the model: %s", exc)
        st.error("The model could not be loaded; the server's log says why.")
        return
    tab_analyse, tab_card = st.tabs(["Analyse a voice", "Model card"])
    with tab_analyse:
        analyse_tab(predictor, settings)
    with tab_card:
        try:
            model_card_tab(predictor)
        except Exception as exc:
            log.exception("model card failed")  # (its words may quote model.json)
            st.error(view.md_text(service.user_message(exc)))


main()
