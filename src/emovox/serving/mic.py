"""The microphone of live input (``emovox listen``): sounddevice/PortAudio, an optional extra.

:func:`iter_microphone` opens an input device and yields float32 mono blocks at the model's
rate. A device that cannot record at that rate (many ALSA ``hw`` devices, USB microphones
that only do 44.1 or 48 kHz) is opened at a rate it takes instead, and its blocks are
resampled as they come (soxr, :class:`soxr.ResampleStream`). When the reader falls behind,
the oldest audio is dropped and a :class:`Skipped` stands in its place, counted in the
model's samples. sounddevice is imported only when a microphone is opened.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from emovox.audio import RESAMPLE_QUALITY, TARGET_SR
from emovox.errors import EmovoxError

log = logging.getLogger(__name__)

__all__ = [
    "FALLBACK_RATES",
    "LiveInputError",
    "MIC_BLOCK_S",
    "MIC_KEEP_S",
    "MIC_QUEUE_BLOCKS",
    "MIC_TIMEOUT_S",
    "Skipped",
    "iter_microphone",
]

#: Seconds of audio per block the device delivers.
MIC_BLOCK_S = 0.1
#: Blocks the microphone queue holds before it drops the oldest (about 10 s at 0.1 s).
MIC_QUEUE_BLOCKS = 100
#: Seconds of queued microphone audio kept when the answers fall behind (the newest; the
#: rest is skipped, :class:`Skipped`): an answer then still comes about this long after
#: its speech, not up to the queue's 10 s later (code review, stop 46)
MIC_KEEP_S = 3.5
#: Seconds without a block from the microphone before it is taken as gone (unplugged)
MIC_TIMEOUT_S = 5.0
#: Rates (Hz) tried, after the model's and the device's default, for a device that takes
#: neither: the two that nearly every sound card records at.
FALLBACK_RATES = (48000, 44100)

#: (where the block starts, in the device's samples since the stream began; the block)
_Stamped = tuple[int, np.ndarray]


class LiveInputError(EmovoxError):
    """The live source cannot be opened (no sounddevice/PortAudio, no input device...)."""


@dataclass(frozen=True)
class Skipped:
    """``samples`` of a live source that arrived but were never read, in a source's block
    stream where they were: the answers fell behind and the source dropped its oldest audio.
    Counted at the rate of the blocks around it (the model's, for :func:`iter_microphone`).
    ``listen`` moves its clock on by them and starts its window afresh after them."""

    samples: int


def iter_microphone(*, sr: int = TARGET_SR, block_s: float = MIC_BLOCK_S,
                    device: int | str | None = None, keep_s: float = MIC_KEEP_S,
                    timeout_s: float = MIC_TIMEOUT_S) -> Iterator[np.ndarray | Skipped]:
    """float32 mono blocks at ``sr`` Hz from an input device (sounddevice, PortAudio) until
    interrupted, about ``block_s`` seconds each. The device is opened and started here,
    before the first block is asked for: at ``sr`` Hz if it takes that rate, else at its
    default rate or one of :data:`FALLBACK_RATES`, resampled to ``sr`` Hz as the blocks
    come (an info line says so). When the reader falls behind, the audio queued beyond the
    newest ``keep_s`` seconds is dropped and a :class:`Skipped` of its length in ``sr`` Hz
    samples stands in its place (it went unsaid and the clock slipped: code review, stop 46).

    Raises:
        LiveInputError: sounddevice or the PortAudio library is missing, or the device
            cannot be opened or started at any rate tried (they are named); while reading,
            no block came for ``timeout_s`` seconds.
    """
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: sounddevice without PortAudio
        raise LiveInputError(
            f"the microphone needs sounddevice and PortAudio ({exc}); install them with "
            "pip install 'emovox[live]' and e.g. apt install libportaudio2, or pipe audio "
            "in: ffmpeg -i URL -f s16le -ar 16000 -ac 1 - | emovox listen -") from None
    blocks: queue.Queue[_Stamped] = queue.Queue(maxsize=MIC_QUEUE_BLOCKS)
    stream, rate = _opened(sd, sr, block_s, device, _enqueuer(blocks))
    raw = _mic_blocks(stream, blocks, int(keep_s * rate), timeout_s)
    if rate == sr:
        return raw
    log.info("the microphone records at %d Hz, not the model's %d Hz: its audio is "
             "resampled to %d Hz", rate, sr, sr)
    return _resampled(raw, rate, sr)


def _enqueuer(blocks: queue.Queue[_Stamped]) -> Callable[[np.ndarray, int, Any, Any], None]:
    """The PortAudio callback: each block into ``blocks``, stamped with where it starts in
    the device's samples (its own clock, ``delivered``); the oldest dropped when full."""
    delivered = [0]  # samples the device has delivered, at the device's rate

    def on_block(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        del frames, when
        if status:
            log.warning("microphone: %s", status)
        start, delivered[0] = delivered[0], delivered[0] + len(indata)
        try:
            if blocks.full():  # the consumer fell behind: drop the oldest block
                blocks.get_nowait()
            blocks.put_nowait((start, indata[:, 0].copy()))
        except (queue.Empty, queue.Full):  # pragma: no cover - a race with the consumer
            pass

    return on_block


def _opened(sd: Any, sr: int, block_s: float, device: int | str | None,
            callback: Callable[..., None]) -> tuple[Any, int]:
    """An input stream of ``device``, started, and its rate in Hz: the first of ``sr``, the
    device's default rate and :data:`FALLBACK_RATES` that it opens and starts at (failing
    lazily, it was a traceback after the banner: stop 46)."""
    errors: dict[int, str] = {}
    for rate in _rates(sd, sr, device):
        stream = None
        try:
            stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32",
                                    device=device, blocksize=max(1, int(block_s * rate)),
                                    callback=callback)
            stream.start()
            return stream, rate
        except Exception as exc:  # noqa: BLE001 - PortAudio raises its own error types
            errors[rate] = str(exc)
            log.debug("the microphone refused %d Hz: %s", rate, exc)
            if stream is not None:
                _close_quietly(stream)
    rates = [str(r) for r in errors]
    tried = rates[0] if len(rates) == 1 else f"{', '.join(rates[:-1])} and {rates[-1]}"
    said = (next(iter(errors.values())) if len(set(errors.values())) == 1 else
            "; ".join(f"{r} Hz: {e}" for r, e in errors.items()))
    raise LiveInputError(f"cannot open the microphone: {said} (tried {tried} Hz)")


def _rates(sd: Any, sr: int, device: int | str | None) -> Iterator[int]:
    """``sr``, then the device's default input rate, then :data:`FALLBACK_RATES` (Hz), each
    once; the device is asked for its default only once ``sr`` was refused."""
    yield sr
    seen = {sr}
    try:
        default = int(round(float(sd.query_devices(device, "input")["default_samplerate"])))
    except Exception as exc:  # noqa: BLE001 - no such device, or PortAudio's own errors
        log.debug("no default rate for the microphone: %s", exc)
        default = 0
    for rate in (default, *FALLBACK_RATES):
        if rate > 0 and rate not in seen:
            seen.add(rate)
            yield rate


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except Exception as exc:  # noqa: BLE001 - it failed to open already; that is the error
        log.debug("closing a refused microphone stream: %s", exc)


def _mic_blocks(stream: Any, blocks: queue.Queue[_Stamped], keep: int, timeout_s: float
                ) -> Generator[np.ndarray | Skipped, None, None]:
    """Every block queued so far, each time: a :class:`Skipped` wherever the stamps jump
    (blocks dropped), and only the newest ``keep`` samples' blocks when more were waiting.
    Blocks, ``keep`` and the Skipped counts are in the device's samples; the stream is
    stopped and closed when this ends."""
    expected = 0
    try:
        while True:
            try:
                got = [blocks.get(timeout=timeout_s)]
            except queue.Empty:
                raise LiveInputError(f"the microphone sent no audio for {timeout_s:g} s "
                                     "(unplugged, or taken by another program?)") from None
            got += _drained(blocks)
            while len(got) > 1 and sum(len(b) for _, b in got[1:]) >= keep:
                got.pop(0)  # behind: the newest keep samples are enough
            for start, block in got:
                if start > expected:
                    yield Skipped(start - expected)
                expected = start + len(block)
                yield block
    finally:
        stream.stop()
        stream.close()


def _drained(blocks: queue.Queue[_Stamped]) -> list[_Stamped]:
    """Everything ``blocks`` holds now, oldest first."""
    out = []
    while True:
        try:
            out.append(blocks.get_nowait())
        except queue.Empty:
            return out


def _resampled(blocks: Generator[np.ndarray | Skipped, None, None], rate: int, sr: int
               ) -> Iterator[np.ndarray | Skipped]:
    """``blocks`` of ``rate`` Hz (a :class:`Skipped` counting ``rate`` Hz samples) at ``sr``
    Hz, resampled as they come. At a gap the resampler is flushed (the audio before it ends
    as it was, not joined to what follows) and a new one started; the Skipped then counts
    ``sr`` Hz samples, so that the samples given and skipped up to any block's start are the
    device's up to there at ``sr`` Hz (rounded): the clock never drifts. Until a gap the
    output lags the input by the resampler's delay (about 20 ms at 48 kHz)."""

    def fresh() -> soxr.ResampleStream:
        return soxr.ResampleStream(rate, sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    stream, seen, given = fresh(), 0, 0  # device samples accounted for; sr Hz samples out
    try:
        for block in blocks:
            if isinstance(block, Skipped):
                tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    given += len(tail)
                    yield tail
                stream, seen = fresh(), seen + block.samples
                gap = (seen * sr + rate // 2) // rate - given  # where the next block starts
                if gap > 0:
                    given += gap
                    yield Skipped(gap)
                continue
            seen += len(block)
            out = stream.resample_chunk(np.ascontiguousarray(block, np.float32))
            if len(out):
                given += len(out)
                yield out
    finally:
        blocks.close()  # stops and closes the device
