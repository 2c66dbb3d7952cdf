//! The ETags that clients see for encrypted objects.
//!
//! S3 computes an object's ETag over what it stores, so the ETag of an
//! encrypted single-part object is the MD5 of its ciphertext. Clients such
//! as rclone and s3cmd treat a bare 32-hex ETag as the MD5 of the content
//! and would report corruption, and a listing carries nothing else from
//! which a plaintext MD5 could be derived. s3seal therefore presents the
//! upstream ETag of a single-part object with the suffix `-0`, a form that
//! clients read as "not an MD5" and that no real multipart upload produces
//! (S3 counts parts from 1). Multipart ETags (`-N`, N >= 1) pass unchanged.
//! The mapping is a bijection, so conditional requests map back exactly.

/// Suffix appended to a single-part upstream ETag.
const SINGLE_PART_SUFFIX: &str = "-0";

/// Maps an upstream ETag (with or without quotes) to the one clients see.
pub fn to_client(upstream: &str) -> String {
    let (weak, inner) = split(upstream);
    if is_md5_hex(inner) {
        format!("{weak}\"{inner}{SINGLE_PART_SUFFIX}\"")
    } else {
        upstream.to_string()
    }
}

/// Maps an ETag a client sent (in `If-Match` and similar) back to the
/// upstream ETag.
pub fn to_upstream(client: &str) -> String {
    let (weak, inner) = split(client);
    match inner.strip_suffix(SINGLE_PART_SUFFIX) {
        Some(md5) if is_md5_hex(md5) => format!("{weak}\"{md5}\""),
        _ => client.to_string(),
    }
}

/// Maps every ETag of an `If-Match` / `If-None-Match` list back upstream.
pub fn list_to_upstream(value: &str) -> String {
    value
        .split(',')
        .map(|item| to_upstream(item.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits an ETag into its `W/` prefix and the text inside the quotes.
fn split(etag: &str) -> (&str, &str) {
    let etag = etag.trim();
    let (weak, rest) = match etag.strip_prefix("W/") {
        Some(rest) => ("W/", rest),
        None => ("", etag),
    };
    (weak, rest.trim_matches('"'))
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "9b2cf535f27731c974343645a3985328";

    #[test]
    fn single_part_gets_suffix() {
        assert_eq!(to_client(&format!("\"{MD5}\"")), format!("\"{MD5}-0\""));
        assert_eq!(to_client(MD5), format!("\"{MD5}-0\""));
    }

    #[test]
    fn multipart_unchanged() {
        let etag = format!("\"{MD5}-3\"");
        assert_eq!(to_client(&etag), etag);
        assert_eq!(to_upstream(&etag), etag);
    }

    #[test]
    fn mapping_round_trips() {
        let upstream = format!("\"{MD5}\"");
        assert_eq!(to_upstream(&to_client(&upstream)), upstream);
        assert_eq!(to_upstream("*"), "*");
    }

    #[test]
    fn lists_map_each_item() {
        let value = format!("\"{MD5}-0\", \"abc\"");
        assert_eq!(list_to_upstream(&value), format!("\"{MD5}\", \"abc\""));
    }
}
