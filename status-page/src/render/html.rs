//! The HTML pages, from tera templates built into the binary.

use tera::{Context, Tera};

use super::RenderError;
use super::views::Views;
use crate::model::Incident;

const TEMPLATES: [(&str, &str); 10] = [
    ("base.html", include_str!("../../templates/base.html")),
    (
        "incident_item.html",
        include_str!("../../templates/incident_item.html"),
    ),
    ("index.html", include_str!("../../templates/index.html")),
    ("history.html", include_str!("../../templates/history.html")),
    (
        "incident.html",
        include_str!("../../templates/incident.html"),
    ),
    (
        "not_found.html",
        include_str!("../../templates/not_found.html"),
    ),
    ("report.html", include_str!("../../templates/report.html")),
    ("reports.html", include_str!("../../templates/reports.html")),
    ("feed.xml", include_str!("../../templates/feed.xml")),
    ("badge.svg", include_str!("../../templates/badge.svg")),
];

pub struct Templates {
    tera: Tera,
}

impl Templates {
    pub fn new() -> Result<Templates, RenderError> {
        let mut tera = Tera::default();
        // Everything a person can type (incident text, names) is escaped in every format.
        tera.autoescape_on(vec![".html", ".xml", ".svg"]);
        tera.add_raw_templates(TEMPLATES).map_err(|e| RenderError {
            what: "templates".into(),
            message: tera_message(&e),
        })?;
        Ok(Templates { tera })
    }

    pub fn render(&self, name: &str, ctx: &Context) -> Result<String, RenderError> {
        self.tera.render(name, ctx).map_err(|e| RenderError {
            what: name.to_owned(),
            message: tera_message(&e),
        })
    }

    pub fn index(&self, v: &Views<'_>) -> Result<String, RenderError> {
        let mut ctx = v.common();
        ctx.insert("banner", &v.banner());
        ctx.insert("active_incidents", &v.active_incidents());
        ctx.insert("maintenances", &v.maintenances());
        ctx.insert("groups", &v.groups());
        ctx.insert(
            "latency_window",
            &humantime::format_duration(v.settings.latency_window).to_string(),
        );
        self.render("index.html", &ctx)
    }

    pub fn history(
        &self,
        v: &Views<'_>,
        page: usize,
        pages: usize,
        per_page: usize,
    ) -> Result<String, RenderError> {
        let mut ctx = v.common();
        let rows: Vec<_> = v
            .snap
            .incidents
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|i| v.incident(i))
            .collect();
        ctx.insert("incidents", &rows);
        ctx.insert("page", &page);
        ctx.insert("pages", &pages);
        ctx.insert(
            "newer",
            &(page > 1).then(|| format!("/history?page={}", page - 1)),
        );
        ctx.insert(
            "older",
            &(page < pages).then(|| format!("/history?page={}", page + 1)),
        );
        self.render("history.html", &ctx)
    }

    pub fn incident(&self, v: &Views<'_>, i: &Incident) -> Result<String, RenderError> {
        let mut ctx = v.common();
        ctx.insert("i", &v.incident(i));
        self.render("incident.html", &ctx)
    }

    pub fn not_found(&self, v: &Views<'_>) -> Result<String, RenderError> {
        self.render("not_found.html", &v.common())
    }
}

/// Tera's error with its causes, which hold the useful part.
fn tera_message(e: &tera::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
