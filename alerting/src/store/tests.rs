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
