//! The subscription handshake: when a webhook is configured in the Meta app dashboard, Meta
//! calls `GET <callback>?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<token>` and
//! expects the challenge back as the body when the token is ours.

use super::signature::VerifyToken;
use crate::webhook::VerifyError;

/// The longest challenge echoed back (Meta sends a number of about ten digits).
pub const MAX_CHALLENGE_CHARS: usize = 128;

/// The challenge to answer with, when the (decoded) query proves the caller knows `token`.
/// Each of the three parameters must appear exactly once; the challenge must be 1 to
/// [`MAX_CHALLENGE_CHARS`] visible ASCII characters, since it is echoed verbatim.
///
/// # Errors
/// [`VerifyError::HandshakeRefused`] saying which check failed.
pub fn answer(token: &VerifyToken, query: &[(String, String)]) -> Result<String, VerifyError> {
    let only = |name: &str| {
        let mut values = query.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.as_str()),
            _ => None,
        }
    };
    if only("hub.mode") != Some("subscribe") {
        return Err(VerifyError::HandshakeRefused(
            "`hub.mode` must be `subscribe`, once",
        ));
    }
    // The token is compared before the challenge is looked at, so a caller without it learns
    // nothing about what else is checked.
    if !only("hub.verify_token").is_some_and(|candidate| token.matches(candidate)) {
        return Err(VerifyError::HandshakeRefused(
            "`hub.verify_token` does not match the configured verify token",
        ));
    }
    let challenge = only("hub.challenge")
        .filter(|c| {
            (1..=MAX_CHALLENGE_CHARS).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or(VerifyError::HandshakeRefused(
            "`hub.challenge` must be 1 to 128 visible ASCII characters, once",
        ))?;
    Ok(challenge.to_owned())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn token() -> VerifyToken {
        // Meta's own example values (Graph API webhooks, "Getting started").
        VerifyToken::new(&SecretString::from("meatyhamhock"))
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_challenge_comes_back_for_our_token() {
        let q = query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "1158201444"),
            ("hub.verify_token", "meatyhamhock"),
        ]);
        assert_eq!(answer(&token(), &q).unwrap(), "1158201444");
    }

    #[test]
    fn wrong_mode_token_or_challenge_is_refused() {
        let refused = |pairs: &[(&str, &str)]| {
            let err = answer(&token(), &query(pairs)).unwrap_err();
            assert!(matches!(err, VerifyError::HandshakeRefused(_)), "{pairs:?}");
            err.to_string()
        };
        let good_mode = ("hub.mode", "subscribe");
        let good_token = ("hub.verify_token", "meatyhamhock");
        let good_challenge = ("hub.challenge", "1158201444");
        assert!(
            refused(&[("hub.mode", "unsubscribe"), good_token, good_challenge])
                .contains("hub.mode")
        );
        assert!(refused(&[good_token, good_challenge]).contains("hub.mode"));
        assert!(
            refused(&[good_mode, ("hub.verify_token", "meatyham"), good_challenge])
                .contains("verify_token")
        );
        assert!(refused(&[good_mode, good_challenge]).contains("verify_token"));
        // A repeated parameter is ambiguous: refused, whichever copy is right.
        assert!(
            refused(&[
                good_mode,
                ("hub.verify_token", "wrong"),
                good_token,
                good_challenge
            ])
            .contains("verify_token")
        );
        assert!(refused(&[good_mode, good_mode, good_token, good_challenge]).contains("hub.mode"));
        let long = "9".repeat(MAX_CHALLENGE_CHARS + 1);
        for challenge in ["", "a b", "<script>\n", "１２３", long.as_str()] {
            assert!(
                refused(&[good_mode, good_token, ("hub.challenge", challenge)])
                    .contains("hub.challenge"),
                "{challenge:?}"
            );
        }
        assert!(refused(&[good_mode, good_token]).contains("hub.challenge"));
        let longest = "9".repeat(MAX_CHALLENGE_CHARS);
        assert_eq!(
            answer(
                &token(),
                &query(&[good_mode, good_token, ("hub.challenge", &longest)])
            )
            .unwrap(),
            longest
        );
    }
}
