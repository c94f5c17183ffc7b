//! The README's first command must work: `handoff demo`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_end_to_end() {
    let report = gateway::demo::run_with_report()
        .await
        .expect("demo succeeds");

    // The SMS and the WhatsApp conversation each went live, both ways.
    let channels: Vec<&str> = report.phones.iter().map(|p| p.channel.as_str()).collect();
    assert_eq!(channels, ["sms", "whatsapp"]);
    for phone in &report.phones {
        let channel = &phone.channel;
        assert_eq!(phone.route, "messaging", "{channel}: {phone:?}");
        assert!(
            phone.session_id.ends_with(&format!("-{channel}")),
            "{channel}: {phone:?}"
        );
        // Every rep answer reached the customer's phone through the provider's API, in order,
        // and the provider reported each message the phone got as delivered (or read).
        let received: Vec<&str> = phone
            .phone_received
            .iter()
            .map(|(t, _)| t.as_str())
            .collect();
        let positions: Vec<usize> = phone
            .rep_wrote
            .iter()
            .map(|text| {
                received
                    .iter()
                    .position(|r| r.contains(text.as_str()))
                    .unwrap_or_else(|| {
                        panic!("{channel}: the phone never got {text:?}: {received:?}")
                    })
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{channel}: {received:?}"
        );
        for (text, status) in &phone.phone_received {
            assert!(
                matches!(status.as_deref(), Some("delivered" | "read")),
                "{channel}: {text:?} has provider status {status:?}"
            );
        }
        // The customer's text came back through the signed webhook, and the rep saw it, once,
        // between the rep's two answers.
        assert_eq!(phone.webhook_status, 200, "{channel}");
        let saw = |role: &str, text: &str| {
            phone
                .rep_saw
                .iter()
                .position(|(r, t)| r == role && t == text)
                .unwrap_or_else(|| {
                    panic!(
                        "{channel}: the rep never saw {role} {text:?}: {:?}",
                        phone.rep_saw
                    )
                })
        };
        let customer = saw("EndUser", &phone.customer_wrote);
        assert!(saw("Agent", &phone.rep_wrote[0]) < customer, "{channel}");
        assert!(customer < saw("Agent", &phone.rep_wrote[1]), "{channel}");
        assert_eq!(
            phone
                .rep_saw
                .iter()
                .filter(|(_, t)| *t == phone.customer_wrote)
                .count(),
            1,
            "{channel}: {:?}",
            phone.rep_saw
        );
    }
}
