//! The sign-in page of M-Pin sign-in ([`crate::signin`]): a QR code and the access
//! number of one authorization request, and how to approve it from the device. Like every
//! page it runs no script: it reloads itself (`Refresh` header) from
//! `/authorize/wait?signin=<page handle>`, which shows it again while the sign-in waits
//! and redirects to the client once the device approved it.
//!
//! [`mpin_page`] is what `/authorize` shows with `[mpin]` (the request kept under a new
//! access number); [`signin_wait`] is the reload, which ends an approved sign-in through
//! the authorization endpoint's `issue_code` and `deliver_code`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use zeroize::Zeroizing;

use super::authorize::{check, deliver_code, issue_code, respond, Failure, Request, CARRIED};
use super::pages::{error_page, escape, page};
use super::signin::REQUEST_PATH;
use super::{blocking, Params};
use crate::signin::table::{Full, Poll, Summary, Waiting};
use crate::signin::MpinSignIn;
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

/// The parameter that asks for the password form instead of the M-Pin sign-in page.
pub(crate) const LOGIN_METHOD: &str = "login_method";

/// The M-Pin sign-in page ([`crate::signin`]): the request kept under a new access
/// number, shown with its QR code; the page reloads until a device approves it.
pub(crate) fn mpin_page(
    state: &AppState,
    mpin: &MpinSignIn,
    req: &HttpRequest,
    params: &Params,
    request: &Request,
) -> HttpResponse {
    let carried: Vec<(String, Zeroizing<String>)> = CARRIED
        .iter()
        .filter_map(|name| {
            params
                .get(name)
                .map(|v| ((*name).to_owned(), Zeroizing::new(v.to_owned())))
        })
        .collect();
    let summary = Summary {
        client_id: request.client.client_id.clone(),
        client_name: request.client.client_name.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.clone(),
    };
    let address = state.client_ip(req);
    let now = milagro_service::unix_now();
    let begun = mpin
        .table()
        .begin(carried.clone(), summary.clone(), address, now);
    let begun = match begun {
        Ok(begun) => begun,
        Err(full) => {
            let status = match full {
                Full::Address(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return error_page(status, &full.to_string());
        }
    };
    let waiting = Waiting {
        access_number: begun.access_number,
        summary,
        expires_in: mpin.config.signin.as_secs(),
    };
    // The password form one link away, while the operator keeps passwords on.
    let password = state
        .config
        .passwords
        .then(|| {
            let mut password: Vec<(&str, &str)> = carried
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            password.push((LOGIN_METHOD, "password"));
            serde_urlencoded::to_string(&password).ok()
        })
        .flatten()
        .map(|query| format!("/authorize?{query}"));
    render(state, &waiting, &begun.handle, password.as_deref())
}

/// `GET /authorize/wait?signin=<page handle>`: the sign-in page's reload. While the
/// device has not approved, the page again; once it has, the code (through
/// [`issue_code`] and [`deliver_code`], the request's parameters checked again); once
/// the access number expired, `access_denied` to the client.
pub(crate) async fn signin_wait(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(mpin) = state.mpin.clone() else {
        return error_page(StatusCode::NOT_FOUND, "this IdP has no m-pin sign-in");
    };
    let handle = match Params::parse(req.query_string().as_bytes()) {
        Ok(params) => params.get("signin").unwrap_or_default().to_owned(),
        Err(error) => return error_page(StatusCode::BAD_REQUEST, error.description()),
    };
    let polled = mpin.table().poll(&handle, milagro_service::unix_now());
    let (pairs, who) = match polled {
        Poll::Waiting(waiting) => {
            return render(&state, &waiting, &handle, None);
        }
        Poll::Unknown => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "this sign-in is unknown or finished; start again from the application",
            )
        }
        Poll::Expired(pairs) => (pairs, None),
        Poll::Approved(pairs, who) => (pairs, Some(who)),
    };
    let params = Params(pairs.into_iter().collect());
    let outcome = blocking(&state, move |state| {
        let request = match check(state, &params) {
            Ok(request) => request,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(who) = who else {
            return Ok(Err(Failure::to_client(
                &request,
                "access_denied",
                "the access number expired before a device approved it",
            )));
        };
        let issued = issue_code(state, &request, &who)?;
        Ok(Ok((request, issued)))
    })
    .await;
    match outcome {
        Ok(Ok((request, issued))) => deliver_code(&state, &request, &issued),
        Ok(Err(failure)) => respond(&state, failure),
        Err(error) => respond(&state, Failure::Server(error)),
    }
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
