//! Keywords a customer texts to the channel itself rather than to the rep: opting out
//! (`STOP`), opting back in (`START`) and asking for help (`HELP`). Matched on the whole
//! message, ignoring case and surrounding whitespace and punctuation, as carriers do.

use serde::Deserialize;

/// What a customer's message asks of the channel, when it is a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyword {
    /// Stop all messages: ends the live session; nothing is sent until they opt in again.
    OptOut,
    /// Messages are welcome again.
    OptIn,
    /// The configured help text is answered.
    Help,
}

/// `[channels.<name>.keywords]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeywordConfig {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
    pub help: Vec<String>,
    /// The answer to a help keyword.
    pub help_text: String,
}

impl Default for KeywordConfig {
    /// The keywords US carriers and Twilio's Advanced Opt-Out honour.
    fn default() -> Self {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect();
        Self {
            opt_out: words(&[
                "STOP",
                "STOPALL",
                "UNSUBSCRIBE",
                "CANCEL",
                "END",
                "QUIT",
                "OPTOUT",
                "REVOKE",
            ]),
            opt_in: words(&["START", "UNSTOP", "YES"]),
            help: words(&["HELP", "INFO"]),
            help_text: "You are talking to our support team. Reply STOP to stop messages, \
                        START to receive them again."
                .to_owned(),
        }
    }
}

impl KeywordConfig {
    /// The keyword `text` is, if it is one: the whole message, compared without case,
    /// surrounding whitespace or trailing punctuation (`Stop!` is `STOP`).
    #[must_use]
    pub fn classify(&self, text: &str) -> Option<Keyword> {
        let word = text
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_punctuation())
            .trim();
        if word.is_empty() || word.len() > 32 {
            return None;
        }
        let is = |list: &[String]| list.iter().any(|k| k.trim().eq_ignore_ascii_case(word));
        if is(&self.opt_out) {
            Some(Keyword::OptOut)
        } else if is(&self.opt_in) {
            Some(Keyword::OptIn)
        } else if is(&self.help) {
            Some(Keyword::Help)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_messages_match_ignoring_case_space_and_punctuation() {
        let k = KeywordConfig::default();
        assert_eq!(k.classify("STOP"), Some(Keyword::OptOut));
        assert_eq!(k.classify("  stop! "), Some(Keyword::OptOut));
        assert_eq!(k.classify("Unsubscribe."), Some(Keyword::OptOut));
        assert_eq!(k.classify("start"), Some(Keyword::OptIn));
        assert_eq!(k.classify("Help?"), Some(Keyword::Help));
    }

    #[test]
    fn keywords_inside_sentences_are_ordinary_messages() {
        let k = KeywordConfig::default();
        assert_eq!(k.classify("please stop the order"), None);
        assert_eq!(k.classify("I need help"), None);
        assert_eq!(k.classify(""), None);
        assert_eq!(k.classify("!!!"), None);
        // Non-ASCII case folding does not make a keyword (no `ſtop` → `STOP`).
        assert_eq!(k.classify("ſtop"), None);
    }

    #[test]
    fn configured_lists_replace_the_defaults() {
        let k: KeywordConfig =
            serde_json::from_value(serde_json::json!({"opt_out": ["ARRET"], "help": []})).unwrap();
        assert_eq!(k.classify("arret"), Some(Keyword::OptOut));
        assert_eq!(k.classify("STOP"), None);
        assert_eq!(k.classify("HELP"), None);
        assert_eq!(k.classify("START"), Some(Keyword::OptIn));
    }
}
