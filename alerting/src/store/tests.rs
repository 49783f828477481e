use super::*;
use crate::notify::Links;

fn delivery(kind: Kind, receiver: &str) -> NewDelivery {
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    NewDelivery {
        problem_id: "p".into(),
        subscription_id: receiver.into(),
        kind,
        level: Level::Error,
        notification: Notification {
            id: format!("{kind:?}"),
            problem_id: "p".into(),
            kind,
            check_id: "c".into(),
            check_name: "c".into(),
            description: String::new(),
            target: "down(c)".into(),
            state: Level::Error,
            previous: Level::Ok,
            value: Some(1.0),
            warn: None,
            error: Some(1.0),
            worse: "higher".into(),
            regions: Vec::new(),
            since: at,
            at,
            reason: None,
            severity: "page".into(),
            labels: Default::default(),
            links: Links::default(),
        },
        not_before_us: 0,
    }
}

#[tokio::test]
async fn each_receivers_next_delivery_only_and_stale_reminders_are_skipped() {
    let s = Store::in_memory().unwrap();
    let ids = s
        .apply(Batch {
            deliveries: vec![
                delivery(Kind::Trigger, "slack>"),
                delivery(Kind::Reminder, "slack>"),
                delivery(Kind::Resolve, "slack>"),
                delivery(Kind::Trigger, "pager>"),
            ],
            ..Batch::default()
        })
        .await
        .unwrap();
    let due: Vec<i64> = s
        .due(1, 10)
        .await
        .unwrap()
        .iter()
        .map(|(d, _)| d.id)
        .collect();
    assert_eq!(due, [ids[0], ids[3]], "one per receiver, oldest first");
    assert!(s.next_for_receiver(ids[0]).await.unwrap());
    assert!(
        !s.next_for_receiver(ids[1]).await.unwrap(),
        "behind the trigger"
    );
    s.mark_sent(ids[0], 2).await.unwrap();
    assert!(!s.next_for_receiver(ids[0]).await.unwrap(), "sent already");
    assert!(
        s.skip_if_superseded(ids[1]).await.unwrap(),
        "the resolve came after it"
    );
    assert!(
        !s.skip_if_superseded(ids[2]).await.unwrap(),
        "resolves are never skipped"
    );
    assert_eq!(s.outbox_counts().await.unwrap(), (2, 0));
}

#[tokio::test]
async fn chart_values_read_back_in_order_and_old_ones_are_pruned() {
    let s = Store::in_memory().unwrap();
    let values: Vec<(String, i64, Option<f64>)> = (0..100)
        .map(|i| ("c".to_owned(), 1_000 + i, (i % 7 != 0).then_some(i as f64)))
        .chain([("other".to_owned(), 1_050, Some(9.0))])
        .collect();
    s.apply(Batch {
        values,
        ..Batch::default()
    })
    .await
    .unwrap();
    let got = s.values("c", 1_010, 1_019).await.unwrap();
    assert_eq!(got.len(), 10);
    assert_eq!(got[0], (1_010, Some(10.0)));
    assert_eq!(got[4], (1_014, None), "no data is kept as such");
    assert_eq!(s.prune_values(1_050).await.unwrap(), 50);
    assert_eq!(s.values("c", 0, i64::MAX).await.unwrap().len(), 50);
    assert_eq!(s.values("other", 0, i64::MAX).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_problems_events_are_kept_once_and_a_link_is_used_once() {
    let s = Store::in_memory().unwrap();
    let ev = ProblemEvent {
        problem_id: "p".into(),
        at_us: 5,
        what: "acknowledged".into(),
        by: "Ada".into(),
        detail: "on it".into(),
    };
    // A replica reading the log from its start applies the same change again.
    s.record_event(ev.clone()).await.unwrap();
    s.record_event(ev.clone()).await.unwrap();
    assert_eq!(s.events("p").await.unwrap(), vec![ev]);
    assert!(s.link_used("n1".into()).await.unwrap().is_none());
    assert!(s.use_link("n1".into(), "p".into(), 7).await.unwrap());
    assert!(!s.use_link("n1".into(), "p".into(), 8).await.unwrap());
    assert_eq!(s.link_used("n1".into()).await.unwrap(), Some(7));
}

#[tokio::test]
async fn a_signed_out_session_stays_known_as_signed_out() {
    let s = Store::in_memory().unwrap();
    let session = Session {
        id_hash: "h".into(),
        name: "Ada".into(),
        write: true,
        csrf: "c".into(),
        created_us: 10,
        expires_us: 100,
        ended: false,
    };
    s.put_session(session.clone()).await.unwrap();
    assert_eq!(s.session("h".into()).await.unwrap(), Some(session));
    s.end_session("h".into()).await.unwrap();
    assert!(s.session("h".into()).await.unwrap().unwrap().ended);
    assert_eq!(s.session("nope".into()).await.unwrap(), None);
}

#[tokio::test]
async fn a_revoked_read_only_token_signs_out_the_read_only_sessions_only() {
    let s = Store::in_memory().unwrap();
    let session = |id: &str, write: bool| Session {
        id_hash: id.into(),
        name: "Ada".into(),
        write,
        csrf: "c".into(),
        created_us: 10,
        expires_us: 100,
        ended: false,
    };
    s.put_session(session("reader", false)).await.unwrap();
    s.put_session(session("writer", true)).await.unwrap();
    assert_eq!(s.end_read_sessions().await.unwrap(), 1);
    assert!(s.session("reader".into()).await.unwrap().unwrap().ended);
    assert!(!s.session("writer".into()).await.unwrap().unwrap().ended);
    assert_eq!(s.end_read_sessions().await.unwrap(), 0, "already ended");
}
