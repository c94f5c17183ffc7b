//! The emulators' signing (and this suite's independent checks) against published vectors.
//!
//! Twilio: the vectors of Twilio's own SDK tests, twilio/twilio-python
//! `tests/unit/test_request_validator.py` @306691e7 (MIT), quoted in
//! `shared/reference/channels.md` §1.2.
//! Meta: the pywa vector, david-lev/pywa `tests/test_server.py` @0bcf2f19 (MIT), quoted in §2.3.

mod common;

use channel_emulator::{twilio, whatsapp};

const TOKEN: &str = "12345";
const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn sdk_params() -> Vec<(String, String)> {
    [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn twilio_sdk_vector() {
    let params = sdk_params();
    assert_eq!(
        twilio::signed_string(URL, &params),
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
    );
    assert_eq!(
        twilio::signature(TOKEN, URL, &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    assert_eq!(
        common::twilio_signature(TOKEN, URL, &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[test]
fn twilio_signs_the_url_exactly_as_given() {
    let params = sdk_params();
    // With the default port spelled out (the SDK's "adds port on https" vector).
    let with_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert_eq!(
        twilio::signature(TOKEN, with_443, &params),
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    );
    // http with port 80, and with a non-default port.
    let with_80 = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
    assert_eq!(
        twilio::signature(TOKEN, with_80, &params),
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    );
    let with_1234 = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert_eq!(
        twilio::signature(TOKEN, with_1234, &params),
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
    );
    for url in [with_443, with_80, with_1234] {
        assert_eq!(
            twilio::signature(TOKEN, url, &params),
            common::twilio_signature(TOKEN, url, &params)
        );
    }
}

#[test]
fn twilio_repeated_parameters_vector() {
    let params: Vec<(String, String)> = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        twilio::signature(TOKEN, URL, &params),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    );
    assert_eq!(
        common::twilio_signature(TOKEN, URL, &params),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    );
    // A value repeated exactly counts once.
    let mut doubled = params.clone();
    doubled.push(("Digits".into(), "1234".into()));
    assert_eq!(
        twilio::signature(TOKEN, URL, &doubled),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    );
}

#[test]
fn twilio_signature_changes_with_any_input() {
    let params = sdk_params();
    let base = twilio::signature(TOKEN, URL, &params);
    assert_ne!(twilio::signature("12346", URL, &params), base);
    assert_ne!(
        twilio::signature(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params
        ),
        base
    );
    let mut changed = params.clone();
    changed[2].1 = "1235".into();
    assert_ne!(twilio::signature(TOKEN, URL, &changed), base);
}

const PYWA_SECRET: &str = "1222e786b144d0e85b9f365372d93676";
const PYWA_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
const PYWA_SIGNATURE: &str =
    "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";

#[test]
fn meta_pywa_vector() {
    assert_eq!(PYWA_BODY.len(), 511);
    assert_eq!(
        whatsapp::signature(PYWA_SECRET, PYWA_BODY.as_bytes()),
        PYWA_SIGNATURE
    );
    assert_eq!(
        common::meta_signature(PYWA_SECRET, PYWA_BODY.as_bytes()),
        PYWA_SIGNATURE
    );
    // One byte more (a trailing newline) is another signature.
    let mut body = PYWA_BODY.as_bytes().to_vec();
    body.push(b'\n');
    assert_ne!(whatsapp::signature(PYWA_SECRET, &body), PYWA_SIGNATURE);
}
