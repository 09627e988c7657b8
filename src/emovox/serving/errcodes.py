"""Every error code of the REST API, in one place (stop 51).

An error is answered with the JSON body ``{"error": CODE, "detail": MESSAGE}``: ``CODE`` is
one of :class:`ErrorCode` (a stable, documented list: the OpenAPI document declares
``ErrorBody.error`` as this enum and the README's "Error codes" table is checked against it),
``MESSAGE`` the words for a person. Each code has one HTTP status, a one-line meaning and
what a client should do. :func:`http_status` maps emovox's typed errors onto them.

A file of a format emovox reads (the sniffer knew its container) that ffmpeg, once tried,
refuses for any reason but a missing decoder (its container or stream header is invalid,
its index is missing, it is cut short) is 422 ``bad_audio``, as a damaged file libsndfile
reads part of is; 415 ``unsupported_codec`` is kept for a container or codec that cannot be
decoded here (no ffmpeg, or a codec ffmpeg has no decoder for). The audio layer decides,
where ffmpeg's words are still its own: :class:`~emovox.errors.DamagedContainer` (a
:class:`~emovox.errors.DamagedAudio` and an :class:`~emovox.errors.UnsupportedCodec`;
:func:`emovox.audio.ffmpeg.says_damaged`). Before stop 51 a WAV with a broken ``fmt`` chunk,
no ``data`` chunk, 0 channels or a sample rate of 0xFFFFFFFF, and an M4A cut in half, were
all 415 while the docs said damaged files are 422; the first fix read ffmpeg's verdict
back out of the formatted message, against a list of damage phrases, and left a FLAC or an
Ogg cut short 415 (its review, stop 51).
"""

from __future__ import annotations

from enum import Enum

from emovox.errors import (
    AudioError,
    AudioTooLong,
    ConfigError,
    DamagedAudio,
    NotAudio,
    UnsupportedCodec,
)
from emovox.serving.adapt import AdaptationError, TooFewReferences
from emovox.serving.adapt_uploads import MAX_REFERENCES, TooManyReferences
from emovox.serving.params import DEFAULT_REQUEST_TIMEOUT_S
from emovox.serving.uploads import UploadTooLarge

__all__ = ["ErrorCode", "http_status"]


class ErrorCode(str, Enum):
    """The ``error`` of an error body: its value is the code; ``status`` its HTTP status,
    ``meaning`` what it says, ``action`` what a client should do."""

    status: int
    meaning: str
    action: str

    def __new__(cls, code: str, status: int, meaning: str, action: str) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status, member.meaning, member.action = status, meaning, action
        return member

    def __str__(self) -> str:
        return self.value

    HTTP_ERROR = ("http_error", 400, "a request body the HTTP layer refuses: a multipart "
                  "body without a boundary, compressed or malformed",
                  "send a plain multipart/form-data body (curl -F)")
    CORS_REFUSED = ("cors_refused", 400, "a browser's CORS preflight (OPTIONS) the server "
                    "refuses: an origin it does not allow (--cors-origin), or a method or "
                    "header outside those the API takes", "call it from an allowed origin "
                    "with GET, HEAD or POST (the operator lists origins)")
    UNAUTHORIZED = ("unauthorized", 401, "missing or wrong API key (only when the server "
                    "has one)", "send the key: X-API-Key: KEY or Authorization: Bearer KEY")
    NOT_FOUND = ("not_found", 404, "no such route", "check the path (GET /openapi.json "
                 "lists the routes)")
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, "the route does not take this method",
                          "use a method the Allow header lists")
    UPLOAD_STALLED = ("upload_stalled", 408, "nothing of the request body arrived for 30 s, "
                      "or it averaged under 32 KiB/s after its first 30 s",
                      "send it again, over a faster connection")
    UPLOAD_TOO_LARGE = ("upload_too_large", 413, "the request or the clip is larger than "
                        "the server's size limit", "send a shorter or compressed recording; "
                        "do not retry as it is")
    UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", 415, "the request body is not a "
                              "multipart/form-data upload (a raw audio body, JSON...)",
                              "upload the recording as the multipart file part 'file'")
    NOT_AUDIO = ("not_audio", 415, "the upload is not an audio file (text, an image, a "
                 "video without sound, headerless PCM)", "send a recording; do not retry")
    UNSUPPORTED_CODEC = ("unsupported_codec", 415, "an audio container or codec this server "
                         "cannot decode (no ffmpeg, or no decoder for its codec)",
                         "convert it to WAV or FLAC (ffmpeg -i IN out.wav); do not retry")
    AUDIO_TOO_LONG = ("audio_too_long", 422, "longer than the server's duration limit "
                      "(GET /v1/model: limits.max_duration_s)", "cut it into shorter pieces")
    BAD_AUDIO = ("bad_audio", 422, "audio of a format the server reads, but empty, damaged "
                 "or cut short (a broken header, no data, an M4A without its index)",
                 "re-export or re-encode the recording; do not retry as it is")
    INVALID_REQUEST = ("invalid_request", 422, "no 'file' part, several, a query parameter "
                       "or form field the route does not read, or a value out of range",
                       "fix the request as the detail says")
    INCOMPLETE_UPLOAD = ("incomplete_upload", 422, "the multipart body ends before its "
                         "closing boundary (cut short on the way)", "send it again")
    TOO_MANY_REFERENCES = ("too_many_references", 422, "more file parts than the clip and "
                           f"{MAX_REFERENCES} references", f"send at most {MAX_REFERENCES} "
                           "references (16 are enough)")
    TOO_FEW_REFERENCES = ("too_few_references", 422, "fewer than 3 usable reference clips "
                          "to adapt to the speaker", "send more clips of the speaker with "
                          "speech, or none")
    ADAPTATION_FAILED = ("adaptation_failed", 422, "speaker adaptation was asked for but "
                         "could not be done", "send other references, or none")
    CLIENT_CLOSED_REQUEST = ("client_closed_request", 499, "the client closed the "
                             "connection before its turn (logged; nobody receives it)",
                             "nothing: the client has gone")
    INTERNAL_ERROR = ("internal_error", 500, "an unexpected error on the server (its log "
                      "says more)", "report it; the same request will most likely "
                      "fail again")
    MODEL_UNAVAILABLE = ("model_unavailable", 503, "the server has no model: it could not "
                         "be loaded", "tell the operator (GET /health says more)")
    SHUTTING_DOWN = ("shutting_down", 503, "the server stopped before answering",
                     "send it again (to a running server)")
    SERVER_BUSY = ("server_busy", 503, "every upload slot is taken and too many requests "
                   "wait, or none came free within 60 s", "retry after Retry-After seconds")
    DEADLINE_EXCEEDED = ("deadline_exceeded", 504, "not answered within the server's time "
                         f"limit (emovox serve --request-timeout, {DEFAULT_REQUEST_TIMEOUT_S:g} "
                         "s by default), waiting for an analysis slot and analysing together",
                         "send it again later; if it ran long, send a shorter recording")

    @property
    def pair(self) -> tuple[int, ErrorCode]:
        """``(status, code)``, as :func:`http_status` returns it."""
        return self.status, self


def http_status(exc: BaseException) -> tuple[int, ErrorCode]:
    """``(status code, error code)`` of the REST API for ``exc``."""
    if isinstance(exc, UploadTooLarge):
        return ErrorCode.UPLOAD_TOO_LARGE.pair
    if isinstance(exc, NotAudio):
        return ErrorCode.NOT_AUDIO.pair
    if isinstance(exc, UnsupportedCodec) and not isinstance(exc, DamagedAudio):
        return ErrorCode.UNSUPPORTED_CODEC.pair  # a DamagedContainer is bad_audio
    if isinstance(exc, AudioTooLong):
        return ErrorCode.AUDIO_TOO_LONG.pair
    if isinstance(exc, AudioError):
        return ErrorCode.BAD_AUDIO.pair
    if isinstance(exc, TooManyReferences):
        return ErrorCode.TOO_MANY_REFERENCES.pair
    if isinstance(exc, TooFewReferences):
        return ErrorCode.TOO_FEW_REFERENCES.pair
    if isinstance(exc, AdaptationError):  # speaker adaptation asked for but impossible
        return ErrorCode.ADAPTATION_FAILED.pair
    if isinstance(exc, ConfigError):  # a setting refused: "bad_request" before stop 51,
        return ErrorCode.INVALID_REQUEST.pair  # a second name for invalid_request
    return ErrorCode.INTERNAL_ERROR.pair
