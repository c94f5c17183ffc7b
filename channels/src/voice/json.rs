//! Reading the JSON formats: typed accessors whose errors name the JSON path, times in
//! seconds (strings or numbers) and milliseconds, and the size bound on the whole content.

use serde_json::{Map, Value};

use super::fragments::{MAX_OFFSET_MS, invalid, too_large};
use crate::ChannelError;

/// The largest `voice_transcript.content` accepted, in bytes of compact JSON (or of WebVTT
/// text).
pub const MAX_CONTENT_BYTES: usize = 5 * 1024 * 1024;

/// Refuses content whose compact JSON is over [`MAX_CONTENT_BYTES`]; stops writing at the
/// limit, so the check is bounded whatever the content.
pub(crate) fn check_size(content: &Value) -> Result<(), ChannelError> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            if self.0 > MAX_CONTENT_BYTES {
                return Err(std::io::Error::other("too large"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Counter(0), content).map_err(|_| {
        too_large(format!(
            "more than {} MiB of JSON",
            MAX_CONTENT_BYTES / (1024 * 1024)
        ))
    })
}

/// A key's value, `None` when absent or `null`.
pub(crate) fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn object(
    value: &Value,
    path: impl FnOnce() -> String,
) -> Result<&Map<String, Value>, ChannelError> {
    value
        .as_object()
        .ok_or_else(|| invalid(path(), "expected an object"))
}

pub(crate) fn array(
    value: &Value,
    path: impl FnOnce() -> String,
) -> Result<&[Value], ChannelError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(path(), "expected a list"))
}

pub(crate) fn string(value: &Value, path: impl FnOnce() -> String) -> Result<&str, ChannelError> {
    value
        .as_str()
        .ok_or_else(|| invalid(path(), "expected a string"))
}

/// A required key's value.
pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: impl FnOnce() -> String,
) -> Result<&'a Value, ChannelError> {
    get(obj, key).ok_or_else(|| invalid(path(), format!("`{key}` is missing")))
}

/// A job status, when the output has one, must be the finished one (`COMPLETED`,
/// `completed`): an unfinished job has no transcript yet.
pub(crate) fn check_status(
    obj: &Map<String, Value>,
    key: &str,
    done: &str,
) -> Result<(), ChannelError> {
    match get(obj, key) {
        None => Ok(()),
        Some(Value::String(s)) if s == done => Ok(()),
        Some(_) => Err(invalid(
            key,
            format!("the transcription job is not finished (expected {done:?})"),
        )),
    }
}

/// A time in seconds, as a JSON number or a decimal string (`"4.87"`), in milliseconds.
pub(crate) fn seconds(value: &Value, path: impl FnOnce() -> String) -> Result<u64, ChannelError> {
    let ms = match value {
        Value::String(s) => decimal_seconds(s),
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s * 1000.0 <= MAX_OFFSET_MS as f64)
            .map(|s| (s * 1000.0).round() as u64),
        _ => None,
    };
    ms.filter(|&ms| ms <= MAX_OFFSET_MS).ok_or_else(|| {
        invalid(
            path(),
            "expected a time in seconds, such as 4.87 or \"4.87\", of at most 7 days",
        )
    })
}

/// A time in whole milliseconds (a non-negative JSON integer).
pub(crate) fn millis(value: &Value, path: impl FnOnce() -> String) -> Result<u64, ChannelError> {
    value
        .as_u64()
        .or_else(|| {
            // Some producers write integral floats (`1520.0`).
            value
                .as_f64()
                .filter(|f| {
                    f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f <= MAX_OFFSET_MS as f64
                })
                .map(|f| f as u64)
        })
        .filter(|&ms| ms <= MAX_OFFSET_MS)
        .ok_or_else(|| {
            invalid(
                path(),
                "expected a time in whole milliseconds, of at most 7 days",
            )
        })
}

/// `"4.87"` → 4870: digits, optionally a point and more digits (milliseconds truncated).
fn decimal_seconds(s: &str) -> Option<u64> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 9
        || fraction.len() > 12
        || !digits(whole)
        || !digits(fraction)
    {
        return None;
    }
    if s.ends_with('.') {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    whole.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn here() -> String {
        "results.items[0].start_time".to_owned()
    }

    #[test]
    fn seconds_as_strings_or_numbers() {
        assert_eq!(seconds(&json!("4.87"), here), Ok(4_870));
        assert_eq!(seconds(&json!("12"), here), Ok(12_000));
        assert_eq!(seconds(&json!("0.0015"), here), Ok(1));
        assert_eq!(seconds(&json!(4.87), here), Ok(4_870));
        assert_eq!(seconds(&json!(0), here), Ok(0));
        for bad in [
            json!("-1"),
            json!("1e3"),
            json!(".5"),
            json!("5."),
            json!(" 5"),
            json!("NaN"),
            json!(""),
            json!("99999999999"),
            json!(-0.5),
            json!(1e300),
            json!(true),
            json!(null),
        ] {
            let err = seconds(&bad, here).unwrap_err();
            assert_eq!(err.code(), "invalid_voice_transcript", "{bad}");
            assert!(
                err.to_string().contains("results.items[0].start_time"),
                "{err}"
            );
        }
    }

    #[test]
    fn millis_are_whole() {
        assert_eq!(millis(&json!(1520), here), Ok(1_520));
        assert_eq!(millis(&json!(1520.0), here), Ok(1_520));
        assert!(millis(&json!(1520.5), here).is_err());
        assert!(millis(&json!(-1), here).is_err());
        assert!(millis(&json!("1520"), here).is_err());
        assert!(millis(&json!(MAX_OFFSET_MS + 1), here).is_err());
    }

    #[test]
    fn size_is_bounded() {
        assert!(check_size(&json!({"a": "b".repeat(1000)})).is_ok());
        let big = json!([
            "x".repeat(MAX_CONTENT_BYTES / 2),
            "y".repeat(MAX_CONTENT_BYTES / 2)
        ]);
        let err = check_size(&big).unwrap_err();
        assert_eq!(err.code(), "voice_transcript_too_large");
        assert_eq!(err.field().as_deref(), Some("voice_transcript.content"));
    }

    #[test]
    fn unfinished_jobs_are_refused() {
        let done = json!({"status": "COMPLETED"});
        assert!(check_status(done.as_object().unwrap(), "status", "COMPLETED").is_ok());
        let running = json!({"status": "IN_PROGRESS"});
        let err = check_status(running.as_object().unwrap(), "status", "COMPLETED").unwrap_err();
        assert!(err.to_string().contains("not finished"), "{err}");
    }
}
