//! The stream sessions' way into the engine: one bounded queue of report chunks drained by one
//! task into large engine batches.
//!
//! Each connection used to call the engine itself, so two runtime workers parsing different
//! connections took turns blocking on the engine's lock, and every read became its own small
//! batch. Now a session hands its chunk to the queue (waiting while it is full, which slows
//! that client's reads: backpressure, never loss) and goes back to parsing; the drain task
//! folds whatever has gathered as one batch.

use std::sync::Arc;

use rampart_engine::ReportSink;
use rampart_model::Report;
use tokio::sync::mpsc;

/// Report chunks (one per read of one connection) waiting for the engine.
pub const INGEST_QUEUE_CHUNKS: usize = 1024;

/// Most reports folded into one engine batch.
pub const INGEST_BATCH_REPORTS: usize = 8192;

/// The sending side of the queue; the drain task starts with the first chunk.
pub(crate) struct IngestQueue {
    tx: std::sync::OnceLock<mpsc::Sender<Vec<Report>>>,
    sink: Arc<dyn ReportSink>,
}

impl IngestQueue {
    /// A queue into `sink`.
    pub(crate) fn new(sink: Arc<dyn ReportSink>) -> Self {
        IngestQueue {
            tx: std::sync::OnceLock::new(),
            sink,
        }
    }

    /// Queues `reports`, waiting while the queue is full. Call from within the runtime.
    pub(crate) async fn send(&self, reports: Vec<Report>) {
        if reports.is_empty() {
            return;
        }
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(INGEST_QUEUE_CHUNKS);
            tokio::spawn(drain(rx, self.sink.clone()));
            tx
        });
        if tx.send(reports).await.is_err() {
            tracing::error!("CoT reports not stored: the ingest task has stopped");
        }
    }
}

/// Folds queued chunks into engine batches until every sender is gone.
async fn drain(mut rx: mpsc::Receiver<Vec<Report>>, sink: Arc<dyn ReportSink>) {
    while let Some(mut batch) = rx.recv().await {
        while batch.len() < INGEST_BATCH_REPORTS {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        if let Err(e) = sink.submit_unacked(batch) {
            tracing::error!(error = %e, "CoT reports not stored");
        }
    }
}
