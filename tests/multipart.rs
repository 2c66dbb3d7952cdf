//! Multipart uploads through s3seal with aws-sdk-s3, against an in-process
//! s3s-fs upstream: part order, part sizes, ranges across part boundaries,
//! part reads, copies, aborts and a restart in the middle of an upload.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{error_code, pattern, Harness};

const MIB: usize = 1024 * 1024;

async fn upload_part(
    h: &Harness,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: i32,
    data: Vec<u8>,
) -> CompletedPart {
    let out = h
        .client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap();
    CompletedPart::builder()
        .part_number(number)
        .e_tag(out.e_tag().unwrap())
        .build()
}

/// Starts a multipart upload and returns its id.
async fn create_upload(h: &Harness, bucket: &str, key: &str) -> String {
    let created = h
        .client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    created.upload_id().unwrap().to_string()
}

/// Completes an upload with `parts`.
async fn complete_upload(
    h: &Harness,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
    >,
> {
    h.client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
}

/// Uploads parts of `sizes` (in reverse order, two at a time). Returns the
/// upload id, the whole plaintext and the completed parts in order.
async fn upload_parts(
    h: &Harness,
    bucket: &str,
    key: &str,
    sizes: &[usize],
) -> (String, Vec<u8>, Vec<CompletedPart>) {
    let upload_id = create_upload(h, bucket, key).await;
    let parts: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| pattern(len, i as u8 + 1))
        .collect();
    let mut completed = Vec::new();
    let numbered: Vec<(i32, Vec<u8>)> = parts
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, d)| (i as i32 + 1, d))
        .rev()
        .collect();
    for pair in numbered.chunks(2) {
        let uploads = pair
            .iter()
            .map(|(number, data)| upload_part(h, bucket, key, &upload_id, *number, data.clone()));
        completed.extend(futures_util::future::join_all(uploads).await);
    }
    completed.sort_by_key(|p| p.part_number());
    (upload_id, parts.concat(), completed)
}

/// Uploads parts of `sizes` and completes the upload. Returns the whole
/// plaintext and the final ETag.
async fn multipart_object(
    h: &Harness,
    bucket: &str,
    key: &str,
    sizes: &[usize],
) -> (Vec<u8>, String) {
    let (upload_id, data, completed) = upload_parts(h, bucket, key, sizes).await;
    let done = complete_upload(h, bucket, key, &upload_id, completed)
        .await
        .unwrap();
    (data, done.e_tag().unwrap().to_string())
}

/// Uploads parts of `sizes` through s3seal and completes the upload at the
/// upstream directly, which s3seal's check for parts of one size cannot
/// stop. Such objects come from uploads completed before s3seal checked
/// part sizes, or outside s3seal. Returns the whole plaintext.
async fn uneven_multipart_object(h: &Harness, bucket: &str, key: &str, sizes: &[usize]) -> Vec<u8> {
    let (upload_id, data, completed) = upload_parts(h, bucket, key, sizes).await;
    let upstream_id = s3seal::crypto::multipart::parse_upload_id(&upload_id)
        .unwrap()
        .upstream
        .to_string();
    let parts = completed
        .into_iter()
        .map(|part| {
            CompletedPart::builder()
                .part_number(part.part_number().unwrap())
                .e_tag(s3seal::s3::etag::to_upstream(part.e_tag().unwrap()))
                .build()
        })
        .collect();
    h.direct
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upstream_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    data
}

async fn get_range(h: &Harness, bucket: &str, key: &str, range: &str) -> (Vec<u8>, Option<String>) {
    let out = h
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range)
        .send()
        .await
        .unwrap();
    let content_range = out.content_range().map(str::to_string);
    (
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        content_range,
    )
}

#[tokio::test]
async fn parts_out_of_order_round_trip() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-order").await;
    let sizes = [5 * MIB, 5 * MIB, 1];
    let (data, etag) = multipart_object(&h, &bucket, "obj", &sizes).await;
    assert!(etag.ends_with("-3\""), "{etag}");

    let out = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(out.e_tag(), Some(etag.as_str()));
    assert_eq!(out.content_length(), Some(data.len() as i64));
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        data
    );

    let head = h
        .client
        .head_object()
        .bucket(&bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    let listed = h
        .client
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let entry = &listed.contents()[0];
    assert_eq!(entry.size(), Some(data.len() as i64));

    let (stored, metadata) = h.stored(&bucket, "obj").await;
    assert_eq!(
        metadata.get("s3seal-layout").map(String::as_str),
        Some("multipart")
    );
    assert!(
        !stored.windows(64).any(|w| w == &data[1000..1064]),
        "plaintext visible upstream"
    );
}

#[tokio::test]
async fn ranges_across_part_boundaries() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-ranges").await;
    let sizes = [5 * MIB, 5 * MIB, 300_000];
    let (data, _) = multipart_object(&h, &bucket, "r", &sizes).await;
    let total = data.len();
    let boundaries = [5 * MIB, 10 * MIB];
    let mut cases: Vec<(usize, usize)> = Vec::new();
    for &b in &boundaries {
        cases.extend([
            (b - 1, b),
            (b - 10, b + 10),
            (b, b),
            (b - 65_536, b + 65_536),
            (b - 1, b - 1),
        ]);
    }
    cases.extend([
        (0, 0),
        (0, total - 1),
        (1, 10 * MIB + 5),
        (total - 5, total - 1),
    ]);
    for (first, last) in cases {
        let (body, content_range) =
            get_range(&h, &bucket, "r", &format!("bytes={first}-{last}")).await;
        assert_eq!(body, &data[first..=last], "range {first}-{last}");
        assert_eq!(
            content_range,
            Some(format!("bytes {first}-{last}/{total}")),
            "range {first}-{last}"
        );
    }
    let (body, _) = get_range(&h, &bucket, "r", "bytes=-70000").await;
    assert_eq!(body, &data[total - 70_000..]);
    let (body, _) = get_range(&h, &bucket, "r", &format!("bytes={}-", 10 * MIB - 3)).await;
    assert_eq!(body, &data[10 * MIB - 3..]);
}

#[tokio::test]
async fn unaligned_parts_read_back() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-unaligned").await;
    let sizes = [5 * MIB + 1, 5 * MIB + 1, 1];
    let (data, _) = multipart_object(&h, &bucket, "u", &sizes).await;
    let out = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("u")
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_length(), Some(data.len() as i64));
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        data
    );
    for (first, last) in [(5 * MIB - 2, 5 * MIB + 2), (10 * MIB, 10 * MIB + 2), (3, 9)] {
        let (body, _) = get_range(&h, &bucket, "u", &format!("bytes={first}-{last}")).await;
        assert_eq!(body, &data[first..=last], "range {first}-{last}");
    }
}

/// Reads `key` whole, in each range of `ranges` (first and last byte) and
/// as each part of `parts` (number, first byte, end), and compares the
/// bytes with `data`.
async fn assert_reads_match(
    h: &Harness,
    bucket: &str,
    key: &str,
    data: &[u8],
    ranges: &[(usize, usize)],
    parts: &[(i32, usize, usize)],
) {
    let whole = h
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.content_length(), Some(data.len() as i64));
    assert_eq!(
        whole.body.collect().await.unwrap().into_bytes().to_vec(),
        data
    );
    for &(first, last) in ranges {
        let (body, _) = get_range(h, bucket, key, &format!("bytes={first}-{last}")).await;
        assert_eq!(body, &data[first..=last], "range {first}-{last}");
    }
    for &(number, start, end) in parts {
        let part = h
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .part_number(number)
            .send()
            .await
            .unwrap();
        let body = part.body.collect().await.unwrap().into_bytes();
        assert_eq!(&body[..], &data[start..end], "part {number}");
    }
}

/// Parts of 5 MiB + 1 and 5 MiB + 7 bytes store as many bytes as two parts
/// of 5 MiB + 1 followed by a longer last part. The stored length alone
/// therefore does not give the part sizes.
#[tokio::test]
async fn multipart_read_of_uneven_unaligned_parts() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-uneven").await;
    let data = uneven_multipart_object(&h, &bucket, "u", &[5 * MIB + 1, 5 * MIB + 7, 100]).await;
    let (second, third) = (5 * MIB + 1, 10 * MIB + 8);
    let ranges = [
        (second + 10, second + 70_000),
        (third, third + 99),
        (third - 5, third + 5),
        (3, third + 2),
        (data.len() - 50, data.len() - 1),
    ];
    let parts = [(2, second, third), (3, third, data.len())];
    assert_reads_match(&h, &bucket, "u", &data, &ranges, &parts).await;
    let (tail, _) = get_range(&h, &bucket, "u", "bytes=-50").await;
    assert_eq!(tail, &data[data.len() - 50..]);
}

/// Parts that are 64 KiB multiples of different sizes fit the stored length
/// of parts that all have the first part's size.
#[tokio::test]
async fn multipart_read_of_uneven_aligned_parts() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-aligned-uneven").await;
    let data = uneven_multipart_object(&h, &bucket, "a", &[5 * MIB, 6 * MIB, 1]).await;
    let (second, third) = (5 * MIB, 11 * MIB);
    let ranges = [
        (second, second + 99),
        (second + 70_000, second + 200_000),
        (third, third),
        (second - 3, second + 3),
        (10, third),
    ];
    let parts = [(2, second, third), (3, third, data.len())];
    assert_reads_match(&h, &bucket, "a", &data, &ranges, &parts).await;
}

/// A middle part shorter than the first makes the guess of equal parts
/// store a different length, so whole reads, reads up to the end and
/// copies need the part lengths from the part headers.
#[tokio::test]
async fn multipart_read_of_shorter_middle_part() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-short-middle").await;
    let layouts = [
        ("three", vec![5 * MIB + 1000, 5 * MIB, 1_069_838]),
        ("five", vec![5 * MIB, 6 * MIB, 5 * MIB + 1, 7 * MIB, 3]),
    ];
    for (key, sizes) in layouts {
        let data = uneven_multipart_object(&h, &bucket, key, &sizes).await;
        let len = data.len();
        let ranges = [(len - 8, len - 1), (sizes[0] - 2, len - 1), (0, len - 1)];
        assert_reads_match(&h, &bucket, key, &data, &ranges, &[]).await;

        let (tail, content_range) = get_range(&h, &bucket, key, "bytes=-5").await;
        assert_eq!(tail, &data[len - 5..], "{key}");
        let expected_range = format!("bytes {}-{}/{len}", len - 5, len - 1);
        assert_eq!(
            content_range.as_deref(),
            Some(expected_range.as_str()),
            "{key}"
        );
        let (from, _) = get_range(&h, &bucket, key, &format!("bytes={}-", len - 3)).await;
        assert_eq!(from, &data[len - 3..], "{key}");

        let copy_key = format!("{key}-copy");
        h.client
            .copy_object()
            .bucket(&bucket)
            .key(&copy_key)
            .copy_source(format!("{bucket}/{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(h.get(&bucket, &copy_key).await, data, "{key}");
    }
}

#[tokio::test]
async fn multipart_read_with_empty_last_part() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-empty-last").await;
    let (data, _) = multipart_object(&h, &bucket, "e", &[5 * MIB + 1, 0]).await;
    assert_eq!(h.get(&bucket, "e").await, data);
}

#[tokio::test]
async fn part_number_reads() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-parts").await;
    let sizes = [5 * MIB, 5 * MIB, 1000];
    let (data, _) = multipart_object(&h, &bucket, "p", &sizes).await;
    let mut offset = 0;
    for (i, &len) in sizes.iter().enumerate() {
        let number = i as i32 + 1;
        let out = h
            .client
            .get_object()
            .bucket(&bucket)
            .key("p")
            .part_number(number)
            .send()
            .await
            .unwrap();
        assert_eq!(out.parts_count(), Some(3));
        assert_eq!(out.content_length(), Some(len as i64));
        assert_eq!(
            out.body.collect().await.unwrap().into_bytes().to_vec(),
            &data[offset..offset + len],
            "part {number}"
        );
        let head = h
            .client
            .head_object()
            .bucket(&bucket)
            .key("p")
            .part_number(number)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.content_length(),
            Some(len as i64),
            "HEAD part {number}"
        );
        assert_eq!(head.parts_count(), Some(3), "HEAD part {number}");
        offset += len;
    }
    // As in S3, only a request for a part gets the part count.
    let whole = h
        .client
        .head_object()
        .bucket(&bucket)
        .key("p")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.parts_count(), None);
    let whole = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("p")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.parts_count(), None);
    let err = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("p")
        .part_number(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(416));

    let err = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("p")
        .part_number(1)
        .range("bytes=0-9")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert_eq!(
        err.as_service_error().and_then(|e| e.meta().code()),
        Some("InvalidRequest")
    );
}

#[tokio::test]
async fn if_range_on_multipart_objects() {
    let h = Harness::start().await;
    for bucket in ["mp-if-range", "plain-mp-if-range"] {
        h.bucket(bucket).await;
        let (_, old_etag) = multipart_object(&h, bucket, "m", &[5 * MIB, 1000]).await;
        let (data, etag) = multipart_object(&h, bucket, "m", &[5 * MIB, 2000]).await;
        assert_ne!(old_etag, etag);
        let path = format!("/{bucket}/m");
        let range = [("range", "bytes=100-")];

        let stale = h
            .signed_request(
                "GET",
                &path,
                &[range[0], ("if-range", &old_etag)],
                Vec::new(),
            )
            .await;
        assert_eq!(stale.status, 200, "{bucket}: stale If-Range");
        assert!(!stale.headers.contains_key("content-range"), "{bucket}");
        assert!(stale.body == data, "{bucket}: stale If-Range body");

        let current = h
            .signed_request("GET", &path, &[range[0], ("if-range", &etag)], Vec::new())
            .await;
        assert_eq!(current.status, 206, "{bucket}: current If-Range");
        assert!(
            current.body == data[100..],
            "{bucket}: current If-Range body"
        );

        // With partNumber and without Range, If-Range is ignored.
        let part_path = format!("{path}?partNumber=1");
        let plain = h.signed_request("GET", &part_path, &[], Vec::new()).await;
        let with_if_range = h
            .signed_request("GET", &part_path, &[("if-range", &old_etag)], Vec::new())
            .await;
        assert_eq!(with_if_range.status, plain.status, "{bucket}: partNumber");
        assert!(
            with_if_range.body == plain.body,
            "{bucket}: partNumber body"
        );
        if !bucket.starts_with("plain-") {
            assert_eq!(with_if_range.status, 206, "{bucket}: partNumber");
            assert!(with_if_range.body == data[..5 * MIB], "{bucket}: part 1");
        }
    }
}

#[tokio::test]
async fn list_parts_shows_plaintext_sizes() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-list").await;
    let created = h
        .client
        .create_multipart_upload()
        .bucket(&bucket)
        .key("l")
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    upload_part(&h, &bucket, "l", upload_id, 3, pattern(7, 3)).await;
    upload_part(&h, &bucket, "l", upload_id, 1, pattern(5 * MIB, 1)).await;
    upload_part(&h, &bucket, "l", upload_id, 2, pattern(12_345, 2)).await;
    let parts = h
        .client
        .list_parts()
        .bucket(&bucket)
        .key("l")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, i64)> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap_or(0), p.size().unwrap_or(-1)))
        .collect();
    assert_eq!(listed, vec![(1, 5 * MIB as i64), (2, 12_345), (3, 7)]);
    assert_eq!(parts.upload_id(), Some(upload_id));

    h.client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key("l")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert!(
        h.direct
            .head_object()
            .bucket(&bucket)
            .key("l")
            .send()
            .await
            .is_err(),
        "an aborted upload left an object"
    );
}

#[tokio::test]
async fn head_size_exact_for_unaligned_parts() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-head-odd").await;
    // 5,632,000-byte parts (5,500 KiB, not a multiple of 64 KiB) make the
    // stored length alone an invalid single-part length, and 5 MiB + 7
    // byte parts make it a valid but larger one.
    for (key, sizes) in [
        ("kib", vec![5_632_000, 5_632_000, 5_632_000, 4_075_520]),
        ("odd", vec![5 * MIB + 7, 5 * MIB + 7, 100]),
        // Three lengths whose stored total fits the guess of equal parts.
        ("three", vec![5 * MIB + 1, 5 * MIB + 22, 65_534]),
    ] {
        let data = if sizes[0] == sizes[1] {
            multipart_object(&h, &bucket, key, &sizes).await.0
        } else {
            uneven_multipart_object(&h, &bucket, key, &sizes).await
        };
        let head = h
            .client
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(data.len() as i64), "{key}");
        let tail = h
            .client
            .head_object()
            .bucket(&bucket)
            .key(key)
            .range(format!("bytes={}-", data.len() - 10))
            .send()
            .await
            .unwrap();
        assert_eq!(tail.content_length(), Some(10), "{key}");
    }
}

#[tokio::test]
async fn reuploaded_part_replaces_data() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-retry").await;
    let created = h
        .client
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    upload_part(&h, &bucket, "k", upload_id, 1, pattern(70_000, 1)).await;
    let second = upload_part(&h, &bucket, "k", upload_id, 1, pattern(70_000, 9)).await;
    h.client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(second).build())
        .send()
        .await
        .unwrap();
    let out = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        pattern(70_000, 9)
    );
}

#[tokio::test]
async fn forged_upload_id_rejected() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-forged").await;
    let upload_id = create_upload(&h, &bucket, "a").await;
    // The token is bound to the object key, so it does not open another key's upload.
    let err = h
        .client
        .upload_part()
        .bucket(&bucket)
        .key("b")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    let bare = upload_id.split("~s3s1~").next().unwrap();
    // A token that names a key the keyring lacks, here a path, is no upload
    // either, and is never looked up as a key.
    let foreign = format!("{bare}~s3s1~../../etc~1~AAAA");
    // Versions the keyring lacks, of the key the upload really uses.
    let with_version = |version: &str| {
        let mut fields: Vec<&str> = upload_id.split('~').collect();
        fields[3] = version;
        fields.join("~")
    };
    let (missing_version, version_zero) = (with_version("7"), with_version("0"));
    let records_before = std::fs::read_to_string(&h.audit_log)
        .unwrap()
        .lines()
        .count();
    for forged in [bare, &foreign, &missing_version, &version_zero] {
        let err = h
            .client
            .upload_part()
            .bucket(&bucket)
            .key("a")
            .upload_id(forged)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.as_service_error()
                .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)),
            Some("NoSuchUpload"),
            "{forged}"
        );
    }
    let audit = std::fs::read_to_string(&h.audit_log).unwrap();
    assert!(!audit.contains("../../etc"), "{audit}");
    assert_eq!(audit.lines().count(), records_before, "{audit}");
}

#[tokio::test]
async fn other_key_upload_id_rejected() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-other-key").await;
    h.client
        .put_object()
        .bucket(&bucket)
        .key("victim")
        .body(ByteStream::from_static(b"important data"))
        .send()
        .await
        .unwrap();
    let upload_id = create_upload(&h, &bucket, "other").await;
    let part = upload_part(&h, &bucket, "other", &upload_id, 1, pattern(100, 3)).await;

    let completed = complete_upload(&h, &bucket, "victim", &upload_id, vec![part.clone()])
        .await
        .unwrap_err();
    assert_eq!(error_code(&completed).as_deref(), Some("NoSuchUpload"));
    assert_eq!(h.get(&bucket, "victim").await, b"important data");

    let list_parts = |key: &'static str, id: String| {
        h.client
            .list_parts()
            .bucket(&bucket)
            .key(key)
            .upload_id(id)
            .send()
    };
    let listed = list_parts("victim", upload_id.clone()).await.unwrap_err();
    assert_eq!(error_code(&listed).as_deref(), Some("NoSuchUpload"));

    let aborted = h
        .client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key("victim")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&aborted).as_deref(), Some("NoSuchUpload"));

    // A bare upstream id, as ListMultipartUploads returns, completes
    // nothing, because it carries no binding to the key.
    let bare = upload_id.split("~s3s1~").next().unwrap();
    let completed = complete_upload(&h, &bucket, "victim", bare, vec![part.clone()])
        .await
        .unwrap_err();
    assert_eq!(error_code(&completed).as_deref(), Some("NoSuchUpload"));
    assert_eq!(h.get(&bucket, "victim").await, b"important data");
    // It lists and aborts nothing under another key either.
    let listed = list_parts("victim", bare.to_owned()).await.unwrap_err();
    assert_eq!(error_code(&listed).as_deref(), Some("NoSuchUpload"));
    let aborted = h
        .client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key("victim")
        .upload_id(bare)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&aborted).as_deref(), Some("NoSuchUpload"));
    // It still lists the upload's parts under the upload's own key.
    let parts = list_parts("other", bare.to_owned()).await.unwrap();
    assert_eq!(parts.parts().len(), 1);

    // The upload is untouched under its own key.
    complete_upload(&h, &bucket, "other", &upload_id, vec![part])
        .await
        .unwrap();
    assert_eq!(h.get(&bucket, "other").await, pattern(100, 3));
    assert_eq!(h.get(&bucket, "victim").await, b"important data");
}

#[tokio::test]
async fn passthrough_upload_id_bound_to_key() {
    let h = Harness::start().await;
    let first = h.bucket("plain-mp-bound").await;
    let second = h.bucket("plain-mp-elsewhere").await;
    let upload_id = create_upload(&h, &first, "a").await;
    let part = upload_part(&h, &first, "a", &upload_id, 1, pattern(100, 5)).await;

    for (bucket, key) in [(&first, "b"), (&second, "a")] {
        let uploaded = h
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(1)
            .body(ByteStream::from_static(b"not the upload's data"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_code(&uploaded).as_deref(),
            Some("NoSuchUpload"),
            "{bucket}/{key}"
        );
        let aborted = h
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_code(&aborted).as_deref(),
            Some("NoSuchUpload"),
            "{bucket}/{key}"
        );
    }

    complete_upload(&h, &first, "a", &upload_id, vec![part])
        .await
        .unwrap();
    assert_eq!(h.get(&first, "a").await, pattern(100, 5));
}

#[tokio::test]
async fn restart_between_parts() {
    let mut h = Harness::start().await;
    let bucket = h.bucket("mp-restart").await;
    let upload_id = create_upload(&h, &bucket, "r").await;
    let first = upload_part(&h, &bucket, "r", &upload_id, 1, pattern(5 * MIB, 1)).await;
    h.restart_proxy().await;
    let second = upload_part(&h, &bucket, "r", &upload_id, 2, pattern(1000, 2)).await;
    complete_upload(&h, &bucket, "r", &upload_id, vec![first, second])
        .await
        .unwrap();
    let out = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("r")
        .send()
        .await
        .unwrap();
    let body = out.body.collect().await.unwrap().into_bytes().to_vec();
    assert_eq!(body, [pattern(5 * MIB, 1), pattern(1000, 2)].concat());
}

#[tokio::test]
async fn upload_part_copy_from_both_modes() {
    let h = Harness::start().await;
    let sealed = h.bucket("mp-copy").await;
    let plain = h.bucket("plain-mp-copy").await;
    let source = pattern(6 * MIB, 3);
    h.client
        .put_object()
        .bucket(&sealed)
        .key("src")
        .body(ByteStream::from(source.clone()))
        .send()
        .await
        .unwrap();
    h.client
        .put_object()
        .bucket(&plain)
        .key("src")
        .body(ByteStream::from(source.clone()))
        .send()
        .await
        .unwrap();

    let created = h
        .client
        .create_multipart_upload()
        .bucket(&sealed)
        .key("dst")
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    let first = h
        .client
        .upload_part_copy()
        .bucket(&sealed)
        .key("dst")
        .upload_id(upload_id)
        .part_number(1)
        .copy_source(format!("{sealed}/src"))
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .unwrap();
    let second = h
        .client
        .upload_part_copy()
        .bucket(&sealed)
        .key("dst")
        .upload_id(upload_id)
        .part_number(2)
        .copy_source(format!("{plain}/src"))
        .copy_source_range(format!("bytes={}-{}", 5 * MIB, 6 * MIB - 1))
        .send()
        .await
        .unwrap();
    let parts = [
        (1, first.copy_part_result().unwrap().e_tag().unwrap()),
        (2, second.copy_part_result().unwrap().e_tag().unwrap()),
    ];
    let completed = CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build();
    h.client
        .complete_multipart_upload()
        .bucket(&sealed)
        .key("dst")
        .upload_id(upload_id)
        .multipart_upload(completed)
        .send()
        .await
        .unwrap();
    let out = h
        .client
        .get_object()
        .bucket(&sealed)
        .key("dst")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        source
    );
}

#[tokio::test]
async fn oversized_range_positions_saturate() {
    let h = Harness::start().await;
    let bucket = h.bucket("huge-range").await;
    let body = pattern(1000, 5);
    h.client
        .put_object()
        .bucket(&bucket)
        .key("obj")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();

    let (bytes, content_range) =
        get_range(&h, &bucket, "obj", "bytes=0-99999999999999999999999").await;
    assert_eq!(bytes, body);
    assert_eq!(content_range.as_deref(), Some("bytes 0-999/1000"));

    let (bytes, content_range) =
        get_range(&h, &bucket, "obj", "bytes=-99999999999999999999999").await;
    assert_eq!(bytes, body);
    assert_eq!(content_range.as_deref(), Some("bytes 0-999/1000"));

    let past_end = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("obj")
        .range("bytes=99999999999999999999999-")
        .send()
        .await
        .expect_err("a first position past the end is unsatisfiable");
    assert_eq!(error_code(&past_end).as_deref(), Some("InvalidRange"));
}

#[tokio::test]
async fn upload_part_copy_oversized_range_rejected() {
    let h = Harness::start().await;
    let sealed = h.bucket("mp-copy-huge").await;
    let plain = h.bucket("plain-mp-copy-huge").await;
    for bucket in [&sealed, &plain] {
        h.client
            .put_object()
            .bucket(bucket)
            .key("src")
            .body(ByteStream::from(pattern(1000, 4)))
            .send()
            .await
            .unwrap();
    }
    let upload_id = create_upload(&h, &sealed, "dst").await;
    for source in [&sealed, &plain] {
        for range in [
            format!("bytes=0-{}", u64::MAX),
            "bytes=0-99999999999999999999999".to_string(),
            "bytes=999-99999999999999999999999".to_string(),
            "bytes=0-1000".to_string(),
            "bytes=1000-1000".to_string(),
        ] {
            let copied = h
                .client
                .upload_part_copy()
                .bucket(&sealed)
                .key("dst")
                .upload_id(&upload_id)
                .part_number(1)
                .copy_source(format!("{source}/src"))
                .copy_source_range(&range)
                .send()
                .await
                .expect_err("a range past the source must fail");
            assert_eq!(
                error_code(&copied).as_deref(),
                Some("InvalidRange"),
                "{source} {range}"
            );
        }
    }
}

#[tokio::test]
async fn copy_of_multipart_object_reads_back() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-copyobj").await;
    let (data, _) = multipart_object(&h, &bucket, "m", &[5 * MIB, 100]).await;
    h.client
        .copy_object()
        .bucket(&bucket)
        .key("copy")
        .copy_source(format!("{bucket}/m"))
        .send()
        .await
        .unwrap();
    let out = h
        .client
        .get_object()
        .bucket(&bucket)
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        data
    );
    let listed = h
        .client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents()[0].size(), Some(data.len() as i64));
}

#[tokio::test]
async fn part_number_gap_rejected_at_completion() {
    let h = Harness::start().await;
    let bucket = h.bucket("gaps").await;
    let upload_id = create_upload(&h, &bucket, "gaps").await;
    let first = upload_part(&h, &bucket, "gaps", &upload_id, 1, pattern(5 * MIB, 1)).await;
    let third = upload_part(&h, &bucket, "gaps", &upload_id, 3, pattern(1000, 3)).await;

    let err = complete_upload(&h, &bucket, "gaps", &upload_id, vec![first.clone(), third])
        .await
        .unwrap_err();
    let service = err.as_service_error().map(|e| e.meta().code());
    assert_eq!(service, Some(Some("InvalidPartOrder")), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let head = h
        .client
        .head_object()
        .bucket(&bucket)
        .key("gaps")
        .send()
        .await;
    assert!(head.is_err(), "a rejected completion left an object");

    // The upload stays open, and parts numbered without gaps complete it.
    let second = upload_part(&h, &bucket, "gaps", &upload_id, 2, pattern(1000, 2)).await;
    complete_upload(&h, &bucket, "gaps", &upload_id, vec![first, second])
        .await
        .unwrap();
    let mut expected = pattern(5 * MIB, 1);
    expected.extend(pattern(1000, 2));
    assert!(
        h.get(&bucket, "gaps").await == expected,
        "completed object differs"
    );
}

#[tokio::test]
async fn upload_part_returns_verified_checksum() {
    use aws_sdk_s3::types::ChecksumAlgorithm;
    use base64::Engine;

    let h = Harness::start().await;
    let bucket = h.bucket("mp-checksum").await;
    let upload_id = create_upload(&h, &bucket, "c").await;
    let data = pattern(5 * MIB, 6);
    let out = h
        .client
        .upload_part()
        .bucket(&bucket)
        .key("c")
        .upload_id(&upload_id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &data) as u32;
    let expected = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
    assert_eq!(out.checksum_crc32_c(), Some(expected.as_str()));

    let part = CompletedPart::builder()
        .part_number(1)
        .e_tag(out.e_tag().unwrap())
        .checksum_crc32_c(&expected)
        .build();
    complete_upload(&h, &bucket, "c", &upload_id, vec![part])
        .await
        .unwrap();
    assert_eq!(h.get(&bucket, "c").await, data);
}

#[tokio::test]
async fn complete_rejects_uneven_parts() {
    let h = Harness::start().await;
    let bucket = h.bucket("mp-uneven-rejected").await;
    let layouts = [
        ("longer-second", vec![5 * MIB, 5 * MIB + 1, 10]),
        (
            "shorter-middle",
            vec![5 * MIB + 3, 5 * MIB + 1, 5 * MIB + 5, 10],
        ),
    ];
    for (key, sizes) in layouts {
        let (upload_id, _, completed) = upload_parts(&h, &bucket, key, &sizes).await;
        let err = complete_upload(&h, &bucket, key, &upload_id, completed)
            .await
            .unwrap_err();
        let service = err.as_service_error().expect("an S3 error");
        assert_eq!(
            aws_sdk_s3::error::ProvideErrorMetadata::code(service),
            Some("InvalidPart"),
            "{key}"
        );
        assert!(
            h.direct
                .head_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .is_err(),
            "{key}: the rejected upload created an object"
        );
    }

    // Equal parts with a longer or shorter last part complete.
    for (key, sizes) in [
        ("longer-last", vec![5 * MIB + 3, 5 * MIB + 3, 6 * MIB]),
        ("many", vec![5 * MIB, 5 * MIB, 5 * MIB, 5 * MIB, 1]),
    ] {
        let (data, _) = multipart_object(&h, &bucket, key, &sizes).await;
        let (range, content_range) = get_range(&h, &bucket, key, "bytes=0-9").await;
        assert_eq!(range, &data[..10], "{key}");
        let expected = format!("bytes 0-9/{}", data.len());
        assert_eq!(content_range.as_deref(), Some(expected.as_str()), "{key}");
        assert_eq!(h.get(&bucket, key).await, data, "{key}");
    }
}

/// Starts an upstream that relays every request to the store whose endpoint
/// is set later in the returned cell, except ListParts, which gets
/// `status` with `body`.
async fn list_parts_replaced_upstream(
    status: u16,
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::OnceLock<String>>) {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let target = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let store = target.clone();
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (client, store) = (client.clone(), store.clone());
            let service =
                hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    let (client, store) = (client.clone(), store.clone());
                    async move {
                        let query = request.uri().query().unwrap_or_default().to_string();
                        if request.method() == http::Method::GET
                            && query.contains("uploadId=")
                            && !query.contains("partNumber=")
                        {
                            let replaced = Full::new(bytes::Bytes::from_static(body.as_bytes()))
                                .map_err(|never| match never {})
                                .boxed();
                            return Ok::<_, hyper::Error>(
                                http::Response::builder()
                                    .status(status)
                                    .body(replaced)
                                    .unwrap(),
                            );
                        }
                        let path = request.uri().path_and_query().unwrap().as_str().to_string();
                        *request.uri_mut() =
                            format!("{}{path}", store.get().unwrap()).parse().unwrap();
                        let response = client.request(request).await.unwrap();
                        Ok(response.map(|body| body.boxed()))
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (endpoint, target)
}

#[tokio::test]
async fn complete_fails_when_part_sizes_unchecked() {
    const DENIED: &str = "<Error><Code>AccessDenied</Code><Message>denied</Message></Error>";
    const MISSING: &str = "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";
    // A truncated page without a marker, repeated for every marker.
    const STUCK: &str =
        "<ListPartsResult><IsTruncated>true</IsTruncated><Part><PartNumber>1</PartNumber>\
        <Size>5243136</Size></Part></ListPartsResult>";
    let cases = [
        (403, DENIED, 502, "s3:ListMultipartUploadParts"),
        (404, MISSING, 404, "NoSuchUpload"),
        (200, STUCK, 502, "do not advance"),
    ];
    for (status, body, expected_status, expected_text) in cases {
        let (endpoint, target) = list_parts_replaced_upstream(status, body).await;
        let h = Harness::start_with_options(common::Options {
            upstream_endpoint: Some(endpoint),
            ..common::Options::default()
        })
        .await;
        target.set(h.upstream.endpoint.clone()).unwrap();
        let bucket = h.bucket("mp-unchecked").await;

        let sizes = [5 * MIB, 5 * MIB + 1, 10];
        let (upload_id, _, completed) = upload_parts(&h, &bucket, "u", &sizes).await;
        let err = complete_upload(&h, &bucket, "u", &upload_id, completed)
            .await
            .unwrap_err();
        let response = err.raw_response().expect("an HTTP response");
        assert_eq!(response.status().as_u16(), expected_status, "{status}");
        let text = String::from_utf8_lossy(response.body().bytes().unwrap()).into_owned();
        assert!(text.contains(expected_text), "{status}: {text}");
        assert!(
            h.direct
                .head_object()
                .bucket(&bucket)
                .key("u")
                .send()
                .await
                .is_err(),
            "{status}: the unchecked upload was completed"
        );
    }

    let (endpoint, target) = list_parts_replaced_upstream(403, DENIED).await;
    let h = Harness::start_with_options(common::Options {
        upstream_endpoint: Some(endpoint),
        ..common::Options::default()
    })
    .await;
    target.set(h.upstream.endpoint.clone()).unwrap();
    let bucket = h.bucket("mp-unchecked").await;

    // Two parts need no ListParts, so they still complete.
    let (data, _) = multipart_object(&h, &bucket, "two", &[5 * MIB, 7]).await;
    assert_eq!(h.get(&bucket, "two").await, data);
}

#[tokio::test]
async fn upload_id_of_other_key_touches_no_key() {
    let mut h = Harness::start().await;
    s3seal::keys::Keyring::load(&h.keyring_path)
        .unwrap()
        .create_key(
            &h.keyring_path,
            "other",
            &mut rand::rngs::OsRng,
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
    let catch_all = "[[buckets]]\nmatch = \"*\"\nmode = \"encrypt\"\nkey = \"test\"";
    assert!(h.config_toml.contains(catch_all), "{}", h.config_toml);
    h.config_toml = h.config_toml.replace(
        catch_all,
        &format!(
            "[[buckets]]\nmatch = \"other-*\"\nmode = \"encrypt\"\nkey = \"other\"\n\n{catch_all}"
        ),
    );
    h.restart_proxy().await;
    let first = h.bucket("mp-key-test").await;
    let second = h.bucket("other-key-bucket").await;
    let upload_id = create_upload(&h, &first, "k").await;
    let records_before = h.audit_records().len();

    let err = h
        .client
        .upload_part()
        .bucket(&second)
        .key("k")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap_err();
    let service = err.as_service_error().expect("an S3 error");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(service),
        Some("NoSuchUpload")
    );
    let records = h.audit_records();
    assert_eq!(
        records.len(),
        records_before,
        "{:?}",
        &records[records_before..]
    );

    // The upload still takes parts in its own bucket.
    upload_part(&h, &first, "k", &upload_id, 1, pattern(100, 1)).await;
}

#[tokio::test]
async fn create_repeats_checksum_algorithm() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};

    let h = Harness::start().await;
    let bucket = h.bucket("create-checksum").await;
    let created = h
        .client
        .create_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_type(ChecksumType::Composite)
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.checksum_algorithm(),
        Some(&ChecksumAlgorithm::Sha256)
    );
    assert_eq!(created.checksum_type(), Some(&ChecksumType::Composite));

    let rejected = [
        (Some("MD4"), None),
        (Some("SHA1"), Some("FULL_OBJECT")),
        (Some("CRC64NVME"), Some("COMPOSITE")),
        (Some("CRC32"), Some("BOGUS")),
        (None, Some("FULL_OBJECT")),
    ];
    for (algorithm, checksum_type) in rejected {
        let err = h
            .client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .set_checksum_algorithm(algorithm.map(ChecksumAlgorithm::from))
            .set_checksum_type(checksum_type.map(ChecksumType::from))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.as_service_error().and_then(|e| e.meta().code()),
            Some("InvalidRequest"),
            "{algorithm:?} {checksum_type:?}"
        );
    }
}

#[tokio::test]
async fn completed_upload_location_names_proxy() {
    let h = Harness::start().await;
    for name in ["located-sealed", "plain-located"] {
        let bucket = h.bucket(name).await;
        for (key, path) in [
            ("dir/k1.bin", "dir/k1.bin"),
            ("dir/a b.bin", "dir/a%20b.bin"),
        ] {
            let upload_id = create_upload(&h, &bucket, key).await;
            let part = upload_part(&h, &bucket, key, &upload_id, 1, pattern(1000, 3)).await;

            let done = complete_upload(&h, &bucket, key, &upload_id, vec![part])
                .await
                .unwrap();

            let expected = format!("{}/{bucket}/{path}", h.endpoint);
            assert_eq!(done.location(), Some(expected.as_str()), "{name} {key}");
            assert_eq!(done.key(), Some(key), "{name} {key}");
            assert!(
                done.e_tag().is_some_and(|etag| etag.ends_with("-1\"")),
                "{name} {key}: {:?}",
                done.e_tag()
            );
        }
    }
}

#[tokio::test]
async fn completion_naming_missing_part_rejected() {
    let h = Harness::start().await;
    let bucket = h.bucket("missing-part").await;
    let upload_id = create_upload(&h, &bucket, "k").await;
    let first = upload_part(&h, &bucket, "k", &upload_id, 1, pattern(5 * MIB, 1)).await;
    let second = upload_part(&h, &bucket, "k", &upload_id, 2, pattern(100, 2)).await;
    let third = CompletedPart::builder()
        .part_number(3)
        .e_tag(second.e_tag().unwrap())
        .build();

    let error = complete_upload(&h, &bucket, "k", &upload_id, vec![first, second, third])
        .await
        .unwrap_err();

    assert_eq!(error_code(&error).as_deref(), Some("InvalidPart"));
    let message = format!("{:?}", error.into_service_error());
    assert!(message.contains("could not be found"), "{message}");
}

#[tokio::test]
async fn complete_if_match_missing_key_is_nosuchkey() {
    let h = Harness::start().await;
    for bucket in [
        h.bucket("complete-if-match").await,
        h.bucket("plain-complete-if-match").await,
    ] {
        let (upload_id, data, parts) = upload_parts(&h, &bucket, "missing", &[1024]).await;
        let err = h
            .client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("missing")
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.clone()))
                    .build(),
            )
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.raw_response().map(|r| r.status().as_u16()),
            Some(404),
            "{bucket}"
        );
        assert_eq!(error_code(&err).as_deref(), Some("NoSuchKey"), "{bucket}");

        // The failed completion leaves the upload open.
        complete_upload(&h, &bucket, "missing", &upload_id, parts)
            .await
            .unwrap();
        let out = h
            .client
            .get_object()
            .bucket(&bucket)
            .key("missing")
            .send()
            .await
            .unwrap();
        let body = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), data.as_slice(), "{bucket}");
    }
}
