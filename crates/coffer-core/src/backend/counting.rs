//! A thin `ObjectStore` wrapper that counts requests by kind (PUT, GET, HEAD,
//! LIST, DELETE) and bytes moved, so every command can say what it cost on
//! a metered object store. Used by the CLI's statistics and by tests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// Request and byte counters, shared by every clone of a backend.
#[derive(Debug, Default)]
pub struct RequestStats {
    puts: AtomicU64,
    gets: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A point-in-time copy of [`RequestStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Object writes (PUT, and copies).
    pub put: u64,
    /// Object reads, whole or ranged.
    pub get: u64,
    /// Metadata reads.
    pub head: u64,
    /// Listing calls.
    pub list: u64,
    /// Deletions.
    pub delete: u64,
    /// Payload bytes sent.
    pub bytes_up: u64,
    /// Payload bytes received.
    pub bytes_down: u64,
}

impl RequestCounts {
    /// All requests of every kind.
    pub fn total(&self) -> u64 {
        self.put + self.get + self.head + self.list + self.delete
    }
}

impl RequestStats {
    /// Current values.
    pub fn snapshot(&self) -> RequestCounts {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestCounts {
            put: r(&self.puts),
            get: r(&self.gets),
            head: r(&self.heads),
            list: r(&self.lists),
            delete: r(&self.deletes),
            bytes_up: r(&self.bytes_up),
            bytes_down: r(&self.bytes_down),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counts what passes through to `inner`. LIST counts one per listing call
/// (a paginated listing of more than 1000 objects makes more HTTP requests).
/// `get_ranges` keeps the trait's default, which issues (and so counts) one
/// ranged GET per coalesced range.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    stats: Arc<RequestStats>,
}

impl CountingStore {
    /// Wraps a store; `stats` receives the counts.
    pub fn new(inner: Arc<dyn ObjectStore>, stats: Arc<RequestStats>) -> Self {
        CountingStore { inner, stats }
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        RequestStats::add(&self.stats.puts, 1);
        RequestStats::add(&self.stats.bytes_up, payload.content_length() as u64);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // Starting an upload is a request of its own (billed like a PUT),
        // and so is every part and the completion.
        RequestStats::add(&self.stats.puts, 1);
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountingUpload {
            inner,
            stats: self.stats.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        RequestStats::add(
            if head {
                &self.stats.heads
            } else {
                &self.stats.gets
            },
            1,
        );
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            RequestStats::add(
                &self.stats.bytes_down,
                result.range.end - result.range.start,
            );
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let stats = self.stats.clone();
        let counted = locations
            .inspect(move |p| {
                if p.is_ok() {
                    RequestStats::add(&stats.deletes, 1);
                }
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        RequestStats::add(&self.stats.lists, 1);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        RequestStats::add(&self.stats.lists, 1);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        RequestStats::add(&self.stats.lists, 1);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        RequestStats::add(&self.stats.puts, 1);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        RequestStats::add(&self.stats.puts, 1);
        RequestStats::add(&self.stats.deletes, 1);
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload whose parts, completion and abort are counted.
#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    stats: Arc<RequestStats>,
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        RequestStats::add(&self.stats.puts, 1);
        RequestStats::add(&self.stats.bytes_up, data.content_length() as u64);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        RequestStats::add(&self.stats.puts, 1);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        RequestStats::add(&self.stats.deletes, 1);
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn counts_each_kind_and_bytes() {
        let stats = Arc::new(RequestStats::default());
        let store = CountingStore::new(Arc::new(InMemory::new()), stats.clone());
        let p = Path::from("a/b");
        store
            .put(&p, PutPayload::from_static(b"hello"))
            .await
            .unwrap();
        store.get_range(&p, 1..3).await.unwrap();
        store.head(&p).await.unwrap();
        let _: Vec<_> = store.list(None).collect().await;
        store.delete(&p).await.unwrap();
        let c = stats.snapshot();
        assert_eq!((c.put, c.get, c.head, c.list, c.delete), (1, 1, 1, 1, 1));
        assert_eq!((c.bytes_up, c.bytes_down), (5, 2));
        assert_eq!(c.total(), 5);
    }
}
