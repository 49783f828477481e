//! Group commit: batches that arrive while a commit is under way are stored together in the
//! next one. A commit's cost (the log sync, the page cache's end-of-transaction work) is then
//! shared by every agent waiting, which is what lets durable ingest keep up with many agents.
//! Each request is still answered only after the commit that holds its batch.

use std::sync::Arc;
use std::sync::mpsc;

use lookout_model::probe::ProbeResult;
use tokio::sync::oneshot;

use crate::store::{ResultStore, StoreError};

/// Results in one commit at most: bounds a commit's time, and what a failure sends back.
const MAX_GROUP: usize = 20_000;

type Reply = (Vec<ProbeResult>, Result<Vec<bool>, StoreError>);

struct Job {
    results: Vec<ProbeResult>,
    reply: oneshot::Sender<Reply>,
}

pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the thread that commits; it ends when the committer is dropped.
    pub fn start(store: Arc<dyn ResultStore>) -> std::io::Result<Committer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lookout-commit".into())
            .spawn(move || commit_loop(store.as_ref(), &rx))?;
        Ok(Committer { jobs })
    }

    /// Stores `results`; gives them back with, for each, whether it was new.
    pub async fn insert(&self, results: Vec<ProbeResult>) -> Result<Reply, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { results, reply })
            .map_err(|_| StoreError::Unavailable("the commit thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the commit thread has stopped".into()))
    }
}

fn commit_loop(store: &dyn ResultStore, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut size = first.results.len();
        let mut group = vec![first];
        while size < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.results.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<&[ProbeResult]> = group.iter().map(|j| j.results.as_slice()).collect();
        match store.insert_many(&batches) {
            Ok(answers) => {
                for (job, inserted) in group.into_iter().zip(answers) {
                    let _ = job.reply.send((job.results, Ok(inserted)));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in group {
                    let _ = job
                        .reply
                        .send((job.results, Err(StoreError::Unavailable(message.clone()))));
                }
            }
        }
    }
}
