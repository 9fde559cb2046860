//! Tracing setup, the metrics registry, masking of personal data.
//!
//! Architecture Invariant: psn_no, certno, names and phone numbers never reach a log line or a
//! metric label in clear; use [`mask`].

pub mod metrics;

/// Installs the tracing subscriber (`RUST_LOG`, default `info`) on stderr. Safe to call twice.
/// Colour (ANSI escapes) only when stderr is a terminal: a file, a pipe or journald gets plain text.
pub fn init(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json { b.json().try_init() } else { b.try_init() };
}

/// Masks an identifier for logs and screens: first 4 and last 4 characters kept (`4300******5678`).
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_the_middle() {
        assert_eq!(super::mask("43000011000000000012345678"), "4300******************5678");
        assert_eq!(super::mask("1234"), "****");
    }
}
