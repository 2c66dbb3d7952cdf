//! Building client responses: S3 error documents and relayed upstream
//! responses with the upstream connection's own headers removed.

use super::body::ProxyBody;
use crate::s3::headers::{
    CIPHERTEXT_RESPONSE_HEADERS, HOP_BY_HOP_RESPONSE_HEADERS, SEAL_META_PREFIX,
};
use crate::s3::S3Error;
use crate::upstream::BoxError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;

/// Renders an S3 error document; HEAD responses carry no body.
pub fn error(
    error: &S3Error,
    request_id: &str,
    resource: Option<&str>,
    is_head: bool,
) -> Response<ProxyBody> {
    let mut response = if is_head {
        Response::new(empty())
    } else {
        let xml = error.to_xml(request_id, resource);
        let mut response = Response::new(full(xml));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        response
    };
    *response.status_mut() = error.status();
    response
}

pub fn empty() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| -> BoxError { match never {} })
        .boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| -> BoxError { match never {} })
        .boxed_unsync()
}

/// Relays an upstream response unchanged but for hop-by-hop headers.
pub fn relay(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(
        parts,
        body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
    )
}

/// Relays an upstream response of an encrypting bucket: hop-by-hop
/// headers, s3seal's metadata and ciphertext checksums are removed.
pub fn relay_sealed(response: Response<Incoming>) -> Response<ProxyBody> {
    let mut response = relay(response);
    strip_sealed_headers(response.headers_mut());
    response
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP_RESPONSE_HEADERS {
        headers.remove(*name);
    }
}

/// Removes s3seal's metadata and the checksums of the ciphertext.
pub fn strip_sealed_headers(headers: &mut HeaderMap) {
    for name in CIPHERTEXT_RESPONSE_HEADERS {
        headers.remove(*name);
    }
    let sealed: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(SEAL_META_PREFIX))
        .cloned()
        .collect();
    for name in sealed {
        headers.remove(name);
    }
}

/// Builds a response with a status, headers and body.
pub fn with_parts(status: StatusCode, headers: HeaderMap, body: ProxyBody) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
