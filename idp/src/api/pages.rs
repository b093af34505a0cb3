//! The HTML pages a person sees: the login page, the device verification page, and
//! error and confirmation pages. Every value is HTML-escaped; every page forbids
//! framing (clickjacking) and caching, and runs no script.
//!
//! Forms are protected against cross-site request forgery by a double-submit token: the
//! page carries a random `csrf` value that is also set as a `SameSite=Strict`, `HttpOnly`
//! cookie, and a POST is accepted only if the two match (constant-time). A site that
//! cannot read the cookie cannot forge the form.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use subtle::ConstantTimeEq as _;

use crate::clients::random_token;
use crate::oauth::OAuthError;

/// The answer to a password where the operator keeps passwords off (`[passwords]`).
pub(crate) const PASSWORDS_OFF: &str = "Password sign-in is off on this IdP: people sign in \
     with their device (M-Pin) and register it with their e-mail address.";

/// The CSRF cookie.
pub const CSRF_COOKIE: &str = "milagro_idp_csrf";

const STYLE: &str = "body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}\
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.5rem 1.2rem}.error{color:#a00}.muted{color:#666;font-size:.9rem}";

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSRF token of this browser: the cookie's if it has a well-formed one, else new.
pub fn csrf_token(req: &HttpRequest) -> String {
    req.cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(|| random_token(32).to_string())
}

/// Checks a posted `csrf` value against the cookie.
fn check_csrf(req: &HttpRequest, posted: Option<&str>) -> Result<(), OAuthError> {
    let cookie = req.cookie(CSRF_COOKIE);
    let ok = match (cookie, posted) {
        (Some(cookie), Some(posted)) => {
            bool::from(cookie.value().as_bytes().ct_eq(posted.as_bytes()))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(OAuthError::with_status(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the form's CSRF token does not match this browser's; reload the page",
        ))
    }
}

/// Whether a posted `csrf` value is this browser's CSRF cookie (constant-time).
pub(crate) fn csrf_matches(req: &HttpRequest, posted: Option<&str>) -> bool {
    check_csrf(req, posted).is_ok()
}

/// The parameters of a form a page posted, or the error page to answer with: the body
/// must be a form, and (with `csrf`) carry this browser's CSRF token.
pub(crate) async fn posted_form(
    req: &HttpRequest,
    body: actix_web::web::Payload,
    csrf: bool,
) -> Result<super::Params, HttpResponse> {
    let params = match super::read_body(body)
        .await
        .and_then(|b| super::Params::form(req, &b))
    {
        Ok(params) => params,
        Err(error) => {
            let status = actix_web::ResponseError::status_code(&error);
            return Err(error_page(status, error.description()));
        }
    };
    if csrf {
        check_csrf(req, params.get("csrf"))
            .map_err(|e| error_page(StatusCode::FORBIDDEN, e.description()))?;
    }
    Ok(params)
}

/// A page, with the security headers and (for forms) the CSRF cookie.
pub fn page(
    status: StatusCode,
    title: &str,
    body: &str,
    csrf: Option<&str>,
    secure: bool,
) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
         <style>{STYLE}</style></head><body><h1>{}</h1>{body}</body></html>",
        escape(title),
        escape(title)
    );
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .insert_header(("Referrer-Policy", "no-referrer"));
    if let Some(token) = csrf {
        let cookie = Cookie::build(CSRF_COOKIE, token.to_owned())
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Strict)
            .finish();
        response.cookie(cookie);
    }
    response.body(html)
}

/// An error page (for requests that cannot be redirected back to a client).
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let body = format!("<p class=\"error\" id=\"error\">{}</p>", escape(message));
    page(status, "Sign-in failed", &body, None, false)
}

/// 429 for an address (or a code) past its failures, with `Retry-After`
/// ([`milagro_service::attempts`]).
pub fn limited_page(limited: &milagro_service::attempts::TooManyFailures) -> HttpResponse {
    let mut answer = error_page(StatusCode::TOO_MANY_REQUESTS, &limited.to_string());
    answer.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(limited.retry_after_secs),
    );
    answer
}

/// 503 while the password checks are all taken, with `Retry-After` (the work gate's
/// refusal, [`milagro_service::work_gate`]).
pub fn busy_page(busy: &milagro_service::work_gate::Busy) -> HttpResponse {
    let mut answer = error_page(StatusCode::SERVICE_UNAVAILABLE, &busy.to_string());
    answer.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(busy.retry_after_secs),
    );
    answer
}

/// Hidden inputs carrying `fields`.
pub fn hidden(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect()
}

/// The username (kept after a failed attempt) and password inputs and the submit button.
pub fn credentials(
    action: &str,
    hidden_fields: &str,
    submit: &str,
    error: Option<&str>,
    username: &str,
) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!(
            "<p class=\"error\" id=\"error\" role=\"alert\">{}</p>",
            escape(e)
        )
    });
    format!(
        "{error}<form method=\"post\" action=\"{}\">{hidden_fields}\
         <label for=\"username\">Username</label>\
         <input id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button id=\"submit\" type=\"submit\">{}</button></form>",
        escape(action),
        escape(username),
        escape(submit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(hidden(&[("state", "\"><script>")]).contains("value=\"&quot;&gt;&lt;script&gt;\""));
    }
}
