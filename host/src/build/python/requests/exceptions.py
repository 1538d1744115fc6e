"""`requests.exceptions`, as the real package names them."""


class RequestException(IOError):
    """The request could not be made or its answer was an error."""

    def __init__(self, *args, response=None, request=None):
        super().__init__(*args)
        self.response = response
        self.request = request


class HTTPError(RequestException):
    """`raise_for_status()` on a 4xx or 5xx answer."""


class ConnectionError(RequestException):
    """The request did not complete: refused by the host's policy, or failed."""


class RequestRefused(RequestException, PermissionError):
    """stephost refused the request by policy (a sealed secret headed for a
    host it does not belong to, a host not allowed, an internal address);
    the message holds the host's reason. Not a `ConnectionError` on purpose:
    code that retries connection errors must not retry a refusal, which
    gets the same answer every time. `reason` is the host's text."""

    def __init__(self, *args, reason=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.reason = reason


class Timeout(RequestException):
    """The request timed out."""


class ConnectTimeout(ConnectionError, Timeout):
    """Connecting timed out."""


class ReadTimeout(Timeout):
    """The answer did not come in time."""


class URLRequired(RequestException):
    """No URL was given."""


class InvalidURL(RequestException, ValueError):
    """The URL is not http(s)://host/…"""


class TooManyRedirects(RequestException):
    """More redirects than `requests` follows."""


class JSONDecodeError(RequestException, ValueError):
    """`Response.json()` on a body that is not JSON."""
