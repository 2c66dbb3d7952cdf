//! The SigV4 canonical request as S3 builds it: canonical URI, canonical
//! query string and canonical headers.

use http::HeaderMap;
use sha2::{Digest, Sha256};

/// Percent-encodes `bytes` with the SigV4 rule: `A-Z a-z 0-9 - _ . ~` stay
/// as they are, and every other byte becomes `%XX` with uppercase hex.
fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes the `%XX` escape at the start of `input`, if there is one.
fn decode_escape(input: &[u8]) -> Option<u8> {
    match input {
        [b'%', high, low, ..] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

/// Percent-decodes a query component. A `+` decodes to a space, as in
/// `application/x-www-form-urlencoded`, and a `%` that does not start a
/// valid escape stays a literal `%`.
pub fn decode_query_component(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&byte, tail)) = rest.split_first() {
        if let Some(decoded) = decode_escape(rest) {
            out.push(decoded);
            rest = rest.get(3..).unwrap_or_default();
        } else {
            out.push(if byte == b'+' { b' ' } else { byte });
            rest = tail;
        }
    }
    out
}

/// Builds the canonical URI from the path as sent by decoding every `%XX`
/// escape and re-encoding each byte with the SigV4 rule.
///
/// A literal `/` stays a separator and an escaped `%2F` stays escaped, so a
/// key that contains a slash keeps a canonical form distinct from a deeper
/// key. Nothing else is normalized: `//`, `.` and `..` segments stay as
/// sent, because S3 treats them as part of the key. The result is the form
/// that a client escaping every reserved character signs.
pub fn normalized_uri(path: &str) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::with_capacity(path.len() + path.len() / 2);
    let mut rest = path.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'/' {
            out.push(b'/');
            rest = tail;
        } else if let Some(decoded) = decode_escape(rest) {
            encode_into(&mut out, &[decoded]);
            rest = rest.get(3..).unwrap_or_default();
        } else {
            encode_into(&mut out, &[byte]);
            rest = tail;
        }
    }
    out
}

/// Returns the canonical URI as sent, for clients that sign the path
/// exactly as they put it on the wire.
pub fn raw_uri(path: &str) -> Vec<u8> {
    if path.is_empty() {
        b"/".to_vec()
    } else {
        path.as_bytes().to_vec()
    }
}

/// Splits a raw query string into decoded `(name, value)` pairs. A
/// parameter without `=` has an empty value. Empty segments are skipped.
pub fn parse_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (
                decode_query_component(name.as_bytes()),
                decode_query_component(value.as_bytes()),
            )
        })
        .collect()
}

/// Builds the canonical query string: every name and value decoded,
/// re-encoded with the SigV4 rule, sorted by encoded name and then value,
/// and joined as `name=value` with `&`.
///
/// `excluded` names one parameter to leave out, which is `X-Amz-Signature`
/// for a presigned URL.
pub fn canonical_query(query: Option<&str>, excluded: Option<&str>) -> Vec<u8> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = parse_query(query.unwrap_or_default())
        .into_iter()
        .filter(|(name, _)| excluded.is_none_or(|excluded| name != excluded.as_bytes()))
        .map(|(name, value)| {
            let mut encoded_name = Vec::with_capacity(name.len());
            encode_into(&mut encoded_name, &name);
            let mut encoded_value = Vec::with_capacity(value.len());
            encode_into(&mut encoded_value, &value);
            (encoded_name, encoded_value)
        })
        .collect();
    pairs.sort();

    let mut out = Vec::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out
}

/// Appends a header value with leading and trailing spaces and tabs
/// removed and each inner run of spaces collapsed to one space.
pub fn push_trimmed_value(out: &mut Vec<u8>, value: &[u8]) {
    let is_blank = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = value.iter().position(|byte| !is_blank(byte));
    let end = value.iter().rposition(|byte| !is_blank(byte));
    let (Some(start), Some(end)) = (start, end) else {
        return;
    };
    let trimmed = value.get(start..=end).unwrap_or_default();
    if !trimmed.windows(2).any(|pair| pair == b"  ") {
        out.extend_from_slice(trimmed);
        return;
    }
    let mut previous_space = false;
    for &byte in trimmed {
        let is_space = byte == b' ';
        if !(is_space && previous_space) {
            out.push(byte);
        }
        previous_space = is_space;
    }
}

/// Builds the canonical headers block: one `name:value\n` line per signed
/// header, in the order of `signed_headers`. Repeated headers are joined
/// with `,`. `host` is the Host header as sent, port included, or `host`
/// from the caller when the request carries none (HTTP/2 `:authority`).
pub fn canonical_headers<S: AsRef<str>>(
    headers: &HeaderMap,
    signed_headers: &[S],
    host: &[u8],
) -> Vec<u8> {
    // 512 bytes hold the headers that SDKs sign without regrowing.
    let mut out = Vec::with_capacity(512);
    for name in signed_headers {
        let name = name.as_ref();
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        if name == "host" && !headers.contains_key(http::header::HOST) {
            push_trimmed_value(&mut out, host);
        } else {
            for (index, value) in headers.get_all(name).iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                push_trimmed_value(&mut out, value.as_bytes());
            }
        }
        out.push(b'\n');
    }
    out
}

/// The parts of a canonical request that do not depend on the URI variant.
pub struct CanonicalParts<'a> {
    pub method: &'a str,
    pub query: Vec<u8>,
    pub headers: Vec<u8>,
    pub signed_headers: &'a str,
    pub payload_hash: &'a str,
}

impl CanonicalParts<'_> {
    /// Assembles the canonical request for one canonical URI.
    pub fn with_uri(&self, uri: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.method.len() + uri.len() + self.query.len() + self.headers.len() + 200,
        );
        out.extend_from_slice(self.method.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(uri);
        out.push(b'\n');
        out.extend_from_slice(&self.query);
        out.push(b'\n');
        out.extend_from_slice(&self.headers);
        out.push(b'\n');
        out.extend_from_slice(self.signed_headers.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

/// The SigV4 signing algorithm, the first line of every string to sign.
pub const SIGV4_ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name of every S3 credential scope.
pub const SIGV4_SERVICE: &str = "s3";

/// The last component of every SigV4 credential scope.
pub const SIGV4_SCOPE_TERMINATOR: &str = "aws4_request";

/// Builds the credential scope `DATE/REGION/s3/aws4_request`.
pub fn credential_scope(date: &str, region: &str) -> String {
    let mut scope = String::with_capacity(
        date.len() + region.len() + SIGV4_SERVICE.len() + SIGV4_SCOPE_TERMINATOR.len() + 3,
    );
    for (index, part) in [date, region, SIGV4_SERVICE, SIGV4_SCOPE_TERMINATOR]
        .into_iter()
        .enumerate()
    {
        if index > 0 {
            scope.push('/');
        }
        scope.push_str(part);
    }
    scope
}

/// Builds the request string to sign from the canonical request:
/// the algorithm, the request time, the scope and the hex SHA-256 of the
/// canonical request, one per line.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGV4_ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    for part in [SIGV4_ALGORITHM, amz_date, scope] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    push_hex_lower(&mut out, &Sha256::digest(canonical_request));
    out
}

/// Formats bytes as lowercase hex. `hex::encode` collects characters one
/// at a time, which costs several times more on the request path.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex_lower(&mut out, bytes);
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(_) => unreachable!("hex digits are ASCII"),
    }
}

/// Appends the lowercase hex form of `bytes` to `out`.
pub fn push_hex_lower(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    out.extend(bytes.iter().flat_map(|byte| {
        [
            DIGITS[usize::from(byte >> 4)],
            DIGITS[usize::from(byte & 0x0f)],
        ]
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_sign_layout() {
        let scope = credential_scope("20130524", "us-east-1");
        assert_eq!(scope, "20130524/us-east-1/s3/aws4_request");
        let text = string_to_sign("20130524T000000Z", &scope, b"");
        assert_eq!(
            String::from_utf8(text).unwrap(),
            format!(
                "AWS4-HMAC-SHA256\n20130524T000000Z\n{scope}\n{}",
                hex::encode(Sha256::digest(b""))
            )
        );
    }

    #[test]
    fn hex_lower_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&bytes), hex::encode(&bytes));
        assert_eq!(hex_lower(&[]), "");
    }

    use http::HeaderValue;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("canonical output is ASCII")
    }

    #[test]
    fn normalized_uri_encodes_reserved_characters() {
        assert_eq!(text(normalized_uri("/b/a b")), "/b/a%20b");
        assert_eq!(text(normalized_uri("/b/a%20b")), "/b/a%20b");
        assert_eq!(
            text(normalized_uri("/b/x=y~z!$'()*@:,")),
            "/b/x%3Dy~z%21%24%27%28%29%2A%40%3A%2C"
        );
        assert_eq!(
            text(normalized_uri("/b/x%3dy%7Ez%21%24%27%28%29%2A%40%3A%2C")),
            "/b/x%3Dy~z%21%24%27%28%29%2A%40%3A%2C"
        );
        assert_eq!(text(normalized_uri("/b/%C3%A9")), "/b/%C3%A9");
        assert_eq!(text(normalized_uri("/b/+")), "/b/%2B");
    }

    #[test]
    fn normalized_uri_keeps_slashes_and_dot_segments() {
        assert_eq!(text(normalized_uri("")), "/");
        assert_eq!(text(normalized_uri("/")), "/");
        assert_eq!(text(normalized_uri("/b//k/./../x")), "/b//k/./../x");
        assert_eq!(text(normalized_uri("/b/a%2Fc")), "/b/a%2Fc");
        assert_eq!(text(normalized_uri("/b/a%2fc")), "/b/a%2Fc");
    }

    #[test]
    fn normalized_uri_keeps_invalid_escapes_literal() {
        assert_eq!(text(normalized_uri("/b/%")), "/b/%25");
        assert_eq!(text(normalized_uri("/b/%4")), "/b/%254");
        assert_eq!(text(normalized_uri("/b/%zz")), "/b/%25zz");
        assert_eq!(text(normalized_uri("/b/%2541")), "/b/%2541");
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        let query = canonical_query(Some("prefix=J&max-keys=2"), None);
        assert_eq!(text(query), "max-keys=2&prefix=J");

        let query = canonical_query(Some("b=2&a=3&a=1&acl&&x=a%2fb+c~"), None);
        assert_eq!(text(query), "a=1&a=3&acl=&b=2&x=a%2Fb%20c~");

        let query = canonical_query(Some("k=%E2%82%AC&j=%"), None);
        assert_eq!(text(query), "j=%25&k=%E2%82%AC");

        assert_eq!(text(canonical_query(None, None)), "");
        assert_eq!(text(canonical_query(Some(""), None)), "");
    }

    #[test]
    fn canonical_query_drops_excluded_parameter() {
        let query = canonical_query(
            Some("X-Amz-Signature=abc&X-Amz-Date=1"),
            Some("X-Amz-Signature"),
        );
        assert_eq!(text(query), "X-Amz-Date=1");
    }

    #[test]
    fn canonical_headers_trim_and_join() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com:9000"));
        headers.insert("x-amz-meta-a", HeaderValue::from_static("  a   b  c "));
        headers.append("x-amz-meta-b", HeaderValue::from_static("one"));
        headers.append("x-amz-meta-b", HeaderValue::from_static("two  three"));
        let signed = ["host", "x-amz-meta-a", "x-amz-meta-b", "x-amz-missing"].map(String::from);
        let block = canonical_headers(&headers, &signed, b"ignored");
        assert_eq!(
            text(block),
            "host:example.com:9000\nx-amz-meta-a:a b c\nx-amz-meta-b:one,two three\nx-amz-missing:\n"
        );
    }

    #[test]
    fn canonical_headers_use_authority_without_host() {
        let headers = HeaderMap::new();
        let block = canonical_headers(&headers, &["host".to_string()], b"example.com:8443");
        assert_eq!(text(block), "host:example.com:8443\n");
    }
}
