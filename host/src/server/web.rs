//! The inspector page: one static page at `/` and its assets under `/ui/`,
//! built into the binary so the page works offline and always matches the
//! API it calls. The assets hold no data (every run, step and workflow is
//! read from `/v1` with the token the user signs in with), so they need no
//! token. Step output is hostile: the page renders it as text only, and a
//! strict Content-Security-Policy on every response here keeps any markup
//! that slipped through from running (no inline script or style, nothing
//! from another origin).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The policy every page and asset response carries: scripts, styles and
/// API calls from this origin only, images from here or `data:`, no
/// framing, no forms posting anywhere, no `<base>` redirection.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A file of the page: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    bytes: include_bytes!("web/index.html"),
};

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("web/app.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("web/style.css"),
    },
    Asset {
        name: "preact-htm.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("web/vendor/preact-htm.js"),
    },
];

/// `/` and `/ui/{asset}`; merged into the server's router beside `/v1`.
pub(super) fn routes() -> Router<Arc<super::AppState>> {
    Router::new().route("/", get(index)).route("/ui/{asset}", get(asset))
}

async fn index(request: HeaderMap) -> Response {
    serve(&INDEX, &request)
}

async fn asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &request),
        None => {
            let body = axum::Json(crate::store::views::ApiErrorBody {
                error: format!("no asset {name}"),
                run: None,
            });
            with_policy((StatusCode::NOT_FOUND, body).into_response())
        }
    }
}

/// An asset, or 304 when the browser's copy (by ETag) is this build's.
/// `no-cache` makes the browser ask each time, so a new stephost never
/// runs beside an old page; the ETag keeps that ask cheap.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(asset.bytes))[..32]);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    with_policy(response)
}

/// The security headers every response of the page carries.
fn with_policy(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
