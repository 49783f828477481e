//! The whole public site rendered from one snapshot: every page, JSON document, feed and badge,
//! compressed and tagged once, so that a rush of readers costs a map lookup each.

mod badge;
mod feed;
mod html;
mod statuspage;
pub mod views;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::settings::StatusPageSettings;
use crate::snapshot::Snapshot;

pub use html::Templates;

#[derive(Debug, thiserror::Error)]
#[error("rendering {what}: {message}")]
pub struct RenderError {
    pub what: String,
    pub message: String,
}

/// A response body ready to send.
#[derive(Debug)]
pub struct Page {
    pub body: Bytes,
    /// The same body gzipped; `None` when it would not be smaller.
    pub gzip: Option<Bytes>,
    /// A strong validator from the body's hash, quoted.
    pub etag: String,
    pub content_type: &'static str,
    pub status: u16,
}

impl Page {
    pub fn new(body: impl Into<Bytes>, content_type: &'static str) -> Page {
        let body: Bytes = body.into();
        let hash = xxhash_rust::xxh3::xxh3_128(&body);
        let gzip = (body.len() > 256)
            .then(|| gzip(&body))
            .flatten()
            .filter(|g| g.len() < body.len());
        Page {
            etag: format!("\"{hash:032x}\""),
            body,
            gzip,
            content_type,
            status: 200,
        }
    }

    fn with_status(mut self, status: u16) -> Page {
        self.status = status;
        self
    }
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
    enc.write_all(body).ok()?;
    enc.finish().ok().map(Bytes::from)
}

pub const HTML: &str = "text/html; charset=utf-8";
pub const JSON: &str = "application/json";
pub const ATOM: &str = "application/atom+xml; charset=utf-8";
pub const SVG: &str = "image/svg+xml";
pub const CSS: &str = "text/css; charset=utf-8";

/// Every public path and its page; history pages under `/history?page=N`.
#[derive(Debug, Default)]
pub struct Site {
    pages: HashMap<String, Arc<Page>>,
    not_found: Option<Arc<Page>>,
}

impl Site {
    pub fn get(&self, key: &str) -> Option<Arc<Page>> {
        self.pages.get(key).cloned()
    }

    pub fn not_found(&self) -> Option<Arc<Page>> {
        self.not_found.clone()
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    fn put(&mut self, key: impl Into<String>, page: Page) {
        self.pages.insert(key.into(), Arc::new(page));
    }
}

pub const STYLESHEET: &str = include_str!("../../static/status.css");

/// Renders everything public from the snapshot.
pub fn site(
    templates: &Templates,
    settings: &StatusPageSettings,
    snap: &Snapshot,
) -> Result<Site, RenderError> {
    let v = views::Views::new(settings, snap);
    let mut site = Site::default();
    site.put("/", Page::new(templates.index(&v)?, HTML));
    let per_page = settings.history_page_size.max(1);
    let pages = snap.incidents.len().div_ceil(per_page).max(1);
    for n in 1..=pages {
        let body = templates.history(&v, n, pages, per_page)?;
        let page = Page::new(body, HTML);
        if n == 1 {
            site.put("/history", Page::new(page.body.clone(), HTML));
        }
        site.put(format!("/history?page={n}"), page);
    }
    for i in &snap.incidents {
        site.put(
            format!("/incidents/{}", i.id),
            Page::new(templates.incident(&v, i)?, HTML),
        );
    }
    site.not_found = Some(Arc::new(
        Page::new(templates.not_found(&v)?, HTML).with_status(404),
    ));
    site.put("/history.atom", Page::new(feed::atom(templates, &v)?, ATOM));
    for (path, doc) in statuspage::documents(&v) {
        site.put(path, Page::new(doc, JSON));
    }
    for c in snap.components() {
        site.put(
            format!("/badge/{}/status.svg", c.id),
            Page::new(badge::status(templates, c)?, SVG),
        );
        site.put(
            format!("/badge/{}/uptime.svg", c.id),
            Page::new(badge::uptime(templates, c)?, SVG),
        );
    }
    site.put("/static/status.css", Page::new(STYLESHEET, CSS));
    Ok(site)
}
