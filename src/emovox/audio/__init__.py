"""Audio: the ONLY place in emovox that decodes audio (files or bytes) into waveforms.

Owns decoding (libsndfile, with an ffmpeg subprocess fallback), content sniffing, the limits
checked from a header before decoding (sample rate, channels, duration), and the signal
helpers every other module must use instead of re-implementing them: :func:`to_mono`,
:func:`resample`, :func:`is_silent` with THE silence threshold :data:`SILENCE_DBFS`,
:func:`trim_silence`, levels (:func:`peak_frame_dbfs`).

Modules: :mod:`~emovox.audio.signal` (mono, resampling, trimming, silence, levels),
:mod:`~emovox.audio.mixdown` (the channel weights of a mix down to mono),
:mod:`~emovox.audio.hum` (mains hum found and warned about),
:mod:`~emovox.audio.sniff` (content sniffing, validated sources),
:mod:`~emovox.audio.ffmpeg` (the ffmpeg fallback), :mod:`~emovox.audio.header` (opening a
decoder, header limits, ``probe``), :mod:`~emovox.audio.length` (a container's declared length
against what the file holds: WAV, AIFF, Ogg cut short), :mod:`~emovox.audio.decode` (``load_audio``,
``iter_blocks``), :mod:`~emovox.audio.codec` (lossy codec round trips through ffmpeg: the
channel benchmark and the ``channel_codec`` augmentation), :mod:`~emovox.audio.quiet` (its
log of a file's notes held back in one context: :func:`notes_held_back`).

May import: :mod:`emovox.errors`, :mod:`emovox.labels`, :mod:`emovox.logcontext`; numpy,
soundfile, soxr and an ffmpeg subprocess. Never features, models, artifact, serving or
anything above them.
"""

from __future__ import annotations

from emovox.audio.clipping import CLIP_LEVEL, ClipCounter, clip_note
from emovox.audio.decode import (
    READ_FRAMES,
    Audio,
    file_notes,
    iter_blocks,
    iter_native_blocks,
    load_audio,
)
from emovox.audio.ffmpeg import ffmpeg_available
from emovox.audio.header import MAX_ABS_SAMPLE, probe
from emovox.audio.hum import Hum, detect_hum, hum_note
from emovox.audio.limits import (
    BUDGET_RATE,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    TOO_LONG_ADVICE,
    check_limits,
    header_slack,
    mixdown_advice,
    scaled_limit,
    seconds_text,
)
from emovox.audio.mixdown import channel_weights, mix_channels
from emovox.audio.quiet import notes_held_back
from emovox.audio.signal import (
    RESAMPLE_QUALITY,
    SILENCE_DBFS,
    TARGET_SR,
    WINDOW_SILENCE_DBFS,
    faint_note,
    frame_rms,
    is_silent,
    peak_frame_dbfs,
    remove_dc,
    resample,
    silent_and_trimmed,
    to_float32,
    to_mono,
    trim_bounds,
    trim_silence,
)
from emovox.audio.sniff import AudioInfo, AudioSource, sniff_format

__all__ = [
    "TARGET_SR",
    "SILENCE_DBFS",
    "WINDOW_SILENCE_DBFS",
    "RESAMPLE_QUALITY",
    "silent_and_trimmed",
    "trim_bounds",
    "MAX_ABS_SAMPLE",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "MAX_CHANNELS",
    "READ_FRAMES",
    "Hum",
    "detect_hum",
    "hum_note",
    "BUDGET_RATE",
    "mixdown_advice",
    "scaled_limit",
    "seconds_text",
    "TOO_LONG_ADVICE",
    "file_notes",
    "header_slack",
    "Audio",
    "AudioInfo",
    "AudioSource",
    "load_audio",
    "probe",
    "iter_blocks",
    "iter_native_blocks",
    "check_limits",
    "is_silent",
    "faint_note",
    "CLIP_LEVEL",
    "ClipCounter",
    "clip_note",
    "peak_frame_dbfs",
    "frame_rms",
    "trim_silence",
    "channel_weights",
    "mix_channels",
    "to_mono",
    "remove_dc",
    "to_float32",
    "resample",
    "sniff_format",
    "ffmpeg_available",
    "notes_held_back",
]
