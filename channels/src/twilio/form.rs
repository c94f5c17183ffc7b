//! `application/x-www-form-urlencoded` bodies as Twilio posts them: name/value pairs in the
//! order received, decoded in one linear pass, with a cap on how many there are (the gateway
//! caps the body's size).

/// The most parameters one webhook may carry. Twilio sends about 20 for an SMS and 40 for an
/// MMS with ten attachments; new parameters are added without notice, so the cap is generous.
pub const MAX_PARAMS: usize = 200;

/// A decoded form: its pairs in the order they came, names possibly repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

/// Why a body is not a form we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body has more than {MAX_PARAMS} parameters")]
    TooManyParams,
}

impl Form {
    /// Decodes `body` (`+` is a space, `%XX` a byte; invalid UTF-8 becomes U+FFFD, which then
    /// fails the signature). Empty pieces (`a=1&&b=2`) are skipped.
    ///
    /// # Errors
    /// [`FormError::TooManyParams`] past [`MAX_PARAMS`].
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        let mut pairs = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            if pairs.len() == MAX_PARAMS {
                return Err(FormError::TooManyParams);
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs })
    }

    /// A form from pairs (tests, signing).
    #[must_use]
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Self {
            pairs: pairs
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }

    /// The first value of `name` (names are exact: Twilio's are case-sensitive).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in the order received.
    #[must_use]
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The text Twilio signs after the URL: names in byte order, each followed by its value;
    /// a repeated name contributes each distinct value once, values in byte order.
    #[must_use]
    pub fn signing_text(&self) -> String {
        let mut sorted: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // Rust compares `str` by bytes: UTF-8 byte order is code-point order, as Twilio sorts.
        sorted.sort_unstable();
        sorted.dedup();
        let mut text = String::new();
        for (name, value) in sorted {
            text.push_str(name);
            text.push_str(value);
        }
        text
    }
}

/// The first value of `name` in the query of `url` (after `?`, before any `#`).
#[must_use]
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .take(MAX_PARAMS)
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_in_order() {
        let form =
            Form::parse(b"Body=twilio-go+testing%21&To=%2B19253920364&&Empty=&NoValue").unwrap();
        assert_eq!(
            form.pairs(),
            [
                ("Body".to_owned(), "twilio-go testing!".to_owned()),
                ("To".to_owned(), "+19253920364".to_owned()),
                ("Empty".to_owned(), String::new()),
                ("NoValue".to_owned(), String::new()),
            ]
        );
        assert_eq!(form.get("To"), Some("+19253920364"));
        assert_eq!(form.get("to"), None);
        assert_eq!(form.get("Missing"), None);
    }

    #[test]
    fn non_utf8_bytes_are_replaced_not_refused() {
        let form = Form::parse(b"Body=%FF%FEok").unwrap();
        assert_eq!(form.get("Body"), Some("\u{fffd}\u{fffd}ok"));
    }

    #[test]
    fn the_parameter_count_is_capped() {
        let body = vec!["a=1"; MAX_PARAMS].join("&");
        assert_eq!(
            Form::parse(body.as_bytes()).unwrap().pairs().len(),
            MAX_PARAMS
        );
        let body = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(Form::parse(body.as_bytes()), Err(FormError::TooManyParams));
    }

    #[test]
    fn signing_text_sorts_names_and_distinct_values() {
        let form = Form::from_pairs([
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            form.signing_text(),
            "Digits1234Digits5678SidCA123SidAccountAC123"
        );
        // Byte order: upper case before lower case, `é` after ASCII.
        let form = Form::from_pairs([("b", "1"), ("B", "2"), ("é", "3"), ("a", "4")]);
        assert_eq!(form.signing_text(), "B2a4b1é3");
    }

    #[test]
    fn query_params_are_read_from_the_url() {
        let url = "https://h.example.com/channels/sms/status?x=1&delivery=dlv_%2Fa%2Bb+c#frag";
        assert_eq!(query_param(url, "delivery").as_deref(), Some("dlv_/a+b c"));
        assert_eq!(query_param(url, "x").as_deref(), Some("1"));
        assert_eq!(query_param(url, "frag"), None);
        assert_eq!(
            query_param("https://h.example.com/status", "delivery"),
            None
        );
    }
}
