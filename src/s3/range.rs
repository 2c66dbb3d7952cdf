//! The HTTP `Range` header as S3 reads it: one `bytes=` range per request.

/// A requested byte range, before the object size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, both inclusive.
    Bounded { first: u64, last: u64 },
    /// `bytes=first-`.
    From { first: u64 },
    /// `bytes=-len`: the last `len` bytes.
    Suffix { len: u64 },
}

/// The outcome of resolving a range against an object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Inclusive bounds within the object.
    Satisfiable { first: u64, last: u64 },
    /// S3 returns `416 InvalidRange`.
    Unsatisfiable,
}

/// Parses a `Range` header value. Returns `None` for anything S3 ignores
/// (another unit, several ranges, malformed numbers), in which case the
/// whole object is returned, as S3 does.
///
/// A position too large for `u64` counts as `u64::MAX`. RFC 9110 (section
/// 14.1.1) reads a last position at or past the end as the rest of the
/// object, so `bytes=0-99999999999999999999999` returns the whole object
/// as a range, and a first position that large is unsatisfiable.
pub fn parse(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(s.parse().unwrap_or(u64::MAX))
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => None,
        (true, false) => Some(ByteRange::Suffix { len: number(last)? }),
        (false, true) => Some(ByteRange::From {
            first: number(first)?,
        }),
        (false, false) => {
            let (first_pos, last_pos) = (number(first)?, number(last)?);
            // Compared as digit strings, because two positions past
            // `u64::MAX` both saturate to it.
            if digits_less(last, first) {
                return None;
            }
            Some(ByteRange::Bounded {
                first: first_pos,
                last: last_pos,
            })
        }
    }
}

/// Returns whether the decimal digit string `a` is less than `b`, for
/// numbers of any length.
fn digits_less(a: &str, b: &str) -> bool {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    (a.len(), a) < (b.len(), b)
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes: the end is
    /// clamped to the last byte, and a range that starts past the end, or
    /// any range of an empty object, or an empty suffix, is unsatisfiable.
    pub fn resolve(self, size: u64) -> Resolved {
        if size == 0 {
            return Resolved::Unsatisfiable;
        }
        let (first, last) = match self {
            ByteRange::Bounded { first, last } => (first, last.min(size - 1)),
            ByteRange::From { first } => (first, size - 1),
            ByteRange::Suffix { len: 0 } => return Resolved::Unsatisfiable,
            ByteRange::Suffix { len } => (size.saturating_sub(len), size - 1),
        };
        if first >= size {
            return Resolved::Unsatisfiable;
        }
        Resolved::Satisfiable { first, last }
    }
}

/// Parses a `Content-Range: bytes first-last/total` response header into
/// `(first, last, total)`, or `bytes */total` into `(None, total)`.
pub fn parse_content_range(value: &str) -> Option<(Option<(u64, u64)>, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok()?;
    if range.trim() == "*" {
        return Some((None, total));
    }
    let (first, last) = range.split_once('-')?;
    Some((
        Some((first.trim().parse().ok()?, last.trim().parse().ok()?)),
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse("bytes=0-9"),
            Some(ByteRange::Bounded { first: 0, last: 9 })
        );
        assert_eq!(parse("bytes=5-"), Some(ByteRange::From { first: 5 }));
        assert_eq!(parse("bytes=-7"), Some(ByteRange::Suffix { len: 7 }));
        assert_eq!(
            parse(" bytes= 3 - 4 "),
            Some(ByteRange::Bounded { first: 3, last: 4 })
        );
    }

    #[test]
    fn ignores_what_s3_ignores() {
        for value in [
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-2",
            "bytes=+1-2",
        ] {
            assert_eq!(parse(value), None, "{value}");
        }
    }

    #[test]
    fn oversized_positions_saturate() {
        let huge = "99999999999999999999999";
        assert_eq!(
            parse(&format!("bytes={huge}-")),
            Some(ByteRange::From { first: u64::MAX })
        );
        assert_eq!(
            parse(&format!("bytes=0-{huge}")),
            Some(ByteRange::Bounded {
                first: 0,
                last: u64::MAX
            })
        );
        assert_eq!(
            parse(&format!("bytes=-{huge}")),
            Some(ByteRange::Suffix { len: u64::MAX })
        );

        // An end before the start is ignored, also past `u64::MAX`.
        assert_eq!(parse(&format!("bytes={huge}-5")), None);
        assert_eq!(parse(&format!("bytes={huge}-{}", &huge[1..])), None);
        assert_eq!(
            parse("bytes=18446744073709551617-18446744073709551616"),
            None
        );
        assert_eq!(
            parse(&format!("bytes={huge}-{huge}0")),
            Some(ByteRange::Bounded {
                first: u64::MAX,
                last: u64::MAX
            })
        );
        assert_eq!(
            parse("bytes=007-0010"),
            Some(ByteRange::Bounded { first: 7, last: 10 })
        );

        let size = 100;
        assert_eq!(
            parse(&format!("bytes={huge}-")).map(|r| r.resolve(size)),
            Some(Resolved::Unsatisfiable)
        );
        assert_eq!(
            parse(&format!("bytes=0-{huge}")).map(|r| r.resolve(size)),
            Some(Resolved::Satisfiable { first: 0, last: 99 })
        );
        assert_eq!(
            parse(&format!("bytes=-{huge}")).map(|r| r.resolve(size)),
            Some(Resolved::Satisfiable { first: 0, last: 99 })
        );
    }

    #[test]
    fn resolves_against_size() {
        let bounded = ByteRange::Bounded {
            first: 5,
            last: 100,
        };
        assert_eq!(
            bounded.resolve(10),
            Resolved::Satisfiable { first: 5, last: 9 }
        );
        assert_eq!(
            ByteRange::From { first: 10 }.resolve(10),
            Resolved::Unsatisfiable
        );
        assert_eq!(
            ByteRange::Suffix { len: 20 }.resolve(10),
            Resolved::Satisfiable { first: 0, last: 9 }
        );
        assert_eq!(
            ByteRange::Suffix { len: 0 }.resolve(10),
            Resolved::Unsatisfiable
        );
        assert_eq!(
            ByteRange::From { first: 0 }.resolve(0),
            Resolved::Unsatisfiable
        );
    }

    #[test]
    fn parses_content_range() {
        assert_eq!(
            parse_content_range("bytes 0-9/100"),
            Some((Some((0, 9)), 100))
        );
        assert_eq!(parse_content_range("bytes */100"), Some((None, 100)));
        assert_eq!(parse_content_range("bytes x"), None);
    }
}
