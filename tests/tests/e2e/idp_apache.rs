//! Apache httpd with mod_auth_openidc (Debian bookworm's packages, 2.4.12, installed by
//! this test with apt when missing: never skipped) protects a page with the IdP as its
//! provider, found from a provider metadata file in `OIDCMetadataDir` and registered by
//! mod_auth_openidc's own dynamic registration, unchanged. A scripted browser that keeps
//! cookies reaches the page after signing in with a password, then logs out through
//! mod_auth_openidc, which ends the session at both ends: the page asks for a sign-in
//! again, and the IdP answers `prompt=none` with `login_required`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use milagro_tests::idp_common::browser::Browser;
use milagro_tests::idp_common::{encode, free_port, query, IdpWorld, PATIENCE};
use milagro_tests::wait_until;

const MODULE: &str = "/usr/lib/apache2/modules/mod_auth_openidc.so";
const HTTPD: &str = "/usr/sbin/apache2";

/// Installs Apache and mod_auth_openidc from the system's apt sources unless present;
/// panics (the test fails) if that is impossible.
fn ensure_installed() {
    if Path::new(MODULE).exists() && Path::new(HTTPD).exists() {
        return;
    }
    let status = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "apache2",
            "libapache2-mod-auth-openidc",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("apt-get runs (Apache and mod_auth_openidc are needed by this test)");
    assert!(
        status.success(),
        "apt-get install apache2 libapache2-mod-auth-openidc failed"
    );
}

/// Apache on `port` serving `dir/htdocs`, `/protected` behind mod_auth_openidc.
struct Apache {
    child: Child,
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_apache(dir: &Path, port: u16, issuer: &str, discovery: &str) -> Apache {
    let metadata = dir.join("metadata");
    let htdocs = dir.join("htdocs");
    std::fs::create_dir_all(htdocs.join("protected")).unwrap();
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::write(htdocs.join("protected/index.html"), "the protected page\n").unwrap();
    std::fs::write(htdocs.join("loggedout.html"), "logged out\n").unwrap();
    // mod_auth_openidc names a provider's file after its issuer without the scheme.
    let name = issuer.trim_start_matches("http://").replace(':', "%3A");
    std::fs::write(metadata.join(format!("{name}.provider")), discovery).unwrap();
    let modules = "/usr/lib/apache2/modules";
    let base = format!("http://127.0.0.1:{port}");
    let conf = format!(
        r#"ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}"
ErrorLog "{root}/error.log"
LogLevel warn auth_openidc:debug
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule dir_module {modules}/mod_dir.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
User www-data
Group www-data
DocumentRoot "{root}/htdocs"
DirectoryIndex index.html
OIDCMetadataDir "{root}/metadata"
OIDCRedirectURI {base}/protected/redirect_uri
OIDCCryptoPassphrase milagro-test-passphrase
OIDCDefaultLoggedOutURL {base}/loggedout.html
OIDCScope "openid profile email"
<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>
"#,
        root = dir.display(),
    );
    std::fs::write(dir.join("httpd.conf"), conf).unwrap();
    // Apache drops to www-data: it must write the registration and its runtime files.
    let chmod = Command::new("chmod")
        .args(["-R", "a+rwX", &dir.display().to_string()])
        .status()
        .unwrap();
    assert!(chmod.success());
    let child = Command::new(HTTPD)
        .args(["-X", "-f", &dir.join("httpd.conf").display().to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("apache2 starts");
    Apache { child }
}

#[test]
fn apache_with_mod_auth_openidc_registers_signs_in_and_logs_out_at_both_ends() {
    ensure_installed();
    let w = IdpWorld::start("");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (_, discovery) = w.get("/.well-known/openid-configuration");
    let mut apache = start_apache(dir.path(), port, &w.issuer, &discovery.to_string());
    let log = || std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    let browser = Browser::new(&w.http, &w.issuer);
    wait_until("Apache to listen", PATIENCE, || {
        if let Some(exit) = apache.child.try_wait().unwrap() {
            panic!("apache2 exited ({exit}): {}", log());
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });

    // The protected page: mod_auth_openidc asks which provider (its discovery page); the
    // browser picks the IdP, whose client mod_auth_openidc then registers itself.
    let asked = browser.get(&format!("{base}/protected/"));
    assert_eq!(asked.status, 200, "{asked:?}\n{}", log());
    // Its form: hidden fields (target_link_uri, method, the CSRF value of its cookie),
    // and the issuer the person picks.
    assert!(
        asked.body.contains("/protected/redirect_uri"),
        "{}",
        asked.body
    );
    let mut form = milagro_tests::idp_common::hidden_fields(&asked.body);
    form.push(("iss".to_owned(), w.issuer.clone()));
    let pick = format!(
        "{base}/protected/redirect_uri?{}",
        encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    );
    let to_idp = browser.get(&pick);
    let authorize = to_idp
        .location
        .clone()
        .unwrap_or_else(|| panic!("{to_idp:?}\n{}", log()));
    assert!(
        authorize.starts_with(&format!("{}/authorize?", w.issuer)),
        "{authorize}"
    );
    assert_eq!(query(&authorize)["scope"], "openid profile email");
    let clients = w.idp.state().db.open_tree("clients").unwrap();
    assert_eq!(clients.len(), 1, "mod_auth_openidc registered dynamically");

    // Sign in at the IdP; back at Apache with the code, then at the page.
    let signed_in = browser.follow(browser.sign_in(&browser.get(&authorize)));
    let callback = signed_in
        .location
        .clone()
        .unwrap_or_else(|| panic!("{signed_in:?}"));
    assert!(
        callback.starts_with(&format!("{base}/protected/redirect_uri?")),
        "{callback}"
    );
    let back = browser.get(&callback);
    let target = back
        .location
        .clone()
        .unwrap_or_else(|| panic!("{back:?}\n{}", log()));
    let page = browser.get(&target);
    assert_eq!(page.status, 200, "{page:?}\n{}", log());
    assert!(page.body.contains("the protected page"), "{}", page.body);

    // Logout through mod_auth_openidc: to the IdP's end_session_endpoint with the ID
    // token as hint, which ends the IdP's session and sends the browser back.
    let logout = browser.get(&format!(
        "{base}/protected/redirect_uri?logout={}",
        encode([("u", format!("{base}/loggedout.html").as_str())].into_iter())
            .trim_start_matches("u=")
    ));
    let end_session = logout
        .location
        .clone()
        .unwrap_or_else(|| panic!("{logout:?}\n{}", log()));
    assert!(
        end_session.starts_with(&format!("{}/logout?", w.issuer)),
        "{end_session}"
    );
    let out = browser.get(&end_session);
    assert_eq!(
        out.location.as_deref(),
        Some(format!("{base}/loggedout.html").as_str()),
        "{out:?}"
    );
    // Both ends: the IdP has no session for this browser, Apache shows no page.
    let silent = browser.get(&format!(
        "{}&prompt=none",
        authorize.replace("prompt=", "ignored=")
    ));
    assert_eq!(
        query(silent.location.as_deref().unwrap())["error"],
        "login_required"
    );
    let again = browser.get(&format!("{base}/protected/"));
    assert!(!again.body.contains("the protected page"), "{again:?}");
}
