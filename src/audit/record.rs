//! Audit events as the caller reports them, and the record line that stores
//! one event with its place in the chain.

use super::key::AuditKey;
use super::AuditError;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Maximum length in bytes of the `error` field. Longer messages are cut at
/// a character boundary and end in [`TRUNCATED_SUFFIX`].
pub(crate) const MAX_ERROR_LEN: usize = 4096;
pub(crate) const TRUNCATED_SUFFIX: &str = " [truncated]";

/// `prev` of the first record: the hex of 32 zero bytes.
pub(crate) const GENESIS_PREV: [u8; 32] = [0u8; 32];

/// Kind of access to a key-encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    /// A key version was loaded into memory.
    Load,
    /// A data key was generated under the key.
    Generate,
    /// A data key was wrapped with the key.
    Wrap,
    /// A wrapped data key was unwrapped with the key.
    Unwrap,
    /// The key was created.
    Create,
    /// A new key version was added.
    Rotate,
    /// Key material was exported, as to an escrow copy.
    Export,
    /// A key version was added from a recovered escrow copy.
    Import,
    /// The key or a version of it was deleted.
    Delete,
}

/// One use or change of a key-encryption key, as the caller reports it to
/// [`super::Auditor::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub request_id: Option<String>,
    /// The client's access key id.
    pub principal: Option<String>,
    pub client_addr: Option<String>,
    /// S3 operation name, such as `PutObject`, or the CLI command.
    pub operation: String,
    pub bucket: Option<String>,
    pub object_key: Option<String>,
    /// Name of the key-encryption key.
    pub key_name: String,
    pub key_version: Option<u32>,
    pub action: AuditAction,
    /// The result of the key operation. An error message longer than 4096
    /// bytes is stored cut to that length.
    pub outcome: Result<(), String>,
}

impl AuditEvent {
    /// Creates a successful event with no request, client or object details.
    pub fn new(
        operation: impl Into<String>,
        key_name: impl Into<String>,
        action: AuditAction,
    ) -> Self {
        Self {
            request_id: None,
            principal: None,
            client_addr: None,
            operation: operation.into(),
            bucket: None,
            object_key: None,
            key_name: key_name.into(),
            key_version: None,
            action,
            outcome: Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Ok,
    Error,
}

/// One line of the audit log. The field order here is the order on disk
/// and in the canonical bytes, so it must not change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub seq: u64,
    pub time: String,
    pub request_id: Option<String>,
    pub principal: Option<String>,
    pub client_addr: Option<String>,
    pub operation: String,
    pub bucket: Option<String>,
    pub object_key: Option<String>,
    pub key_name: String,
    pub key_version: Option<u32>,
    pub action: AuditAction,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub prev: String,
    /// `None` while the canonical bytes are computed, so that they leave
    /// out the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Record {
    /// Builds the record for `event` at position `seq`, after the record
    /// whose MAC is `prev`, without its MAC.
    pub fn from_event(event: AuditEvent, seq: u64, time: String, prev: &[u8; 32]) -> Self {
        let (outcome, error) = match event.outcome {
            Ok(()) => (Outcome::Ok, None),
            Err(message) => (Outcome::Error, Some(truncate_message(message))),
        };
        Self {
            seq,
            time,
            request_id: event.request_id,
            principal: event.principal,
            client_addr: event.client_addr,
            operation: event.operation,
            bucket: event.bucket,
            object_key: event.object_key,
            key_name: event.key_name,
            key_version: event.key_version,
            action: event.action,
            outcome,
            error,
            prev: hex_string(prev),
            mac: None,
        }
    }

    /// Returns the bytes that the MAC covers: the record without `mac` as
    /// compact JSON.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, AuditError> {
        // `serde_json::to_vec` starts at 128 bytes and regrows twice for a
        // record with short names, and the MAC adds 73 bytes.
        let mut out = Vec::with_capacity(512);
        let written = if self.mac.is_none() {
            serde_json::to_writer(&mut out, self)
        } else {
            let body = Self {
                mac: None,
                ..self.clone()
            };
            serde_json::to_writer(&mut out, &body)
        };
        written.map_err(|e| AuditError::Serialize(e.to_string()))?;
        Ok(out)
    }

    /// Turns the canonical bytes of a record into its stored line, with
    /// `mac` as the last field and a newline. `mac` is the last field of
    /// [`Record`] and is skipped when absent, so the result equals
    /// [`Self::line_bytes`] of the record with its MAC set.
    pub fn line_from_canonical(mut canonical: Vec<u8>, mac: &[u8; 32]) -> Vec<u8> {
        debug_assert_eq!(canonical.last(), Some(&b'}'));
        canonical.pop();
        canonical.reserve(8 + 64 + 3);
        canonical.extend_from_slice(br#","mac":""#);
        let start = canonical.len();
        canonical.resize(start + 64, 0);
        // The buffer is exactly twice the MAC's length, as hex needs.
        let _ = hex::encode_to_slice(mac, &mut canonical[start..]);
        canonical.extend_from_slice(b"\"}\n");
        canonical
    }

    /// Returns the record line as stored: compact JSON including `mac`,
    /// followed by a newline.
    pub fn line_bytes(&self) -> Result<Vec<u8>, AuditError> {
        let mut line =
            serde_json::to_vec(self).map_err(|e| AuditError::Serialize(e.to_string()))?;
        line.push(b'\n');
        Ok(line)
    }
}

/// Formats 32 bytes as lowercase hex. `hex::encode` collects characters one
/// at a time, at several times the cost.
fn hex_string(bytes: &[u8; 32]) -> String {
    let mut text = [0u8; 64];
    // The buffer is exactly twice the input's length, as hex needs.
    let _ = hex::encode_to_slice(bytes, &mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// Computes HMAC-SHA256 of `canonical` under `key`.
pub(crate) fn compute_mac(key: &AuditKey, canonical: &[u8]) -> [u8; 32] {
    let mut mac = key.hmac();
    mac.update(canonical);
    mac.finalize().into_bytes().into()
}

/// Checks in constant time whether `expected` is the MAC of `canonical`.
pub(crate) fn mac_matches(key: &AuditKey, canonical: &[u8], expected: &[u8; 32]) -> bool {
    let mut mac = key.hmac();
    mac.update(canonical);
    mac.verify_slice(expected).is_ok()
}

/// Formats `time` as RFC 3339 in UTC with exactly three fractional digits,
/// such as `2026-01-02T03:04:05.678Z`.
pub(crate) fn format_time(time: OffsetDateTime) -> Result<String, AuditError> {
    let time = time.to_offset(time::UtcOffset::UTC);
    let year = u32::try_from(time.year())
        .ok()
        .filter(|year| *year <= 9999)
        .ok_or_else(|| {
            AuditError::Serialize(format!("time: year {} is outside 0 to 9999", time.year()))
        })?;
    let mut out = String::with_capacity(24);
    let fields = [
        (year, 4, '-'),
        (u32::from(u8::from(time.month())), 2, '-'),
        (u32::from(time.day()), 2, 'T'),
        (u32::from(time.hour()), 2, ':'),
        (u32::from(time.minute()), 2, ':'),
        (u32::from(time.second()), 2, '.'),
        (u32::from(time.millisecond()), 3, 'Z'),
    ];
    for (value, digits, separator) in fields {
        for position in (0..digits).rev() {
            let digit = value / 10u32.pow(position) % 10;
            out.push(char::from_digit(digit, 10).unwrap_or('0'));
        }
        out.push(separator);
    }
    Ok(out)
}

/// Returns whether `text` is a time in the form [`format_time`] writes.
pub(crate) fn is_valid_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    // `YYYY-MM-DDTHH:MM:SS.mmmZ`: 24 bytes, with the fraction at 19..23.
    bytes.len() == 24
        && bytes[19] == b'.'
        && bytes[20..23].iter().all(u8::is_ascii_digit)
        && bytes[23] == b'Z'
        && OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

fn truncate_message(message: String) -> String {
    if message.len() <= MAX_ERROR_LEN {
        return message;
    }
    let mut end = MAX_ERROR_LEN - TRUNCATED_SUFFIX.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut truncated = message;
    truncated.truncate(end);
    truncated.push_str(TRUNCATED_SUFFIX);
    truncated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_record() -> Record {
        Record {
            seq: 1,
            time: "2026-01-02T03:04:05.678Z".into(),
            request_id: Some("req-1".into()),
            principal: Some("AKIDEXAMPLE".into()),
            client_addr: Some("127.0.0.1:50000".into()),
            operation: "PutObject".into(),
            bucket: Some("photos".into()),
            object_key: Some("2026/é \"quoted\"\n.jpg".into()),
            key_name: "main".into(),
            key_version: Some(3),
            action: AuditAction::Wrap,
            outcome: Outcome::Ok,
            error: None,
            prev: "0".repeat(64),
            mac: None,
        }
    }

    const FIXED_CANONICAL: &str = concat!(
        r#"{"seq":1,"time":"2026-01-02T03:04:05.678Z","request_id":"req-1","#,
        r#""principal":"AKIDEXAMPLE","client_addr":"127.0.0.1:50000","operation":"PutObject","#,
        r#""bucket":"photos","object_key":"2026/é \"quoted\"\n.jpg","key_name":"main","#,
        r#""key_version":3,"action":"wrap","outcome":"ok","error":null,"#,
        r#""prev":"0000000000000000000000000000000000000000000000000000000000000000"}"#
    );

    /// HMAC-SHA256 of `FIXED_CANONICAL` under the key of bytes 0x00..=0x1f,
    /// computed independently with
    /// `openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f`.
    const FIXED_MAC: &str = "ce9bfe198912b093dae0d0f57fcd389b5aa41864ac4de0e0a12999ff55a10014";

    fn fixed_key_bytes() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = i as u8;
        }
        bytes
    }

    fn fixed_key() -> AuditKey {
        AuditKey::from_bytes(fixed_key_bytes())
    }

    #[test]
    fn canonical_bytes_known_answer() {
        let canonical = fixed_record().canonical_bytes().unwrap();
        assert_eq!(String::from_utf8(canonical).unwrap(), FIXED_CANONICAL);
    }

    #[test]
    fn mac_known_answer() {
        let canonical = fixed_record().canonical_bytes().unwrap();
        let mac = compute_mac(&fixed_key(), &canonical);
        assert_eq!(hex::encode(mac), FIXED_MAC);
        assert!(mac_matches(&fixed_key(), &canonical, &mac));
    }

    #[test]
    fn line_inserts_mac_before_closing_brace() {
        let mut record = fixed_record();
        record.mac = Some(FIXED_MAC.into());
        let line = String::from_utf8(record.line_bytes().unwrap()).unwrap();
        let mac: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let mut with_mac = fixed_record();
        with_mac.mac = Some(hex::encode(mac));
        assert_eq!(
            Record::line_from_canonical(fixed_record().canonical_bytes().unwrap(), &mac),
            with_mac.line_bytes().unwrap()
        );
        let body = FIXED_CANONICAL.strip_suffix('}').unwrap();
        assert_eq!(line, format!("{body},\"mac\":\"{FIXED_MAC}\"}}\n"));
    }

    #[test]
    fn padded_hmac_key_matches_slice_key() {
        let key = fixed_key();
        let mut from_slice =
            <super::super::key::HmacSha256 as Mac>::new_from_slice(&fixed_key_bytes()).unwrap();
        from_slice.update(b"message");
        let mut padded = key.hmac();
        padded.update(b"message");
        assert_eq!(
            from_slice.finalize().into_bytes(),
            padded.finalize().into_bytes()
        );
    }

    #[test]
    fn time_has_milliseconds_and_utc() {
        let time = time::macros::datetime!(2026-01-02 03:04:05.6789 +02:00);
        let text = format_time(time).unwrap();
        assert_eq!(text, "2026-01-02T01:04:05.678Z");
        assert!(is_valid_time(&text));
        assert!(!is_valid_time("2026-01-02T01:04:05Z"));
        assert!(!is_valid_time("2026-01-02T01:04:05.678+00:00"));
        assert!(!is_valid_time("2026-13-02T01:04:05.678Z"));
    }

    #[test]
    fn time_matches_time_crate_format() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        for seconds in [
            0_i64,
            1,
            59,
            86_399,
            951_782_400,
            1_798_761_599,
            253_402_300_799,
        ] {
            for nanos in [0, 1_000_000, 999_999_999] {
                let time = OffsetDateTime::from_unix_timestamp(seconds).unwrap()
                    + time::Duration::nanoseconds(nanos);
                assert_eq!(format_time(time).unwrap(), time.format(&format).unwrap());
            }
        }
        let early = time::macros::datetime!(-0001-01-01 00:00 UTC);
        assert!(format_time(early).is_err());
    }

    #[test]
    fn canonical_bytes_leave_out_mac() {
        let mut record = fixed_record();
        record.mac = Some("ab".repeat(32));
        assert_eq!(
            String::from_utf8(record.canonical_bytes().unwrap()).unwrap(),
            FIXED_CANONICAL
        );
    }

    #[test]
    fn record_prev_lowercase_hex() {
        let prev: [u8; 32] = std::array::from_fn(|index| (index * 37) as u8);
        let event = AuditEvent::new("PutObject", "main", AuditAction::Wrap);
        let record = Record::from_event(event, 2, "t".into(), &prev);
        assert_eq!(record.prev, hex::encode(prev));
    }

    #[test]
    fn long_error_truncated_at_char_boundary() {
        let mut event = AuditEvent::new("PutObject", "main", AuditAction::Wrap);
        event.outcome = Err("é".repeat(MAX_ERROR_LEN));
        let record = Record::from_event(event, 1, "t".into(), &GENESIS_PREV);
        let error = record.error.unwrap();
        assert!(error.len() <= MAX_ERROR_LEN);
        assert!(error.ends_with(TRUNCATED_SUFFIX));
        assert_eq!(record.outcome, Outcome::Error);
    }
}
