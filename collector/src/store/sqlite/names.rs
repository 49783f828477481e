//! Check, region and agent names, stored once each and referred to by number.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Check = 0,
    Region = 1,
    Agent = 2,
}

/// Names by number and numbers by name, as held in the `names` table. One map per kind, so
/// that a lookup borrows the name instead of building a key: ingest looks up three per result.
#[derive(Default, Clone)]
pub(super) struct Names {
    pub(super) ids: [HashMap<String, i64>; 3],
    pub(super) names: HashMap<i64, String>,
}

impl Names {
    /// The number of a name, adding it (inside the caller's transaction) when new.
    pub(super) fn intern(
        &mut self,
        tx: &Transaction<'_>,
        kind: Kind,
        name: &str,
    ) -> rusqlite::Result<i64> {
        if let Some(id) = self.ids[kind as usize].get(name) {
            return Ok(*id);
        }
        tx.execute(
            "INSERT INTO names (kind, name) VALUES (?1, ?2)",
            params![kind as u8, name],
        )?;
        let id = tx.last_insert_rowid();
        self.ids[kind as usize].insert(name.to_owned(), id);
        self.names.insert(id, name.to_owned());
        Ok(id)
    }

    pub(super) fn id(&self, kind: Kind, name: &str) -> Option<i64> {
        self.ids[kind as usize].get(name).copied()
    }

    pub(super) fn name(&self, id: i64) -> String {
        self.name_ref(id).to_owned()
    }

    pub(super) fn name_ref(&self, id: i64) -> &str {
        self.names.get(&id).map_or("", String::as_str)
    }

    /// Forgets names added by a transaction that rolled back.
    pub(super) fn forget_after(&mut self, last_kept: i64) {
        for ids in &mut self.ids {
            ids.retain(|_, id| *id <= last_kept);
        }
        self.names.retain(|id, _| *id <= last_kept);
    }

    pub(super) fn last_id(&self) -> i64 {
        self.names.keys().copied().max().unwrap_or(0)
    }
}
