"""HTTP for Python steps, over wasi:http (the sandbox has no sockets, so
`urllib` cannot connect; the bundled `requests` is built on this module). Every request goes through the
host's egress proxy, which swaps sealed secrets in only for their app's hosts.

    from stephost_http import request
    response = request("POST", "https://slack.com/api/chat.postMessage",
                       headers={"Authorization": f"Bearer {token}"}, json={"text": "hi"})
    response.status, response.headers, response.json()
"""
import json as _json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import egress, outgoing_handler, types
from wit_world.imports.streams import StreamError_Closed


class HttpError(Exception):
    """The request did not complete: refused by the host's policy, or failed.
    `code` names the wasi:http error code (`ConnectionRefused`, ...)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Refused(HttpError):
    """The host refused the request (or its response) by policy: a sealed
    secret headed for a host it does not belong to, a host not allowed, an
    internal address. `reason` is the host's reason, secrets redacted.
    Sending it again gets the same answer."""

    def __init__(self, message, code=None, reason=None):
        super().__init__(message, code)
        self.reason = reason


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return _json.loads(self.body)


_METHODS = {
    "GET": types.Method_Get(), "HEAD": types.Method_Head(), "POST": types.Method_Post(),
    "PUT": types.Method_Put(), "DELETE": types.Method_Delete(), "PATCH": types.Method_Patch(),
    "OPTIONS": types.Method_Options(),
}


# Error codes the host's policy gives: refusals, not network failures.
_REFUSALS = {"HttpRequestDenied", "DestinationIpProhibited", "HttpRequestUriInvalid", "HttpResponseContentCoding"}


def _failure(method, url, error):
    """The exception for wasi:http's error code, with the host's reason."""
    # Taken for every failure, so a reason is never left over for a later one.
    reason = egress.last_refusal()
    code = type(error).__name__.removeprefix("ErrorCode_")
    if code in _REFUSALS:
        return Refused(f"{method} {url}: refused by stephost: {reason or code}", code, reason)
    return HttpError(f"{method} {url}: {reason or _describe(code, error)}", code)


# What a failure's code means, in words a user searches for.
_WORDS = {
    "DnsTimeout": "DNS lookup timed out",
    "ConnectionRefused": "connection refused",
    "ConnectionTimeout": "timed out connecting",
    "ConnectionReadTimeout": "timed out waiting for the response",
    "HttpResponseTimeout": "timed out waiting for the response",
    "HttpResponseBodySize": "the response body is over the host's size limit",
}


def _describe(code, error):
    """One line for a failure: a DNS failure says DNS and which name (not
    "connection refused"), an internal error its message."""
    value = getattr(error, "value", None)
    if code == "DnsError":
        rcode = getattr(value, "rcode", None)
        return f"DNS lookup failed: {rcode}" if rcode else "DNS lookup failed"
    if code == "InternalError" and isinstance(value, str):
        return value
    return _WORDS.get(code, code)


def _options(timeout):
    """wasi:http request options for a `timeout` in seconds (or a
    (connect, read) pair), as in `requests`; None without one."""
    if timeout is None:
        return None
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    options = types.RequestOptions()
    for setter, seconds in ((options.set_connect_timeout, connect), (options.set_first_byte_timeout, read),
                            (options.set_between_bytes_timeout, read)):
        if seconds is not None:
            try:
                setter(int(seconds * 1_000_000_000))
            except Err:
                pass  # the host keeps its own limit
    return options


def request(method, url, headers=None, body=None, json=None, timeout=None):
    """Sends one request and reads the whole response; `timeout` in seconds."""
    if json is not None:
        body = _json.dumps(json)
        headers = {"content-type": "application/json", **(headers or {})}
    if isinstance(body, str):
        body = body.encode()
    parts = urlsplit(url)
    fields = types.Fields.from_list([(str(k).lower(), str(v).encode()) for k, v in (headers or {}).items()])
    outgoing = types.OutgoingRequest(fields)
    outgoing.set_method(_METHODS.get(method.upper()) or types.Method_Other(method.upper()))
    outgoing.set_scheme(types.Scheme_Https() if parts.scheme == "https" else types.Scheme_Http())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query((parts.path or "/") + ("?" + parts.query if parts.query else ""))
    outgoing_body = outgoing.body()
    try:
        future = outgoing_handler.handle(outgoing, _options(timeout))
    except Err as error:
        raise _failure(method, url, error.value) from None
    stream = outgoing_body.write()
    data = body or b""
    for start in range(0, len(data), 4096):
        stream.blocking_write_and_flush(data[start:start + 4096])
    stream.__exit__(None, None, None)
    types.OutgoingBody.finish(outgoing_body, None)
    while (answer := future.get()) is None:
        future.subscribe().block()
    if isinstance(answer, Err):
        raise HttpError(f"{method} {url}: the response was already taken")
    if isinstance(answer.value, Err):
        raise _failure(method, url, answer.value.value)
    incoming = answer.value.value
    status = incoming.status()
    response_headers = {k: v.decode("utf-8", "replace") for k, v in incoming.headers().entries()}
    incoming_body = incoming.consume()
    reader = incoming_body.stream()
    chunks = []
    while True:
        try:
            chunks.append(reader.blocking_read(65536))
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                break
            raise HttpError(f"{method} {url}: reading the body: {error.value}") from None
    return Response(status, response_headers, b"".join(chunks))


def get(url, headers=None, timeout=None):
    return request("GET", url, headers=headers, timeout=timeout)


def post(url, headers=None, body=None, json=None, timeout=None):
    return request("POST", url, headers=headers, body=body, json=json, timeout=timeout)
