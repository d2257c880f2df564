//! The one path by which rows reach the audit log outside a larger
//! transaction: a bounded queue drained by a writer task that commits rows
//! in batches, acknowledges each caller once its row is durable, and then
//! publishes the rows to live subscribers (SSE).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use evershell_core::{AuditError, AuditEvent, AuditSink};
use evershell_store::Store;
use tokio::sync::{broadcast, mpsc, oneshot};

const QUEUE: usize = 4096;
const BATCH: usize = 256;
const FANOUT: usize = 4096;

type Ack = oneshot::Sender<Result<(), AuditError>>;

enum Item {
    Row(Box<AuditEvent>, Ack),
    /// Acknowledged once every row queued before it is committed.
    Flush(oneshot::Sender<()>),
}

pub struct AuditWriter {
    queue: mpsc::Sender<Item>,
    live: broadcast::Sender<Arc<AuditEvent>>,
}

impl AuditWriter {
    pub fn start(store: Store) -> Arc<AuditWriter> {
        let (queue, rx) = mpsc::channel(QUEUE);
        let (live, _) = broadcast::channel(FANOUT);
        tokio::spawn(write_loop(store, rx, live.clone()));
        Arc::new(AuditWriter { queue, live })
    }

    /// Queues `row` and resolves once it is committed. Fails when the store
    /// cannot take it; callers then fail closed.
    pub async fn record_row(&self, row: AuditEvent) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Item::Row(Box::new(row), ack))
            .await
            .map_err(|_| AuditError("audit writer stopped".into()))?;
        done.await
            .map_err(|_| AuditError("audit writer stopped".into()))?
    }

    /// Publishes rows that were committed by another transaction.
    pub fn publish(&self, rows: &[AuditEvent]) {
        for row in rows {
            let _ = self.live.send(Arc::new(row.clone()));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AuditEvent>> {
        self.live.subscribe()
    }

    /// Waits until every row queued before this call is committed.
    pub async fn drain(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Item::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Item>,
    live: broadcast::Sender<Arc<AuditEvent>>,
) {
    let mut items = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut items, BATCH).await > 0 {
        let mut rows = Vec::new();
        let mut acks = Vec::new();
        let mut flushes = Vec::new();
        for item in items.drain(..) {
            match item {
                Item::Row(row, ack) => {
                    rows.push(*row);
                    acks.push(ack);
                }
                Item::Flush(done) => flushes.push(done),
            }
        }
        commit(&store, rows, acks, &live).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn commit(
    store: &Store,
    rows: Vec<AuditEvent>,
    acks: Vec<Ack>,
    live: &broadcast::Sender<Arc<AuditEvent>>,
) {
    if rows.is_empty() {
        return;
    }
    match store.insert_audit(&rows).await {
        Ok(()) => {
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
            for row in rows {
                let _ = live.send(Arc::new(row));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, rows = rows.len(), "audit rows could not be committed");
            for ack in acks {
                let _ = ack.send(Err(AuditError(e.to_string())));
            }
        }
    }
}

impl AuditSink for AuditWriter {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + '_>> {
        Box::pin(self.record_row(event))
    }
}
