//! Apache httpd with mod_auth_openidc (Debian bookworm's packages, 2.4.12) as a relying
//! party: installed with apt when missing (never skipped), run in the foreground on a
//! loopback port with `/protected` behind mod_auth_openidc and the IdP found from a
//! provider metadata file in `OIDCMetadataDir`, registered by mod_auth_openidc's own
//! dynamic registration.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::idp_common::PATIENCE;
use crate::wait_until;

const MODULE: &str = "/usr/lib/apache2/modules/mod_auth_openidc.so";
const HTTPD: &str = "/usr/sbin/apache2";

/// Installs Apache and mod_auth_openidc from the system's apt sources unless present;
/// panics (the test fails) if that is impossible.
pub fn ensure_installed() {
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

/// Apache on a loopback port serving `dir/htdocs`, `/protected` behind mod_auth_openidc
/// (its page says "the protected page"); `/loggedout.html` is where a logout ends. Stopped
/// when dropped.
pub struct Apache {
    child: Child,
    dir: PathBuf,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Apache {
    /// Starts Apache in `dir` on `port` for the provider `issuer`, whose discovery
    /// document is `discovery`, and waits until it listens; any signed-in person may see
    /// the page.
    pub fn start(dir: &Path, port: u16, issuer: &str, discovery: &str) -> Self {
        Self::start_requiring(dir, port, issuer, discovery, "valid-user")
    }

    /// The same with `Require {require}` on the page (e.g. `claim acr:VALUE`, which
    /// mod_auth_openidc checks against the ID token's claims).
    pub fn start_requiring(
        dir: &Path,
        port: u16,
        issuer: &str,
        discovery: &str,
        require: &str,
    ) -> Self {
        ensure_installed();
        let mut apache = start(dir, port, issuer, discovery, require);
        wait_until("Apache to listen", PATIENCE, || {
            if let Some(exit) = apache.child.try_wait().unwrap() {
                panic!("apache2 exited ({exit}): {}", apache.log());
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        apache
    }

    /// Its error log (mod_auth_openidc logs at debug level).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn start(dir: &Path, port: u16, issuer: &str, discovery: &str, require: &str) -> Apache {
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
  Require {require}
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
    Apache {
        child,
        dir: dir.to_owned(),
        base,
    }
}
