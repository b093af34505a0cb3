//! What a browser does on the IdP's HTML pages, as the tests drive them: form bodies,
//! the hidden fields of a page, and a person approving (or denying) a device at the
//! verification page.

use super::USER;

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn encode<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The `name`/`value` of every hidden input, HTML entities decoded, each name once (the
/// first: a page with several forms, such as the device page's password and e-mail forms,
/// repeats the CSRF token, and a browser posts one form).
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let attr = |name: &str| {
                let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                let end = start + rest[start..].find('"').unwrap();
                unescape(&rest[start..end])
            };
            (attr("name"), attr("value"))
        })
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What a person does on the device verification page at `issuer`: open it, type
/// `user_code`, log in as alice with `password`, and allow the client it then shows. The
/// status and page answered last.
pub fn approve_device(
    http: &reqwest::blocking::Client,
    issuer: &str,
    user_code: &str,
    password: &str,
) -> (u16, String) {
    decide_device(http, issuer, user_code, password, "allow").2
}

/// The same with the person's `decision` (`allow` or `deny`): the status and page after
/// the credentials (the consent page, when they and the code are right), the browser's
/// cookie, and the status and page answered last.
pub fn decide_device(
    http: &reqwest::blocking::Client,
    issuer: &str,
    user_code: &str,
    password: &str,
    decision: &str,
) -> ((u16, String), String, (u16, String)) {
    let credentials = [
        ("user_code", user_code.to_lowercase()),
        ("username", USER.to_owned()),
        ("password", password.to_owned()),
    ];
    device_page(http, issuer, &credentials, decision)
}

/// A person on the device page's e-mail form at `issuer` (a fresh browser): with `code`
/// empty, asks for a code to be e-mailed to `email`; otherwise types it and, shown the
/// client, allows it. The status and page answered last.
pub fn email_device(
    http: &reqwest::blocking::Client,
    issuer: &str,
    user_code: &str,
    email: &str,
    code: &str,
) -> (u16, String) {
    let credentials = [
        ("user_code", user_code.to_owned()),
        ("email", email.to_owned()),
        ("code", code.to_owned()),
    ];
    device_page(http, issuer, &credentials, "allow").2
}

/// A fresh browser on the device page at `issuer`: opens it, posts its form with
/// `credentials` and, shown the consent page, answers `decision`. The status and page
/// after the credentials, the browser's cookie, and the status and page answered last.
fn device_page(
    http: &reqwest::blocking::Client,
    issuer: &str,
    credentials: &[(&str, String)],
    decision: &str,
) -> ((u16, String), String, (u16, String)) {
    let page = http.get(format!("{issuer}/device")).send().unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut form = hidden_fields(&page.text().unwrap());
    form.extend(
        credentials
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    let post = |form: &[(String, String)]| {
        let answer = http
            .post(format!("{issuer}/device"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .body(encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .send()
            .unwrap();
        (answer.status().as_u16(), answer.text().unwrap())
    };
    let signed_in = post(&form);
    if !signed_in.1.contains("name=\"consent\"") {
        return (signed_in.clone(), cookie.clone(), signed_in);
    }
    let mut choice = hidden_fields(&signed_in.1);
    choice.push(("decision".to_owned(), decision.to_owned()));
    let decided = post(&choice);
    (signed_in, cookie.clone(), decided)
}

/// A relying party's callback on loopback: answers every request with a page
/// (`#done`: "back at the relying party") and reports the path and query of each request
/// to `/cb`.
pub fn callback_server() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let body = "<html><body><p id=\"done\">back at the relying party</p></body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            if target.starts_with("/cb") && tx.send(target).is_err() {
                break;
            }
        }
    });
    (url, rx)
}
