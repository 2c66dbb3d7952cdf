//! Building client responses: S3 error documents and relayed upstream
//! responses with the upstream connection's own headers removed.

use super::body::ProxyBody;
use crate::s3::headers::{
    CIPHERTEXT_RESPONSE_HEADERS, HOP_BY_HOP_RESPONSE_HEADERS, SEAL_META_PREFIX,
};
use crate::s3::{ErrorCode, S3Error};
use crate::upstream::{BoxError, ResponseBody};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

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
pub fn relay(response: Response<ResponseBody>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.boxed_unsync())
}

/// Relays an upstream response of an encrypting bucket: hop-by-hop
/// headers, s3seal's metadata and ciphertext checksums are removed.
pub fn relay_sealed(response: Response<ResponseBody>) -> Response<ProxyBody> {
    let mut response = relay(response);
    strip_sealed_headers(response.headers_mut());
    response
}

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    crate::s3::headers::remove_matching(headers, |name| HOP_BY_HOP_RESPONSE_HEADERS.contains(name));
}

/// Removes s3seal's metadata and the checksums of the ciphertext.
pub fn strip_sealed_headers(headers: &mut HeaderMap) {
    crate::s3::headers::remove_matching(headers, |name| {
        CIPHERTEXT_RESPONSE_HEADERS.contains(name) || name.as_str().starts_with(SEAL_META_PREFIX)
    });
}

/// Returns the S3 error to send in place of an upstream error with a body
/// that is not XML, such as a load balancer's HTML page.
///
/// The error keeps the status, so clients retry as they would have. A
/// client error (4xx) with no matching S3 code is relayed as it is.
pub fn replace_upstream_error<B>(response: &Response<B>) -> Option<S3Error> {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return None;
    }
    let content_type = response.headers().get(http::header::CONTENT_TYPE)?;
    let is_xml = content_type
        .to_str()
        .is_ok_and(|value| value.to_ascii_lowercase().contains("xml"));
    if is_xml {
        return None;
    }
    let code = match status {
        StatusCode::BAD_REQUEST => ErrorCode::InvalidRequest,
        StatusCode::FORBIDDEN => ErrorCode::AccessDenied,
        StatusCode::NOT_FOUND => ErrorCode::NoSuchKey,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::LENGTH_REQUIRED => ErrorCode::MissingContentLength,
        StatusCode::PRECONDITION_FAILED => ErrorCode::PreconditionFailed,
        StatusCode::RANGE_NOT_SATISFIABLE => ErrorCode::InvalidRange,
        _ if status.is_client_error() => return None,
        StatusCode::NOT_IMPLEMENTED => ErrorCode::NotImplemented,
        StatusCode::BAD_GATEWAY => ErrorCode::BadGateway,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        StatusCode::GATEWAY_TIMEOUT => ErrorCode::GatewayTimeout,
        _ => ErrorCode::InternalError,
    };
    Some(S3Error::new(
        code,
        format!(
            "the upstream store returned {status} with a body of type {} instead of an S3 error document",
            String::from_utf8_lossy(content_type.as_bytes())
        ),
    ))
}

/// Builds a response with a status, headers and body.
pub fn with_parts(status: StatusCode, headers: HeaderMap, body: ProxyBody) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: u16, content_type: Option<&str>) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(value) = content_type {
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response
    }

    #[test]
    fn html_server_error_replaced() {
        for (status, code) in [
            (500, ErrorCode::InternalError),
            (501, ErrorCode::NotImplemented),
            (502, ErrorCode::BadGateway),
            (503, ErrorCode::ServiceUnavailable),
            (504, ErrorCode::GatewayTimeout),
        ] {
            let error = replace_upstream_error(&upstream(status, Some("text/html; charset=utf-8")))
                .unwrap_or_else(|| panic!("status {status} was not replaced"));
            assert_eq!(error.code(), code);
            assert_eq!(error.status().as_u16(), status);
            assert!(error.message().contains("text/html"), "{}", error.message());
        }
    }

    #[test]
    fn other_server_status_is_internal_error() {
        let error = replace_upstream_error(&upstream(507, Some("text/plain"))).unwrap();
        assert_eq!(error.code(), ErrorCode::InternalError);
    }

    #[test]
    fn xml_or_untyped_error_relayed() {
        for content_type in [
            Some("application/xml"),
            Some("text/xml"),
            Some("Application/XML; charset=UTF-8"),
            None,
        ] {
            assert!(
                replace_upstream_error(&upstream(503, content_type)).is_none(),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn html_client_error_replaced_by_status() {
        for (status, code) in [
            (400, ErrorCode::InvalidRequest),
            (403, ErrorCode::AccessDenied),
            (404, ErrorCode::NoSuchKey),
            (405, ErrorCode::MethodNotAllowed),
            (411, ErrorCode::MissingContentLength),
            (412, ErrorCode::PreconditionFailed),
            (416, ErrorCode::InvalidRange),
        ] {
            let error = replace_upstream_error(&upstream(status, Some("text/html")))
                .unwrap_or_else(|| panic!("status {status} was not replaced"));
            assert_eq!(error.code(), code);
            assert_eq!(error.status().as_u16(), status);
        }
    }

    #[test]
    fn unmapped_client_error_and_success_relayed() {
        assert!(replace_upstream_error(&upstream(409, Some("text/html"))).is_none());
        assert!(replace_upstream_error(&upstream(200, Some("text/html"))).is_none());
        assert!(replace_upstream_error(&upstream(404, Some("application/xml"))).is_none());
    }
}
