//! The JSON of Statuspage's public API (v2), field for field, so that widgets and clients
//! written for Statuspage read this page unchanged.

use serde_json::{Value, json};

use super::views::Views;
use crate::model::{Incident, Maintenance, MaintenanceStatus};
use crate::snapshot::ComponentView;
use crate::text;

const PAGE_ID: &str = "lookout";
/// The incidents listed by `incidents.json`, as Statuspage lists its last 50.
const LISTED: usize = 50;

fn time(us: Option<i64>) -> Value {
    us.map(|t| Value::String(text::rfc3339(t)))
        .unwrap_or(Value::Null)
}

fn page(v: &Views<'_>) -> Value {
    json!({
        "id": PAGE_ID,
        "name": v.settings.title,
        "url": v.base,
        "time_zone": "Etc/UTC",
        "updated_at": time(v.snap.data_as_of_us.or(Some(v.snap.now_us))),
    })
}

fn component(v: &Views<'_>, c: &ComponentView) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "status": c.status.as_str(),
        "created_at": time(first_day(c).or(Some(v.snap.now_us))),
        "updated_at": time(v.snap.data_as_of_us.or(Some(v.snap.now_us))),
        "position": c.position,
        "description": if c.description.is_empty() { Value::Null } else { Value::String(c.description.clone()) },
        "showcase": true,
        "start_date": first_day(c).map(|d| text::time(d).map(|t| t.format("%Y-%m-%d").to_string())),
        "group_id": c.group_id,
        "page_id": PAGE_ID,
        "group": false,
        "only_show_if_degraded": false,
    })
}

fn first_day(c: &ComponentView) -> Option<i64> {
    c.figures
        .days
        .iter()
        .find(|d| d.availability.is_some())
        .map(|d| d.from_us)
}

fn components(v: &Views<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    for g in &v.snap.groups {
        let worst = g
            .components
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(crate::status::ComponentStatus::Operational);
        out.push(json!({
            "id": g.id,
            "name": g.name,
            "status": worst.as_str(),
            "created_at": time(Some(v.snap.now_us)),
            "updated_at": time(v.snap.data_as_of_us.or(Some(v.snap.now_us))),
            "position": g.position,
            "description": Value::Null,
            "showcase": false,
            "start_date": Value::Null,
            "group_id": Value::Null,
            "page_id": PAGE_ID,
            "group": true,
            "only_show_if_degraded": false,
            "components": g.components.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        }));
        out.extend(g.components.iter().map(|c| component(v, c)));
    }
    out
}

fn affected(v: &Views<'_>, ids: &[String]) -> Vec<Value> {
    ids.iter()
        .filter_map(|id| v.snap.components().find(|c| &c.id == id))
        .map(|c| component(v, c))
        .collect()
}

fn incident(v: &Views<'_>, i: &Incident) -> Value {
    json!({
        "id": i.id.to_string(),
        "name": i.name,
        "status": i.status.as_str(),
        "created_at": time(Some(i.created_us)),
        "updated_at": time(Some(i.updated_us)),
        "monitoring_at": time(i.monitoring_us),
        "resolved_at": time(i.resolved_us),
        "impact": i.impact.as_str(),
        "shortlink": format!("{}/incidents/{}", v.base, i.id),
        "started_at": time(Some(i.started_us)),
        "page_id": PAGE_ID,
        "incident_updates": i.updates.iter().map(|u| json!({
            "id": u.id.to_string(),
            "status": u.status.as_str(),
            "body": u.body,
            "incident_id": i.id.to_string(),
            "created_at": time(Some(u.created_us)),
            "updated_at": time(Some(u.created_us)),
            "display_at": time(Some(u.created_us)),
            "affected_components": Value::Null,
            "deliver_notifications": true,
            "custom_tweet": Value::Null,
            "tweet_id": Value::Null,
        })).collect::<Vec<_>>(),
        "components": affected(v, &i.components),
    })
}

fn maintenance(v: &Views<'_>, shown: &Maintenance) -> Value {
    let m = &shown.window;
    let status = m.status(v.snap.now_us);
    let id = format!("m{}", m.id);
    let update_status = match status {
        MaintenanceStatus::Scheduled => "scheduled",
        MaintenanceStatus::InProgress => "in_progress",
        MaintenanceStatus::Completed => "completed",
    };
    json!({
        "id": id,
        "name": m.name,
        "status": status.as_str(),
        "created_at": time(Some(m.created_us)),
        "updated_at": time(Some(m.created_us)),
        "monitoring_at": Value::Null,
        "resolved_at": time((status == MaintenanceStatus::Completed).then_some(m.ends_us)),
        "impact": "maintenance",
        "shortlink": format!("{}/#maint", v.base),
        "started_at": time(Some(m.starts_us)),
        "page_id": PAGE_ID,
        "incident_updates": [{
            "id": format!("{id}-1"),
            "status": update_status,
            "body": m.message,
            "incident_id": id,
            "created_at": time(Some(m.created_us)),
            "updated_at": time(Some(m.created_us)),
            "display_at": time(Some(m.created_us)),
            "affected_components": Value::Null,
            "deliver_notifications": true,
            "custom_tweet": Value::Null,
            "tweet_id": Value::Null,
        }],
        "components": affected(v, &shown.components),
        "scheduled_for": time(Some(m.starts_us)),
        "scheduled_until": time(Some(m.ends_us)),
    })
}

/// Not Statuspage's: each component's 90 days by its SLO, the figures behind the page's uptime
/// (availability, downtime, maintenance, the error budget), for partners who check the SLA.
fn uptime(v: &Views<'_>) -> Value {
    let components: Vec<Value> = v
        .snap
        .components()
        .map(|c| match &c.figures.uptime {
            Some(u) => json!({
                "id": c.id,
                "name": c.name,
                "from": time(Some(u.from_us)),
                "to": time(Some(u.to_us)),
                "from_us": u.from_us,
                "to_us": u.to_us,
                "availability": u.availability,
                "target": u.target,
                "downtime_seconds": u.down_seconds,
                "no_data_seconds": u.no_data_seconds,
                "maintenance_seconds": u.maintenance_seconds,
                "maintenance_counted": u.maintenance_counted,
                "error_budget_seconds": u.error_budget_seconds,
                "error_budget_remaining_seconds": u.error_budget_remaining_seconds,
            }),
            None => json!({"id": c.id, "name": c.name, "availability": Value::Null}),
        })
        .collect();
    json!({"page": page(v), "components": components})
}

fn status(v: &Views<'_>) -> Value {
    json!({
        "indicator": v.snap.overall.indicator,
        "description": v.snap.overall.description,
    })
}

/// Every document by its path.
pub fn documents(v: &Views<'_>) -> Vec<(String, String)> {
    let now = v.snap.now_us;
    let unresolved: Vec<Value> = v
        .snap
        .incidents
        .iter()
        .filter(|i| !i.resolved())
        .map(|i| incident(v, i))
        .collect();
    let listed: Vec<Value> = v
        .snap
        .incidents
        .iter()
        .take(LISTED)
        .map(|i| incident(v, i))
        .collect();
    let with = |s: MaintenanceStatus| -> Vec<Value> {
        v.snap
            .maintenances
            .iter()
            .filter(|m| m.status(now) == s)
            .map(|m| maintenance(v, m))
            .collect()
    };
    let all_maintenance: Vec<Value> = v
        .snap
        .maintenances
        .iter()
        .rev()
        .map(|m| maintenance(v, m))
        .collect();
    let mut current = with(MaintenanceStatus::InProgress);
    current.extend(with(MaintenanceStatus::Scheduled));
    let docs = [
        ("status.json", json!({"page": page(v), "status": status(v)})),
        (
            "summary.json",
            json!({
                "page": page(v),
                "components": components(v),
                "incidents": unresolved,
                "scheduled_maintenances": current,
                "status": status(v),
            }),
        ),
        (
            "components.json",
            json!({"page": page(v), "components": components(v)}),
        ),
        (
            "incidents.json",
            json!({"page": page(v), "incidents": listed}),
        ),
        (
            "incidents/unresolved.json",
            json!({"page": page(v), "incidents": unresolved}),
        ),
        (
            "scheduled-maintenances.json",
            json!({"page": page(v), "scheduled_maintenances": all_maintenance}),
        ),
        (
            "scheduled-maintenances/upcoming.json",
            json!({"page": page(v), "scheduled_maintenances": with(MaintenanceStatus::Scheduled)}),
        ),
        ("uptime.json", uptime(v)),
        (
            "scheduled-maintenances/active.json",
            json!({"page": page(v), "scheduled_maintenances": with(MaintenanceStatus::InProgress)}),
        ),
    ];
    docs.into_iter()
        .map(|(path, doc)| (format!("/api/v2/{path}"), doc.to_string()))
        .collect()
}
