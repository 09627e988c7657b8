"""The emovox web app (Streamlit). Start it with ``emovox app`` (or
``streamlit run src/emovox/web/app.py``); configuration comes from the environment:
``EMOVOX_MODEL`` (model folder, default the bundled model), ``EMOVOX_MAX_UPLOAD_MB`` (25),
``EMOVOX_MAX_DURATION_S`` (600) and ``EMOVOX_BACKEND`` (auto).

Two tabs: *Analyse a voice* (upload or record a clip: player, waveform, log-mel
spectrogram, MFCCs, predicted emotion with colour-coded confidence, all probabilities,
derived arousal/valence, and for longer recordings an emotion timeline with CSV download)
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

from emovox.serving import service
from emovox.web import figures

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


def _set_active(which: str) -> None:
    st.session_state["emovox_active"] = which


def _choose_input(settings: service.Settings):
    """The uploader and the recorder side by side; the one changed last is analysed."""
    left, right = st.columns(2)
    with left:
        upload = st.file_uploader(
            f"Upload a recording ({', '.join(service.AUDIO_TYPES)}; "
            f"up to {settings.max_upload_mb:g} MB, {settings.max_duration_s:g} s)",
            type=list(service.AUDIO_TYPES), key="upload", on_change=_set_active,
            args=("upload",), max_upload_size=max(1, math.ceil(settings.max_upload_mb)),
        )
    with right:
        recording = st.audio_input("…or record from the microphone", key="record",
                                   on_change=_set_active, args=("record",))
    active = st.session_state.get("emovox_active")
    if active == "record" and recording is not None:
        return recording
    if active == "upload" and upload is not None:
        return upload
    return upload if upload is not None else recording


def _analysis(predictor, settings: service.Settings, data: bytes, name: str) -> service.Analysis:
    """:func:`service.analyse`, remembered per session for the current clip (reruns caused by
    other widgets do not recompute it)."""
    key = (hashlib.sha256(data).hexdigest(), name, predictor.model_id)
    cached = st.session_state.get("emovox_analysis")
    if cached is not None and cached[0] == key:
        return cached[1]
    with st.spinner("Analysing…"):
        result = service.analyse(predictor, data, name, max_bytes=settings.max_bytes,
                               max_duration=settings.max_duration_s)
    st.session_state["emovox_analysis"] = (key, result)
    return result


def probability_chart(p, level: service.ConfidenceLevel):
    """Horizontal bars of the eight probabilities on a 0-100 % axis; the predicted emotion
    in the colour of its confidence level."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame({"emotion": list(p.probabilities),
                       "probability": [float(v) for v in p.probabilities.values()]})
    colour = "#9e9e9e" if p.silent else level.hex
    base = alt.Chart(df).encode(
        y=alt.Y("emotion:N", sort=list(p.probabilities), title=None),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", title="probability")),
        tooltip=["emotion", alt.Tooltip("probability:Q", format=".1%")],
    )
    bars = base.mark_bar().encode(color=alt.condition(
        alt.datum.emotion == p.label, alt.value(colour), alt.value("#a9bfe0")))
    text = base.mark_text(align="left", dx=3).encode(text=alt.Text("probability:Q",
                                                                  format=".0%"))
    return (bars + text).properties(height=260)


def show_prediction(a: service.Analysis) -> None:
    p = a.prediction
    st.subheader("Predicted emotion")
    if p.probabilities is None:  # status no_speech: no emotion, no chart, no point
        st.warning(f"{a.name}: {p.reason_message or 'no speech'} - there is no voice to "
                   "classify.")
        return
    else:
        lvl = a.level
        st.markdown(f"## :{lvl.colour}[{p.label.capitalize()}] · {p.confidence:.0%}")
        st.markdown(f":{lvl.colour}-badge[{lvl.name} confidence] "
                    f"(high ≥ {service.HIGH_CONFIDENCE:.0%}, medium "
                    f"{service.MEDIUM_CONFIDENCE:.0%}–{service.HIGH_CONFIDENCE:.0%}, "
                    f"low < {service.MEDIUM_CONFIDENCE:.0%})")
    left, right = st.columns([3, 2])
    with left:
        st.caption("Probability of every emotion (calibrated)")
        st.altair_chart(probability_chart(p, a.level), width="stretch")
    with right:
        c1, c2 = st.columns(2)
        c1.metric("Arousal", f"{p.arousal:+.2f}")
        c2.metric("Valence", f"{p.valence:+.2f}")
        st.pyplot(figures.circumplex_figure(p.arousal, p.valence), width=300)
        st.caption("Arousal and valence are derived from the class probabilities "
                   "(circumplex mapping), not predicted by the model.")


def show_player(a: service.Analysis, data: bytes) -> None:
    st.audio(data, format=service.mime_type(a.name))
    st.caption(f"{a.name} · {a.duration:.1f} s · model {a.model_id}")


def show_signal(a: service.Analysis) -> None:
    st.subheader("Signal")
    t_wave, t_mel, t_mfcc = st.tabs(["Waveform", "Log-mel spectrogram", "MFCC"])
    with t_wave:
        st.pyplot(figures.waveform_figure(*a.envelope))
    with t_mel:
        st.pyplot(figures.log_mel_figure(a.log_mel, a.frame_seconds))
    with t_mfcc:
        st.pyplot(figures.mfcc_figure(a.mfcc, a.frame_seconds))


def timeline_chart(rows: list[dict], labels: list[str]):
    """Probability of every emotion at the centre of each voiced window, on a 0-100 % axis."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame([{"time (s)": (r["start"] + r["end"]) / 2, "emotion": lab,
                        "probability": r[lab], "window": f"{r['start']:g}–{r['end']:g} s"}
                       for r in rows for lab in labels])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("time (s):Q"),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("emotion:N", sort=labels),
        tooltip=["window", "emotion", alt.Tooltip("probability:Q", format=".1%")],
    ).properties(height=280)


def show_timeline(a: service.Analysis) -> None:
    import pandas as pd

    tl = a.timeline
    st.subheader("Emotion timeline")
    summary = tl.summary()
    st.markdown(
        f"Dominant emotion: **{summary['dominant'] or 'no speech'}** · "
        f"{summary['n_windows']} windows of {tl.window:g} s every {tl.hop:g} s over "
        f"{summary['speech_seconds']:.1f} s of speech · {summary['gap_seconds']:.1f} s without"
    )
    rows = service.timeline_rows(tl)
    voiced = [r for r in rows if r["kind"] == "speech"]
    if voiced:
        st.altair_chart(timeline_chart(voiced, list(tl.speech[0].probabilities or {})),
                        width="stretch")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.download_button("Download the timeline (CSV)", service.timeline_csv(tl),
                       file_name=f"{Path(a.name).stem or 'recording'}-timeline.csv",
                       mime="text/csv", key="timeline_csv")


def analyse_tab(predictor, settings: service.Settings) -> None:
    chosen = _choose_input(settings)
    if chosen is None:
        st.info("Upload a recording or record your voice to see which emotion it carries.")
        return
    name = chosen.name or "recording.wav"
    try:
        service.check_size(chosen.size, settings.max_bytes, service.display_name(name))
        data = chosen.getvalue()
        a = _analysis(predictor, settings, data, name)
    except Exception as exc:  # the app never shows a traceback
        if not isinstance(exc, service.EmovoxError):
            log.exception("analysis of %s failed", name)
        st.error(service.user_message(exc))
        return
    show_player(a, data)
    show_prediction(a)
    show_signal(a)
    if a.timeline is not None:
        show_timeline(a)


def model_card_tab(predictor) -> None:
    import pandas as pd

    card = service.model_card(predictor)
    st.subheader(f"Model {card['model_id']}")
    facts = [f"backend **{card['backend']}**", f"calibration temperature "
             f"**{card['temperature']:.3f}**"]
    if card.get("n_params"):
        facts.append(f"**{card['n_params']:,}** parameters")
    tr = card.get("trained_on") or {}
    if tr:
        facts.append(f"trained on **{tr.get('clips', '?')}** clips of "
                     f"**{len(tr.get('speakers') or [])}** speakers ({tr.get('corpus', '?')})")
    st.markdown(" · ".join(facts))
    cv = card.get("cross_validation")
    if not cv:
        st.info("This model carries no cross-validation results (train it with "
                "`emovox train --calibrate RUN_DIR` to attach them).")
    else:
        st.markdown(f"#### Speaker-independent cross-validation (protocol "
                    f"`{cv.get('protocol', '?')}`: test actors are never heard in training)")
        st.dataframe(pd.DataFrame(service.card_summary_rows(cv)), hide_index=True)
        worst = cv.get("worst_class") or {}
        if worst:
            st.caption(f"Weakest class: {worst.get('label')} "
                       f"({float(worst.get('recall', 0)):.1f} % recall)")
        cm = service.confusion_of(cv)
        left, right = st.columns(2)
        if cm is not None:
            with left:
                st.caption("Confusion matrix (pooled over folds; colour = share of true class)")
                st.image(_png("confusion", card["model_id"], cm))
        recall = (cv.get("pooled") or {}).get("recall")
        if recall:
            with right:
                st.caption("Recall per class (%)")
                st.image(_png("recall", card["model_id"], dict(recall)))
    if card.get("model_card_markdown"):
        with st.expander("MODEL_CARD.md", expanded=not cv):
            st.markdown(card["model_card_markdown"])


def main() -> None:
    # Even an uncaught error (a bug) shows a redacted message, never a traceback; this also
    # holds when the script is started with a plain `streamlit run`.
    st.set_option("client.showErrorDetails", "none")
    st.set_page_config(page_title=PAGE_TITLE, page_icon="🎙️", layout="wide")
    st.title("emovox")
    st.caption("Which of eight emotions does a voice carry? Evaluated on speakers never heard.")
    try:
        settings = service.Settings.from_env()
        predictor = get_predictor(str(settings.model or ""), settings.backend)
    except Exception as exc:
        if not isinstance(exc, service.EmovoxError):
            log.exception("cannot start the app")
        st.error(f"The model could not be loaded: {service.user_message(exc)}")
        return
    tab_analyse, tab_card = st.tabs(["Analyse a voice", "Model card"])
    with tab_analyse:
        analyse_tab(predictor, settings)
    with tab_card:
        try:
            model_card_tab(predictor)
        except Exception as exc:
            log.exception("model card failed")
            st.error(service.user_message(exc))


main()
