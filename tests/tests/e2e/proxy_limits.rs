//! Per-address limits behind a reverse proxy (`[proxy] trusted`), against a real IdP on
//! loopback: the device page allows 10 failed sign-ins per client address per 10 minutes
//! (then 429). The IdP trusts one proxy, 127.0.0.2 (this test's client bound to that
//! source address, sending `X-Forwarded-For` as a proxy does).
//! - A client that is not the proxy (127.0.0.1) cannot dodge its limit by claiming other
//!   addresses in `X-Forwarded-For`: its 11th failure is refused, whatever it wrote.
//! - Behind the proxy, each client has its own budget: one client's failures do not lock
//!   out another (before this, every client behind a proxy shared the proxy's address),
//!   and a client cannot reset its own by prefixing forged addresses: the proxy appends
//!   the real one at the right, and that is the one counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use milagro_tests::idp_common::{encode, hidden_fields, IdpWorld, USER};

/// Failed sign-ins a client address may make on the device page in its window.
const FAILURES: usize = 10;

/// A browser on the device page through `http`: its CSRF cookie and form fields.
struct DevicePage {
    cookie: String,
    form: Vec<(String, String)>,
}

impl DevicePage {
    fn open(w: &IdpWorld, http: &reqwest::blocking::Client) -> Self {
        let page = http.get(format!("{}/device", w.issuer)).send().unwrap();
        let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let mut form = hidden_fields(&page.text().unwrap());
        form.extend([
            ("user_code".to_owned(), "BCDF-GHJK".to_owned()),
            ("username".to_owned(), USER.to_owned()),
            ("password".to_owned(), "not alice's password".to_owned()),
        ]);
        Self { cookie, form }
    }

    /// One wrong sign-in, with `X-Forwarded-For: forwarded` if given: the status.
    fn fail(&self, w: &IdpWorld, http: &reqwest::blocking::Client, forwarded: Option<&str>) -> u16 {
        let mut request = http
            .post(format!("{}/device", w.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &self.cookie)
            .body(encode(
                self.form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send().unwrap().status().as_u16()
    }
}

fn client_from(source: &str) -> reqwest::blocking::Client {
    milagro_http_client::Outbound::system()
        .unwrap()
        .builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn behind_a_trusted_proxy_each_client_has_its_own_budget_and_nobody_else_can_claim_one() {
    let w = IdpWorld::start("[proxy]\ntrusted = [\"127.0.0.2\"]\n");
    let direct = client_from("127.0.0.1");
    let proxy = client_from("127.0.0.2");

    // Not the proxy: a different claimed address on every try changes nothing.
    let page = DevicePage::open(&w, &direct);
    for n in 0..FAILURES {
        let claimed = format!("198.51.100.{n}");
        assert_eq!(page.fail(&w, &direct, Some(&claimed)), 401, "try {n}");
    }
    assert_eq!(page.fail(&w, &direct, Some("198.51.100.200")), 429);

    // Through the proxy: client 203.0.113.1 spends its budget, forged prefixes included.
    let page = DevicePage::open(&w, &proxy);
    for n in 0..FAILURES {
        let forwarded = format!("192.0.2.{n}, 203.0.113.1");
        assert_eq!(page.fail(&w, &proxy, Some(&forwarded)), 401, "try {n}");
    }
    assert_eq!(page.fail(&w, &proxy, Some("192.0.2.99, 203.0.113.1")), 429);
    // Another client behind the same proxy is not locked out.
    assert_eq!(page.fail(&w, &proxy, Some("203.0.113.2")), 401);
    // The proxy's own requests (no header) count under the proxy, apart from both.
    assert_eq!(page.fail(&w, &proxy, None), 401);
}
