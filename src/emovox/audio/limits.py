"""How much audio emovox reads: the header limits (rate, channels), the duration limit and
the decoding work it allows, and how a refusal says so. Used by :mod:`emovox.audio.header`
(refused from the header, unread) and :mod:`emovox.audio.decode` (while decoding)."""

from __future__ import annotations

from emovox.audio.sniff import AudioInfo
from emovox.errors import AudioOutOfLimits, AudioTooLong

__all__ = ["BUDGET_RATE", "DURATION_SLACK", "MAX_CHANNELS", "MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE",
           "TOO_LONG_ADVICE", "check_limits", "header_slack", "mixdown_advice", "scaled_limit",
           "seconds_text", "too_long"]

#: seconds a duration the header states exactly may exceed the limit before it is refused
DURATION_SLACK = 0.05
#: Highest sample rate (Hz) accepted; higher rates are refused from the header, unread.
MAX_SAMPLE_RATE: int = 192_000
#: Lowest sample rate (Hz) accepted (resampling up to 16 kHz multiplies the samples by sr/16k).
MIN_SAMPLE_RATE: int = 1_000
#: Most channels accepted (each native block holds READ_FRAMES * channels samples).
MAX_CHANNELS: int = 64

#: Decoding work a duration limit allows per second, in native samples of all channels
#: together: stereo at 96 kHz. A file with more channels or a higher rate gets a shorter
#: limit (:func:`scaled_limit`), so ``max_duration`` bounds the CPU a file costs, not only
#: its length (security QA, stop 31: a 1.3 MB 64-channel 192 kHz upload of 600 s would have
#: cost over an hour of CPU).
BUDGET_RATE: int = 192_000


def seconds_text(x: float) -> str:
    """A duration for messages: up to two decimals, no exponent (``1200``, ``9.38``,
    ``0.04``; ``:g`` printed 1.2e+03, ``round(x, 1)`` printed 0)."""
    return f"{x:.2f}".rstrip("0").rstrip(".") or "0"


def seconds_shown(seconds: float) -> str:
    """A duration in a table, a title or a caption: ``12.3 s``, two decimals under 1 s
    (``0.25 s``: a 0.25 s file was "0.2 s" in timeline's title: user review, stop 53); the
    one formatter of the CLI and the web page (0.996 s is "1.0 s", not "1.00 s")."""
    return f"{seconds:.{2 if round(seconds, 2) < 1 else 1}f} s"


#: what a recording over the duration limit is told to do (the timeline was not named:
#: QA, stop 39)
TOO_LONG_ADVICE = ("Read a long recording window by window with `emovox timeline`, cut it "
                   "into shorter pieces, or raise the limit (--max-duration).")


def scaled_limit(max_duration: float, sr: int, channels: int) -> float:
    """``max_duration`` for a file of ``channels`` at ``sr`` Hz: scaled down when one of its
    seconds holds more than :data:`BUDGET_RATE` samples."""
    return max_duration * min(1.0, BUDGET_RATE / max(1, sr * channels))


def mixdown_advice(channels: int, sr: int) -> str:
    """What shortens the work of a file whose channels or rate shortened its limit."""
    if channels > 2:
        return ("mix it down to mono or stereo" if sr <= 96000 else
                "mix it down to mono (or to stereo and resample it to 48 kHz or less)")
    return "resample it to 48 kHz or less (or mix it to mono)"


def check_limits(name: str, sr: int, channels: int) -> None:
    """Raise :class:`AudioOutOfLimits` for a header rate or channel count emovox refuses."""
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioOutOfLimits(
            f"{name}: the header says {sr} Hz; emovox accepts {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz. Resample it (e.g. `ffmpeg -i INPUT -ar 48000 out.flac`)."
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioOutOfLimits(
            f"{name}: the header says {channels} channels; emovox accepts 1 to {MAX_CHANNELS}. "
            "Mix it down (e.g. `ffmpeg -i INPUT -ac 1 out.flac`)."
        )


def too_long(name: str, duration: float | None, max_duration: float, *,
              estimate: bool = False, scaled: tuple[float, int, int] | None = None
              ) -> AudioTooLong:
    """The refusal of a file over ``max_duration`` (``estimate``: ``duration`` is a
    header's estimate; ``scaled``: ``(the limit asked for, rate, channels)`` when
    :func:`scaled_limit` made ``max_duration`` shorter)."""
    if duration is None:
        length = "is "
    elif estimate:  # a compressed stream's header: a damaged file can claim any length
        length = (f"declares {duration:.2f} s in its header (a damaged or cut file can "
                  "declare more than it holds), ")
    else:
        length = f"is {duration:.2f} s long, "
    why = ""
    if scaled is not None and max_duration < scaled[0]:
        why = (f" ({scaled[2]} channels at {scaled[1]} Hz: the {seconds_text(scaled[0])} s "
               f"limit holds {seconds_text(max_duration)} s of them, as decoding work is "
               "counted as stereo at "
               f"{BUDGET_RATE // 2000} kHz; {mixdown_advice(scaled[2], scaled[1])} first)")
    return AudioTooLong(
        f"{name}: {length}longer than the {seconds_text(max_duration)} s limit{why}. "
        f"{TOO_LONG_ADVICE}", limit_s=max_duration,
        mixdown=(scaled[2], scaled[1]) if why and scaled is not None else None)


def header_slack(info: AudioInfo, max_duration: float) -> float:
    """Seconds a header's duration may exceed ``max_duration`` before the file is refused
    unread: 50 ms for a length the header states, 0.5 s + 2 % for an estimate (decoding
    enforces the exact limit either way)."""
    return DURATION_SLACK if info.exact else 0.5 + 0.02 * max_duration
