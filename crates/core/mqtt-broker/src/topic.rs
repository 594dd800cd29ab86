//! Topic names and topic filters: validation, matching, and `$share/` parsing.
//!
//! The rules are those of MQTT 3.1.1 §4.7 and MQTT 5.0 §4.7–4.8, which agree:
//!
//! - a topic name is non-empty, has no `+` or `#`, and no NUL;
//! - a filter is non-empty; `+` fills a whole level; `#` fills a whole level and is last;
//! - wildcards in the first level never match a topic whose first level begins with `$`
//!   (so `#` does not see `$SYS/...`);
//! - `$share/{group}/{filter}` is a shared subscription: `group` is non-empty and has no
//!   `/`, `+` or `#`.
//!
//! Length is bounded by the codec (UTF-8 strings are at most 65,535 bytes).

/// Why a topic name or filter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The string is empty.
    Empty,
    /// A topic name contains `+` or `#`.
    WildcardInName,
    /// A `+` or `#` does not fill a whole level, or `#` is not the last level.
    MisplacedWildcard,
    /// The string contains U+0000.
    Nul,
    /// A `$share/` filter has an empty or invalid group, or no filter after it.
    BadShare,
}

/// Checks a topic name (what a PUBLISH carries).
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.contains('\0') {
        return Err(TopicError::Nul);
    }
    if name.contains(['+', '#']) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Checks a plain topic filter (without a `$share/` prefix).
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.contains('\0') {
        return Err(TopicError::Nul);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        match level {
            "#" if !last => return Err(TopicError::MisplacedWildcard),
            "#" | "+" => {}
            _ if level.contains(['+', '#']) => return Err(TopicError::MisplacedWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// A parsed subscription filter: either plain, or shared by a named group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFilter<'a> {
    /// The share group, for `$share/{group}/{filter}`.
    pub group: Option<&'a str>,
    /// The filter that is matched against topic names.
    pub filter: &'a str,
}

/// Parses and validates a subscription filter, splitting off a `$share/{group}/` prefix.
pub fn parse_filter(raw: &str) -> Result<ParsedFilter<'_>, TopicError> {
    if let Some(rest) = raw.strip_prefix("$share/") {
        let (group, filter) = rest.split_once('/').ok_or(TopicError::BadShare)?;
        if group.is_empty() || group.contains(['+', '#', '\0']) || filter.is_empty() {
            return Err(TopicError::BadShare);
        }
        validate_filter(filter)?;
        return Ok(ParsedFilter {
            group: Some(group),
            filter,
        });
    }
    validate_filter(raw)?;
    Ok(ParsedFilter {
        group: None,
        filter: raw,
    })
}

/// True if `filter` (plain, already valid) matches topic name `name` (already valid).
///
/// This is the reference matcher: the subscription trie must agree with it, and the tests
/// check that it does.
pub fn matches(filter: &str, name: &str) -> bool {
    // A first-level wildcard never matches a `$` topic (MQTT 5.0 §4.7.2).
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("a/b"), Ok(()));
        assert_eq!(validate_name("/"), Ok(()));
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a\0"), Err(TopicError::Nul));
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/",
            "a//b",
            "$SYS/#",
            "sport/+/player1",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "+a", "##", "a\0"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_filter("$share/g/a/+"),
            Ok(ParsedFilter {
                group: Some("g"),
                filter: "a/+"
            })
        );
        for bad in [
            "$share/",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share/g/",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
