//! Messages to customers. Producers put a row in the outbox
//! (`store/outbox.rs`: the row and its `DeliverMessage` job in one transaction);
//! the `DeliverMessage` handler ([`deliver`]) sends it through the channel adapter.
//! The first producer is the "your request is now a Case" notice ([`notices`]).

pub mod deliver;
pub mod notices;

use sha2::{Digest, Sha256};

/// A stable delivery id for the message `purpose` of a session: the same every
/// time the producer runs, so producing twice enqueues once, and the id the
/// customer's side sees (`webhook-id`) is the same on every retry.
pub fn delivery_id(session_id: &str, purpose: &str) -> String {
    let digest = Sha256::digest(format!("{session_id}\n{purpose}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("dlv_{hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let a = super::delivery_id("s-1", "case_created");
        assert_eq!(a, super::delivery_id("s-1", "case_created"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, super::delivery_id("s-2", "case_created"));
        assert_ne!(a, super::delivery_id("s-1", "other"));
    }
}
