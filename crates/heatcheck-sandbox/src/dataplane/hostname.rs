//! Gateway API hostname matching: exact names, `*.` wildcard suffixes, and the
//! listener/route intersection (apis/v1/httproute_types.go, `HTTPRouteSpec.Hostnames`).

use std::cmp::Ordering;

/// A listener or route hostname, or the absence of one (matches every host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum HostPattern {
    Any,
    /// A lowercase fully qualified name.
    Exact(String),
    /// `*.example.com`, stored as the suffix including the dot: `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    pub(super) fn parse(s: &str) -> HostPattern {
        let s = s.trim().to_ascii_lowercase();
        match s.strip_prefix('*') {
            Some(rest) if rest.starts_with('.') => HostPattern::Wildcard(rest.to_string()),
            _ if s.is_empty() => HostPattern::Any,
            _ => HostPattern::Exact(s),
        }
    }

    /// Does a request host (port stripped) match, ignoring ASCII case? A wildcard matches one
    /// or more labels in front of its suffix, never the bare suffix domain.
    pub(super) fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
            HostPattern::Wildcard(suffix) => {
                let (h, s) = (host.as_bytes(), suffix.as_bytes());
                h.len() > s.len() && h[h.len() - s.len()..].eq_ignore_ascii_case(s)
            }
        }
    }

    /// Most specific first: exact names, then wildcards with the longest suffix, then Any.
    pub(super) fn specificity_cmp(&self, other: &HostPattern) -> Ordering {
        fn rank(p: &HostPattern) -> (u8, usize) {
            match p {
                HostPattern::Exact(h) => (0, usize::MAX - h.len()),
                HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
                HostPattern::Any => (2, 0),
            }
        }
        rank(self).cmp(&rank(other))
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*{s}"),
        }
    }
}

/// The hostnames a route serves on a listener. `None` means they do not intersect, so the
/// route does not attach to that listener. The result keeps the more specific side of each
/// intersecting pair.
pub(super) fn intersect(
    listener: &HostPattern,
    route_hostnames: &[HostPattern],
) -> Option<Vec<HostPattern>> {
    if route_hostnames.is_empty() {
        return Some(vec![listener.clone()]);
    }
    let mut out: Vec<HostPattern> = Vec::new();
    for r in route_hostnames {
        let hit = match (listener, r) {
            (HostPattern::Any, r) => Some(r.clone()),
            (HostPattern::Exact(l), HostPattern::Exact(h)) => (l == h).then(|| r.clone()),
            (HostPattern::Wildcard(_), HostPattern::Exact(h)) => {
                listener.matches(h).then(|| r.clone())
            }
            (HostPattern::Exact(l), HostPattern::Wildcard(_)) => {
                r.matches(l).then(|| listener.clone())
            }
            (HostPattern::Wildcard(ls), HostPattern::Wildcard(rs)) => {
                if rs.ends_with(ls.as_str()) {
                    Some(r.clone())
                } else if ls.ends_with(rs.as_str()) {
                    Some(listener.clone())
                } else {
                    None
                }
            }
            (_, HostPattern::Any) => Some(listener.clone()),
        };
        if let Some(h) = hit {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The host of a request without its port (`Host` header or URI authority).
pub(super) fn request_host(raw: &str) -> &str {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: "[::1]:8080"
        return rest.split(']').next().unwrap_or(rest);
    }
    match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s)
    }

    #[test]
    fn wildcard_matches_subdomains_not_the_bare_domain() {
        let w = p("*.example.com");
        assert!(w.matches("test.example.com"));
        assert!(w.matches("foo.test.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("test.example.net"));
        assert!(!w.matches("xexample.com"));
        assert!(p("Lior.Example.com").matches("lior.example.com"));
        assert!(p("").matches("anything"));
    }

    #[test]
    fn intersection_follows_the_spec_examples() {
        // Listener test.example.com accepts routes with test.example.com or *.example.com.
        let l = p("test.example.com");
        assert_eq!(
            intersect(&l, &[p("*.example.com")]),
            Some(vec![p("test.example.com")])
        );
        assert_eq!(
            intersect(&l, &[p("test.example.com")]),
            Some(vec![l.clone()])
        );
        assert_eq!(intersect(&l, &[p("other.example.com")]), None);
        // Listener *.example.com: route names that do not match it are ignored.
        let l = p("*.example.com");
        assert_eq!(
            intersect(&l, &[p("test.example.com"), p("test.example.net")]),
            Some(vec![p("test.example.com")])
        );
        assert_eq!(
            intersect(&l, &[p("foo.test.example.com")]),
            Some(vec![p("foo.test.example.com")])
        );
        assert_eq!(intersect(&l, &[p("example.com")]), None);
        assert_eq!(
            intersect(&l, &[p("*.foo.example.com")]),
            Some(vec![p("*.foo.example.com")])
        );
        assert_eq!(intersect(&l, &[p("*.com")]), Some(vec![p("*.example.com")]));
        // No hostnames on either side match everything.
        assert_eq!(
            intersect(&HostPattern::Any, &[]),
            Some(vec![HostPattern::Any])
        );
        assert_eq!(intersect(&l, &[]), Some(vec![l.clone()]));
    }

    #[test]
    fn specificity_order() {
        let mut v = vec![
            HostPattern::Any,
            p("*.com"),
            p("a.example.com"),
            p("*.example.com"),
        ];
        v.sort_by(|a, b| a.specificity_cmp(b));
        assert_eq!(
            v,
            vec![
                p("a.example.com"),
                p("*.example.com"),
                p("*.com"),
                HostPattern::Any
            ]
        );
    }

    #[test]
    fn host_port_is_stripped() {
        assert_eq!(request_host("lior.example.com:8080"), "lior.example.com");
        assert_eq!(request_host("lior.example.com"), "lior.example.com");
        assert_eq!(request_host("[::1]:80"), "::1");
        assert_eq!(request_host("127.0.0.1:80"), "127.0.0.1");
    }
}
