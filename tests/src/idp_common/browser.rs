//! A scripted browser for the IdP's pages: it keeps cookies (the CSRF and login session
//! cookies) the way a browser does for one site, follows no redirect by itself (each is
//! checked), and fills in the forms the pages show.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{encode, hidden_fields, PASSWORD, USER};

/// One answer, as the tests look at it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The status.
    pub status: u16,
    /// `Location`, if any.
    pub location: Option<String>,
    /// `Content-Security-Policy`, if any.
    pub csp: Option<String>,
    /// The raw `Set-Cookie` headers.
    pub set_cookies: Vec<String>,
    /// The body.
    pub body: String,
}

impl Page {
    /// Whether the page is the sign-in form.
    pub fn is_sign_in(&self) -> bool {
        self.status == 200 && self.body.contains("name=\"password\"")
    }

    /// Whether the page is the consent screen.
    pub fn is_consent(&self) -> bool {
        self.status == 200 && self.body.contains("action=\"/consent\"")
    }
}

/// A browser with a cookie jar for the IdP.
pub struct Browser<'a> {
    http: &'a reqwest::blocking::Client,
    issuer: String,
    cookies: RefCell<BTreeMap<String, String>>,
}

impl<'a> Browser<'a> {
    /// A browser with no cookies, for the IdP at `issuer`.
    pub fn new(http: &'a reqwest::blocking::Client, issuer: &str) -> Self {
        Self {
            http,
            issuer: issuer.to_owned(),
            cookies: RefCell::new(BTreeMap::new()),
        }
    }

    /// The value of the cookie `name`, if the browser holds it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.borrow().get(name).cloned()
    }

    /// Forgets every cookie (another browser).
    pub fn clear(&self) {
        self.cookies.borrow_mut().clear();
    }

    fn header(&self) -> String {
        self.cookies
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn answer(&self, response: reqwest::blocking::Response) -> Page {
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let removed = value.is_empty() || cookie.to_lowercase().contains("max-age=0");
            let mut jar = self.cookies.borrow_mut();
            if removed {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        Page {
            status: response.status().as_u16(),
            location: text("location"),
            csp: text("content-security-policy"),
            set_cookies,
            body: response.text().unwrap(),
        }
    }

    /// `GET url` (absolute, or a path of the IdP) with the cookies.
    pub fn get(&self, url: &str) -> Page {
        let url = self.absolute(url);
        let response = self
            .http
            .get(url)
            .header("cookie", self.header())
            .send()
            .unwrap();
        self.answer(response)
    }

    /// `POST path` of the IdP with a form and the cookies.
    pub fn post(&self, path: &str, form: &[(String, String)]) -> Page {
        let response = self
            .http
            .post(self.absolute(path))
            .header("cookie", self.header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .send()
            .unwrap();
        self.answer(response)
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.issuer)
        } else {
            url.to_owned()
        }
    }

    /// Submits the form of `page` (its hidden fields) with `more` fields.
    pub fn submit(&self, page: &Page, action: &str, more: &[(&str, &str)]) -> Page {
        let mut form = hidden_fields(&page.body);
        form.extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.post(action, &form)
    }

    /// Signs in as alice on the sign-in `page`.
    pub fn sign_in(&self, page: &Page) -> Page {
        assert!(page.is_sign_in(), "not the sign-in page: {page:?}");
        self.submit(
            page,
            "/login",
            &[("username", USER), ("password", PASSWORD)],
        )
    }

    /// Follows `page`'s redirect while it stays on the IdP; returns the first answer that
    /// is not such a redirect (a page, or a redirect to a client).
    pub fn follow(&self, mut page: Page) -> Page {
        for _ in 0..5 {
            match &page.location {
                Some(location) if location.starts_with(&self.issuer) => {
                    page = self.get(&location.clone());
                }
                _ => return page,
            }
        }
        page
    }
}
