//! Origin allowlist matching for publishable keys.

/// `pattern` is an exact origin (`https://app.example.com[:port]`) or a one-level wildcard
/// (`https://*.example.com`). Scheme and port compare exactly; a wildcard matches exactly
/// one DNS label, never the apex and never two levels.
pub fn matches(pattern: &str, origin: &str) -> bool {
    let Some((p_scheme, p_host)) = pattern.split_once("://") else {
        return false;
    };
    let Some((o_scheme, o_host)) = origin.split_once("://") else {
        return false;
    };
    if p_scheme != o_scheme {
        return false;
    }
    let Some(rest) = p_host.strip_prefix("*.") else {
        return p_host.eq_ignore_ascii_case(o_host);
    };
    let Some((label, o_rest)) = o_host.split_once('.') else {
        return false;
    };
    !label.is_empty()
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && o_rest.eq_ignore_ascii_case(rest)
}

/// Is this text an allowlist entry we can honour? (Checked at key issuance.)
pub fn is_valid_pattern(pattern: &str) -> bool {
    let Some((scheme, host)) = pattern.split_once("://") else {
        return false;
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains('*')
        && !host.contains('/')
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins() {
        assert!(matches("https://app.example.com", "https://app.example.com"));
        assert!(!matches("https://app.example.com", "http://app.example.com"));
        assert!(!matches("https://app.example.com", "https://app.example.com:8443"));
        assert!(matches("http://localhost:3000", "http://localhost:3000"));
        assert!(!matches("http://localhost:3000", "http://localhost:3001"));
    }

    #[test]
    fn wildcard_is_exactly_one_level() {
        let p = "https://*.example.com";
        assert!(matches(p, "https://a.example.com"));
        assert!(!matches(p, "https://a.b.example.com"));
        assert!(!matches(p, "https://example.com"));
        assert!(!matches(p, "https://.example.com"));
        assert!(!matches(p, "http://a.example.com"));
        assert!(!matches(p, "https://a.example.com:444"));
        assert!(!matches(p, "https://aexample.com"));
    }

    #[test]
    fn pattern_validation() {
        assert!(is_valid_pattern("https://*.example.com"));
        assert!(is_valid_pattern("http://localhost:3000"));
        assert!(!is_valid_pattern("example.com"));
        assert!(!is_valid_pattern("https://*.*.example.com"));
        assert!(!is_valid_pattern("ftp://x"));
        assert!(!is_valid_pattern("https://a.com/path"));
    }
}
