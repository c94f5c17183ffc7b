//! WhatsApp message ids (`wamid.` + base64 of a small Thrift-compact record carrying the
//! customer's number and a hex id), shaped like the ids in Meta's payloads: outbound ids carry
//! an 18-digit hex id (`…FQIAERgS…`), inbound ids a 32-digit one (`…FQIAEhgg…`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A new id for a message exchanged with `wa_id` (digits).
pub(crate) fn new(wa_id: &str, inbound: bool) -> String {
    let (tag, len) = if inbound {
        (0x12u8, 32usize)
    } else {
        (0x11u8, 18usize)
    };
    let hex = crate::ids::random_hex(len / 2).to_ascii_uppercase();
    let number = &wa_id.as_bytes()[..wa_id.len().min(127)];
    let mut record = Vec::with_capacity(8 + number.len() + hex.len());
    record.extend_from_slice(&[0x1c, 0x18, number.len() as u8]);
    record.extend_from_slice(number);
    record.extend_from_slice(&[0x15, 0x02, 0x00, tag, 0x18, len as u8]);
    record.extend_from_slice(hex.as_bytes());
    record.push(0x00);
    format!("wamid.{}", STANDARD.encode(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shaped_like_metas_ids() {
        // The pywa fixture's inbound id decodes to the same layout.
        let real = "HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA";
        let mine = new("972544401243", true);
        assert_eq!(mine.len(), "wamid.".len() + real.len());
        assert!(
            mine.starts_with("wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhgg"),
            "{mine}"
        );
        let out = new("16505551234", false);
        assert!(out.starts_with("wamid.HBgLMTY1MDU1NTEyMzQVAgARGB"), "{out}");
    }
}
