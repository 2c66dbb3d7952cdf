//! Operations, one file per family. `dispatch` picks the handler from the
//! operation and the bucket's policy.

mod conditions;
mod copy;
mod forward;
mod listings;
mod located;
mod multipart;
mod objects;
mod read;
mod sealed;

pub(crate) use conditions::{settle_relayed_read, strip_if_range};
pub(crate) use forward::{preflight, upstream_failure};

use super::body::ProxyBody;
use super::request::Operation;
use super::Context;
use crate::auth::Authenticated;
use crate::policy::BucketPolicy;
use crate::proxy::body::RequestBody;
use crate::s3::{ErrorCode, S3Error};
use http::Response;

pub(crate) async fn dispatch(
    ctx: &Context<'_>,
    policy: &BucketPolicy,
    auth: Authenticated,
    body: RequestBody,
) -> Result<Response<ProxyBody>, S3Error> {
    let operation = ctx.s3.operation;
    // An aws-chunked body declares its length in
    // `x-amz-decoded-content-length`. Any other `Transfer-Encoding` body has
    // no length, which S3 rejects for every operation.
    let headers = &ctx.parts.headers;
    if headers.contains_key(http::header::TRANSFER_ENCODING)
        && !headers.contains_key("x-amz-decoded-content-length")
    {
        return Err(unknown_length(headers));
    }
    match operation {
        Operation::PostObject => {
            return Err(S3Error::new(
                ErrorCode::NotImplemented,
                "POST requests other than DeleteObjects (?delete) and the multipart ones (?uploads, ?uploadId=) are not supported by s3seal, including POST uploads from HTML forms; use PutObject to upload",
            ))
        }
        Operation::CopyObject => return copy::copy_object(ctx, policy, auth, body).await,
        Operation::DeleteObjects => {
            let sealed_bucket = matches!(policy, BucketPolicy::Encrypt { .. });
            return forward::delete_objects(ctx, auth, body, sealed_bucket).await;
        }
        _ => {}
    }

    let BucketPolicy::Encrypt { key_name, .. } = policy else {
        if operation == Operation::UploadPartCopy {
            return copy::upload_part_copy_to_plain(ctx, auth, body).await;
        }
        if operation == Operation::CompleteMultipartUpload {
            return multipart::complete_plain(ctx, auth, body).await;
        }
        return forward::forward(ctx, auth, body, false).await;
    };
    match operation {
        Operation::PutObject => objects::put_object(ctx, key_name, auth, body).await,
        Operation::GetObject => objects::get_object(ctx, auth).await,
        Operation::HeadObject => objects::head_object(ctx, auth).await,
        Operation::ListObjects | Operation::ListObjectsV2 | Operation::ListObjectVersions => {
            listings::list_objects(ctx, auth).await
        }
        Operation::CreateMultipartUpload => multipart::create(ctx, key_name, auth, body).await,
        Operation::UploadPart => multipart::upload_part(ctx, auth, body).await,
        Operation::UploadPartCopy => copy::upload_part_copy(ctx, auth).await,
        Operation::CompleteMultipartUpload => multipart::complete(ctx, auth, body).await,
        Operation::AbortMultipartUpload => multipart::abort(ctx, auth, body).await,
        Operation::ListParts => multipart::list_parts(ctx, auth).await,
        Operation::SelectObjectContent => Err(S3Error::new(
            ErrorCode::NotImplemented,
            "SelectObjectContent cannot run on an encrypting bucket: the upstream holds only ciphertext",
        )),
        Operation::GetObjectTorrent => Err(S3Error::new(
            ErrorCode::NotImplemented,
            "GetObjectTorrent is not supported on an encrypting bucket: the torrent would describe the ciphertext",
        )),
        Operation::GetObjectAttributes => Err(S3Error::new(
            ErrorCode::NotImplemented,
            "GetObjectAttributes is not supported on an encrypting bucket: the upstream reports ciphertext sizes and checksums",
        )),
        Operation::ListBuckets
        | Operation::CreateBucket
        | Operation::DeleteBucket
        | Operation::HeadBucket
        | Operation::DeleteObject
        | Operation::ListMultipartUploads
        | Operation::Forward => forward::forward(ctx, auth, body, true).await,
        Operation::PostObject
        | Operation::CopyObject
        | Operation::DeleteObjects
        | Operation::OptionsObject => Err(S3Error::new(ErrorCode::InternalError, "operation routed twice")),
    }
}

/// Returns the error for a request body without a declared length: S3
/// rejects `Transfer-Encoding` (a body of unknown length) with 501
/// NotImplemented naming the header, and a body that declares no length
/// otherwise with 411 MissingContentLength.
pub(crate) fn unknown_length(headers: &http::HeaderMap) -> S3Error {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return S3Error::new(
            ErrorCode::NotImplemented,
            "A header you provided implies functionality that is not implemented",
        )
        .with_detail("Header", "Transfer-Encoding");
    }
    S3Error::new(
        ErrorCode::MissingContentLength,
        "You must provide the Content-Length HTTP header.",
    )
}

/// S3's limit on the body of a PutObject or an UploadPart.
const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Returns the plaintext length of a PutObject or UploadPart body. A body
/// without a declared length fails with the error of [`unknown_length`], and one
/// over 5 GiB with EntityTooLarge before any of it is read, as on S3.
fn upload_len(auth: &Authenticated, parts: &http::request::Parts) -> Result<u64, S3Error> {
    let len = auth
        .plaintext_len(parts)?
        .ok_or_else(|| unknown_length(&parts.headers))?;
    if len > MAX_UPLOAD_BYTES {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size of 5 GiB",
        ));
    }
    Ok(len)
}
