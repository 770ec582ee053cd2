//! What the checks of every section share: where a problem is reported, and the values
//! (durations, sizes, header names, `${NAME}` references) that several sections hold.

use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawConfig;
use crate::diagnostic::{Diagnostics, FileError, Position};

/// Headers that describe one hop or the body, which the gateway sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "expect",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The file being checked and the problems found in it so far, in the order they were found.
pub(super) struct Check<'a> {
    path: &'a Path,
    text: &'a str,
    /// Directory relative paths are resolved against.
    pub(super) base_dir: &'a Path,
    diags: Diagnostics,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Check<'a> {
    pub(super) fn new(
        path: &'a Path,
        text: &'a str,
        base_dir: &'a Path,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Check {
            path,
            text,
            base_dir,
            diags: Diagnostics::default(),
            env,
        }
    }

    /// Reports `message` at the start of `span`.
    pub(super) fn at(&mut self, span: Range<usize>, message: String) {
        self.diags.push(self.path, self.text, span.start, message);
    }

    /// The position of byte `offset`, for values whose errors come later (at build).
    pub(super) fn position(&self, offset: usize) -> Position {
        Position::at_offset(self.path, self.text, offset)
    }

    /// Every problem found, or none.
    pub(super) fn finish(self) -> Result<(), FileError> {
        self.diags.into_result().map_err(FileError::Invalid)
    }

    pub(super) fn duration(
        &mut self,
        raw: &Option<Spanned<String>>,
        default: Duration,
    ) -> Duration {
        let Some(raw) = raw else { return default };
        match humantime::parse_duration(raw.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.at(
                    raw.span(),
                    format!(
                        "expected a positive duration such as \"500ms\", \"10s\" or \"1m\", not {:?}",
                        raw.get_ref()
                    ),
                );
                default
            }
        }
    }

    /// A count that must lie in `range`, reported under `key` when it does not.
    pub(super) fn within(
        &mut self,
        raw: &Spanned<u32>,
        key: &str,
        range: RangeInclusive<u32>,
    ) -> u32 {
        let value = *raw.get_ref();
        if !range.contains(&value) {
            self.at(
                raw.span(),
                format!(
                    "`{key}` must be from {} to {}, not {value}",
                    range.start(),
                    range.end()
                ),
            );
        }
        value
    }

    /// Replaces `${NAME}` with the environment variable `NAME`, so secrets stay out of the file.
    pub(super) fn interpolate(&self, value: &str) -> Result<String, String> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| "unclosed `${` in header value: write `${NAME}`".to_string())?;
            let name = &after[..end];
            out.push_str(&(self.env)(name).ok_or_else(|| {
                format!("environment variable `{name}` named in this header value is not set")
            })?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `"16MiB"`, `"512KiB"`, `"1GiB"` or a plain number of bytes.
pub(super) fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub(super) fn check_header_name(name: &str) -> Result<(), String> {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("`{name}` is not a valid HTTP header name"));
    }
    if reserved_header(name) {
        return Err(format!(
            "header `{name}` is set by the gateway itself and cannot be configured"
        ));
    }
    Ok(())
}

/// Whether the gateway sets header `name` (lower-case) itself: neither the config nor a plugin
/// may set it on an upstream request (a forged `content-length` or `host` would change what
/// the upstream receives).
pub(crate) fn reserved_header(name: &str) -> bool {
    RESERVED_HEADERS.contains(&name)
}

/// Reports `first` and every further syntax, type or unknown-key problem: the lines of each
/// problem are blanked out (positions stay put) and the file is read again. Stops at a problem
/// without a line of its own (a missing key, which blanking may itself have caused) or in a
/// table header, and after 50 problems. Value checks run once the structure is right.
pub(super) fn structure_problems(
    path: &Path,
    text: &str,
    first: toml::de::Error,
    diags: &mut Diagnostics,
) {
    let mut blanked = text.as_bytes().to_vec();
    let mut error = first;
    let mut last_start = None;
    for _ in 0..50 {
        let span = error.span();
        let at = span.as_ref().map_or(0, |s| s.start);
        let message = match error.message().trim() {
            // The parser says nothing of some characters it refuses (control characters).
            "" => unexpected_character(text, at),
            m => m.to_string(),
        };
        diags.push(path, text, at, message);
        let Some(span) = span else { break };
        if last_start == Some(span.start) {
            break;
        }
        last_start = Some(span.start);
        let start = blanked[..span.start]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = blanked[span.end.min(blanked.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(blanked.len(), |i| span.end + i);
        if blanked[start..end]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            == Some(&b'[')
        {
            break;
        }
        // Bytes become spaces (still valid UTF-8), newlines stay: every position keeps its place.
        for b in &mut blanked[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        let again = String::from_utf8(blanked.clone()).expect("ASCII spaces keep UTF-8 valid");
        match toml::from_str::<RawConfig>(&again) {
            Ok(_) => break,
            Err(e) if e.message().starts_with("missing field") => break,
            Err(e) => error = e,
        }
    }
}

/// What is wrong at byte `at` of `text` when the TOML parser gives no message.
fn unexpected_character(text: &str, at: usize) -> String {
    match text.get(at..).and_then(|rest| rest.chars().next()) {
        Some(c) if c.is_control() => format!(
            "the control character U+{:04X} is not allowed in TOML (tabs and line breaks are)",
            u32::from(c)
        ),
        Some(c) => format!("unexpected character {c:?}"),
        None => "unexpected end of the file".to_string(),
    }
}
