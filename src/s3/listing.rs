//! Rewriting of S3 XML responses: object sizes and ETags in listings, and
//! the ETag of copy and complete-upload results.
//!
//! The rewrite works on the event stream, so every element it does not
//! touch is written back as it came, and unknown elements survive.

use quick_xml::events::{BytesText, Event};
use quick_xml::{Reader, Writer};

#[derive(Debug, thiserror::Error)]
#[error("malformed XML: {0}")]
pub struct XmlError(String);

fn xml_error(e: impl std::fmt::Display) -> XmlError {
    XmlError(e.to_string())
}

/// Rewrites every object entry of a listing: `size_of(stored_size, etag)`
/// gives the size to show (the stored ETag is passed as it is, quotes
/// included, or empty when the entry has none) and `etag_of` the ETag.
pub fn rewrite_listing(
    xml: &[u8],
    size_of: impl Fn(u64, &str) -> u64,
    etag_of: impl Fn(&str) -> String,
) -> Result<Vec<u8>, XmlError> {
    rewrite_entries(xml, OBJECT_ELEMENTS_STR, size_of, etag_of)
}

const OBJECT_ELEMENTS_STR: &[&str] = &["Contents", "Version"];

/// Rewrites `Size` and `ETag` of every element named in `entry_names`, as
/// `rewrite_listing` does for object entries (`Part` for ListParts).
pub fn rewrite_entries(
    xml: &[u8],
    entry_names: &[&str],
    size_of: impl Fn(u64, &str) -> u64,
    etag_of: impl Fn(&str) -> String,
) -> Result<Vec<u8>, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len() + xml.len() / 8));
    let mut entry: Option<Vec<Event<'static>>> = None;
    let mut depth_in_entry = 0usize;
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        if let Event::Eof = event {
            break;
        }
        if let Some(events) = entry.as_mut() {
            match &event {
                Event::Start(_) => depth_in_entry += 1,
                Event::End(_) => depth_in_entry -= 1,
                _ => {}
            }
            events.push(event.into_owned());
            if depth_in_entry == 0 {
                let events = entry.take().unwrap_or_default();
                write_entry(&mut writer, events, &size_of, &etag_of)?;
            }
            continue;
        }
        if let Event::Start(start) = &event {
            if entry_names
                .iter()
                .any(|name| name.as_bytes() == start.local_name().as_ref())
            {
                depth_in_entry = 1;
                entry = Some(vec![event.into_owned()]);
                continue;
            }
        }
        writer.write_event(event).map_err(xml_error)?;
    }
    if entry.is_some() {
        return Err(XmlError("listing ends inside an object entry".into()));
    }
    Ok(writer.into_inner())
}

/// Writes one buffered object entry with its `Size` and `ETag` replaced.
fn write_entry(
    writer: &mut Writer<Vec<u8>>,
    events: Vec<Event<'static>>,
    size_of: &impl Fn(u64, &str) -> u64,
    etag_of: &impl Fn(&str) -> String,
) -> Result<(), XmlError> {
    let etag = child_text(&events, b"ETag")?.unwrap_or_default();
    let size = child_text(&events, b"Size")?;
    let new_size = match size.as_deref().map(str::parse::<u64>) {
        Some(Ok(stored)) => Some(size_of(stored, &etag).to_string()),
        Some(Err(_)) => return Err(XmlError("a listing Size is not a number".into())),
        None => None,
    };
    let new_etag = if etag.is_empty() {
        None
    } else {
        Some(etag_of(&etag))
    };

    let mut current: Option<Vec<u8>> = None;
    for event in events {
        match &event {
            Event::Start(start) => current = Some(start.local_name().as_ref().to_vec()),
            Event::End(_) => current = None,
            Event::Text(_) => {
                let replacement = match current.as_deref() {
                    Some(b"Size") => new_size.as_deref(),
                    Some(b"ETag") => new_etag.as_deref(),
                    _ => None,
                };
                if let Some(text) = replacement {
                    writer
                        .write_event(Event::Text(BytesText::new(text)))
                        .map_err(xml_error)?;
                    continue;
                }
            }
            _ => {}
        }
        writer.write_event(event).map_err(xml_error)?;
    }
    Ok(())
}

/// Returns the unescaped text of the first direct child element `name`.
fn child_text(events: &[Event<'static>], name: &[u8]) -> Result<Option<String>, XmlError> {
    let mut inside = false;
    let mut text = String::new();
    for event in events.iter().skip(1) {
        match event {
            Event::Start(start) if start.local_name().as_ref() == name => inside = true,
            Event::End(end) if inside && end.local_name().as_ref() == name => {
                return Ok(Some(text))
            }
            Event::Text(t) if inside => text.push_str(&t.unescape().map_err(xml_error)?),
            _ => {}
        }
    }
    Ok(None)
}

/// Rewrites every `ETag` element of a small result document, such as
/// `CopyObjectResult`, `CopyPartResult` or `CompleteMultipartUploadResult`.
pub fn rewrite_etags(xml: &[u8], etag_of: impl Fn(&str) -> String) -> Result<Vec<u8>, XmlError> {
    rewrite_text(xml, "ETag", etag_of)
}

/// Replaces the text of every element `name` with `replace(old_text)`.
pub fn rewrite_text(
    xml: &[u8],
    name: &str,
    replace: impl Fn(&str) -> String,
) -> Result<Vec<u8>, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len() + 128));
    let mut inside = false;
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        match &event {
            Event::Eof => break,
            Event::Start(start) => inside = start.local_name().as_ref() == name.as_bytes(),
            Event::End(_) => inside = false,
            Event::Text(text) if inside => {
                let value = text.unescape().map_err(xml_error)?;
                writer
                    .write_event(Event::Text(BytesText::new(&replace(&value))))
                    .map_err(xml_error)?;
                continue;
            }
            _ => {}
        }
        writer.write_event(event).map_err(xml_error)?;
    }
    Ok(writer.into_inner())
}

/// Sets the text of the root element's child `name` to `value`: every
/// such child directly under the root gets it, and a root without one
/// gets one as its last child. Used for the `Location` of a completed
/// upload, which some stores leave out.
pub fn set_root_child(xml: &[u8], name: &str, value: &str) -> Result<Vec<u8>, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::with_capacity(
        xml.len() + name.len() * 2 + value.len() + 8,
    ));
    let mut depth = 0usize;
    let mut found = false;
    // Set inside a matching child, whose text is replaced.
    let mut replacing = false;
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        match &event {
            Event::Eof => break,
            Event::Start(start) => {
                depth += 1;
                if depth == 2 && start.local_name().as_ref() == name.as_bytes() {
                    found = true;
                    replacing = true;
                    writer.write_event(event).map_err(xml_error)?;
                    writer
                        .write_event(Event::Text(BytesText::new(value)))
                        .map_err(xml_error)?;
                    continue;
                }
            }
            Event::End(_) => {
                if depth == 2 && replacing {
                    replacing = false;
                } else if depth == 1 && !found {
                    write_child(&mut writer, name, value)?;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Empty(start) if depth == 1 && start.local_name().as_ref() == name.as_bytes() => {
                found = true;
                write_child(&mut writer, name, value)?;
                continue;
            }
            _ if replacing => continue,
            _ => {}
        }
        writer.write_event(event).map_err(xml_error)?;
    }
    Ok(writer.into_inner())
}

fn write_child(writer: &mut Writer<Vec<u8>>, name: &str, value: &str) -> Result<(), XmlError> {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(value))
        .map_err(xml_error)?;
    Ok(())
}

/// Rewrites a `CompleteMultipartUpload` request: every `ETag` through
/// `etag_of`, and the elements named in `dropped` removed with their text.
pub fn rewrite_complete_request(
    xml: &[u8],
    dropped: &[&str],
    etag_of: impl Fn(&str) -> String,
) -> Result<Vec<u8>, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    let mut in_etag = false;
    let mut skip_depth = 0usize;
    let mut saw_root = false;
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        if skip_depth > 0 {
            match &event {
                Event::Start(_) => skip_depth += 1,
                Event::End(_) => skip_depth -= 1,
                Event::Eof => return Err(XmlError("document ends inside an element".into())),
                _ => {}
            }
            continue;
        }
        match &event {
            Event::Eof => break,
            Event::Start(start) => {
                let local = start.local_name();
                if !saw_root {
                    saw_root = true;
                    if local.as_ref() != b"CompleteMultipartUpload" {
                        return Err(XmlError(
                            "the root element is not CompleteMultipartUpload".into(),
                        ));
                    }
                }
                if dropped.iter().any(|d| d.as_bytes() == local.as_ref()) {
                    skip_depth = 1;
                    continue;
                }
                in_etag = local.as_ref() == b"ETag";
            }
            Event::Empty(empty)
                if dropped
                    .iter()
                    .any(|d| d.as_bytes() == empty.local_name().as_ref()) =>
            {
                continue
            }
            Event::End(_) => in_etag = false,
            Event::Text(text) if in_etag => {
                let value = text.unescape().map_err(xml_error)?;
                writer
                    .write_event(Event::Text(BytesText::new(&etag_of(&value))))
                    .map_err(xml_error)?;
                continue;
            }
            _ => {}
        }
        writer.write_event(event).map_err(xml_error)?;
    }
    if !saw_root {
        return Err(XmlError("the document is empty".into()));
    }
    Ok(writer.into_inner())
}

/// Returns the text of every `Part/PartNumber` element of a
/// CompleteMultipartUpload document, in document order.
pub fn complete_part_numbers(xml: &[u8]) -> Result<Vec<String>, XmlError> {
    let in_number =
        |path: &[Vec<u8>]| path.len() == 3 && path[1] == b"Part" && path[2] == b"PartNumber";
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut numbers = Vec::new();
    // The number being read. Text, references and CDATA sections of one
    // element join into one value, as S3 reads them.
    let mut number = String::new();
    loop {
        match reader.read_event().map_err(xml_error)? {
            Event::Eof if path.is_empty() => return Ok(numbers),
            Event::Eof => return Err(XmlError("document ends inside an element".into())),
            Event::Start(start) => path.push(start.local_name().as_ref().to_vec()),
            Event::Empty(empty) => {
                path.push(empty.local_name().as_ref().to_vec());
                if in_number(&path) {
                    numbers.push(String::new());
                }
                path.pop();
            }
            Event::End(_) => {
                if in_number(&path) {
                    numbers.push(std::mem::take(&mut number).trim().to_string());
                }
                path.pop();
            }
            Event::Text(text) if in_number(&path) => {
                number.push_str(&text.unescape().map_err(xml_error)?);
            }
            Event::CData(data) if in_number(&path) => {
                number.push_str(&String::from_utf8_lossy(&data.into_inner()));
            }
            _ => {}
        }
    }
}

/// One page of a ListParts result: each part's number and stored size,
/// and where the next page starts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PartsPage {
    pub parts: Vec<(u32, u64)>,
    pub is_truncated: bool,
    pub next_marker: Option<String>,
}

/// Reads the part numbers and sizes of a ListParts result. A part whose
/// number or size is not a number fails the whole page.
pub fn list_parts_page(xml: &[u8]) -> Result<PartsPage, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut page = PartsPage::default();
    let mut number: Option<u32> = None;
    let mut size: Option<u64> = None;
    loop {
        match reader.read_event().map_err(xml_error)? {
            Event::Eof if path.is_empty() => return Ok(page),
            Event::Eof => return Err(XmlError("document ends inside an element".into())),
            Event::Start(start) => path.push(start.local_name().as_ref().to_vec()),
            Event::End(_) => {
                if path.len() == 2 && path[1] == b"Part" {
                    match (number.take(), size.take()) {
                        (Some(number), Some(size)) => page.parts.push((number, size)),
                        _ => return Err(XmlError("a Part lacks its PartNumber or Size".into())),
                    }
                }
                path.pop();
            }
            Event::Text(text) if path.len() >= 2 => {
                let text = text.unescape().map_err(xml_error)?;
                let text = text.trim();
                let parse_error = |name: &str| XmlError(format!("{name} {text:?} is not a number"));
                match (
                    path.len(),
                    path[1].as_slice(),
                    path.last().map(Vec::as_slice),
                ) {
                    (3, b"Part", Some(b"PartNumber")) => {
                        number = Some(text.parse().map_err(|_| parse_error("PartNumber"))?);
                    }
                    (3, b"Part", Some(b"Size")) => {
                        size = Some(text.parse().map_err(|_| parse_error("Size"))?);
                    }
                    (2, b"IsTruncated", _) => page.is_truncated = text == "true",
                    (2, b"NextPartNumberMarker", _) => page.next_marker = Some(text.to_string()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// One `Object/Key` of a DeleteObjects document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteKey {
    /// The key with entity and character references resolved, CDATA
    /// sections included and whitespace kept, as S3 reads it.
    pub key: String,
    /// The key with its CDATA sections left out, as s3s 0.14 reads it, when
    /// that differs from `key`.
    pub without_cdata: Option<String>,
}

/// Returns the `Key` of every `Object` in a DeleteObjects document, in
/// document order.
pub fn delete_request_keys(xml: &[u8]) -> Result<Vec<DeleteKey>, XmlError> {
    let is_key = |path: &[Vec<u8>]| path.len() == 3 && path[1] == b"Object" && path[2] == b"Key";
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut keys = Vec::new();
    // The key being read, with and without its CDATA sections.
    let mut current: Option<(String, String)> = None;
    let mut has_root = false;
    loop {
        match reader.read_event().map_err(xml_error)? {
            Event::Eof if !has_root => {
                return Err(XmlError("the body has no Delete element".into()))
            }
            Event::Eof if path.is_empty() => return Ok(keys),
            Event::Eof => return Err(XmlError("document ends inside an element".into())),
            Event::Start(start) => {
                path.push(start.local_name().as_ref().to_vec());
                if path.len() == 1 && path[0] != b"Delete" {
                    return Err(XmlError("the root element is not Delete".into()));
                }
                has_root = true;
                if is_key(&path) {
                    current = Some((String::new(), String::new()));
                }
            }
            Event::Empty(empty) => {
                path.push(empty.local_name().as_ref().to_vec());
                if path.len() == 1 && path[0] != b"Delete" {
                    return Err(XmlError("the root element is not Delete".into()));
                }
                has_root = true;
                if is_key(&path) {
                    keys.push(DeleteKey {
                        key: String::new(),
                        without_cdata: None,
                    });
                }
                path.pop();
            }
            Event::End(_) => {
                if is_key(&path) {
                    let (key, without_cdata) = current.take().unwrap_or_default();
                    let without_cdata = (without_cdata != key).then_some(without_cdata);
                    keys.push(DeleteKey { key, without_cdata });
                }
                path.pop();
            }
            Event::Text(text) => {
                if let Some((key, without_cdata)) = current.as_mut() {
                    let text = text.unescape().map_err(xml_error)?;
                    key.push_str(&text);
                    without_cdata.push_str(&text);
                }
            }
            Event::CData(data) => {
                if let Some((key, _)) = current.as_mut() {
                    let text = std::str::from_utf8(&data)
                        .map_err(|_| XmlError("a CDATA section is not UTF-8".into()))?;
                    key.push_str(text);
                }
            }
            _ => {}
        }
    }
}

/// Returns the local name of the root element.
pub fn root_name(xml: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) | Event::Empty(start) => {
                return Some(String::from_utf8_lossy(start.local_name().as_ref()).into_owned())
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Characters that stay as they are in a URL-encoded tag set: the
/// unreserved characters of RFC 3986.
const TAG_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Turns a GetObjectTagging document into the URL-encoded form of the
/// `x-amz-tagging` header, `key=value` pairs joined by `&`, in document
/// order.
pub fn tagging_header(xml: &[u8]) -> Result<String, XmlError> {
    let mut reader = Reader::from_reader(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut pairs = Vec::new();
    let (mut key, mut value) = (String::new(), String::new());
    loop {
        match reader.read_event().map_err(xml_error)? {
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err(XmlError("document ends inside an element".into())),
            Event::Start(start) => path.push(start.local_name().as_ref().to_vec()),
            Event::End(_) => {
                if path.len() == 3 && path[2] == b"Tag" {
                    let key = percent_encoding::utf8_percent_encode(&key, TAG_ENCODE);
                    let value = percent_encoding::utf8_percent_encode(&value, TAG_ENCODE);
                    pairs.push(format!("{key}={value}"));
                }
                if path.len() == 3 {
                    key.clear();
                    value.clear();
                }
                path.pop();
            }
            Event::Text(text) if path.len() == 4 && path[2] == b"Tag" => {
                let text = text.unescape().map_err(xml_error)?;
                match path[3].as_slice() {
                    b"Key" => key.push_str(&text),
                    b"Value" => value.push_str(&text),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(pairs.join("&"))
}

/// Returns the text of the first element `name` anywhere in `xml`.
pub fn find_text(xml: &[u8], name: &str) -> Option<String> {
    let mut reader = Reader::from_reader(xml);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            Event::Eof => return None,
            Event::Start(start) => inside = start.local_name().as_ref() == name.as_bytes(),
            Event::Text(text) if inside => return text.unescape().ok().map(|t| t.into_owned()),
            Event::End(_) if inside => return Some(String::new()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>2</KeyCount><Contents><Key>a &amp; b</Key><ETag>&quot;00112233445566778899aabbccddeeff&quot;</ETag><Size>26</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>c</Key><Size>16</Size><ETag>"ffeeddccbbaa99887766554433221100-2"</ETag></Contents></ListBucketResult>"#;

    #[test]
    fn complete_part_numbers_in_order() {
        let xml = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"a"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber> 3 </PartNumber><ETag>"b"</ETag></Part><Other><PartNumber>9</PartNumber></Other></CompleteMultipartUpload>"#;
        assert_eq!(complete_part_numbers(xml).unwrap(), ["1", "3"]);
        assert!(complete_part_numbers(b"<CompleteMultipartUpload><Part>").is_err());
        let hidden = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>\
            <Part><PartNumber><![CDATA[3]]></PartNumber></Part>\
            <Part><PartNumber>1<!-- c -->0</PartNumber></Part>\
            <Part><PartNumber>&#52;</PartNumber></Part><Part><PartNumber/></Part></CompleteMultipartUpload>";
        assert_eq!(
            complete_part_numbers(hidden).unwrap(),
            ["1", "3", "10", "4", ""]
        );
    }

    #[test]
    fn listing_sizes_and_etags_rewritten() {
        let out = rewrite_listing(
            LISTING.as_bytes(),
            |size, _| size - 16,
            |etag| format!("{}x", etag),
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("<Size>10</Size>"), "{out}");
        assert!(out.contains("<Size>0</Size>"), "{out}");
        assert!(
            out.contains("<ETag>&quot;00112233445566778899aabbccddeeff&quot;x</ETag>"),
            "{out}"
        );
        assert!(out.contains("<Key>a &amp; b</Key>"), "{out}");
        assert!(out.contains("<KeyCount>2</KeyCount>"), "{out}");
        assert!(
            out.contains("<StorageClass>STANDARD</StorageClass>"),
            "{out}"
        );
    }

    #[test]
    fn size_function_receives_etag() {
        let out = rewrite_listing(
            LISTING.as_bytes(),
            |size, etag| if etag.ends_with("-2\"") { 1 } else { size },
            |e| e.to_string(),
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("<Size>1</Size>"), "{out}");
        assert!(out.contains("<Size>26</Size>"), "{out}");
    }

    #[test]
    fn truncated_listing_rejected() {
        assert!(
            rewrite_listing(b"<L><Contents><Size>1</Size>", |s, _| s, |e| e.to_string()).is_err()
        );
    }

    #[test]
    fn complete_request_drops_checksums() {
        let xml = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"a-0"</ETag><ChecksumCRC32>AAAA</ChecksumCRC32><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"#;
        let out =
            rewrite_complete_request(xml, &["ChecksumCRC32"], |e| e.replace("-0", "")).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains("Checksum"), "{out}");
        assert!(out.contains("<ETag>&quot;a&quot;</ETag>"), "{out}");
        assert!(out.contains("<PartNumber>1</PartNumber>"), "{out}");
        assert!(rewrite_complete_request(b"<Other/>", &[], |e| e.to_string()).is_err());
        assert!(rewrite_complete_request(b"", &[], |e| e.to_string()).is_err());
    }

    #[test]
    fn upload_id_text_replaced() {
        let xml = b"<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>up</UploadId></InitiateMultipartUploadResult>";
        let out =
            String::from_utf8(rewrite_text(xml, "UploadId", |old| format!("{old}~t")).unwrap())
                .unwrap();
        assert!(out.contains("<UploadId>up~t</UploadId>"), "{out}");
        assert_eq!(
            root_name(xml).as_deref(),
            Some("InitiateMultipartUploadResult")
        );
    }

    #[test]
    fn root_child_replaced_or_added() {
        let with = br#"<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Location>http://upstream:9000/b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>"e-2"</ETag></CompleteMultipartUploadResult>"#;
        let out =
            String::from_utf8(set_root_child(with, "Location", "http://proxy/b/a&b").unwrap())
                .unwrap();
        assert!(
            out.contains("<Location>http://proxy/b/a&amp;b</Location><Bucket>b</Bucket>"),
            "{out}"
        );
        assert!(!out.contains("upstream"), "{out}");

        let without = br#"<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key></CompleteMultipartUploadResult>"#;
        let out =
            String::from_utf8(set_root_child(without, "Location", "http://proxy/b/k").unwrap())
                .unwrap();
        assert_eq!(
            out,
            "<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><Location>http://proxy/b/k</Location></CompleteMultipartUploadResult>"
        );

        let empty = br#"<CompleteMultipartUploadResult><Location/><Key>k</Key></CompleteMultipartUploadResult>"#;
        let out = String::from_utf8(set_root_child(empty, "Location", "http://proxy/b/k").unwrap())
            .unwrap();
        assert_eq!(
            out,
            "<CompleteMultipartUploadResult><Location>http://proxy/b/k</Location><Key>k</Key></CompleteMultipartUploadResult>"
        );

        let nested = br#"<R><Other><Location>inner</Location></Other></R>"#;
        let out = String::from_utf8(set_root_child(nested, "Location", "new").unwrap()).unwrap();
        assert_eq!(
            out,
            "<R><Other><Location>inner</Location></Other><Location>new</Location></R>"
        );
    }

    #[test]
    fn copy_result_etag_rewritten() {
        let xml = br#"<CopyObjectResult><LastModified>2020</LastModified><ETag>"abc"</ETag></CopyObjectResult>"#;
        let out = String::from_utf8(rewrite_etags(xml, |e| format!("{e}!")).unwrap()).unwrap();
        assert!(out.contains("<ETag>&quot;abc&quot;!</ETag>"), "{out}");
        assert_eq!(find_text(xml, "LastModified").as_deref(), Some("2020"));
    }

    #[test]
    fn tagging_document_becomes_header() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>team</Key><Value>a &amp; b</Value></Tag><Tag><Key>empty</Key><Value></Value></Tag><Tag><Key>p=q+r/s</Key><Value>café ~x</Value></Tag></TagSet></Tagging>"#.as_bytes();
        assert_eq!(
            tagging_header(xml).unwrap(),
            "team=a%20%26%20b&empty=&p%3Dq%2Br%2Fs=caf%C3%A9%20~x"
        );
        assert_eq!(tagging_header(b"<Tagging><TagSet/></Tagging>").unwrap(), "");
        assert!(tagging_header(b"<Tagging><TagSet>").is_err());
    }

    #[test]
    fn delete_request_keys_resolve_references_and_cdata() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
<Object><Key>plain</Key></Object>
<Object><Key>&#46;&#46;/other/x</Key><VersionId>v1</VersionId></Object>
<Object><Key>a<![CDATA[/../]]>b</Key></Object>
<Object><Key> spaced </Key></Object>
<Object><Key/></Object>
</Delete>"#;
        let keys = delete_request_keys(xml).unwrap();
        let read: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(read, ["plain", "../other/x", "a/../b", " spaced ", ""]);
        assert_eq!(keys[2].without_cdata.as_deref(), Some("ab"));
        assert!(keys
            .iter()
            .enumerate()
            .all(|(i, k)| i == 2 || k.without_cdata.is_none()));

        // A store that drops CDATA reads `.<![CDATA[x]]>.` as `..`.
        let hidden = b"<Delete><Object><Key>.<![CDATA[x]]>./y</Key></Object></Delete>";
        let keys = delete_request_keys(hidden).unwrap();
        assert_eq!(keys[0].key, ".x./y");
        assert_eq!(keys[0].without_cdata.as_deref(), Some("../y"));
    }

    #[test]
    fn list_parts_page_reads_sizes_and_marker() {
        let xml = b"<ListPartsResult xmlns=\"x\"><Bucket>b</Bucket><IsTruncated>true</IsTruncated>\
            <NextPartNumberMarker>2</NextPartNumberMarker>\
            <Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag><Size>5243904</Size></Part>\
            <Part><Size>17</Size><PartNumber>2</PartNumber></Part></ListPartsResult>";
        let page = list_parts_page(xml).unwrap();
        assert_eq!(page.parts, vec![(1, 5_243_904), (2, 17)]);
        assert!(page.is_truncated);
        assert_eq!(page.next_marker.as_deref(), Some("2"));
    }

    #[test]
    fn list_parts_page_rejects_bad_part() {
        let missing = b"<ListPartsResult><Part><PartNumber>1</PartNumber></Part></ListPartsResult>";
        assert!(list_parts_page(missing).is_err());
        let text = b"<ListPartsResult><Part><PartNumber>1</PartNumber><Size>x</Size></Part></ListPartsResult>";
        assert!(list_parts_page(text).is_err());
        let empty =
            list_parts_page(b"<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>")
                .unwrap();
        assert_eq!(empty, PartsPage::default());
    }

    #[test]
    fn root_name_skips_prolog() {
        let xml = b"<?xml version=\"1.0\"?>\n<!-- c --><ListBucketResult xmlns=\"x\"><Name>b</Name></ListBucketResult>";
        assert_eq!(root_name(xml).as_deref(), Some("ListBucketResult"));
        assert_eq!(root_name(b"<Foo/>").as_deref(), Some("Foo"));
        assert_eq!(
            root_name(b"<html><body>Maintenance</body></html>").as_deref(),
            Some("html")
        );
        assert_eq!(root_name(b"not xml"), None);
    }

    #[test]
    fn delete_request_keys_reject_broken_documents() {
        for xml in [
            &b"<Delete><Object><Key>x</Key></Object>"[..],
            b"<Delete><Object><Key>&bogus;</Key></Object></Delete>",
            b"<Foo><Object><Key>x</Key></Object></Foo>",
            b"<Foo/>",
            b"garbage",
            b"",
        ] {
            assert!(
                delete_request_keys(xml).is_err(),
                "{}",
                String::from_utf8_lossy(xml)
            );
        }
    }
}
