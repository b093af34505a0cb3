//! `response_mode=form_post` (OAuth 2.0 Form Post Response Mode): the authorization
//! response (a code, or an error, with `state` and `iss`) as hidden inputs of a form the
//! page posts to the client's redirect URI, so nothing of it lands in a URL (history,
//! logs, `Referer`).
//!
//! The page submits itself with one inline script that its Content-Security-Policy allows
//! by hash (`script-src 'sha256-…'`) and nothing else; without script the person presses
//! the button. Framing is forbidden, nothing is cached, and no `Referer` is sent.

use actix_web::HttpResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::pages::{escape, hidden};

/// The one script of the page: submit its form.
const SUBMIT: &str = "document.forms[0].submit()";

/// The page posting `pairs` to `redirect_uri` (a redirect URI the client registered).
pub(crate) fn page(redirect_uri: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Continuing…</title></head><body>\
         <form method=\"post\" action=\"{}\">{}\
         <noscript><button type=\"submit\">Continue</button></noscript></form>\
         <script>{SUBMIT}</script></body></html>",
        escape(redirect_uri),
        hidden(pairs),
    );
    let hash = STANDARD.encode(Sha256::digest(SUBMIT.as_bytes()));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            "Content-Security-Policy",
            format!("default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'none'"),
        ))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(html)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody as _;

    #[test]
    fn the_page_posts_the_escaped_parameters_and_its_policy_allows_only_its_script() {
        let answer = page(
            "https://rp.test/cb?a=1&b=2",
            &[("code", "c\"<"), ("state", "s")],
        );
        let csp = answer
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body =
            String::from_utf8(answer.into_body().try_into_bytes().unwrap().to_vec()).unwrap();
        assert!(
            body.contains("action=\"https://rp.test/cb?a=1&amp;b=2\""),
            "{body}"
        );
        assert!(
            body.contains("name=\"code\" value=\"c&quot;&lt;\""),
            "{body}"
        );
        // The script's hash, computed here from the page as sent, is the one allowed.
        let script = body
            .split("<script>")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap();
        let hash = STANDARD.encode(Sha256::digest(script.as_bytes()));
        assert!(
            csp.contains(&format!("script-src 'sha256-{hash}'")),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}
