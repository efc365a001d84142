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
    #[error(
        "an allowed origin must be http(s)://host[:port] (a valid host name or IP address, a port from 1 to 65535, nothing after it) or https://*.domain"
    )]
    Malformed,
    #[error(
        "an allowed origin's wildcard must sit on a registrable domain, one owner's one level below: not a public suffix like *.com, *.co.uk or *.github.io, nor a name whose subdomains are public suffixes like *.compute-1.amazonaws.com"
    )]
    PublicSuffixWildcard,
}

/// Longest host name DNS can carry (RFC 1035, in its dotted text form).
const MAX_HOST_LEN: usize = 253;
/// Longer entries are not origins (and are not worth parsing).
const MAX_PATTERN_LEN: usize = 512;

/// The one place that decides whether an allowlist entry may be set (key issuance, key
/// management over HTTP, hatchctl), and the form it is stored in: the serialisation a
/// browser sends as `Origin` (lower-case scheme and host, IDN as punycode, default port
/// dropped), so `https://App.Example.com:443` is stored as `https://app.example.com` and
/// matches what a browser on that site sends.
///
/// The text is parsed by the WHATWG URL rules (`url` crate), then held to what a browser
/// could send: scheme `http` or `https`; a host that is an IP address or a DNS name of
/// labels 1–63 letters, digits and hyphens (no leading or trailing hyphen, no empty label,
/// so no trailing dot), at most 253 characters; a port 1–65535; nothing else. What the
/// URL parser would silently drop or move (a path, `?`, `#`, credentials, whitespace, an
/// empty `:`) is refused rather than dropped, so the customer sees that it is not an origin.
///
/// A wildcard `scheme://*.REST[:port]` needs REST to be a DNS name that is a registrable
/// domain or below it per the Public Suffix List (ICANN and private sections, `psl` crate),
/// so `https://*.com`, `https://*.co.uk` and `https://*.github.io` are refused. A bare name
/// under an unknown TLD counts as a suffix (the list's default `*` rule): refused too.
///
/// Only the functions that set origins call this (create-key, update-key, hatchctl): the
/// request path compares the stored form with the `Origin` header as text ([`matches`]).
pub fn check_pattern(pattern: &str) -> Result<String, OriginPatternError> {
    use OriginPatternError::Malformed;
    if pattern.len() > MAX_PATTERN_LEN || pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Malformed);
    }
    let (scheme, rest) = pattern.split_once("://").ok_or(Malformed)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(Malformed);
    }
    let (wildcard, authority) = match rest.strip_prefix("*.") {
        Some(after) => (true, after),
        None => (false, rest),
    };
    // The authority alone: a path, query, fragment, credentials or another `*` would be
    // parsed (a bare `/`, or `\` which the URL rules read as `/`, would be silently dropped);
    // `host:` with no port would be read as no port at all; `%` would be decoded.
    if authority.is_empty() || authority.ends_with(':') || authority.contains(['/', '\\', '?', '#', '@', '*', '%']) {
        return Err(Malformed);
    }
    let url = url::Url::parse(&format!("{scheme}://{authority}")).map_err(|_| Malformed)?;
    let nothing_else = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !nothing_else || url.port() == Some(0) {
        return Err(Malformed);
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) if is_dns_name(name) => name,
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) if !wildcard => "",
        _ => return Err(Malformed),
    };
    // "scheme://host[:port]", the default port dropped: what a browser puts in `Origin`.
    let serialised = url.origin().ascii_serialization();
    if !wildcard {
        return Ok(serialised);
    }
    // One level below `host` must be one owner's: neither `host` a public suffix (`*.com`) nor
    // any name the wildcard covers (`*.compute-1.amazonaws.com`: every EC2 host is a suffix of
    // its own; `*.amazonaws.com` covers `s3.amazonaws.com`, where every bucket shares an origin).
    if is_public_suffix(host) || has_public_suffix_children(host) {
        return Err(OriginPatternError::PublicSuffixWildcard);
    }
    let after_scheme = serialised.split_once("://").map_or("", |(_, a)| a);
    Ok(format!("{scheme}://*.{after_scheme}"))
}

/// The Public Suffix List (ICANN and private sections) as the `psl` crate ships it
/// (`data/rules.txt` of psl 2.1.247, whose answers a test compares rule by rule), deflated by
/// `build.rs` (28 % of the bytes in the binary) and parsed on first use: only key issuance
/// and PATCH with a wildcard ever need it.
const PUBLIC_SUFFIX_LIST_DEFLATED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/public_suffix_list.txt.deflate"));

/// The list's text, or none if it does not inflate (never, its test says).
fn public_suffix_list_text() -> Option<String> {
    let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(PUBLIC_SUFFIX_LIST_DEFLATED, 1 << 20).ok()?;
    String::from_utf8(bytes).ok()
}

fn public_suffixes() -> &'static publicsuffix::List {
    static LIST: std::sync::OnceLock<publicsuffix::List> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        // The file holds rules only; the parser takes rules after a section marker.
        let rules = public_suffix_list_text().unwrap_or_default();
        format!("// ===BEGIN ICANN DOMAINS===\n{rules}").parse().unwrap_or_default()
    })
}

/// Is `name` a public suffix itself (no registrable domain: `com`, `co.uk`, `github.io`, or
/// a bare name under an unknown TLD, by the list's default `*` rule)? A list that failed to
/// parse (never, its test says) refuses every wildcard: fail closed.
fn is_public_suffix(name: &str) -> bool {
    use publicsuffix::Psl;
    let list = public_suffixes();
    list.is_empty() || list.domain(name.as_bytes()).is_none()
}

/// Is some name one label below `name` a public suffix (a rule `*.name`, or a rule
/// `label.name`)? From the list's rules (exceptions mark registrable names, not suffixes), the
/// set of their parents built on first use, in the punycode form hosts arrive in.
fn has_public_suffix_children(name: &str) -> bool {
    static PARENTS: std::sync::OnceLock<std::collections::HashSet<String>> = std::sync::OnceLock::new();
    let parents = PARENTS.get_or_init(|| {
        let text = public_suffix_list_text().unwrap_or_default();
        text.lines()
            .filter(|rule| !rule.is_empty() && !rule.starts_with('!'))
            .filter_map(|rule| match rule.strip_prefix("*.") {
                Some(base) => Some(base),
                None => rule.split_once('.').map(|(_, parent)| parent),
            })
            .filter_map(|parent| match parent.is_ascii() {
                true => Some(parent.to_ascii_lowercase()),
                false => url::Url::parse(&format!("http://{parent}/")).ok()?.host_str().map(str::to_owned),
            })
            .collect()
    });
    // An empty set means the list did not load: fail closed, as `is_public_suffix` does.
    parents.is_empty() || parents.contains(name)
}

/// A host name as DNS carries it (already lower-case ASCII, IDN labels in punycode, from the
/// URL parser): labels of 1–63 letters, digits and hyphens, none at either end of a label.
fn is_dns_name(name: &str) -> bool {
    name.len() <= MAX_HOST_LEN
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
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

    /// The cases of the attack review, and what else a browser could never send.
    #[test]
    fn entries_that_are_not_origins_are_refused() {
        for p in [
            "https://...",
            "https://a..b.com",
            "https://-.-",
            "https://example.com:99999",
            "https://:",
            "https://example.com:",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com.",
            "https://-example.com",
            "https://example-.com",
            "https://exa_mple.com",
            &format!("https://{}.com", "a".repeat(64)),
            &format!("https://{}com", "a.".repeat(126)),
            "https://example.com/",
            "https://example.com/path",
            "https://example.com?",
            "https://example.com?q=1",
            "https://example.com#",
            "https://example.com#top",
            "https://user@example.com",
            "https://user:pw@example.com",
            "https://example.com\\",
            "https:\\\\example.com",
            "https:example.com",
            "https:/example.com",
            " https://example.com",
            "https://example.com ",
            "https://exa\tmple.com",
            "https://ex%61mple.com",
            "https://",
            "https://*.",
            "https://*.1.2.3.4",
            "https://*.[::1]",
            "https://a.*.example.com",
            "https://[::1",
            "https://999.1.1.1",
            "ftp://example.com",
            "javascript://example.com",
            "null",
            "",
        ] {
            assert_eq!(check_pattern(p), Err(OriginPatternError::Malformed), "{p:?}");
        }
    }

    #[test]
    fn entries_are_stored_as_a_browser_serialises_its_origin() {
        for (entry, stored) in [
            ("https://app.example.com", "https://app.example.com"),
            ("https://App.Example.COM:443", "https://app.example.com"),
            ("HTTPS://app.example.com", "https://app.example.com"),
            ("http://app.example.com:80", "http://app.example.com"),
            ("http://app.example.com:443", "http://app.example.com:443"),
            ("https://app.example.com:80", "https://app.example.com:80"),
            ("https://app.example.com:08443", "https://app.example.com:8443"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://[::1]", "https://[::1]"),
            ("https://[0:0:0:0:0:0:0:1]:443", "https://[::1]"),
            ("https://xn--bcher-kva.de", "https://xn--bcher-kva.de"),
            ("https://b\u{fc}cher.de", "https://xn--bcher-kva.de"),
            ("https://B\u{dc}CHER.de", "https://xn--bcher-kva.de"),
            ("https://github.io", "https://github.io"),
            (&format!("https://{}.com", "a".repeat(63)), &format!("https://{}.com", "a".repeat(63))),
            ("https://*.example.com", "https://*.example.com"),
            ("https://*.Example.COM:443", "https://*.example.com"),
            ("http://*.example.com:80", "http://*.example.com"),
            ("https://*.example.com:8443", "https://*.example.com:8443"),
            ("https://*.b\u{fc}cher.de", "https://*.xn--bcher-kva.de"),
        ] {
            assert_eq!(check_pattern(entry).as_deref(), Ok(stored), "{entry:?}");
            // Storing is idempotent: a stored entry set again is the same entry.
            assert_eq!(check_pattern(stored).as_deref(), Ok(stored), "{stored:?}");
        }
    }

    #[test]
    fn a_normalised_entry_matches_the_browser_origin() {
        let stored = check_pattern("https://App.Example.com:443").unwrap();
        assert!(matches(&stored, "https://app.example.com"));
        assert!(!matches(&stored, "https://app.example.com:443"), "a browser never sends the default port");
        let stored = check_pattern("https://*.Example.com:443").unwrap();
        assert!(matches(&stored, "https://shop.example.com"));
        // Entries stored before normalisation keep matching what they matched: the host
        // compares case-insensitively, as it always did.
        assert!(matches("https://App.Example.com", "https://app.example.com"));
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
        // A wildcard whose one level reaches public suffixes: by a `*.` rule (every EC2 host,
        // every Kawasaki ward) or by a listed child (`s3.amazonaws.com`, `blogspot.com`'s kin).
        for shared_below in [
            "http://*.compute-1.amazonaws.com",
            "https://*.nom.br",
            "https://*.kawasaki.jp",
            "https://*.platformsh.site",
            "https://*.amazonaws.com",
            // Not a rule itself, but `sande.møre-og-romsdal.no` is: matched in punycode.
            "https://*.møre-og-romsdal.no",
            "https://*.xn--mre-og-romsdal-qqb.no",
        ] {
            assert_eq!(check_pattern(shared_below), Err(OriginPatternError::PublicSuffixWildcard), "{shared_below}");
        }
        // An exception to a `*.` rule is one owner's, and so is what lies below it.
        assert_eq!(check_pattern("https://*.city.kawasaki.jp").as_deref(), Ok("https://*.city.kawasaki.jp"));
        assert_eq!(check_pattern("https://*.shop.example.com").as_deref(), Ok("https://*.shop.example.com"));
        assert_eq!(check_pattern("https://*.公司.cn"), Err(OriginPatternError::PublicSuffixWildcard));
        assert_eq!(check_pattern("example.com"), Err(OriginPatternError::Malformed));
        assert_eq!(check_pattern("https://*.example.co.uk").as_deref(), Ok("https://*.example.co.uk"));
        let api: crate::error::ApiError = OriginPatternError::PublicSuffixWildcard.into();
        assert_eq!((api.status(), api.code()), (400, "invalid_request"));
    }

    /// The embedded list answers as the maintained `psl` crate does, for every rule in it
    /// (the rule's own name, one and two labels below it, wildcards and exceptions included).
    #[test]
    fn the_embedded_list_agrees_with_the_psl_crate_rule_by_rule() {
        use publicsuffix::Psl;
        let list = public_suffixes();
        assert!(!list.is_empty());
        let source = include_str!("../../data/public_suffix_list.txt");
        assert_eq!(public_suffix_list_text().as_deref(), Some(source), "the deflated list inflates to the file");
        let mut checked = 0;
        for rule in source.lines().filter(|l| !l.is_empty()) {
            let base = rule.trim_start_matches('!').trim_start_matches("*.");
            let Ok(base) = url::Url::parse(&format!("http://{base}/")).map(|u| u.host_str().unwrap_or("").to_owned())
            else {
                continue;
            };
            for name in [base.clone(), format!("x.{base}"), format!("a.x.{base}")] {
                let ours = list.domain(name.as_bytes()).map(|d| d.as_bytes().to_vec());
                let theirs = psl::domain(name.as_bytes()).map(|d| d.as_bytes().to_vec());
                assert_eq!(ours, theirs, "{name}");
                checked += 1;
            }
        }
        assert!(checked > 25_000, "{checked}");
    }
}
