//! The relayed result of a passthrough CompleteMultipartUpload, with its
//! `Location` naming the object at s3seal.
//!
//! S3 sends the 200 status of a completion at once and then whitespace
//! while it assembles the object, so that clients do not time out, and
//! the result document last. [`LocatedResult`] passes that leading
//! whitespace on as it arrives and holds back only the document, which it
//! rewrites at the end of the body.

use crate::s3::listing;
use crate::upstream::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A response body that sets the `Location` of a
/// `CompleteMultipartUploadResult` document. Any other document, such as
/// an `<Error>` sent with status 200, passes unchanged.
pub(crate) struct LocatedResult<B> {
    inner: B,
    location: String,
    /// Maximum size of the document.
    limit: usize,
    /// The document from its first byte that is not whitespace, or `None`
    /// while only whitespace has arrived.
    document: Option<Vec<u8>>,
    done: bool,
}

impl<B> LocatedResult<B> {
    pub(crate) fn new(inner: B, location: String, limit: usize) -> Self {
        Self {
            inner,
            location,
            limit,
            document: None,
            done: false,
        }
    }

    /// Returns the held document, with `Location` set when it is a
    /// completion result.
    fn finish(&mut self) -> Option<Bytes> {
        let document = self.document.take()?;
        if listing::root_name(&document).as_deref() != Some("CompleteMultipartUploadResult") {
            return Some(document.into());
        }
        // A result that does not parse goes on as the upstream sent it.
        let located =
            listing::set_root_child(&document, "Location", &self.location).unwrap_or(document);
        Some(located.into())
    }
}

impl<B> Body for LocatedResult<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    this.done = true;
                    return Poll::Ready(this.finish().map(|document| Ok(Frame::data(document))));
                }
            };
            // Trailers of a completion result carry nothing s3seal rewrites.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            match &mut this.document {
                Some(document) => {
                    if document.len() + data.len() > this.limit {
                        return Poll::Ready(Some(Err(format!(
                            "the upstream CompleteMultipartUpload result is larger than {} \
                             bytes, the limit that server.max_xml_body_bytes sets",
                            this.limit
                        )
                        .into())));
                    }
                    document.extend_from_slice(&data);
                }
                None => {
                    let spaces = data
                        .iter()
                        .take_while(|byte| byte.is_ascii_whitespace())
                        .count();
                    if spaces < data.len() {
                        this.document = Some(data[spaces..].to_vec());
                    }
                    if spaces > 0 {
                        return Poll::Ready(Some(Ok(Frame::data(data.slice(..spaces)))));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    type Frames = std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>;

    fn chunks(parts: &[&'static str]) -> StreamBody<futures_util::stream::Iter<Frames>> {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|part| Ok(Frame::data(Bytes::from_static(part.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    async fn frames_of<B>(mut body: B) -> Vec<Bytes>
    where
        B: Body<Data = Bytes, Error = BoxError> + Unpin,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                out.push(data);
            }
        }
        out
    }

    #[tokio::test]
    async fn whitespace_passes_before_the_document() {
        let body = chunks(&[
            "\n",
            " \n",
            "  <CompleteMultipartUploadResult><Location>http://up/b/k</Location>",
            "<Key>k</Key></CompleteMultipartUploadResult>",
        ]);
        let located = LocatedResult::new(body, "http://proxy/b/k".into(), 1024);

        let frames = frames_of(located).await;

        assert_eq!(frames[0], "\n");
        assert_eq!(frames[1], " \n");
        assert_eq!(frames[2], "  ");
        assert_eq!(
            frames[3],
            "<CompleteMultipartUploadResult><Location>http://proxy/b/k</Location><Key>k</Key></CompleteMultipartUploadResult>"
        );
        assert_eq!(frames.len(), 4);
    }

    #[tokio::test]
    async fn error_document_passes_unchanged() {
        let error = "<Error><Code>InternalError</Code><Location>x</Location></Error>";
        let located = LocatedResult::new(chunks(&[" ", error]), "http://proxy/b/k".into(), 1024);

        let frames = frames_of(located).await;

        assert_eq!(
            frames,
            vec![
                Bytes::from_static(b" "),
                Bytes::from_static(error.as_bytes())
            ]
        );
    }

    #[tokio::test]
    async fn oversized_document_fails() {
        let mut located = LocatedResult::new(chunks(&["<A>", "0123456789"]), String::new(), 8);

        let mut failed = false;
        while let Some(frame) = located.frame().await {
            failed |= frame.is_err();
        }

        assert!(failed, "a document over the limit was passed on");
    }
}
