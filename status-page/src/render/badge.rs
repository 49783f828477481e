//! Shields-style SVG badges: a component's status, and its 90-day uptime.

use tera::Context;

use super::{RenderError, Templates};
use crate::snapshot::ComponentView;
use crate::status::ComponentStatus;

/// Verdana 11px averages about 6.5 px a character; the badge need not be exact, only not clip.
fn text_width(s: &str) -> usize {
    s.chars().count() * 13 / 2 + 10
}

fn render(
    templates: &Templates,
    label: &str,
    value: &str,
    colour: &str,
) -> Result<String, RenderError> {
    let (lw, vw) = (text_width(label), text_width(value));
    let mut ctx = Context::new();
    ctx.insert("label", label);
    ctx.insert("value", value);
    ctx.insert("colour", colour);
    ctx.insert("label_width", &lw);
    ctx.insert("value_width", &vw);
    ctx.insert("width", &(lw + vw));
    ctx.insert("label_x", &(lw as f64 / 2.0));
    ctx.insert("value_x", &(lw as f64 + vw as f64 / 2.0));
    templates.render("badge.svg", &ctx)
}

pub fn status(templates: &Templates, c: &ComponentView) -> Result<String, RenderError> {
    let colour = match c.status {
        ComponentStatus::Operational => "#2da44e",
        ComponentStatus::UnderMaintenance => "#0969da",
        ComponentStatus::DegradedPerformance => "#bf8700",
        ComponentStatus::PartialOutage => "#d1661c",
        ComponentStatus::MajorOutage => "#cf222e",
    };
    render(templates, &c.name, &c.status.label().to_lowercase(), colour)
}

/// Green at or above the component's target, amber a little below it, red further.
pub fn uptime(templates: &Templates, c: &ComponentView) -> Result<String, RenderError> {
    let measured = c
        .figures
        .uptime
        .as_ref()
        .and_then(|u| u.availability.map(|a| (a, u.target)));
    let (value, colour) = match measured {
        Some((u, target)) => (
            crate::text::percent(u),
            if u >= target {
                "#2da44e"
            } else if u >= 1.0 - 10.0 * (1.0 - target) {
                "#bf8700"
            } else {
                "#cf222e"
            },
        ),
        None => ("no data".to_owned(), "#9f9f9f"),
    };
    render(templates, &format!("{} uptime 90d", c.name), &value, colour)
}
