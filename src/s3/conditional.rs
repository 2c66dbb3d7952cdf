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

    // Repeated lines of a list header form one list (RFC 9110 section 5.3).
    let list_contains = |name: &str| {
        let mut lines = request.get_all(name).iter().peekable();
        lines.peek()?;
        Some(lines.any(|line| {
            line.to_str()
                .is_ok_and(|list| etag_list_contains(list, etag))
        }))
    };

    let if_match = list_contains("if-match");
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

    let if_none_match = list_contains("if-none-match");
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

/// The validator of an `If-Range` header (RFC 9110 section 13.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfRange<'a> {
    /// A strong entity tag, without its quotes.
    StrongEtag(&'a str),
    /// A weak entity tag (`W/"..."`), which never matches, because
    /// `If-Range` compares entity tags strongly.
    WeakEtag,
    /// An HTTP-date, which matches a `Last-Modified` of the same second.
    Date(SystemTime),
}

/// Parses an `If-Range` value: a quoted entity tag, optionally weak, or an
/// HTTP-date. Returns `None` for anything else, such as a list of entity
/// tags or an entity tag without quotes.
pub fn parse_if_range(value: &str) -> Option<IfRange<'_>> {
    let value = value.trim();
    if let Some(weak) = value.strip_prefix("W/") {
        return quoted_etag(weak).map(|_| IfRange::WeakEtag);
    }
    if value.starts_with('"') {
        return quoted_etag(value).map(IfRange::StrongEtag);
    }
    httpdate::parse_http_date(value).ok().map(IfRange::Date)
}

/// Returns the text inside the quotes of an `entity-tag`'s opaque tag.
fn quoted_etag(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then_some(inner)
}

/// Returns whether a request's `Range` applies to the object with `etag`
/// (in the form that clients are sent) and `last_modified`: true without
/// `If-Range`, and otherwise only when its validator matches. When it does
/// not, the server sends the whole object with `200`. Callers ignore
/// `If-Range` on a request without `Range`.
///
/// An entity tag matches when both tags are strong and equal. A date
/// matches when it equals `last_modified` to the second.
// NOTE: RFC 9110 accepts a date only when it is a strong validator, that
// is when the object did not change twice within that second. s3seal
// cannot tell, so an object written twice in one second matches a date
// taken from the first write.
pub fn range_applies(request: &HeaderMap, etag: &str, last_modified: Option<SystemTime>) -> bool {
    let mut values = request.get_all(http::header::IF_RANGE).iter();
    let Some(value) = values.next() else {
        return true;
    };
    if values.next().is_some() {
        return false;
    }
    let validator = value.to_str().ok().and_then(parse_if_range);
    match validator {
        Some(IfRange::StrongEtag(tag)) => {
            let etag = etag.trim();
            !etag.starts_with("W/") && etag.trim_matches('"') == tag
        }
        Some(IfRange::Date(date)) => last_modified.is_some_and(|m| truncate(m) == date),
        Some(IfRange::WeakEtag) | None => false,
    }
}

/// Removes the date conditions that RFC 7232 ignores beside an ETag
/// condition: `If-Unmodified-Since` beside `If-Match`, and
/// `If-Modified-Since` beside `If-None-Match`. S3 documents this result
/// for `If-Match` with `If-Unmodified-Since`, while moto 5.2 evaluates
/// both headers and fails the read.
///
/// Also removes a date condition that is not one valid HTTP-date, which
/// RFC 9110 (sections 13.1.3 and 13.1.4) ignores, where some stores, the
/// embedded one among them, reject the request.
pub fn drop_ignored_dates(headers: &mut HeaderMap) {
    if headers.contains_key(http::header::IF_MATCH) {
        headers.remove(http::header::IF_UNMODIFIED_SINCE);
    }
    if headers.contains_key(http::header::IF_NONE_MATCH) {
        headers.remove(http::header::IF_MODIFIED_SINCE);
    }
    for name in [
        http::header::IF_MODIFIED_SINCE,
        http::header::IF_UNMODIFIED_SINCE,
    ] {
        let lines: Vec<&http::HeaderValue> = headers.get_all(&name).iter().collect();
        let ignored = match lines.as_slice() {
            [] => false,
            [line] => !line
                .to_str()
                .is_ok_and(|value| httpdate::parse_http_date(value).is_ok()),
            _ => true,
        };
        if ignored {
            headers.remove(&name);
        }
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
    fn invalid_dates_dropped() {
        for value in ["garbage", "2026-12-06T10:00:00Z", ""] {
            let mut map = headers(&[("if-modified-since", value), ("if-unmodified-since", value)]);
            drop_ignored_dates(&mut map);
            assert!(map.is_empty(), "{value:?}: {map:?}");
        }

        let mut repeated = HeaderMap::new();
        repeated.append(
            "if-modified-since",
            HeaderValue::from_static("Sun, 06 Dec 2026 10:00:00 GMT"),
        );
        repeated.append(
            "if-modified-since",
            HeaderValue::from_static("Sun, 06 Dec 2026 11:00:00 GMT"),
        );
        drop_ignored_dates(&mut repeated);
        assert!(repeated.is_empty(), "{repeated:?}");

        let mut valid = headers(&[("if-modified-since", "Sun, 06 Dec 2026 10:00:00 GMT")]);
        drop_ignored_dates(&mut valid);
        assert_eq!(valid.len(), 1);
    }

    #[test]
    fn repeated_list_lines_form_one_list() {
        let mut if_match = HeaderMap::new();
        if_match.append("if-match", HeaderValue::from_static("\"other\""));
        if_match.append("if-match", HeaderValue::from_static(ETAG));
        assert_eq!(evaluate(&if_match, ETAG, None), None);

        let mut if_none_match = HeaderMap::new();
        if_none_match.append("if-none-match", HeaderValue::from_static("\"other\""));
        if_none_match.append("if-none-match", HeaderValue::from_static(ETAG));
        assert_eq!(
            evaluate(&if_none_match, ETAG, None),
            Some(StatusCode::NOT_MODIFIED)
        );

        let mut neither = HeaderMap::new();
        neither.append("if-match", HeaderValue::from_static("\"a\""));
        neither.append("if-match", HeaderValue::from_static("\"b\""));
        assert_eq!(
            evaluate(&neither, ETAG, None),
            Some(StatusCode::PRECONDITION_FAILED)
        );
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
    fn if_range_parses_etags_and_dates() {
        assert_eq!(
            parse_if_range("\"abc-0\""),
            Some(IfRange::StrongEtag("abc-0"))
        );
        assert_eq!(parse_if_range(" \"\" "), Some(IfRange::StrongEtag("")));
        assert_eq!(parse_if_range("W/\"abc-0\""), Some(IfRange::WeakEtag));
        assert_eq!(
            parse_if_range("Tue, 14 Nov 2023 22:13:20 GMT"),
            Some(IfRange::Date(at(1_700_000_000)))
        );
        assert_eq!(
            parse_if_range("Tuesday, 14-Nov-23 22:13:20 GMT"),
            Some(IfRange::Date(at(1_700_000_000)))
        );
    }

    #[test]
    fn if_range_rejects_other_values() {
        for value in [
            "",
            "abc-0",
            "\"abc-0",
            "abc-0\"",
            "\"a\"b\"",
            "\"a\", \"b\"",
            "W/abc",
            "*",
            "2023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse_if_range(value), None, "{value}");
        }
    }

    #[test]
    fn range_applies_without_if_range() {
        assert!(range_applies(&HeaderMap::new(), ETAG, None));
    }

    #[test]
    fn range_applies_on_strong_etag_match() {
        let request = headers(&[("if-range", ETAG)]);
        assert!(range_applies(&request, ETAG, None));
        assert!(!range_applies(&request, "\"abc\"", None));
        assert!(!range_applies(&request, "W/\"abc-0\"", None));
        let other = headers(&[("if-range", "\"other-0\"")]);
        assert!(!range_applies(&other, ETAG, None));
    }

    #[test]
    fn range_never_applies_on_weak_etag() {
        let request = headers(&[("if-range", "W/\"abc-0\"")]);
        assert!(!range_applies(&request, ETAG, None));
        assert!(!range_applies(&request, "W/\"abc-0\"", None));
    }

    #[test]
    fn range_applies_on_exact_date() {
        let modified = at(1_700_000_000) + Duration::from_millis(400);
        let exact = headers(&[("if-range", &httpdate::fmt_http_date(at(1_700_000_000)))]);
        assert!(range_applies(&exact, ETAG, Some(modified)));
        assert!(!range_applies(&exact, ETAG, None));
        for secs in [1_699_999_999, 1_700_000_001] {
            let request = headers(&[("if-range", &httpdate::fmt_http_date(at(secs)))]);
            assert!(!range_applies(&request, ETAG, Some(modified)), "{secs}");
        }
    }

    #[test]
    fn range_ignored_on_invalid_if_range() {
        let unquoted = headers(&[("if-range", "abc-0")]);
        assert!(!range_applies(&unquoted, ETAG, None));
        let mut twice = headers(&[("if-range", ETAG)]);
        twice.append("if-range", HeaderValue::from_static("\"abc-0\""));
        assert!(!range_applies(&twice, ETAG, None));
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
