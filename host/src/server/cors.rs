//! CORS for HTTP endpoints, per a workflow's `cors` setting (off by
//! default): a browser page on an allowed origin may send events and read
//! the answer; on any other origin the browser keeps the answer from it.

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ALLOW, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The methods an endpoint takes (every one starts a run but these two).
const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// What `Access-Control-Allow-Origin` says to a request from `headers`'
/// origin, if the workflow allows that origin: the origin itself, or `*`
/// when every origin is allowed.
fn allowed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    if allowed.iter().any(|a| a == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a.eq_ignore_ascii_case(text)).then(|| origin.clone())
}

/// The answer to `OPTIONS` on an endpoint: `204` with `Allow`, and for a
/// preflight from an allowed origin the CORS grant (the method and the
/// headers it asked for, cached for ten minutes). Never a run.
pub(super) fn preflight(allowed: &[String], headers: &HeaderMap) -> Response {
    let mut response = (StatusCode::NO_CONTENT, [(ALLOW, METHODS)]).into_response();
    let asks = headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if let Some(origin) = allowed_origin(allowed, headers).filter(|_| asks) {
        let granted = response.headers_mut();
        granted.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        granted.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
        if let Some(asked) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            granted.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        granted.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response.headers_mut().append(VARY, HeaderValue::from_static("origin"));
    response
}

/// Lets a page on an allowed origin read `response` (and the run id in
/// `x-stephost-run`); leaves it as it is for any other origin.
pub(super) fn grant(allowed: &[String], headers: &HeaderMap, mut response: Response) -> Response {
    if allowed.is_empty() {
        return response;
    }
    if let Some(origin) = allowed_origin(allowed, headers) {
        let granted = response.headers_mut();
        granted.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        granted.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-stephost-run"));
    }
    response.headers_mut().append(VARY, HeaderValue::from_static("origin"));
    response
}
