"""Typed errors a user can act on. Every message names the file and what is wrong."""

from __future__ import annotations


class EmovoxError(Exception):
    """Base class of every error emovox raises on purpose."""


class AudioError(EmovoxError):
    """The audio could not be turned into a usable waveform."""


class AudioFileNotFound(AudioError, FileNotFoundError):
    """The path does not exist or is not a file."""


class EmptyAudio(AudioError):
    """The file has zero bytes, or decodes to zero samples."""


class NotAudio(AudioError):
    """The bytes are not any audio format we know."""


class UnsupportedCodec(AudioError):
    """The container is audio but its codec cannot be decoded here (e.g. m4a without ffmpeg)."""


class DamagedAudio(AudioError):
    """The format is known but decoding failed part-way through: a damaged or truncated
    file. ``detail``: the decoder's own words. Raised when nothing could be read; after some
    audio, the decoders answer on what was read with a warning instead (stop 33)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class DamagedContainer(UnsupportedCodec, DamagedAudio):
    """A file of a container emovox reads (its first bytes say which) that no decoder
    opens, and that ffmpeg, once tried, refused for another reason than a missing decoder:
    its header or index is broken, or it is cut short (a FLAC cut at 50 bytes, an Ogg at
    1,000). Still an :class:`UnsupportedCodec` for callers that catch that; the REST API
    answers it 422 ``bad_audio`` (stop 51). ``detail``: ffmpeg's words."""


class InvalidSamples(AudioError):
    """The decoded signal contains NaN or infinite samples."""


class AudioTooShort(AudioError):
    """Shorter than the minimum duration a caller asked for."""


class AudioTooLong(AudioError):
    """Longer than the maximum duration a caller asked for. ``limit_s``: the limit that
    applied (shorter than the one asked for when ``mixdown`` = ``(channels, rate)`` says the
    file's many channels or high rate made it so), when the raiser knows it."""

    def __init__(self, message: str, *, limit_s: float | None = None,
                 mixdown: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.limit_s = limit_s
        self.mixdown = mixdown


class LeakageError(EmovoxError):
    """A split puts the same speaker (or the same audio) on both sides."""


class ConfigError(EmovoxError):
    """A configuration value is invalid or inconsistent."""


class AudioOutOfLimits(AudioError):
    """The header declares a sample rate or channel count emovox refuses (checked before
    decoding, so a small file cannot expand into gigabytes of samples)."""
