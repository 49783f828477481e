//! The Atom feed of incidents, newest first, for feed readers and chat integrations.

use super::views::Views;
use super::{RenderError, Templates};
use crate::text;

const ENTRIES: usize = 50;

#[derive(serde::Serialize)]
struct Entry {
    id: i64,
    title: String,
    updated: String,
    published: String,
    updates: Vec<super::views::UpdateRow>,
}

pub fn atom(templates: &Templates, v: &Views<'_>) -> Result<String, RenderError> {
    let mut ctx = v.common();
    let entries: Vec<Entry> = v
        .snap
        .incidents
        .iter()
        .take(ENTRIES)
        .map(|i| {
            let row = v.incident(i);
            Entry {
                id: i.id,
                title: format!("{} [{}]", i.name, i.status.label()),
                updated: text::rfc3339(i.updated_us),
                published: text::rfc3339(i.created_us),
                updates: row.updates,
            }
        })
        .collect();
    let updated = v
        .snap
        .incidents
        .iter()
        .map(|i| i.updated_us)
        .max()
        .unwrap_or(0);
    ctx.insert("updated", &text::rfc3339(updated));
    ctx.insert("entries", &entries);
    ctx.insert("base", &v.base);
    templates.render("feed.xml", &ctx)
}
