//! Groups decoded reports into engine batches.
//!
//! Sources push chunks of reports into a bounded channel. One task per input drains whatever
//! is queued (up to a batch limit) into a single [`ReportSink::submit`], which waits for the
//! group commit. While it waits, the next batch queues up. A single sentence per datagram
//! therefore still costs one fsync per batch, not one per sentence.

use std::sync::Arc;

use rampart_engine::ReportSink;
use rampart_model::Report;
use tokio::sync::mpsc;

/// Where sources push reports.
#[derive(Clone)]
pub struct BatcherHandle {
    tx: mpsc::Sender<Vec<Report>>,
}

impl BatcherHandle {
    /// Queues a chunk, waiting while the queue is full (backpressure for TCP sources).
    /// Returns false once the batcher has stopped.
    pub async fn send(&self, chunk: Vec<Report>) -> bool {
        chunk.is_empty() || self.tx.send(chunk).await.is_ok()
    }

    /// Queues a chunk without waiting; false when the queue is full or stopped (UDP sources
    /// drop and count then, since a datagram source cannot be slowed down).
    pub fn try_send(&self, chunk: Vec<Report>) -> bool {
        chunk.is_empty() || self.tx.try_send(chunk).is_ok()
    }
}

/// Drains queued chunks into engine batches.
pub struct Batcher {
    rx: mpsc::Receiver<Vec<Report>>,
    sink: Arc<dyn ReportSink>,
    max_batch: usize,
}

impl Batcher {
    /// A batcher with room for `queue_chunks` pending chunks and at most `max_batch` reports
    /// per engine batch.
    pub fn new(
        sink: Arc<dyn ReportSink>,
        queue_chunks: usize,
        max_batch: usize,
    ) -> (Batcher, BatcherHandle) {
        let (tx, rx) = mpsc::channel(queue_chunks.max(1));
        (
            Batcher {
                rx,
                sink,
                max_batch: max_batch.max(1),
            },
            BatcherHandle { tx },
        )
    }

    /// Runs until every handle is dropped and the queue is drained.
    pub async fn run(mut self) {
        while let Some(mut batch) = self.rx.recv().await {
            while batch.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.sink.submit(batch).await {
                tracing::error!(error = %e, "feed batch not stored");
            }
        }
    }
}
