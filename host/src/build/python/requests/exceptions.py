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
