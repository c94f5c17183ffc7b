//! A small `multipart/form-data` reader for `sendFile`: the body is already in memory (bounded
//! by the server's body limit); parsing is one pass over it. The boundary is at most 70
//! characters (RFC 2046), so the delimiter search is linear in the body; at most [`MAX_PARTS`]
//! parts are read.

/// Parts read from one body at most.
pub(crate) const MAX_PARTS: usize = 16;

/// One part: its form name, file name, content type and bytes.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Result<String, String> {
    let mut params = content_type.split(';');
    let kind = params.next().unwrap_or_default().trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err("Send the file as multipart/form-data.".into());
    }
    for p in params {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("boundary")
        {
            let b = v.trim().trim_matches('"').to_string();
            if b.is_empty() || b.len() > 70 {
                return Err("The multipart boundary must be 1 to 70 characters.".into());
            }
            return Ok(b);
        }
    }
    Err("The multipart content type has no boundary.".into())
}

/// A header parameter (`name="x"`) of a `Content-Disposition` value.
fn param(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits a multipart body into its parts.
pub(crate) fn parse<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{}", boundary(content_type)?);
    let next_delimiter = format!("\r\n{delimiter}");
    let malformed = || "Malformed multipart body.".to_string();
    let mut pos = find(body, delimiter.as_bytes(), 0).ok_or_else(malformed)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(malformed());
        }
        pos += 2;
        if parts.len() == MAX_PARTS {
            return Err(format!("At most {MAX_PARTS} multipart parts."));
        }
        let head_end = find(body, b"\r\n\r\n", pos).ok_or_else(malformed)?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|_| malformed())?;
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            body: &[],
        };
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                part.name = param(v, "name").unwrap_or_default();
                part.filename = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(v.trim().to_string());
            }
        }
        let start = head_end + 4;
        let end = find(body, next_delimiter.as_bytes(), start).ok_or_else(malformed)?;
        part.body = &body[start..end];
        parts.push(part);
        pos = end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_and_refuses_garbage() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"messageEntry\"\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"fileData\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";
        let parts = parse("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "messageEntry");
        assert_eq!(parts[0].body, b"{\"a\":1}");
        assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].body, b"\x89PNG");
        assert!(parse("application/json", body).is_err());
        assert!(parse("multipart/form-data; boundary=XyZ", b"--XyZ\r\nno end").is_err());
    }
}
