//! The sign-in page of M-Pin sign-in ([`crate::signin`]): a QR code and the access
//! number of one authorization request, and how to approve it from the device. Like every
//! page it runs no script: it reloads itself (`Refresh` header) from
//! `/authorize/wait?signin=<page handle>`, which shows it again while the sign-in waits
//! and redirects to the client once the device approved it.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use super::pages::{escape, page};
use super::signin::REQUEST_PATH;
use crate::signin::table::Waiting;
use crate::state::AppState;

/// The path a waiting page reloads from.
pub const WAIT_PATH: &str = "/authorize/wait";
/// Seconds between two reloads of a waiting page.
pub const RELOAD_SECS: u64 = 2;

/// What the QR code carries: the URL of the request behind `access_number`, which
/// `milagro pat approve --url` reads.
pub fn approval_url(issuer: &str, access_number: &str) -> String {
    format!("{issuer}{REQUEST_PATH}?access_number={access_number}")
}

/// `text` as a QR code in inline SVG (no script, no image request), or nothing if it
/// does not fit one (it always does: a URL of a few dozen characters).
fn qr_svg(text: &str) -> String {
    match QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M) {
        Ok(code) => {
            let document = code
                .render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // Inline in HTML: the element, without the XML declaration before it.
            match document.find("<svg") {
                Some(start) => document[start..].to_owned(),
                None => String::new(),
            }
        }
        Err(error) => {
            tracing::warn!(%error, "the access number's url does not fit a qr code");
            String::new()
        }
    }
}

/// The page of a sign-in waiting for a device; `password` is the link to the password
/// form, if the IdP offers one.
pub fn render(
    state: &AppState,
    waiting: &Waiting,
    handle: &str,
    password: Option<&str>,
) -> HttpResponse {
    let summary = &waiting.summary;
    let client = summary.client_name.as_deref().unwrap_or(&summary.client_id);
    let number = waiting.access_number.as_str();
    let url = approval_url(state.issuer(), number);
    let minutes = waiting.expires_in.div_ceil(60);
    let password = password.map_or_else(String::new, |href| {
        format!(
            "<p class=\"muted\"><a id=\"password\" href=\"{}\">Sign in with a password instead</a></p>",
            escape(href)
        )
    });
    let body = format!(
        "<p class=\"muted\">to continue to <strong id=\"client\">{client}</strong></p>\
         <p>Approve this sign-in on your device: scan the code, or run</p>\
         <pre>milagro pat approve --access-number {number}</pre>\
         <div id=\"qr\" data-url=\"{url}\">{svg}</div>\
         <p>Access number <strong id=\"access-number\" data-number=\"{number}\">{grouped}</strong></p>\
         <p class=\"muted\" id=\"waiting\">This page goes on by itself once your device approves \
         (the number is good for {minutes} more minute{plural}).</p>{password}",
        client = escape(client),
        number = escape(number),
        url = escape(&url),
        svg = qr_svg(&url),
        grouped = escape(&waiting.access_number.grouped()),
        plural = if minutes == 1 { "" } else { "s" },
    );
    let secure = state.issuer().starts_with("https://");
    let mut response = page(
        StatusCode::OK,
        &format!("Sign in to {}", state.config.party.name),
        &body,
        None,
        secure,
    );
    let refresh = format!("{RELOAD_SECS}; url={WAIT_PATH}?signin={handle}");
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&refresh) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("refresh"),
            value,
        );
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_of_the_approval_url() {
        let url = approval_url("https://idp.test", "123456782");
        assert_eq!(
            url,
            "https://idp.test/v1/signin/request?access_number=123456782"
        );
        let svg = qr_svg(&url);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("<path") || svg.contains("<rect"), "{svg}");
        assert!(!svg.contains("<script"));
    }
}
