//! Evaluation of the conditional request headers of GetObject and
//! HeadObject, in the order S3 applies them.
//!
//! s3seal forwards the conditions upstream and also checks them against the
//! upstream response, because not every S3-compatible store evaluates all
//! four (s3s-fs 0.14 ignores `If-None-Match` on GET).

use http::{HeaderMap, StatusCode};
use std::time::SystemTime;

/// Returns the status that the conditions demand (`304` or `412`), or
/// `None` when the object should be returned. `etag` is the ETag the client
/// sees for the object.
pub fn evaluate(
    request: &HeaderMap,
    etag: &str,
    last_modified: Option<SystemTime>,
) -> Option<StatusCode> {
    let header = |name: &str| request.get(name).and_then(|v| v.to_str().ok());
    let date = |name: &str| header(name).and_then(|v| httpdate::parse_http_date(v).ok());

    let if_match = header("if-match").map(|list| etag_list_contains(list, etag));
    match if_match {
        Some(false) => return Some(StatusCode::PRECONDITION_FAILED),
        Some(true) => {}
        None => {
            if let (Some(since), Some(modified)) = (date("if-unmodified-since"), last_modified) {
                if truncate(modified) > since {
                    return Some(StatusCode::PRECONDITION_FAILED);
                }
            }
        }
    }

    let if_none_match = header("if-none-match").map(|list| etag_list_contains(list, etag));
    match if_none_match {
        Some(true) => return Some(StatusCode::NOT_MODIFIED),
        Some(false) => {}
        None => {
            if let (Some(since), Some(modified)) = (date("if-modified-since"), last_modified) {
                if truncate(modified) <= since {
                    return Some(StatusCode::NOT_MODIFIED);
                }
            }
        }
    }
    None
}

/// Removes the date conditions that RFC 7232 ignores beside an ETag
/// condition: `If-Unmodified-Since` beside `If-Match`, and
/// `If-Modified-Since` beside `If-None-Match`. S3 documents this result
/// for `If-Match` with `If-Unmodified-Since`, while moto 5.2 evaluates
/// both headers and fails the read.
pub fn drop_ignored_dates(headers: &mut HeaderMap) {
    if headers.contains_key(http::header::IF_MATCH) {
        headers.remove(http::header::IF_UNMODIFIED_SINCE);
    }
    if headers.contains_key(http::header::IF_NONE_MATCH) {
        headers.remove(http::header::IF_MODIFIED_SINCE);
    }
}

/// Returns whether an ETag list (`*` or comma-separated quoted ETags)
/// contains `etag`. Weak prefixes are ignored, as S3 compares strongly.
pub fn etag_list_contains(list: &str, etag: &str) -> bool {
    let wanted = strip(etag);
    list.split(',')
        .map(str::trim)
        .any(|item| item == "*" || strip(item) == wanted)
}

fn strip(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// Drops sub-second precision, because HTTP dates carry whole seconds.
fn truncate(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    const ETAG: &str = "\"abc-0\"";

    #[test]
    fn etag_conditions_drop_their_dates() {
        let date = "Mon, 01 Jan 2001 00:00:00 GMT";
        let mut both = headers(&[
            ("if-match", ETAG),
            ("if-unmodified-since", date),
            ("if-none-match", "\"x\""),
            ("if-modified-since", date),
        ]);
        drop_ignored_dates(&mut both);
        assert!(!both.contains_key("if-unmodified-since"));
        assert!(!both.contains_key("if-modified-since"));
        assert_eq!(both.len(), 2);

        let mut dates_only = headers(&[("if-unmodified-since", date), ("if-modified-since", date)]);
        drop_ignored_dates(&mut dates_only);
        assert_eq!(dates_only.len(), 2);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn if_match_and_if_none_match() {
        assert_eq!(evaluate(&headers(&[("if-match", ETAG)]), ETAG, None), None);
        assert_eq!(
            evaluate(&headers(&[("if-match", "\"x\"")]), ETAG, None),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(evaluate(&headers(&[("if-match", "*")]), ETAG, None), None);
        assert_eq!(
            evaluate(&headers(&[("if-none-match", ETAG)]), ETAG, None),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            evaluate(
                &headers(&[("if-none-match", "\"x\", \"abc-0\"")]),
                ETAG,
                None
            ),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            evaluate(&headers(&[("if-none-match", "\"x\"")]), ETAG, None),
            None
        );
    }

    #[test]
    fn date_conditions() {
        let modified = at(1_700_000_000);
        let before = httpdate::fmt_http_date(at(1_600_000_000));
        let after = httpdate::fmt_http_date(at(1_800_000_000));
        assert_eq!(
            evaluate(
                &headers(&[("if-modified-since", &after)]),
                ETAG,
                Some(modified)
            ),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            evaluate(
                &headers(&[("if-modified-since", &before)]),
                ETAG,
                Some(modified)
            ),
            None
        );
        assert_eq!(
            evaluate(
                &headers(&[("if-unmodified-since", &before)]),
                ETAG,
                Some(modified)
            ),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            evaluate(
                &headers(&[("if-unmodified-since", &after)]),
                ETAG,
                Some(modified)
            ),
            None
        );
    }

    #[test]
    fn etag_conditions_take_precedence_over_dates() {
        let modified = at(1_700_000_000);
        let before = httpdate::fmt_http_date(at(1_600_000_000));
        let after = httpdate::fmt_http_date(at(1_800_000_000));
        let request = headers(&[("if-match", ETAG), ("if-unmodified-since", &before)]);
        assert_eq!(evaluate(&request, ETAG, Some(modified)), None);
        let request = headers(&[("if-none-match", "\"x\""), ("if-modified-since", &after)]);
        assert_eq!(evaluate(&request, ETAG, Some(modified)), None);
    }
}
