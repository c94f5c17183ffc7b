//! [`IdentitySigner`]: customer identity JWTs for MIAW user verification (miaw.md §3.2).
//!
//! The signed JWT is the `customerIdentityToken` of an authenticated access-token request.
//! Salesforce verifies it against the channel's User Verification keyset: RS256, the `kid`
//! header naming the uploaded key, `iss` equal to the configured issuer, `aud` the My Domain
//! URL, `sub` the end user's identity, `exp` in the future. The subject is the customer's
//! identity: never log it.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::error::MiawError;

/// Signs customer identity JWTs (RS256, kid header, iss, aud, sub, exp) for the authenticated token.
#[derive(Clone)]
pub struct IdentitySigner {
    key: EncodingKey,
    kid: String,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
}

impl IdentitySigner {
    /// A signer with an RSA private key in PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1
    /// `BEGIN RSA PRIVATE KEY`). `kid` names the key in Salesforce's keyset; `ttl` is the
    /// token's lifetime (it only has to outlive the access-token request).
    pub fn from_pem(
        private_key_pem: &str,
        kid: &str,
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Result<Self, MiawError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|_| {
            MiawError::Protocol(
                "the MIAW identity private key is not an RSA private key in PEM form".to_owned(),
            )
        })?;
        if kid.is_empty() || issuer.is_empty() || audience.is_empty() {
            return Err(MiawError::Protocol(
                "the MIAW identity signer needs a non-empty kid, issuer and audience".to_owned(),
            ));
        }
        Ok(IdentitySigner {
            key,
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        })
    }

    /// A JWT asserting `subject` (the end user's stable identity), valid for the signer's ttl.
    pub fn sign(&self, subject: &str) -> Result<String, MiawError> {
        self.sign_at(subject, chrono::Utc::now().timestamp())
    }

    fn sign_at(&self, subject: &str, now: i64) -> Result<String, MiawError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: subject,
            iat: now,
            exp: now.saturating_add(ttl),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| MiawError::Protocol("could not sign the customer identity JWT".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde::Deserialize;

    const PRIVATE_KEY: &str = include_str!("../../tests/fixtures/test-only-rsa-private.pem");
    const PUBLIC_KEY: &str = include_str!("../../tests/fixtures/test-only-rsa-public.pem");

    #[derive(Deserialize)]
    struct Decoded {
        iss: String,
        aud: String,
        sub: String,
        iat: i64,
        exp: i64,
    }

    fn signer() -> IdentitySigner {
        IdentitySigner::from_pem(
            PRIVATE_KEY,
            "handoff-key-1",
            "https://handoff.example",
            "https://acme.my.salesforce.com",
            Duration::from_secs(300),
        )
        .unwrap()
    }

    #[test]
    fn signed_token_has_kid_rs256_and_verifies_with_the_public_key() {
        let jwt = signer().sign("customer-42").unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("handoff-key-1"));

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://acme.my.salesforce.com"]);
        validation.set_issuer(&["https://handoff.example"]);
        let decoded = jsonwebtoken::decode::<Decoded>(
            &jwt,
            &DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(decoded.sub, "customer-42");
        assert_eq!(decoded.iss, "https://handoff.example");
        assert_eq!(decoded.aud, "https://acme.my.salesforce.com");
        assert_eq!(decoded.exp - decoded.iat, 300);
    }

    #[test]
    fn exp_is_now_plus_ttl() {
        let jwt = signer().sign_at("c", 1_000_000).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["https://acme.my.salesforce.com"]);
        let decoded = jsonwebtoken::decode::<Decoded>(
            &jwt,
            &DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!((decoded.iat, decoded.exp), (1_000_000, 1_000_300));
    }

    #[test]
    fn another_key_does_not_verify() {
        let jwt = signer().sign("c").unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_aud = false;
        assert!(
            jsonwebtoken::decode::<Decoded>(&jwt, &DecodingKey::from_secret(b"x"), &validation)
                .is_err()
        );
    }

    #[test]
    fn bad_key_or_empty_fields_are_refused() {
        let err = IdentitySigner::from_pem("nope", "k", "i", "a", Duration::from_secs(60));
        assert!(matches!(err, Err(MiawError::Protocol(_))));
        let err = IdentitySigner::from_pem(PRIVATE_KEY, "", "i", "a", Duration::from_secs(60));
        assert!(matches!(err, Err(MiawError::Protocol(_))));
    }
}
