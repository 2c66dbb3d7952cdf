//! Authorization of a classified request against the bucket rules: which
//! permission each S3 operation needs, and the extra read permission on
//! the source bucket of a copy.

use super::request::{Operation, S3Request};
use crate::policy::{Denial, Permission, Policy};
use crate::s3::{ErrorCode, S3Error};
use http::Method;

/// Returns the permission that `s3` needs on its bucket.
///
/// Bucket creation counts as write and bucket deletion as delete.
/// Multipart uploads, aborts included, count as write, and so does a copy
/// on its target bucket. Sub-resource requests (`Forward`) count by method:
/// on an object GET and HEAD are read, on a bucket they are list; PUT and
/// POST are write; DELETE is delete.
pub(crate) fn required_permission(s3: &S3Request, method: &Method) -> Permission {
    match s3.operation {
        Operation::GetObject
        | Operation::HeadObject
        | Operation::GetObjectAttributes
        | Operation::GetObjectTorrent
        | Operation::SelectObjectContent
        | Operation::OptionsObject => Permission::Read,
        Operation::ListBuckets
        | Operation::HeadBucket
        | Operation::ListObjects
        | Operation::ListObjectsV2
        | Operation::ListObjectVersions
        | Operation::ListMultipartUploads
        | Operation::ListParts => Permission::List,
        Operation::CreateBucket
        | Operation::PutObject
        | Operation::CopyObject
        | Operation::PostObject
        | Operation::CreateMultipartUpload
        | Operation::UploadPart
        | Operation::UploadPartCopy
        | Operation::CompleteMultipartUpload
        | Operation::AbortMultipartUpload => Permission::Write,
        Operation::DeleteBucket | Operation::DeleteObject | Operation::DeleteObjects => {
            Permission::Delete
        }
        Operation::Forward => match *method {
            Method::GET | Method::HEAD if s3.key.is_some() => Permission::Read,
            Method::GET | Method::HEAD => Permission::List,
            Method::DELETE => Permission::Delete,
            _ => Permission::Write,
        },
    }
}

/// Returns the bucket named by `x-amz-copy-source` of a CopyObject or
/// UploadPartCopy. A header that does not parse returns `None`, and the
/// copy operation rejects it with InvalidArgument.
pub(crate) fn copy_source_bucket(s3: &S3Request, headers: &http::HeaderMap) -> Option<String> {
    if !matches!(
        s3.operation,
        Operation::CopyObject | Operation::UploadPartCopy
    ) {
        return None;
    }
    let raw = headers.get("x-amz-copy-source")?.to_str().ok()?;
    let path = raw.split_once('?').map_or(raw, |(path, _)| path);
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, _) = path.split_once('/')?;
    (!bucket.is_empty()).then(|| bucket.to_string())
}

/// Checks that `principal` may run `s3`: the operation's permission on its
/// bucket and, for a copy, read on the source bucket.
pub(crate) fn authorize(
    policy: &Policy,
    s3: &S3Request,
    parts: &http::request::Parts,
    principal: &str,
) -> Result<(), S3Error> {
    let Some(bucket) = &s3.bucket else {
        // ListBuckets names no bucket, and every client may send it.
        return Ok(());
    };
    let permission = required_permission(s3, &parts.method);
    policy
        .authorize(bucket, principal, permission)
        .map_err(|denial| access_denied(&denial, None))?;
    if let Some(source) = copy_source_bucket(s3, &parts.headers) {
        policy
            .authorize(&source, principal, Permission::Read)
            .map_err(|denial| access_denied(&denial, Some("copy source")))?;
    }
    Ok(())
}

/// Builds the AccessDenied error. Its message leaves out the rule that
/// denied the request, which the log line names through the error's source.
fn access_denied(denial: &Denial, what: Option<&str>) -> S3Error {
    let reason = denial.client_message();
    let message = match what {
        Some(what) => format!("Access Denied: {what}: {reason}"),
        None => format!("Access Denied: {reason}"),
    };
    S3Error::new(ErrorCode::AccessDenied, message).with_source(denial.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(operation: Operation, key: Option<&str>) -> S3Request {
        S3Request {
            bucket: Some("b".into()),
            key: key.map(Into::into),
            operation,
            query: Vec::new(),
        }
    }

    #[test]
    fn operations_map_to_permissions() {
        let cases = [
            (Operation::GetObject, Method::GET, Permission::Read),
            (Operation::HeadObject, Method::HEAD, Permission::Read),
            (Operation::ListObjectsV2, Method::GET, Permission::List),
            (Operation::HeadBucket, Method::HEAD, Permission::List),
            (Operation::PutObject, Method::PUT, Permission::Write),
            (Operation::CopyObject, Method::PUT, Permission::Write),
            (Operation::CreateBucket, Method::PUT, Permission::Write),
            (
                Operation::AbortMultipartUpload,
                Method::DELETE,
                Permission::Write,
            ),
            (Operation::DeleteObject, Method::DELETE, Permission::Delete),
            (Operation::DeleteObjects, Method::POST, Permission::Delete),
            (Operation::DeleteBucket, Method::DELETE, Permission::Delete),
        ];
        for (operation, method, expected) in cases {
            let s3 = request(operation, Some("k"));
            assert_eq!(required_permission(&s3, &method), expected, "{operation:?}");
        }
    }

    #[test]
    fn sub_resources_map_by_method_and_target() {
        let object = request(Operation::Forward, Some("k"));
        let bucket = request(Operation::Forward, None);
        assert_eq!(required_permission(&object, &Method::GET), Permission::Read);
        assert_eq!(required_permission(&bucket, &Method::GET), Permission::List);
        assert_eq!(
            required_permission(&object, &Method::PUT),
            Permission::Write
        );
        assert_eq!(
            required_permission(&bucket, &Method::POST),
            Permission::Write
        );
        assert_eq!(
            required_permission(&object, &Method::DELETE),
            Permission::Delete
        );
    }

    #[test]
    fn copy_source_bucket_decoded() {
        let s3 = request(Operation::CopyObject, Some("k"));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-amz-copy-source",
            http::HeaderValue::from_static("/src%2Dbucket/a%20b?versionId=1"),
        );
        assert_eq!(
            copy_source_bucket(&s3, &headers).as_deref(),
            Some("src-bucket")
        );
        headers.insert("x-amz-copy-source", http::HeaderValue::from_static("nokey"));
        assert_eq!(copy_source_bucket(&s3, &headers), None);
        let put = request(Operation::PutObject, Some("k"));
        assert_eq!(copy_source_bucket(&put, &headers), None);
    }

    #[test]
    fn access_denied_message_without_rule_pattern() {
        let denial = Denial::NotGranted {
            bucket: "team-a".into(),
            rule_index: 2,
            pattern: "team-*".into(),
            permission: Permission::Write,
            principal: "READER".into(),
        };
        let error = access_denied(&denial, Some("copy source"));
        assert_eq!(error.code(), ErrorCode::AccessDenied);
        assert_eq!(
            error.message(),
            "Access Denied: copy source: READER is not granted write on bucket \"team-a\""
        );
        assert!(!error.to_xml("ID", None).contains("team-*"));
        assert!(
            error
                .to_string()
                .contains("bucket rule 2 (match = \"team-*\")"),
            "{error}"
        );
    }
}
