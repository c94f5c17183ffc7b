//! Customer-facing system messages of a live conversation (design §2), localized by the session's
//! language and overridable in config under `[miaw.messages.<lang>]`.
//!
//! Texts may carry two placeholders, filled in one pass (a filled value is never scanned again,
//! so a rep named `{end_keyword}` shows literally):
//! - `{agent_name}`: the rep's display name, in `agentJoinedMessage`, `agentLeftMessage` and
//!   `transferMessage`. When the name is unknown, a text that needs it gives way to the
//!   language's built-in text, which never needs it (`agentJoinedMessage` has a nameless
//!   built-in variant: "An agent has joined the chat.").
//! - `{end_keyword}`: the word that ends the live chat, in any text; `endChatFromUserInstruction`
//!   must contain it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The config section these overrides live in (named in validation errors).
const SECTION: &str = "miaw.messages";

/// At most this many characters of a rep's display name are shown; control characters are dropped.
const MAX_AGENT_NAME_CHARS: usize = 80;

/// Longer language tags are malformed (BCP 47 tags in practice stay far below this).
const MAX_LANGUAGE_TAG_BYTES: usize = 64;

/// At most this many characters per override text (a chat message, not a document).
const MAX_OVERRIDE_CHARS: usize = 2_000;

/// A system message the customer receives during a live conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKey {
    LookingForAgent,
    AgentJoined,
    ConversationClosed,
    EndChatFromUserInstruction,
    AgentLeft,
    Transferred,
}

impl MessageKey {
    pub const ALL: [MessageKey; 6] = [
        MessageKey::LookingForAgent,
        MessageKey::AgentJoined,
        MessageKey::ConversationClosed,
        MessageKey::EndChatFromUserInstruction,
        MessageKey::AgentLeft,
        MessageKey::Transferred,
    ];

    /// The key's name in config and on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            MessageKey::LookingForAgent => "lookingForAgentMessage",
            MessageKey::AgentJoined => "agentJoinedMessage",
            MessageKey::ConversationClosed => "conversationClosedMessage",
            MessageKey::EndChatFromUserInstruction => "endChatFromUserInstruction",
            MessageKey::AgentLeft => "agentLeftMessage",
            MessageKey::Transferred => "transferMessage",
        }
    }

    pub fn from_wire_name(name: &str) -> Option<MessageKey> {
        MessageKey::ALL.into_iter().find(|k| k.wire_name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }

    fn allows(self, placeholder: Placeholder) -> bool {
        match placeholder {
            Placeholder::EndKeyword => true,
            Placeholder::AgentName => matches!(
                self,
                MessageKey::AgentJoined | MessageKey::AgentLeft | MessageKey::Transferred
            ),
        }
    }
}

/// A language with built-in texts. Config names it by [`Lang::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lang {
    En,
    Es,
    Fr,
    De,
    It,
    Pt,
    Nl,
    Pl,
    Tr,
    Ar,
    Ja,
    Ko,
    ZhCn,
    ZhTw,
    Ca,
}

impl Lang {
    pub const ALL: [Lang; 15] = [
        Lang::En,
        Lang::Es,
        Lang::Fr,
        Lang::De,
        Lang::It,
        Lang::Pt,
        Lang::Nl,
        Lang::Pl,
        Lang::Tr,
        Lang::Ar,
        Lang::Ja,
        Lang::Ko,
        Lang::ZhCn,
        Lang::ZhTw,
        Lang::Ca,
    ];

    /// The language's name in config (`[miaw.messages.zh_cn]`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::It => "it",
            Lang::Pt => "pt",
            Lang::Nl => "nl",
            Lang::Pl => "pl",
            Lang::Tr => "tr",
            Lang::Ar => "ar",
            Lang::Ja => "ja",
            Lang::Ko => "ko",
            Lang::ZhCn => "zh_cn",
            Lang::ZhTw => "zh_tw",
            Lang::Ca => "ca",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The language whose texts a session in `bcp47` gets: case-insensitive, `-` or `_` between
/// subtags, region and script ignored except for Chinese (`zh-Hant`, `zh-TW`, `zh-HK`, `zh-MO` →
/// `zh_tw`; other `zh` → `zh_cn`). Unknown, empty, malformed or over-long tags give `en`.
/// Linear in the tag, which is looked at only up to [`MAX_LANGUAGE_TAG_BYTES`].
pub fn language_for(bcp47: &str) -> Lang {
    if bcp47.len() > MAX_LANGUAGE_TAG_BYTES {
        return Lang::En;
    }
    let mut subtags = bcp47.split(['-', '_']);
    let primary = subtags.next().unwrap_or_default();
    let well_formed = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && bcp47
            .split(['-', '_'])
            .skip(1)
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !well_formed {
        return Lang::En;
    }
    let primary = primary.to_ascii_lowercase();
    if primary == "zh" {
        let mut region_says_traditional = None;
        for subtag in subtags {
            let subtag = subtag.to_ascii_lowercase();
            match subtag.as_str() {
                // A script says which characters the reader expects, whatever the region.
                "hant" => return Lang::ZhTw,
                "hans" => return Lang::ZhCn,
                "tw" | "hk" | "mo" => region_says_traditional = Some(true),
                "cn" | "sg" | "my" => region_says_traditional = Some(false),
                _ => {}
            }
        }
        return if region_says_traditional == Some(true) {
            Lang::ZhTw
        } else {
            Lang::ZhCn
        };
    }
    Lang::from_code(&primary)
        .filter(|l| !matches!(l, Lang::ZhCn | Lang::ZhTw))
        .unwrap_or(Lang::En)
}

/// `[miaw.messages]`: per-language overrides of the built-in texts, e.g.
/// `[miaw.messages.es] agentJoinedMessage = "{agent_name} te atiende ahora."`.
/// Languages are [`Lang::code`]s, keys are [`MessageKey::wire_name`]s; both are checked by
/// [`MessagesConfig::validate`]. Bounded: 15 languages × 6 keys × [`MAX_OVERRIDE_CHARS`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct MessagesConfig {
    pub overrides: BTreeMap<String, BTreeMap<String, String>>,
}

impl MessagesConfig {
    /// Names the first bad setting (`miaw.messages.<lang>.<key>`) and what is wrong with it.
    pub fn validate(&self) -> Result<(), String> {
        for (language, texts) in &self.overrides {
            if Lang::from_code(language).is_none() {
                let known: Vec<&str> = Lang::ALL.iter().map(|l| l.code()).collect();
                return Err(format!(
                    "{SECTION}.{language} is not a language with messages; use one of {}",
                    known.join(", ")
                ));
            }
            for (name, text) in texts {
                let setting = format!("{SECTION}.{language}.{name}");
                let Some(key) = MessageKey::from_wire_name(name) else {
                    let known: Vec<&str> = MessageKey::ALL.iter().map(|k| k.wire_name()).collect();
                    return Err(format!(
                        "{setting} is not a message; use one of {}",
                        known.join(", ")
                    ));
                };
                validate_text(&setting, key, text)?;
            }
        }
        Ok(())
    }
}

fn validate_text(setting: &str, key: MessageKey, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!(
            "{setting} is empty; write the text or remove the setting to use the built-in one"
        ));
    }
    if text.chars().count() > MAX_OVERRIDE_CHARS {
        return Err(format!(
            "{setting} is longer than {MAX_OVERRIDE_CHARS} characters; shorten it"
        ));
    }
    let mut has_end_keyword = false;
    for piece in Template::new(text) {
        match piece {
            Piece::Literal(_) => {}
            Piece::Placeholder(Ok(p)) if key.allows(p) => {
                has_end_keyword |= p == Placeholder::EndKeyword;
            }
            Piece::Placeholder(Ok(p)) => {
                return Err(format!(
                    "{setting} uses {{{}}}, which this message cannot fill; remove it",
                    p.name()
                ));
            }
            Piece::Placeholder(Err(name)) => {
                return Err(format!(
                    "{setting} uses the unknown placeholder {{{name}}}; use {{agent_name}} or {{end_keyword}}"
                ));
            }
        }
    }
    if key == MessageKey::EndChatFromUserInstruction && !has_end_keyword {
        return Err(format!(
            "{setting} must contain {{end_keyword}} so the customer learns the word that ends the chat"
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    AgentName,
    EndKeyword,
}

impl Placeholder {
    fn name(self) -> &'static str {
        match self {
            Placeholder::AgentName => "agent_name",
            Placeholder::EndKeyword => "end_keyword",
        }
    }
}

enum Piece<'a> {
    Literal(&'a str),
    /// `Err` carries an unknown name.
    Placeholder(Result<Placeholder, &'a str>),
}

/// Splits a text into literals and `{name}` placeholders (`name` = lowercase ASCII letters and
/// `_`). Any other brace is literal. One left-to-right pass; each byte is looked at a bounded
/// number of times.
struct Template<'a> {
    rest: &'a str,
}

impl<'a> Template<'a> {
    fn new(text: &'a str) -> Self {
        Template { rest: text }
    }
}

/// The placeholder at the start of `s` (which starts with `{`): its name and total length.
fn placeholder_at(s: &str) -> Option<(&str, usize)> {
    let body = &s[1..];
    let len = body
        .bytes()
        .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
        .count();
    (len > 0 && body.as_bytes().get(len) == Some(&b'}')).then(|| (&body[..len], len + 2))
}

impl<'a> Iterator for Template<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        if let Some((name, len)) = self
            .rest
            .starts_with('{')
            .then(|| placeholder_at(self.rest))
            .flatten()
        {
            self.rest = &self.rest[len..];
            let known = [Placeholder::AgentName, Placeholder::EndKeyword]
                .into_iter()
                .find(|p| p.name() == name);
            return Some(Piece::Placeholder(known.ok_or(name)));
        }
        // A literal runs up to the next brace that starts a placeholder; a brace that does not
        // is part of the literal.
        let mut end = self.rest.len();
        let mut from = usize::from(self.rest.starts_with('{'));
        while let Some(i) = self.rest[from..].find('{') {
            let at = from + i;
            if placeholder_at(&self.rest[at..]).is_some() {
                end = at;
                break;
            }
            from = at + 1;
        }
        let (literal, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(Piece::Literal(literal))
    }
}

/// The built-in texts, one row per [`Lang`] in [`Lang::ALL`] order, columns in [`MessageKey::ALL`]
/// order, then the nameless `agentJoinedMessage`.
const BUILT_IN: [[&str; 7]; 15] = [
    [
        "Please wait a moment while we connect you with an agent.",
        "{agent_name} has joined the chat.",
        "The chat has ended. Thank you for contacting us.",
        "To end the chat with the agent at any time, type {end_keyword}.",
        "The agent has left the chat. Please wait while we connect you with another agent.",
        "You are being transferred to another agent. Please wait a moment.",
        "An agent has joined the chat.",
    ],
    [
        "Espera un momento mientras te conectamos con un agente.",
        "{agent_name} se ha unido al chat.",
        "El chat ha finalizado. Gracias por contactarnos.",
        "Para terminar el chat con el agente en cualquier momento, escribe {end_keyword}.",
        "El agente ha salido del chat. Espera mientras te conectamos con otro agente.",
        "Te estamos transfiriendo a otro agente. Espera un momento.",
        "Un agente se ha unido al chat.",
    ],
    [
        "Veuillez patienter un instant, nous vous mettons en relation avec un conseiller.",
        "{agent_name} a rejoint la conversation.",
        "La conversation est terminée. Merci de nous avoir contactés.",
        "Pour mettre fin à la conversation avec le conseiller à tout moment, tapez {end_keyword}.",
        "Le conseiller a quitté la conversation. Veuillez patienter, nous vous mettons en relation avec un autre conseiller.",
        "Nous vous transférons vers un autre conseiller. Veuillez patienter un instant.",
        "Un conseiller a rejoint la conversation.",
    ],
    [
        "Bitte warten Sie einen Moment, wir verbinden Sie mit einem Mitarbeiter.",
        "{agent_name} ist dem Chat beigetreten.",
        "Der Chat wurde beendet. Vielen Dank für Ihre Nachricht.",
        "Um den Chat mit dem Mitarbeiter jederzeit zu beenden, geben Sie {end_keyword} ein.",
        "Der Mitarbeiter hat den Chat verlassen. Bitte warten Sie, wir verbinden Sie mit einem anderen Mitarbeiter.",
        "Sie werden an einen anderen Mitarbeiter weitergeleitet. Bitte warten Sie einen Moment.",
        "Ein Mitarbeiter ist dem Chat beigetreten.",
    ],
    [
        "Attendi un momento, ti stiamo mettendo in contatto con un operatore.",
        "{agent_name} è ora in chat con te.",
        "La chat è terminata. Grazie per averci contattato.",
        "Per terminare la chat con l'operatore in qualsiasi momento, scrivi {end_keyword}.",
        "L'operatore ha lasciato la chat. Attendi, ti stiamo mettendo in contatto con un altro operatore.",
        "Ti stiamo trasferendo a un altro operatore. Attendi un momento.",
        "Un operatore è ora in chat con te.",
    ],
    [
        "Aguarde um momento enquanto conectamos você a um atendente.",
        "{agent_name} entrou no chat.",
        "O chat foi encerrado. Obrigado por entrar em contato.",
        "Para encerrar o chat com o atendente a qualquer momento, digite {end_keyword}.",
        "O atendente saiu do chat. Aguarde enquanto conectamos você a outro atendente.",
        "Estamos transferindo você para outro atendente. Aguarde um momento.",
        "Um atendente entrou no chat.",
    ],
    [
        "Een moment geduld, we verbinden je met een medewerker.",
        "{agent_name} neemt nu deel aan de chat.",
        "De chat is beëindigd. Bedankt voor je bericht.",
        "Typ {end_keyword} om de chat met de medewerker op elk moment te beëindigen.",
        "De medewerker heeft de chat verlaten. Een moment geduld, we verbinden je met een andere medewerker.",
        "Je wordt doorverbonden met een andere medewerker. Een moment geduld.",
        "Een medewerker neemt nu deel aan de chat.",
    ],
    [
        "Prosimy o chwilę cierpliwości, łączymy Cię z konsultantem.",
        "{agent_name} dołącza do czatu.",
        "Czat został zakończony. Dziękujemy za kontakt.",
        "Aby w dowolnej chwili zakończyć czat z konsultantem, wpisz {end_keyword}.",
        "Konsultant opuścił czat. Prosimy czekać, łączymy Cię z innym konsultantem.",
        "Przekierowujemy Cię do innego konsultanta. Prosimy o chwilę cierpliwości.",
        "Konsultant dołącza do czatu.",
    ],
    [
        "Sizi bir temsilciye bağlarken lütfen biraz bekleyin.",
        "{agent_name} sohbete katıldı.",
        "Sohbet sona erdi. Bizimle iletişime geçtiğiniz için teşekkür ederiz.",
        "Temsilciyle sohbeti istediğiniz zaman sonlandırmak için {end_keyword} yazın.",
        "Temsilci sohbetten ayrıldı. Sizi başka bir temsilciye bağlarken lütfen bekleyin.",
        "Başka bir temsilciye aktarılıyorsunuz. Lütfen biraz bekleyin.",
        "Bir temsilci sohbete katıldı.",
    ],
    [
        "يرجى الانتظار قليلاً بينما نوصلك بأحد الموظفين.",
        "انضم {agent_name} إلى المحادثة.",
        "انتهت المحادثة. شكراً لتواصلك معنا.",
        "لإنهاء المحادثة مع الموظف في أي وقت، اكتب {end_keyword}.",
        "غادر الموظف المحادثة. يرجى الانتظار بينما نوصلك بموظف آخر.",
        "يتم تحويلك إلى موظف آخر. يرجى الانتظار قليلاً.",
        "انضم أحد الموظفين إلى المحادثة.",
    ],
    [
        "担当者におつなぎしますので、少々お待ちください。",
        "{agent_name}がチャットに参加しました。",
        "チャットを終了しました。お問い合わせいただきありがとうございました。",
        "担当者とのチャットを終了するには、いつでも「{end_keyword}」と入力してください。",
        "担当者がチャットから退出しました。別の担当者におつなぎしますので、少々お待ちください。",
        "別の担当者に転送しています。少々お待ちください。",
        "担当者がチャットに参加しました。",
    ],
    [
        "상담원과 연결해 드리는 중입니다. 잠시만 기다려 주세요.",
        "{agent_name}님이 채팅에 참여했습니다.",
        "채팅이 종료되었습니다. 문의해 주셔서 감사합니다.",
        "언제든지 상담원과의 채팅을 종료하려면 {end_keyword}을(를) 입력하세요.",
        "상담원이 채팅에서 나갔습니다. 다른 상담원과 연결해 드리는 중이니 잠시만 기다려 주세요.",
        "다른 상담원에게 연결하고 있습니다. 잠시만 기다려 주세요.",
        "상담원이 채팅에 참여했습니다.",
    ],
    [
        "请稍候，我们正在为您转接人工客服。",
        "{agent_name} 已加入对话。",
        "对话已结束。感谢您的咨询。",
        "如需随时结束与客服的对话，请输入 {end_keyword}。",
        "客服已离开对话。请稍候，我们正在为您转接其他客服。",
        "正在为您转接其他客服，请稍候。",
        "客服已加入对话。",
    ],
    [
        "請稍候，我們正在為您轉接專人客服。",
        "{agent_name} 已加入對話。",
        "對話已結束。感謝您的洽詢。",
        "如需隨時結束與客服人員的對話，請輸入 {end_keyword}。",
        "客服人員已離開對話。請稍候，我們正在為您轉接其他客服人員。",
        "正在為您轉接其他客服人員，請稍候。",
        "客服人員已加入對話。",
    ],
    [
        "Espera un moment mentre et connectem amb un agent.",
        "{agent_name} s'ha unit al xat.",
        "El xat ha finalitzat. Gràcies per contactar-nos.",
        "Per finalitzar el xat amb l'agent en qualsevol moment, escriu {end_keyword}.",
        "L'agent ha sortit del xat. Espera mentre et connectem amb un altre agent.",
        "T'estem transferint a un altre agent. Espera un moment.",
        "Un agent s'ha unit al xat.",
    ],
];

/// Column of the nameless `agentJoinedMessage` in [`BUILT_IN`].
const NAMELESS_AGENT_JOINED: usize = 6;

/// The texts a gateway sends, built once from config. Holds at most 15 × 6 overrides.
#[derive(Clone, Debug)]
pub struct LocalizedMessages {
    overrides: [[Option<String>; 6]; 15],
}

impl LocalizedMessages {
    /// Takes the overrides of a config that passed [`MessagesConfig::validate`]; an unknown
    /// language or key (possible only without validation) is ignored.
    pub fn new(config: &MessagesConfig) -> Self {
        let mut overrides: [[Option<String>; 6]; 15] = Default::default();
        for (language, texts) in &config.overrides {
            let Some(lang) = Lang::from_code(language) else {
                continue;
            };
            for (name, text) in texts {
                if let Some(key) = MessageKey::from_wire_name(name) {
                    overrides[lang.index()][key.index()] = Some(text.clone());
                }
            }
        }
        LocalizedMessages { overrides }
    }

    /// The text of `key` for a session in `language` (a BCP 47 tag, see [`language_for`]): that
    /// language's override, else its built-in text. `agent_name` is the rep's display name when
    /// known (trimmed, control characters dropped, at most [`MAX_AGENT_NAME_CHARS`] shown);
    /// `end_keyword` is the configured end word. Placeholders are filled once, never re-expanded.
    pub fn text(
        &self,
        language: &str,
        key: MessageKey,
        agent_name: Option<&str>,
        end_keyword: &str,
    ) -> String {
        let lang = language_for(language);
        let agent_name = agent_name.map(clean_name).filter(|n| !n.is_empty());
        let template = self.overrides[lang.index()][key.index()]
            .as_deref()
            .unwrap_or(BUILT_IN[lang.index()][key.index()]);
        let template = if agent_name.is_none() && mentions_agent_name(template) {
            let column = if key == MessageKey::AgentJoined {
                NAMELESS_AGENT_JOINED
            } else {
                key.index()
            };
            BUILT_IN[lang.index()][column]
        } else {
            template
        };
        fill(template, agent_name.as_deref().unwrap_or(""), end_keyword)
    }
}

fn mentions_agent_name(template: &str) -> bool {
    Template::new(template).any(|p| matches!(p, Piece::Placeholder(Ok(Placeholder::AgentName))))
}

fn clean_name(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_AGENT_NAME_CHARS)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn fill(template: &str, agent_name: &str, end_keyword: &str) -> String {
    let mut out = String::with_capacity(template.len() + agent_name.len() + end_keyword.len());
    for piece in Template::new(template) {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Placeholder(Ok(Placeholder::AgentName)) => out.push_str(agent_name),
            Piece::Placeholder(Ok(Placeholder::EndKeyword)) => out.push_str(end_keyword),
            // Validation refuses unknown placeholders in overrides; shown as written if one slips by.
            Piece::Placeholder(Err(name)) => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_like: &[(&str, &str, &str)]) -> MessagesConfig {
        let mut overrides: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (lang, key, text) in toml_like {
            overrides
                .entry((*lang).to_owned())
                .or_default()
                .insert((*key).to_owned(), (*text).to_owned());
        }
        MessagesConfig { overrides }
    }

    #[test]
    fn wire_names_are_the_design_names() {
        let names: Vec<&str> = MessageKey::ALL.iter().map(|k| k.wire_name()).collect();
        assert_eq!(
            names,
            [
                "lookingForAgentMessage",
                "agentJoinedMessage",
                "conversationClosedMessage",
                "endChatFromUserInstruction",
                "agentLeftMessage",
                "transferMessage"
            ]
        );
        for key in MessageKey::ALL {
            assert_eq!(MessageKey::from_wire_name(key.wire_name()), Some(key));
        }
        assert_eq!(MessageKey::from_wire_name("AgentJoinedMessage"), None);
    }

    #[test]
    fn every_built_in_text_is_present_and_uses_only_its_placeholders() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
            for key in MessageKey::ALL {
                let text = BUILT_IN[lang.index()][key.index()];
                let setting = format!("built-in {}.{}", lang.code(), key.wire_name());
                assert_eq!(validate_text(&setting, key, text), Ok(()), "{setting}");
            }
            let joined = BUILT_IN[lang.index()][MessageKey::AgentJoined.index()];
            assert!(joined.contains("{agent_name}"), "{}", lang.code());
            let nameless = BUILT_IN[lang.index()][NAMELESS_AGENT_JOINED];
            assert!(!nameless.contains('{'), "{}", lang.code());
            for key in [MessageKey::AgentLeft, MessageKey::Transferred] {
                // An override needing the name gives way to these when the name is unknown.
                assert!(!mentions_agent_name(BUILT_IN[lang.index()][key.index()]));
            }
        }
    }

    #[test]
    fn language_for_maps_tags_to_languages() {
        let cases = [
            ("en", Lang::En),
            ("en-US", Lang::En),
            ("es", Lang::Es),
            ("es-MX", Lang::Es),
            ("ES_mx", Lang::Es),
            ("pt-BR", Lang::Pt),
            ("pt_PT", Lang::Pt),
            ("fr-CA", Lang::Fr),
            ("de-CH", Lang::De),
            ("it", Lang::It),
            ("nl-BE", Lang::Nl),
            ("pl", Lang::Pl),
            ("tr-TR", Lang::Tr),
            ("ar-EG", Lang::Ar),
            ("ja-JP", Lang::Ja),
            ("ko-KR", Lang::Ko),
            ("ca-ES", Lang::Ca),
            ("zh", Lang::ZhCn),
            ("zh-CN", Lang::ZhCn),
            ("zh_cn", Lang::ZhCn),
            ("zh-Hans", Lang::ZhCn),
            ("zh-SG", Lang::ZhCn),
            ("zh-Hans-HK", Lang::ZhCn),
            ("zh-TW", Lang::ZhTw),
            ("zh_tw", Lang::ZhTw),
            ("zh-Hant", Lang::ZhTw),
            ("ZH-HANT-CN", Lang::ZhTw),
            ("zh-HK", Lang::ZhTw),
            ("zh-MO", Lang::ZhTw),
        ];
        for (tag, lang) in cases {
            assert_eq!(language_for(tag), lang, "{tag}");
        }
    }

    #[test]
    fn language_for_falls_back_to_english_on_unknown_or_malformed_tags() {
        let long = format!("es-{}", "a".repeat(100));
        let huge = "es-".repeat(100_000);
        for tag in [
            "",
            "sv-SE",
            "xx",
            "e",
            "español",
            "es--MX",
            "es-",
            "-es",
            "es MX",
            "es-MX!",
            "1s",
            "zh_cn_",
            "es-toolongsubtag",
            &long,
            &huge,
        ] {
            assert_eq!(language_for(tag), Lang::En, "{tag:?}");
        }
    }

    #[test]
    fn text_picks_the_sessions_language_and_falls_back_to_english() {
        let messages = LocalizedMessages::new(&MessagesConfig::default());
        assert_eq!(
            messages.text(
                "es-MX",
                MessageKey::ConversationClosed,
                None,
                "endagentchat"
            ),
            "El chat ha finalizado. Gracias por contactarnos."
        );
        assert_eq!(
            messages.text("sv-SE", MessageKey::LookingForAgent, None, "endagentchat"),
            "Please wait a moment while we connect you with an agent."
        );
        assert_eq!(
            messages.text("fr", MessageKey::EndChatFromUserInstruction, None, "stop"),
            "Pour mettre fin à la conversation avec le conseiller à tout moment, tapez stop."
        );
    }

    #[test]
    fn the_reps_name_fills_agent_joined_and_an_unknown_name_gives_the_nameless_text() {
        let messages = LocalizedMessages::new(&MessagesConfig::default());
        let joined = |lang, name| messages.text(lang, MessageKey::AgentJoined, name, "x");
        assert_eq!(joined("en", Some("Dana")), "Dana has joined the chat.");
        assert_eq!(
            joined("de-DE", Some("  Jörg\u{7} ")),
            "Jörg ist dem Chat beigetreten."
        );
        assert_eq!(joined("en", None), "An agent has joined the chat.");
        assert_eq!(joined("en", Some("   ")), "An agent has joined the chat.");
        assert_eq!(joined("zh-TW", None), "客服人員已加入對話。");
        let long_name = "N".repeat(500);
        assert_eq!(
            joined("en", Some(&long_name)),
            format!("{} has joined the chat.", "N".repeat(MAX_AGENT_NAME_CHARS))
        );
    }

    #[test]
    fn placeholders_inside_the_reps_name_stay_literal() {
        let messages = LocalizedMessages::new(&config(&[(
            "en",
            "agentJoinedMessage",
            "{agent_name} is here. Type {end_keyword} to leave.",
        )]));
        assert_eq!(
            messages.text("en", MessageKey::AgentJoined, Some("{end_keyword}"), "bye"),
            "{end_keyword} is here. Type bye to leave."
        );
        assert_eq!(
            messages.text(
                "en",
                MessageKey::AgentJoined,
                Some("{agent_name}{x"),
                "{agent_name}"
            ),
            "{agent_name}{x is here. Type {agent_name} to leave."
        );
    }

    #[test]
    fn overrides_apply_to_their_language_only() {
        let messages = LocalizedMessages::new(&config(&[
            ("es", "agentJoinedMessage", "{agent_name} te atiende ahora."),
            ("es", "transferMessage", "Un momento, por favor."),
        ]));
        assert_eq!(
            messages.text("es-AR", MessageKey::AgentJoined, Some("Ana"), "fin"),
            "Ana te atiende ahora."
        );
        assert_eq!(
            messages.text("es", MessageKey::Transferred, None, "fin"),
            "Un momento, por favor."
        );
        // Not overridden in es: the built-in es text; other languages untouched.
        assert_eq!(
            messages.text("es", MessageKey::AgentLeft, None, "fin"),
            "El agente ha salido del chat. Espera mientras te conectamos con otro agente."
        );
        assert_eq!(
            messages.text("ca", MessageKey::AgentJoined, Some("Ana"), "fin"),
            "Ana s'ha unit al xat."
        );
        // An override that needs the name falls back to the nameless built-in text without one.
        assert_eq!(
            messages.text("es", MessageKey::AgentJoined, None, "fin"),
            "Un agente se ha unido al chat."
        );
    }

    #[test]
    fn an_override_needing_an_unknown_name_gives_way_to_the_built_in_text() {
        let messages = LocalizedMessages::new(&config(&[
            ("en", "agentLeftMessage", "{agent_name} left."),
            ("en", "transferMessage", "{agent_name} takes over."),
        ]));
        assert_eq!(
            messages.text("en", MessageKey::AgentLeft, Some("Sam"), "x"),
            "Sam left."
        );
        assert_eq!(
            messages.text("en", MessageKey::AgentLeft, None, "x"),
            "The agent has left the chat. Please wait while we connect you with another agent."
        );
        assert_eq!(
            messages.text("en", MessageKey::Transferred, None, "x"),
            "You are being transferred to another agent. Please wait a moment."
        );
    }

    #[test]
    fn braces_that_are_not_placeholders_are_literal() {
        let messages = LocalizedMessages::new(&config(&[(
            "en",
            "conversationClosedMessage",
            "Bye {:} {{end_keyword}} {Agent} {",
        )]));
        assert_eq!(
            messages.text("en", MessageKey::ConversationClosed, None, "stop"),
            "Bye {:} {stop} {Agent} {"
        );
    }

    #[test]
    fn config_deserializes_from_the_toml_shape() {
        use figment::providers::{Format, Toml};
        #[derive(Deserialize)]
        struct Root {
            miaw: Miaw,
        }
        #[derive(Deserialize)]
        struct Miaw {
            #[serde(default)]
            messages: MessagesConfig,
        }
        let toml = r#"
            [miaw.messages.es]
            agentJoinedMessage = "{agent_name} te atiende."
            [miaw.messages.zh_tw]
            transferMessage = "請稍候。"
        "#;
        let root: Root = figment::Figment::from(Toml::string(toml))
            .extract()
            .expect("parses");
        assert_eq!(
            root.miaw.messages,
            config(&[
                ("es", "agentJoinedMessage", "{agent_name} te atiende."),
                ("zh_tw", "transferMessage", "請稍候。"),
            ])
        );
        assert_eq!(root.miaw.messages.validate(), Ok(()));
        let empty: Root = figment::Figment::from(Toml::string("[miaw]"))
            .extract()
            .expect("parses");
        assert_eq!(empty.miaw.messages, MessagesConfig::default());
        assert_eq!(MessagesConfig::default().validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let too_long = "a".repeat(MAX_OVERRIDE_CHARS + 1);
        let cases: [(&str, &str, &str, &str); 8] = [
            (
                "sv",
                "agentJoinedMessage",
                "Hej",
                "miaw.messages.sv is not a language",
            ),
            (
                "zh-CN",
                "agentJoinedMessage",
                "x",
                "miaw.messages.zh-CN is not a language",
            ),
            (
                "es",
                "agentJoined",
                "x",
                "miaw.messages.es.agentJoined is not a message",
            ),
            (
                "es",
                "transferMessage",
                " ",
                "miaw.messages.es.transferMessage is empty",
            ),
            (
                "es",
                "transferMessage",
                &too_long,
                "miaw.messages.es.transferMessage is longer",
            ),
            (
                "en",
                "lookingForAgentMessage",
                "Hi {name}",
                "miaw.messages.en.lookingForAgentMessage uses the unknown placeholder {name}",
            ),
            (
                "en",
                "conversationClosedMessage",
                "Bye from {agent_name}",
                "miaw.messages.en.conversationClosedMessage uses {agent_name}, which this message cannot fill",
            ),
            (
                "en",
                "endChatFromUserInstruction",
                "Type stop to stop.",
                "miaw.messages.en.endChatFromUserInstruction must contain {end_keyword}",
            ),
        ];
        for (lang, key, text, expected) in cases {
            let err = config(&[(lang, key, text)]).validate().expect_err(expected);
            assert!(err.starts_with(expected), "{err}");
        }
    }
}
