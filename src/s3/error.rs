//! The S3 error model: a code with its HTTP status, a message and an
//! optional source, rendered as `<Error>` XML in one place by `proxy`.

use http::StatusCode;
use std::fmt;

/// The S3 error codes that s3seal produces itself. Upstream error
/// documents are relayed as they are and never pass through this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    RequestTimeout,
    InvalidObjectState,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidRange,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    InvalidPart,
    InvalidPartNumber,
    InvalidPartOrder,
    NotImplemented,
    PreconditionFailed,
    RequestTimeTooSkewed,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    /// The upstream could not be reached or sent a response s3seal cannot use.
    BadGateway,
    /// The upstream did not respond in time.
    GatewayTimeout,
}

impl ErrorCode {
    /// Returns the code as S3 spells it in `<Code>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            Self::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            Self::BadDigest => "BadDigest",
            Self::EntityTooLarge => "EntityTooLarge",
            Self::EntityTooSmall => "EntityTooSmall",
            Self::IncompleteBody => "IncompleteBody",
            Self::RequestTimeout => "RequestTimeout",
            Self::InvalidObjectState => "InvalidObjectState",
            Self::InternalError => "InternalError",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::InvalidArgument => "InvalidArgument",
            Self::InvalidBucketName => "InvalidBucketName",
            Self::InvalidDigest => "InvalidDigest",
            Self::InvalidRange => "InvalidRange",
            Self::InvalidRequest => "InvalidRequest",
            Self::KeyTooLongError => "KeyTooLongError",
            Self::MalformedXML => "MalformedXML",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::MissingContentLength => "MissingContentLength",
            Self::NoSuchBucket => "NoSuchBucket",
            Self::NoSuchKey => "NoSuchKey",
            Self::NoSuchUpload => "NoSuchUpload",
            Self::InvalidPart => "InvalidPart",
            Self::InvalidPartOrder => "InvalidPartOrder",
            Self::InvalidPartNumber => "InvalidPartNumber",
            Self::NotImplemented => "NotImplemented",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            Self::BadGateway => "BadGateway",
            Self::GatewayTimeout => "GatewayTimeout",
        }
    }

    /// Returns the HTTP status S3 uses for this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::AccessDenied
            | Self::InvalidAccessKeyId
            | Self::RequestTimeTooSkewed
            | Self::InvalidObjectState
            | Self::SignatureDoesNotMatch => StatusCode::FORBIDDEN,
            Self::NoSuchBucket | Self::NoSuchKey | Self::NoSuchUpload => StatusCode::NOT_FOUND,
            Self::InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingContentLength => StatusCode::LENGTH_REQUIRED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::AuthorizationHeaderMalformed
            | Self::AuthorizationQueryParametersError
            | Self::BadDigest
            | Self::EntityTooLarge
            | Self::EntityTooSmall
            | Self::IncompleteBody
            | Self::RequestTimeout
            | Self::InvalidArgument
            | Self::InvalidBucketName
            | Self::InvalidDigest
            | Self::InvalidPart
            | Self::InvalidPartOrder
            | Self::InvalidRequest
            | Self::KeyTooLongError
            | Self::MalformedXML
            | Self::XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error that s3seal reports to the client as an S3 `<Error>` document.
#[derive(Debug)]
pub struct S3Error {
    code: ErrorCode,
    message: String,
    /// The region the request should have named, sent as `<Region>` as S3
    /// does for a wrong region, which s3cmd reads to sign its retry.
    region: Option<String>,
    /// A further element of the error document, such as
    /// `<HeadersNotSigned>`, as name and text.
    detail: Option<(&'static str, String)>,
    source: Option<BoxError>,
    /// The cause lies in s3seal's own setup, not in the request, so the
    /// request line is logged at `error` level whatever the status.
    operator_fault: bool,
}

impl S3Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            region: None,
            detail: None,
            source: None,
            operator_fault: false,
        }
    }

    /// Marks the error as caused by s3seal's setup, such as a key missing
    /// from the keyring, which an operator has to fix.
    pub fn operator_fault(mut self) -> Self {
        self.operator_fault = true;
        self
    }

    pub fn is_operator_fault(&self) -> bool {
        self.operator_fault
    }

    /// Adds the element `<name>text</name>` to the error document.
    pub fn with_detail(mut self, name: &'static str, text: impl Into<String>) -> Self {
        self.detail = Some((name, text.into()));
        self
    }

    /// Names the region the request should have used.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Attaches the underlying cause, which is logged but never sent to the client.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Renders the S3 XML error document with the request id.
    pub fn to_xml(&self, request_id: &str, resource: Option<&str>) -> String {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        xml.push_str(self.code.as_str());
        xml.push_str("</Code><Message>");
        xml.push_str(&escape_xml(&self.message));
        xml.push_str("</Message>");
        if let Some(region) = &self.region {
            xml.push_str("<Region>");
            xml.push_str(&escape_xml(region));
            xml.push_str("</Region>");
        }
        if let Some((name, text)) = &self.detail {
            xml.push('<');
            xml.push_str(name);
            xml.push('>');
            xml.push_str(&escape_xml(text));
            xml.push_str("</");
            xml.push_str(name);
            xml.push('>');
        }
        if let Some(resource) = resource {
            xml.push_str("<Resource>");
            xml.push_str(&escape_xml(resource));
            xml.push_str("</Resource>");
        }
        xml.push_str("<RequestId>");
        xml.push_str(&escape_xml(request_id));
        xml.push_str("</RequestId></Error>");
        xml
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        let Some(source) = &self.source else {
            return Ok(());
        };
        // Every cause is printed, so a log line names the root cause of an
        // upstream failure. A cause already in the previous text is skipped.
        let mut previous = source.to_string();
        write!(f, ": {previous}")?;
        let mut next = source.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !previous.contains(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            next = cause.source();
        }
        Ok(())
    }
}

impl std::error::Error for S3Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Escapes the five XML special characters for element text. Characters
/// that XML 1.0 cannot contain at all, even as references (control
/// characters other than tab, line feed and carriage return, and U+FFFE
/// and U+FFFF), are written percent-encoded, as in a URL, so that the
/// document stays well-formed.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                let mut bytes = [0u8; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_has_no_characters_outside_xml() {
        assert_eq!(escape_xml("k\u{1}<&"), "k%01&lt;&amp;");
        assert_eq!(escape_xml("a\tb\nc\rd"), "a\tb\nc\rd");
        assert_eq!(escape_xml("x\u{1f}\u{ffff}é"), "x%1F%EF%BF%BFé");
    }

    #[test]
    fn error_xml_escapes_message() {
        let err = S3Error::new(ErrorCode::InvalidArgument, "bad <key> & \"value\"");
        let xml = err.to_xml("req-1", Some("/b/k"));
        assert!(xml.contains("<Code>InvalidArgument</Code>"));
        assert!(xml.contains("<Message>bad &lt;key&gt; &amp; &quot;value&quot;</Message>"));
        assert!(xml.contains("<Resource>/b/k</Resource>"));
        assert!(xml.contains("<RequestId>req-1</RequestId>"));
    }

    /// An error whose text may repeat its cause's, as wrappers often do.
    #[derive(Debug)]
    struct Layer {
        text: String,
        cause: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.text)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause
                .as_deref()
                .map(|c| c as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn display_shows_cause_chain_once() {
        let os_error = Layer {
            text: "Connection refused (os error 111)".into(),
            cause: None,
        };
        let connect = Layer {
            text: "client error (Connect)".into(),
            cause: Some(Box::new(os_error)),
        };
        let send = Layer {
            text: "upstream request failed: client error (Connect)".into(),
            cause: Some(Box::new(connect)),
        };
        let error = S3Error::new(ErrorCode::BadGateway, "unreachable").with_source(send);
        assert_eq!(
            error.to_string(),
            "BadGateway: unreachable: upstream request failed: client error (Connect): \
             Connection refused (os error 111)"
        );
    }

    #[test]
    fn status_matches_s3() {
        assert_eq!(
            ErrorCode::SignatureDoesNotMatch.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(ErrorCode::BadDigest.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ErrorCode::InvalidRange.status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            ErrorCode::NotImplemented.status(),
            StatusCode::NOT_IMPLEMENTED
        );
    }
}
