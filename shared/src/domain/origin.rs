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
    check_pattern(pattern).is_ok()
}

/// Why an allowlist entry is refused. The messages never repeat the entry (callers that
/// show it to its author, like hatchctl, add it themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginPatternError {
    #[error("an allowed origin must be http(s)://host[:port] or https://*.domain")]
    Malformed,
    #[error(
        "an allowed origin's wildcard must sit on a registrable domain, not a public suffix like *.com, *.co.uk or *.github.io"
    )]
    PublicSuffixWildcard,
}

/// The one place that decides whether an allowlist entry may be set (key issuance, key
/// management): the shape, and for a wildcard `*.REST`, that REST is a registrable domain
/// or below it per the Public Suffix List (ICANN and private sections, `psl` crate), so
/// `https://*.com`, `https://*.co.uk` and `https://*.github.io` are refused. A bare name
/// under an unknown TLD counts as a suffix (the list's default `*` rule): refused too.
pub fn check_pattern(pattern: &str) -> Result<(), OriginPatternError> {
    let Some((scheme, host)) = pattern.split_once("://") else {
        return Err(OriginPatternError::Malformed);
    };
    let wildcard = host.strip_prefix("*.");
    let host = wildcard.unwrap_or(host);
    let well_formed = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains('*')
        && !host.contains('/')
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !well_formed {
        return Err(OriginPatternError::Malformed);
    }
    if let Some(rest) = wildcard {
        let name = rest.split_once(':').map_or(rest, |(name, _port)| name).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if name.is_empty() || name.starts_with('.') || name.contains("..") {
            return Err(OriginPatternError::Malformed);
        }
        // `domain_str` is the registrable domain (one label above the public suffix), or
        // None when the name is itself a public suffix.
        if psl::domain_str(name).is_none() {
            return Err(OriginPatternError::PublicSuffixWildcard);
        }
    }
    Ok(())
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

    #[test]
    fn wildcards_on_public_suffixes_are_refused() {
        for p in [
            "https://*.com",
            "https://*.co.uk",
            "https://*.github.io",
            "https://*.COM",
            "https://*.com.",
            "https://*.com:8443",
            "http://*.co.uk",
            "https://*.s3.amazonaws.com",
            "https://*.localhost",
            "https://*..com",
            "https://*.",
        ] {
            assert!(!is_valid_pattern(p), "{p}");
        }
        for p in [
            "https://*.example.com",
            "https://*.example.co.uk",
            "https://*.foo.github.io",
            "https://*.Example.COM",
            "https://*.example.com:8443",
            "https://*.a.b.example.com",
            "https://*.shop.example",
        ] {
            assert!(is_valid_pattern(p), "{p}");
        }
        // Exact origins on a suffix are one site, not a wildcard over many.
        assert!(is_valid_pattern("https://github.io"));
        assert_eq!(check_pattern("https://*.com"), Err(OriginPatternError::PublicSuffixWildcard));
        assert_eq!(check_pattern("https://*.github.io"), Err(OriginPatternError::PublicSuffixWildcard));
        assert_eq!(check_pattern("example.com"), Err(OriginPatternError::Malformed));
        assert_eq!(check_pattern("https://*.example.co.uk"), Ok(()));
        let api: crate::error::ApiError = OriginPatternError::PublicSuffixWildcard.into();
        assert_eq!((api.status(), api.code()), (400, "invalid_request"));
    }
}
