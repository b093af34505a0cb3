use super::*;

fn outbound(allow_plain_http: bool) -> Outbound {
    let mut outbound = Outbound::system().unwrap();
    outbound.allow_plain_http = allow_plain_http;
    outbound.no_roots = None;
    outbound
}

#[test]
fn plain_http_goes_to_loopback_only_unless_allowed() {
    let strict = outbound(false);
    for ok in [
        "http://127.0.0.1:8080/x",
        "http://127.8.9.10",
        "http://localhost:1",
        "http://LOCALHOST/",
        "http://[::1]:80/",
        "https://idp.example/.well-known/openid-configuration",
        "https://10.0.0.1:8443",
    ] {
        assert!(strict.check_url(ok).is_ok(), "{ok}");
    }
    for refused in [
        "http://idp.example",
        "http://10.0.0.1:8080",
        "http://[::2]/",
        "http://localhost.evil.example/",
        "http://127.0.0.1.nip.io/",
    ] {
        assert!(
            matches!(
                strict.check_url(refused),
                Err(ClientError::PlainHttpRefused { .. })
            ),
            "{refused}"
        );
    }
    for bad in [
        "",
        "ftp://x",
        "127.0.0.1:80",
        "file:///etc/passwd",
        "http://",
    ] {
        assert!(
            matches!(strict.check_url(bad), Err(ClientError::NotHttp { .. })),
            "{bad}"
        );
    }
    assert!(outbound(true).check_url("http://idp.example").is_ok());
}

#[test]
fn https_without_system_roots_is_refused_by_name() {
    let mut outbound = outbound(false);
    outbound.no_roots = Some("the store is empty".into());
    let refused = outbound.check_url("https://idp.example").unwrap_err();
    assert!(matches!(refused, ClientError::NoSystemRoots { .. }));
    assert!(refused.to_string().contains("--ca-bundle"), "{refused}");
    assert!(outbound.check_url("http://127.0.0.1:1").is_ok());
}

#[test]
fn a_ca_bundle_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no pem here\n").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for path in [&missing, &empty, &garbage] {
        let options = ClientOptions::new(Some(path), false);
        assert!(
            matches!(Outbound::new(&options), Err(ClientError::CaBundle { .. })),
            "{}",
            path.display()
        );
    }
    let good = dir.path().join("ca.pem");
    crate::test_ca::TestCa::new("test CA").write_bundle(&good);
    let outbound = Outbound::new(&ClientOptions::new(Some(&good), false)).unwrap();
    assert!(outbound.check_url("https://localhost:1").is_ok());
    assert!(outbound.client().is_ok());
    assert_eq!(read_bundle(&good).unwrap().len(), 1);
}

#[test]
fn redirects_obey_the_plain_http_rule() {
    // A loopback server that redirects to an off-loopback plain-http URL: the client
    // refuses to follow it (the redirect target is never contacted).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/start", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 1024];
        let _ = stream.read(&mut buffer).unwrap();
        stream
            .write_all(
                b"HTTP/1.1 302 Found\r\nLocation: http://idp.example/next\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
    });
    let error = outbound(false)
        .client()
        .unwrap()
        .get(&url)
        .send()
        .unwrap_err();
    server.join().unwrap();
    assert!(error.is_redirect(), "{error:?}");
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    let mut refused = false;
    while let Some(e) = source {
        refused |= e.to_string().contains("plain http:// is allowed only");
        source = e.source();
    }
    assert!(refused, "{error:?}");
}
