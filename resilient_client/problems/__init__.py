"""The normalized error model: every error response, whatever its envelope, read into one
:class:`Problem` (after RFC 9457), with a category and a retry verdict.

Envelopes, one module each: ``_rfc9457`` (problem+json), ``_google`` (google.rpc.Status),
``_microsoft`` (REST guidelines), ``_jsonapi``, ``_openai`` (OpenAI and Anthropic),
``_stripe``, ``_graphql``, ``_unstructured`` (anything else). ``_detect`` picks one,
``_classify`` holds the category/retry decision table, ``_retry_after`` the Retry-After
parser, ``_raise`` the exception mapping.
"""

from ._classify import classify
from ._headers import REQUEST_ID_HEADERS, request_id_from_headers, server_retry_hint
from ._model import ErrorCategory, FieldError, Problem, ProblemFormat
from ._parse import DEFAULT_MAX_BODY_BYTES, aparse_problem, parse_problem, problem_from_parts
from ._raise import araise_for_error, raise_for_error
from ._retry_after import retry_after_seconds

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ErrorCategory",
    "FieldError",
    "Problem",
    "ProblemFormat",
    "REQUEST_ID_HEADERS",
    "aparse_problem",
    "araise_for_error",
    "classify",
    "parse_problem",
    "problem_from_parts",
    "raise_for_error",
    "request_id_from_headers",
    "retry_after_seconds",
    "server_retry_hint",
]
