"""stephost's `requests`: the common API of the `requests` package, over
wasi:http (`stephost_http`), so every request goes through the host's egress
proxy (the sandbox has no sockets for the real package's urllib3).

get/post/put/patch/delete/head/options/request and Session; params, headers,
json, data, timeout, allow_redirects; Response.status_code, .ok, .json(),
.text, .content, .headers, .url, .raise_for_status(). A request the host
refuses raises `RequestRefused` (a `RequestException`, not a
`ConnectionError`: it must not be retried) with the host's reason.
"""
import json as _json
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import stephost_http as _http

from . import exceptions
from .exceptions import (
    ConnectionError, ConnectTimeout, HTTPError, InvalidURL, JSONDecodeError, ReadTimeout,
    RequestException, RequestRefused, Timeout, TooManyRedirects, URLRequired,
)

__version__ = "2.32.3"
__all__ = [
    "request", "get", "post", "put", "patch", "delete", "head", "options", "Session", "Response",
    "exceptions", "RequestException", "HTTPError", "ConnectionError", "Timeout", "JSONDecodeError",
    "RequestRefused",
]

_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}
_MAX_REDIRECTS = 30


class CaseInsensitiveDict(dict):
    """Header names compare without case, as in `requests.structures`."""

    def __init__(self, data=None):
        super().__init__()
        self._names = {}
        for key, value in (data or {}).items():
            self[key] = value

    def __setitem__(self, key, value):
        old = self._names.pop(key.lower(), None)
        if old is not None:
            super().__delitem__(old)
        self._names[key.lower()] = key
        super().__setitem__(key, value)

    def __getitem__(self, key):
        return super().__getitem__(self._names[key.lower()])

    def __delitem__(self, key):
        super().__delitem__(self._names.pop(key.lower()))

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._names

    def get(self, key, default=None):
        return self[key] if key in self else default


class Response:
    """What a request answered."""

    def __init__(self, status, headers, content, url, method):
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers)
        self.content = content
        self.url = url
        self.reason = _REASONS.get(status, "")
        self.encoding = "utf-8"
        self.history = []
        self.request = type("PreparedRequest", (), {"method": method, "url": url})()

    @property
    def ok(self):
        return self.status_code < 400

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"<Response [{self.status_code}]>"

    @property
    def text(self):
        return self.content.decode(self.encoding or "utf-8", "replace")

    def json(self, **kwargs):
        try:
            return _json.loads(self.content, **kwargs)
        except ValueError as error:
            raise JSONDecodeError(f"the body of {self.url} is not JSON: {error}", response=self) from None

    def iter_content(self, chunk_size=1, decode_unicode=False):
        data = self.text if decode_unicode else self.content
        for start in range(0, len(data), chunk_size or len(data) or 1):
            yield data[start:start + (chunk_size or len(data))]

    def iter_lines(self, decode_unicode=False):
        yield from (self.text if decode_unicode else self.content).splitlines()

    def close(self):
        pass

    def raise_for_status(self):
        if 400 <= self.status_code < 600:
            kind = "Client" if self.status_code < 500 else "Server"
            raise HTTPError(f"{self.status_code} {kind} Error: {self.reason} for url: {self.url}", response=self)


def _with_params(url, params):
    if not params:
        return url
    if isinstance(params, (dict, list, tuple)):
        items = params.items() if isinstance(params, dict) else params
        pairs = [(k, v) for k, values in items for v in (values if isinstance(values, (list, tuple)) else [values])
                 if v is not None]
        params = urlencode(pairs)
    parts = urlsplit(url)
    query = f"{parts.query}&{params}" if parts.query else params
    return urlunsplit(parts._replace(query=query))


def request(method, url, params=None, data=None, headers=None, cookies=None, files=None, auth=None,
            timeout=None, allow_redirects=True, proxies=None, hooks=None, stream=None, verify=None,
            cert=None, json=None):
    """Sends one request; as `requests.request`."""
    if not url:
        raise URLRequired("a URL is required")
    if files:
        raise RequestException("stephost's requests does not send files (multipart); build the body yourself")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidURL(f"invalid URL {url!r}: stephost's requests speaks http:// and https:// only")
    headers = CaseInsensitiveDict(headers)
    body = None
    if json is not None:
        body = _json.dumps(json).encode()
        if "content-type" not in headers:
            headers["Content-Type"] = "application/json"
    elif isinstance(data, (dict, list, tuple)):
        body = urlencode(list(data.items()) if isinstance(data, dict) else data, doseq=True).encode()
        if "content-type" not in headers:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif data is not None:
        body = data.encode() if isinstance(data, str) else bytes(data if not hasattr(data, "read") else data.read())
    if auth is not None:
        import base64
        user, password = auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in dict(cookies).items())
    url = _with_params(url, params)
    method = method.upper()
    history = []
    while True:
        try:
            answer = _http.request(method, url, headers=dict(headers), body=body, timeout=timeout)
        except _http.Refused as error:
            raise RequestRefused(str(error), reason=error.reason) from None
        except _http.HttpError as error:
            kind = Timeout if "Timeout" in (error.code or "") else ConnectionError
            raise kind(str(error)) from None
        response = Response(answer.status, answer.headers, answer.body, url, method)
        location = response.headers.get("location")
        if not (allow_redirects and location and response.status_code in (301, 302, 303, 307, 308)):
            response.history = history
            return response
        history.append(response)
        if len(history) > _MAX_REDIRECTS:
            raise TooManyRedirects(f"more than {_MAX_REDIRECTS} redirects from {url}", response=response)
        url = urljoin(url, location)
        if response.status_code in (301, 302, 303) and method != "HEAD":
            method, body = "GET", None
            for name in ("content-type", "content-length"):
                if name in headers:
                    del headers[name]


def get(url, params=None, **kwargs):
    return request("GET", url, params=params, **kwargs)


def options(url, **kwargs):
    return request("OPTIONS", url, **kwargs)


def head(url, **kwargs):
    kwargs.setdefault("allow_redirects", False)
    return request("HEAD", url, **kwargs)


def post(url, data=None, json=None, **kwargs):
    return request("POST", url, data=data, json=json, **kwargs)


def put(url, data=None, **kwargs):
    return request("PUT", url, data=data, **kwargs)


def patch(url, data=None, **kwargs):
    return request("PATCH", url, data=data, **kwargs)


def delete(url, **kwargs):
    return request("DELETE", url, **kwargs)


class Session:
    """Headers, params and auth shared by several requests."""

    def __init__(self):
        self.headers = CaseInsensitiveDict()
        self.params = {}
        self.auth = None

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def close(self):
        pass

    def request(self, method, url, params=None, headers=None, **kwargs):
        merged = CaseInsensitiveDict(self.headers)
        for key, value in (headers or {}).items():
            merged[key] = value
        all_params = {**self.params, **(params or {})} if isinstance(params, (dict, type(None))) else params
        kwargs.setdefault("auth", self.auth)
        return request(method, url, params=all_params, headers=merged, **kwargs)

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, data=None, json=None, **kwargs):
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url, **kwargs):
        return self.request("DELETE", url, **kwargs)

    def head(self, url, **kwargs):
        return self.request("HEAD", url, **kwargs)


session = Session
