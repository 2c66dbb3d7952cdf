//! The embedded local S3 store (s3s-fs) that the default configuration uses
//! as its upstream. It listens on an ephemeral loopback port, checks SigV4
//! with credentials generated on first start, and keeps objects under
//! `embedded.data_dir`.

use crate::config::EmbeddedConfig;
use crate::keys::SecretString;
use crate::linger::Lingering;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::RngCore;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;

/// A running embedded store.
#[derive(Debug)]
pub struct EmbeddedStore {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("failed to prepare the embedded store at {path}: {message}")]
    Setup { path: String, message: String },
    #[error("failed to bind the embedded store listener on 127.0.0.1:{port} ([embedded] port): {source}")]
    Bind { port: u16, source: std::io::Error },
}

/// Starts the embedded store on 127.0.0.1 at the configured port (0 picks
/// a free one) and returns its endpoint.
pub async fn start(config: &EmbeddedConfig) -> Result<EmbeddedStore, EmbeddedError> {
    let setup_err = |path: &Path, e: &dyn std::fmt::Display| EmbeddedError::Setup {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| setup_err(&config.data_dir, &e))?;
    let (access_key_id, secret) = load_or_create_credentials(&config.credentials_file)?;

    let fs = s3s_fs::FileSystem::new(&config.data_dir)
        .map_err(|e| setup_err(&config.data_dir, &format!("{e:?}")))?;
    let service = {
        let mut builder = s3s::service::S3ServiceBuilder::new(Store {
            fs,
            data_dir: config.data_dir.clone(),
            key_locks: (0..KEY_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        });
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            access_key_id.clone(),
            secret.expose(),
        ));
        builder.build()
    };

    let bind_error = |source| EmbeddedError::Bind {
        port: config.port,
        source,
    };
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port)))
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let task = tokio::spawn(async move {
        let mut http = ConnBuilder::new(TokioExecutor::new());
        http.http1()
            .max_headers(crate::s3::headers::MAX_HEADER_FIELDS);
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "embedded store failed to accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(TokioIo::new(Lingering::always(socket)), service.clone())
                .into_owned();
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    tracing::debug!(%error, "embedded store connection ended with an error");
                }
            });
        }
    });
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "embedded S3 store started");
    Ok(EmbeddedStore {
        endpoint: format!("http://{addr}"),
        access_key_id,
        secret_access_key: secret,
        task,
    })
}

/// s3s-fs 0.14 with the differences from S3 that break clients mended.
/// Listings get their ETags, from which s3seal learns whether an object is
/// multipart and its part count, and their storage class. `encoding-type=url`
/// is applied to the listed keys, and an empty `delimiter` means none. HEAD
/// or GET of a key that is a directory in the store returns `NoSuchKey`
/// instead of 500, and of a key in a missing bucket `NoSuchBucket` instead
/// of `NoSuchKey`. DeleteBucket of a bucket with objects in it fails with
/// `BucketNotEmpty` instead of deleting them.
///
/// s3s-fs writes an object's data and its metadata in two steps. Two writes
/// of one key at once could leave the data of one with the metadata of the
/// other, and a read between the steps could see such a pair. Writes and
/// the start of reads therefore take a lock chosen by the key's hash.
struct Store {
    fs: s3s_fs::FileSystem,
    data_dir: std::path::PathBuf,
    key_locks: Vec<tokio::sync::Mutex<()>>,
}

/// The number of locks that object keys share.
const KEY_LOCKS: usize = 64;

#[async_trait::async_trait]
impl S3 for Store {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        // Every bucket of the store belongs to its one user. For a bucket
        // that the caller owns, S3 returns 200 in us-east-1 and 409
        // `BucketAlreadyOwnedByYou` in other regions, where s3s-fs 0.14
        // returns 409 `BucketAlreadyExists`. The store returns 200, as in
        // us-east-1, because its GetBucketLocation reports that region (an
        // empty `LocationConstraint`) whatever `server.region` is.
        if self.data_dir.join(&req.input.bucket).is_dir() {
            return Ok(S3Response::new(CreateBucketOutput::default()));
        }
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let _key = self.lock_key(&req.input.bucket, &req.input.key).await;
        self.check_copy_target(&req).await?;
        self.fs.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        if self
            .holds_objects(&req.input.bucket, &req.credentials)
            .await
        {
            return Err(s3s::s3_error!(BucketNotEmpty));
        }
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let _key = self.lock_key(&req.input.bucket, &req.input.key).await;
        let input = &req.input;
        // A key that names a folder of other keys is no object. s3s-fs 0.14
        // fails to delete the folder with a 500, where S3 deletes a
        // missing key without error. A key ending in `/` goes to s3s-fs,
        // which removes the folder when it is empty.
        if !input.key.ends_with('/') && self.is_directory(&input.bucket, &input.key) {
            if req.headers.contains_key(http::header::IF_MATCH) || input.if_match.is_some() {
                return Err(s3s::s3_error!(NoSuchKey));
            }
            return Ok(S3Response::new(DeleteObjectOutput::default()));
        }
        self.check_if_match(
            &input.bucket,
            &input.key,
            if_match_condition(&req.headers, input.if_match.as_ref()),
            &req.credentials,
        )
        .await?;
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        mut req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        // s3s-fs 0.14 reports every key of a missing bucket as deleted.
        if !self.data_dir.join(&req.input.bucket).is_dir() {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        // Objects whose `ETag` condition fails are reported as errors and
        // left out of the request. s3s-fs deletes without locks, so a
        // concurrent overwrite can still slip between check and delete.
        let mut failed = Vec::new();
        let mut to_delete = Vec::new();
        // Keys that name a folder are reported deleted, as missing keys
        // are, because s3s-fs fails the whole request on them.
        let mut folders = Vec::new();
        for object in std::mem::take(&mut req.input.delete.objects) {
            if !object.key.ends_with('/') && self.is_directory(&req.input.bucket, &object.key) {
                if object.e_tag.is_some() {
                    failed.push(Error {
                        code: Some(s3s::S3ErrorCode::NoSuchKey.as_str().to_string()),
                        key: Some(object.key),
                        message: Some(NO_SUCH_KEY_MESSAGE.into()),
                        version_id: object.version_id,
                    });
                } else {
                    folders.push(DeletedObject {
                        key: Some(object.key),
                        version_id: object.version_id,
                        ..Default::default()
                    });
                }
                continue;
            }
            let condition = object.e_tag.clone().map(ETagCondition::ETag);
            let checked = self
                .check_if_match(
                    &req.input.bucket,
                    &object.key,
                    condition.as_ref().map(IfMatch::Condition),
                    &req.credentials,
                )
                .await;
            match checked {
                Ok(()) => to_delete.push(object),
                Err(error) => failed.push(Error {
                    message: Some(delete_error_message(&error).into()),
                    code: Some(error.code().as_str().to_string()),
                    key: Some(object.key),
                    version_id: object.version_id,
                }),
            }
        }
        if to_delete.is_empty() {
            return Ok(S3Response::new(DeleteObjectsOutput {
                deleted: (!folders.is_empty()).then_some(folders),
                errors: (!failed.is_empty()).then_some(failed),
                ..Default::default()
            }));
        }
        req.input.delete.objects = to_delete;
        let mut response = self.fs.delete_objects(req).await?;
        if !folders.is_empty() {
            response
                .output
                .deleted
                .get_or_insert_with(Vec::new)
                .extend(folders);
        }
        if !failed.is_empty() {
            response
                .output
                .errors
                .get_or_insert_with(Vec::new)
                .extend(failed);
        }
        Ok(response)
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        mut req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if !self.data_dir.join(&req.input.bucket).is_dir() {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let is_directory = self.is_directory(&req.input.bucket, &req.input.key);
        if is_directory {
            return Err(s3s::s3_error!(NoSuchKey));
        }
        // s3s-fs opens the file and reads the metadata before it returns, and
        // the body streams from the open file after the lock is released.
        let _key = self.lock_key(&req.input.bucket, &req.input.key).await;
        let input = &req.input;
        self.check_if_match(
            &input.bucket,
            &input.key,
            if_match_condition(&req.headers, input.if_match.as_ref()),
            &req.credentials,
        )
        .await?;
        // s3s-fs seeks back from the end by a suffix range's length, which
        // fails when the suffix is longer than the object. S3 then returns
        // the whole object as the range.
        // On an empty object it subtracts past zero and panics, where S3
        // returns the whole, empty object.
        if let Some(Range::Suffix { length }) = req.input.range {
            let size = self
                .object_path(&req.input.bucket, &req.input.key)
                .and_then(|path| std::fs::metadata(path).ok())
                .map_or(0, |meta| meta.len());
            if size == 0 && length > 0 {
                req.input.range = None;
            } else if size > 0 && length > size {
                req.input.range = Some(Range::Int {
                    first: 0,
                    last: None,
                });
            }
        }
        self.fs.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        if !self.data_dir.join(&req.input.bucket).is_dir() {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        if self.is_directory(&req.input.bucket, &req.input.key) {
            return Err(s3s::s3_error!(NoSuchKey));
        }
        let _key = self.lock_key(&req.input.bucket, &req.input.key).await;
        let input = &req.input;
        self.check_if_match(
            &input.bucket,
            &input.key,
            if_match_condition(&req.headers, input.if_match.as_ref()),
            &req.credentials,
        )
        .await?;
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let _key = self.lock_key(&req.input.bucket, &req.input.key).await;
        // S3 does not store the `aws-chunked` framing as the object's
        // encoding, but s3s-fs 0.14 keeps the header as it arrives.
        req.input.content_encoding = without_aws_chunked(req.input.content_encoding.take());
        if req.headers.contains_key(http::header::IF_MATCH) || req.input.if_match.is_some() {
            self.check_object_exists(&req.input.bucket, &req.input.key)?;
        }
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.fs.create_multipart_upload(req).await?;
        if let Some(upload_id) = &response.output.upload_id {
            self.record_upload_owner(upload_id, &bucket, &key).await?;
        }
        Ok(response)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = &req.input;
        self.check_upload_owner(&input.upload_id, &input.bucket, &input.key)
            .await?;
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = &req.input;
        self.check_upload_owner(&input.upload_id, &input.bucket, &input.key)
            .await?;
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = &req.input;
        self.check_upload_owner(&input.upload_id, &input.bucket, &input.key)
            .await?;
        // s3s-fs lists parts in directory order, but S3 lists them by number.
        let mut response = self.fs.list_parts(req).await?;
        if let Some(parts) = response.output.parts.as_mut() {
            parts.sort_by_key(|part| part.part_number);
        }
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _key = self.lock_key(&req.input.bucket, &req.input.key).await;
        let upload_id = req.input.upload_id.clone();
        self.check_upload_owner(&upload_id, &req.input.bucket, &req.input.key)
            .await?;
        if req.headers.contains_key(http::header::IF_MATCH) || req.input.if_match.is_some() {
            self.check_object_exists(&req.input.bucket, &req.input.key)?;
        }
        let response = self.fs.complete_multipart_upload(req).await?;
        self.forget_upload_owner(&upload_id).await;
        Ok(response)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        self.check_upload_owner(&upload_id, &req.input.bucket, &req.input.key)
            .await?;
        let response = self.fs.abort_multipart_upload(req).await?;
        self.forget_upload_owner(&upload_id).await;
        Ok(response)
    }

    async fn list_objects(
        &self,
        mut req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        if req.input.delimiter.as_deref() == Some("") {
            req.input.delimiter = None;
        }
        check_delimiter(req.input.delimiter.as_deref())?;
        let credentials = req.credentials.clone();
        let bucket = req.input.bucket.clone();
        let mut response = self.fs.list_objects(req).await?;
        let output = &mut response.output;
        let listing = Listing {
            contents: &mut output.contents,
            common_prefixes: &mut output.common_prefixes,
            encoding: output.encoding_type.as_ref(),
        };
        let echoed = [
            &mut output.prefix,
            &mut output.delimiter,
            &mut output.marker,
            &mut output.next_marker,
        ];
        self.mend_listing(&bucket, &credentials, listing, echoed)
            .await;
        Ok(response)
    }

    async fn list_objects_v2(
        &self,
        mut req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        if req.input.delimiter.as_deref() == Some("") {
            req.input.delimiter = None;
        }
        check_delimiter(req.input.delimiter.as_deref())?;
        let client_token = req.input.continuation_token.clone();
        if let Some(token) = client_token.as_deref() {
            req.input.continuation_token = Some(decode_continuation_token(token)?);
        }
        let credentials = req.credentials.clone();
        let bucket = req.input.bucket.clone();
        let mut response = self.fs.list_objects_v2(req).await?;
        let output = &mut response.output;
        output.continuation_token = client_token;
        output.next_continuation_token = output
            .next_continuation_token
            .as_deref()
            .map(encode_continuation_token);
        let listing = Listing {
            contents: &mut output.contents,
            common_prefixes: &mut output.common_prefixes,
            encoding: output.encoding_type.as_ref(),
        };
        let echoed = [
            &mut output.prefix,
            &mut output.delimiter,
            &mut output.start_after,
        ];
        self.mend_listing(&bucket, &credentials, listing, echoed)
            .await;
        Ok(response)
    }
}

const NO_SUCH_KEY_MESSAGE: &str = "The specified key does not exist.";

/// Returns the message of a DeleteObjects entry that failed its ETag check:
/// S3's text for a failed condition, or for a missing key.
fn delete_error_message(error: &s3s::S3Error) -> &'static str {
    if *error.code() == s3s::S3ErrorCode::NoSuchKey {
        NO_SUCH_KEY_MESSAGE
    } else {
        "At least one of the pre-conditions you specified did not hold"
    }
}

/// Returns the continuation token that stands for the last key of a page.
/// s3s-fs 0.14 uses the key itself, which can hold characters that XML 1.0
/// cannot carry (`encoding-type=url` encodes keys, not tokens), so the
/// client gets the key in URL-safe base64 instead.
fn encode_continuation_token(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// Returns the key that a token from [`encode_continuation_token`] stands
/// for. A token that is not URL-safe base64 of UTF-8 text gets
/// `InvalidArgument`, as S3 returns for a token it did not issue. Other
/// tokens act as a start-after key, so one from another listing is taken.
fn decode_continuation_token(token: &str) -> S3Result<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            s3s::s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

/// Rejects a delimiter other than one ASCII character. s3s-fs 0.14 panics
/// when a delimiter outside ASCII occurs in a listed key, because it cuts
/// the key inside a character, and it cuts common prefixes of a longer
/// delimiter after its first character.
fn check_delimiter(delimiter: Option<&str>) -> S3Result<()> {
    match delimiter {
        Some(delimiter) if delimiter.len() != 1 || !delimiter.is_ascii() => Err(s3s::s3_error!(
            NotImplemented,
            "the embedded store supports only delimiters of one ASCII character"
        )),
        _ => Ok(()),
    }
}

/// The parts of a ListObjects or ListObjectsV2 output that need mending.
struct Listing<'a> {
    contents: &'a mut Option<Vec<Object>>,
    common_prefixes: &'a mut Option<Vec<CommonPrefix>>,
    encoding: Option<&'a EncodingType>,
}

/// Returns a `Content-Encoding` value without its `aws-chunked` token, or
/// `None` when nothing else is left.
fn without_aws_chunked(encoding: Option<String>) -> Option<String> {
    let encoding = encoding?;
    let rest: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(","))
}

fn is_url_encoding(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// Percent-encodes a listed value as S3 does for `encoding-type=url`.
fn url_encode(value: &mut Option<String>) {
    if let Some(text) = value.as_mut() {
        *text = crate::upstream::encode_key(text);
    }
}

/// The `If-Match` condition of a request: the header as the client sent
/// it, or the condition of one DeleteObjects entry.
#[derive(Clone, Copy)]
enum IfMatch<'a> {
    /// `*` or a comma-separated list of ETags. s3s 0.14 parses only a
    /// single ETag, so a list would never match.
    List(&'a str),
    Condition(&'a ETagCondition),
}

/// Returns the `If-Match` condition of a single-object request, from the
/// raw header when it is readable text, else from s3s's parsed value.
fn if_match_condition<'a>(
    headers: &'a http::HeaderMap,
    parsed: Option<&'a ETagCondition>,
) -> Option<IfMatch<'a>> {
    match headers
        .get(http::header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
    {
        Some(list) => Some(IfMatch::List(list)),
        None => parsed.map(IfMatch::Condition),
    }
}

impl Store {
    /// Fills in ETags and storage classes and, for `encoding-type=url`,
    /// encodes the listed keys and prefixes and the `echoed` request values.
    async fn mend_listing<const N: usize>(
        &self,
        bucket: &str,
        credentials: &Option<s3s::auth::Credentials>,
        listing: Listing<'_>,
        echoed: [&mut Option<String>; N],
    ) {
        if let Some(contents) = listing.contents.as_mut() {
            self.fill_entries(bucket, contents, credentials).await;
        }
        if !is_url_encoding(listing.encoding) {
            return;
        }
        for object in listing.contents.iter_mut().flatten() {
            url_encode(&mut object.key);
        }
        for prefix in listing.common_prefixes.iter_mut().flatten() {
            url_encode(&mut prefix.prefix);
        }
        for value in echoed {
            url_encode(value);
        }
    }

    /// Fails with PreconditionFailed when `if_match` names an ETag other
    /// than the stored object's, as S3 does for GET, HEAD and DELETE and
    /// s3s-fs 0.14 does not. A missing object fails with its own error.
    async fn check_if_match(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<IfMatch<'_>>,
        credentials: &Option<s3s::auth::Credentials>,
    ) -> S3Result<()> {
        let Some(condition) = if_match else {
            return Ok(());
        };
        let stored = self.stored_etag(bucket, key, credentials).await?;
        let matches = match (condition, stored.as_deref()) {
            (IfMatch::List(list), Some(stored)) => {
                crate::s3::conditional::etag_list_contains(list, stored)
            }
            (IfMatch::List(list), None) => list.trim() == "*",
            (IfMatch::Condition(ETagCondition::Any), _) => true,
            // DeleteObjects carries `*` as an ETag, not as a condition.
            (IfMatch::Condition(ETagCondition::ETag(expected)), _) if expected.value() == "*" => {
                true
            }
            (IfMatch::Condition(ETagCondition::ETag(expected)), Some(stored)) => {
                expected.value() == stored
            }
            (IfMatch::Condition(ETagCondition::ETag(_)), None) => false,
        };
        if matches {
            Ok(())
        } else {
            Err(s3s::s3_error!(PreconditionFailed))
        }
    }

    /// Fails with `NoSuchBucket` when `bucket` does not exist and with
    /// `NoSuchKey` when `key` names no object in it. S3 returns 404
    /// `NoSuchKey` for a write whose `If-Match` names a missing object,
    /// where s3s-fs 0.14 returns 412 `PreconditionFailed`.
    fn check_object_exists(&self, bucket: &str, key: &str) -> S3Result<()> {
        if !self.data_dir.join(bucket).is_dir() {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let is_object = self
            .object_path(bucket, key)
            .is_some_and(|path| path.is_file());
        if !is_object {
            return Err(s3s::s3_error!(NoSuchKey));
        }
        Ok(())
    }

    /// Checks a copy's `If-Match` and `If-None-Match` against the object it
    /// would replace, as S3 does for conditional writes. s3s 0.14 has no
    /// field for either header in `CopyObjectInput`, so s3s-fs ignores
    /// them. `If-None-Match: *` fails on an existing object, and so does a
    /// list that contains its ETag.
    async fn check_copy_target(&self, req: &S3Request<CopyObjectInput>) -> S3Result<()> {
        let input = &req.input;
        let header = |name| {
            req.headers
                .get(name)
                .map(|value| value.to_str().unwrap_or_default())
        };
        // s3s-fs fails a copy into a missing bucket itself.
        if !self.data_dir.join(&input.bucket).is_dir() {
            return Ok(());
        }
        if let Some(list) = header(http::header::IF_NONE_MATCH) {
            if self.check_object_exists(&input.bucket, &input.key).is_ok() {
                let etag = self
                    .stored_etag(&input.bucket, &input.key, &req.credentials)
                    .await?;
                let matches = list.trim() == "*"
                    || etag.is_some_and(|etag| {
                        crate::s3::conditional::etag_list_contains(list, &etag)
                    });
                if matches {
                    return Err(s3s::s3_error!(PreconditionFailed));
                }
            }
        }
        if let Some(list) = header(http::header::IF_MATCH) {
            self.check_object_exists(&input.bucket, &input.key)?;
            self.check_if_match(
                &input.bucket,
                &input.key,
                Some(IfMatch::List(list)),
                &req.credentials,
            )
            .await?;
        }
        Ok(())
    }

    /// Returns the ETag that s3s-fs reports for a stored object.
    async fn stored_etag(
        &self,
        bucket: &str,
        key: &str,
        credentials: &Option<s3s::auth::Credentials>,
    ) -> S3Result<Option<String>> {
        let input = HeadObjectInput::builder()
            .bucket(bucket.to_string())
            .key(key.to_string())
            .build()
            .map_err(s3s::S3Error::internal_error)?;
        let head = self
            .fs
            .head_object(internal_request(input, http::Method::HEAD, credentials))
            .await?;
        Ok(head.output.e_tag.map(|etag| etag.value().to_string()))
    }

    /// Returns the file that names the bucket and key of an upload, or
    /// `None` for an id that s3s-fs cannot have issued (it issues UUIDs).
    fn upload_owner_path(&self, upload_id: &str) -> Option<std::path::PathBuf> {
        let is_uuid = upload_id.len() == 36
            && upload_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-');
        is_uuid.then(|| {
            self.data_dir
                .join(format!(".s3seal-upload-{upload_id}.json"))
        })
    }

    /// Records which bucket and key an upload belongs to. s3s-fs 0.14 ties
    /// an upload id only to the access key that created it, so without
    /// the record an id would act on an upload of any key or bucket.
    async fn record_upload_owner(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<()> {
        let path = self.upload_owner_path(upload_id).ok_or_else(|| {
            s3s::s3_error!(
                InternalError,
                "s3s-fs issued an upload id that is not a UUID"
            )
        })?;
        let owner = serde_json::json!({ "bucket": bucket, "key": key }).to_string();
        tokio::fs::write(&path, owner).await.map_err(|error| {
            s3s::s3_error!(
                InternalError,
                "failed to record the upload's bucket and key: {error}"
            )
        })
    }

    /// Fails with `NoSuchUpload` unless the upload was created for
    /// `bucket` and `key`, as S3 does.
    async fn check_upload_owner(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<()> {
        let no_upload = || s3s::s3_error!(NoSuchUpload);
        let path = self.upload_owner_path(upload_id).ok_or_else(no_upload)?;
        let text = tokio::fs::read(&path).await.map_err(|_| no_upload())?;
        let owner: serde_json::Value = serde_json::from_slice(&text).map_err(|_| no_upload())?;
        if owner["bucket"] != bucket || owner["key"] != key {
            return Err(no_upload());
        }
        Ok(())
    }

    /// Removes the record of a completed or aborted upload.
    async fn forget_upload_owner(&self, upload_id: &str) {
        if let Some(path) = self.upload_owner_path(upload_id) {
            // A record left behind names an upload that no longer exists,
            // which s3s-fs rejects by itself.
            let _ = tokio::fs::remove_file(path).await;
        }
    }

    /// Takes the lock of `bucket`/`key`.
    async fn lock_key(&self, bucket: &str, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut hasher);
        // The remainder is below KEY_LOCKS, so it fits in usize.
        let index = (hasher.finish() % KEY_LOCKS as u64) as usize;
        self.key_locks[index].lock().await
    }

    /// Tells whether a listing of `bucket` shows at least one object. A
    /// bucket that cannot be listed counts as empty, and DeleteBucket then
    /// reports its own error.
    async fn holds_objects(
        &self,
        bucket: &str,
        credentials: &Option<s3s::auth::Credentials>,
    ) -> bool {
        let Ok(input) = ListObjectsV2Input::builder()
            .bucket(bucket.to_string())
            .max_keys(Some(1))
            .build()
        else {
            return false;
        };
        let request = internal_request(input, http::Method::GET, credentials);
        match self.fs.list_objects_v2(request).await {
            Ok(response) => response
                .output
                .contents
                .is_some_and(|contents| !contents.is_empty()),
            Err(_) => false,
        }
    }

    /// Returns whether `bucket`/`key` names a directory of the store.
    fn is_directory(&self, bucket: &str, key: &str) -> bool {
        self.object_path(bucket, key.trim_end_matches('/'))
            .is_some_and(|path| path.is_dir())
    }

    /// Returns the file of `key` in `bucket`, or `None` for an empty key and
    /// for one that is no plain relative path. A key such as `/etc` would
    /// replace the whole path in `join` and name a file of the host, and
    /// s3s-fs rejects such keys itself.
    fn object_path(&self, bucket: &str, key: &str) -> Option<std::path::PathBuf> {
        let relative = Path::new(key);
        let is_plain = relative
            .components()
            .all(|part| matches!(part, std::path::Component::Normal(_)));
        (!key.is_empty() && is_plain).then(|| self.data_dir.join(bucket).join(relative))
    }

    /// Sets each entry's ETag from the object's HEAD, and its storage class.
    /// Entries whose HEAD fails keep no ETag.
    async fn fill_entries(
        &self,
        bucket: &str,
        contents: &mut [Object],
        credentials: &Option<s3s::auth::Credentials>,
    ) {
        for object in contents.iter_mut() {
            if object.storage_class.is_none() {
                object.storage_class = Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                ));
            }
            if object.e_tag.is_some() {
                continue;
            }
            let Some(key) = object.key.clone() else {
                continue;
            };
            let Ok(input) = HeadObjectInput::builder()
                .bucket(bucket.to_string())
                .key(key)
                .build()
            else {
                continue;
            };
            let request = internal_request(input, http::Method::HEAD, credentials);
            if let Ok(head) = self.fs.head_object(request).await {
                object.e_tag = head.output.e_tag;
            }
        }
    }
}

/// Builds a request that the store makes to s3s-fs on its own behalf, with
/// the credentials of the client request that needs it.
fn internal_request<T>(
    input: T,
    method: http::Method,
    credentials: &Option<s3s::auth::Credentials>,
) -> S3Request<T> {
    S3Request {
        input,
        method,
        uri: http::Uri::default(),
        headers: http::HeaderMap::new(),
        extensions: http::Extensions::new(),
        credentials: credentials.clone(),
        region: None,
        service: None,
        trailing_headers: None,
    }
}

/// Reads the store's credentials, generating and saving them (mode 0600)
/// on first start.
fn load_or_create_credentials(path: &Path) -> Result<(String, SecretString), EmbeddedError> {
    let err = |e: &dyn std::fmt::Display| EmbeddedError::Setup {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| err(&e))?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if let (Some(id), Some(secret)) = (lines.next(), lines.next()) {
            return Ok((id.to_string(), SecretString::new(secret.to_string())));
        }
        return Err(err(
            &"expected the access key id and the secret on two lines",
        ));
    }
    let mut bytes = [0u8; 30];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let id = format!("EMBEDDED{}", hex::encode_upper(&bytes[..6]));
    let secret = SecretString::new(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &bytes[6..],
    ));
    write_private_file(path, &format!("{id}\n{}\n", secret.expose())).map_err(|e| err(&e))?;
    Ok((id, secret))
}

/// Writes `text` to `path` with mode 0600, creating parent directories.
pub fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
