"""What the web app shows of speaker adaptation, as plain data (no Streamlit): the answer as
the model heard it next to the answer adapted to the speaker, and the wording of the
``adaptation`` record (:mod:`emovox.serving.adapt_uploads` computes both answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emovox.serving.service import percent_text
from emovox.web.view import md_text

__all__ = ["HEARD", "ADAPTED", "adaptation_caption", "change_line", "comparison_rows"]

#: column names of :func:`comparison_rows`
HEARD = "as heard (%)"
ADAPTED = "adapted to speaker (%)"


def comparison_rows(plain: Mapping[str, float], adapted: Mapping[str, float]
                    ) -> list[dict[str, Any]]:
    """One row per emotion, most probable after adaptation first: ``{"emotion", HEARD,
    ADAPTED, "change (points)"}`` in percent (one decimal)."""
    order = sorted(adapted, key=lambda lab: -float(adapted[lab]))
    return [{"emotion": lab, HEARD: _percent(float(plain[lab])),
             ADAPTED: _percent(float(adapted[lab])),
             "change (points)": round(100 * (float(adapted[lab]) - float(plain[lab])), 1)}
            for lab in order]


def _percent(p: float) -> float:
    """``p`` in percent with one decimal, never rounded across the uncertain line or a band's
    edge (0.4996 read 50.0 under "uncertain: below 50 %": a review, stop 47), as
    :func:`percent_text` writes it."""
    shown = percent_text(p)
    return float(shown[:-1]) if "." in shown else round(100 * p, 1)


def change_line(plain_label: str | None, plain_conf: float | None, adapted_label: str | None,
                adapted_conf: float | None) -> str:
    """One sentence: does adaptation change the answer?"""
    if adapted_label is None or adapted_conf is None:
        return "No speech: nothing to adapt."
    if adapted_label == plain_label:  # (labels are the model folder's: text only)
        return (f"Adapted to this speaker, the answer stays **{md_text(adapted_label)}** "
                f"({percent_text(plain_conf or 0)} → {percent_text(adapted_conf)}).")
    return (f"Adapted to this speaker, the answer changes from **{md_text(plain_label)}** "
            f"to **{md_text(adapted_label)}** ({percent_text(adapted_conf)}).")


def adaptation_caption(record: Mapping[str, Any]) -> str:
    """What an ``adaptation`` record (``Adaptation.to_dict()``) did, in a sentence."""
    n = int(record.get("reference_clips") or 0)
    if not record.get("applied"):
        return f"Not adapted: {record.get('reason') or 'adaptation was not possible'}."
    what = (f"the recording's own speaker ({n} speech windows)" if record.get("group") == "self"
            else f"the speaker of {n} reference clip{'s' if n != 1 else ''}")
    return (f"Adapted to {what}: every probability divided by that speaker's mean answer, "
            "then renormalised. This assumes the speaker's clips mix several emotions; "
            "adapted probabilities are no longer calibrated.")
