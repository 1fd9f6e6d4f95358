//! The job's spool as the upload step's [`AssetContent`].
//!
//! The spool stores each content once under its digest and knows nothing
//! of Cloudflare; this adapter, on Cloudflare's side, turns a stored file
//! into the [`AssetBody`] the upload step streams from.

use super::asset_body::{AssetBody, AssetContent};
use crate::manifest::ContentDigest;
use crate::spool::Spool;

/// Each content Cloudflare asks for is read from its file in the spool.
#[async_trait::async_trait]
impl AssetContent for Spool {
    async fn locate(&self, content: &ContentDigest) -> std::io::Result<AssetBody> {
        let file = self.file(content).await?;
        Ok(AssetBody::File {
            path: file.path,
            len: file.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn serves_spooled_content_to_the_upload_step() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::create(root.path()).unwrap();
        let mut writer = spool.writer().unwrap();
        writer.write(b"asset").await.unwrap();
        let digest = writer.finish().await.unwrap();

        let content: &dyn AssetContent = &spool;
        let body = content.locate(&digest).await.unwrap();
        assert_eq!(body.len(), 5);
        let encoded: Vec<Bytes> = futures::TryStreamExt::try_collect(body.base64_stream())
            .await
            .unwrap();
        assert_eq!(encoded.concat(), b"YXNzZXQ=");
        let missing = ContentDigest::of(b"not stored");
        assert_eq!(
            content.locate(&missing).await.unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
