//! The scopes this IdP grants, and what it grants of a request that names others.

/// The scopes this IdP grants: `profile` gives `preferred_username`; `email` gives the
/// address a person proved with a one-time code (`email`, `email_verified` true), for
/// people who registered by e-mail (OpenID Connect Core §5.4).
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The scopes of `requested` (space-separated) this IdP grants, in order, without
/// repeats: the others (e.g. `phone`, which it has no claims for) are dropped, as RFC 6749
/// §3.3 lets a server grant fewer than asked; the token response names what was granted.
pub fn granted_scopes(requested: &str) -> Vec<&str> {
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested.split(' ') {
        if SCOPES.contains(&scope) && !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scopes_are_dropped_and_known_ones_granted_once() {
        assert_eq!(
            granted_scopes("openid profile email phone"),
            ["openid", "profile", "email"]
        );
        assert_eq!(granted_scopes(" phone  openid openid "), ["openid"]);
        assert!(granted_scopes("phone address").is_empty());
    }
}
