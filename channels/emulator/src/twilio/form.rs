//! A parsed `application/x-www-form-urlencoded` body, keeping repeated names and order.

/// Form parameters in the order received.
#[derive(Debug, Clone, Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Self {
        Form {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The first value of `name`, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Encodes `pairs` as a form body.
pub(crate) fn encode(pairs: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_repeats_and_skips_empty() {
        let f = Form::parse(b"To=%2B1555&MediaUrl=a&MediaUrl=b&Body=&MediaUrl=");
        assert_eq!(f.get("To"), Some("+1555"));
        assert_eq!(f.get("Body"), None);
        assert_eq!(f.all("MediaUrl"), vec!["a", "b"]);
        let pairs = vec![("Body".to_string(), "a b&c".to_string())];
        assert_eq!(encode(&pairs), "Body=a+b%26c");
    }
}
