//! Milagro TLS between parties anchored on a real regtest chain, looked up through a real
//! TBS (SPV-checked): both protocols agree on both sides; unconfirmed, reorged-away and
//! superseded (compromised) peers are refused; a man in the middle with a valid anchor of
//! its own cannot pose as the expected peer; tampered Schnorr proofs and transcripts fail
//! key confirmation; a replayed handshake is rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status};
use milagro_anchor::kex::KexError;
use milagro_anchor::kex::{yak, Finished, Protocol, Role as KexRole};
use milagro_registry::chain::ChainSource as _;
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::tls_parties::{directory, runtime, EchoServer, TlsParty};
use milagro_tls::danger::{self, Channel, Frame};
use milagro_tls::LocalIdentity;
use milagro_tls::{Options, Refusal, TlsError};
use rand_core::OsRng;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn options(min_depth: u32) -> Options {
    Options {
        min_depth,
        ..Options::default()
    }
}

/// Alice and Bob, anchored and 6 deep; Mallory too.
fn three_parties(w: &EnrolmentWorld) -> (TlsParty, TlsParty, TlsParty) {
    let alice = TlsParty::broadcast(w, Role::Pat, "alice");
    let bob = TlsParty::broadcast(w, Role::Dta, "bob");
    let mallory = TlsParty::broadcast(w, Role::Dta, "mallory");
    w.mine(6);
    (alice, bob, mallory)
}

#[test]
fn yak_and_ecdh_agree_on_both_sides_and_only_the_expected_peer_is_accepted() {
    let w = EnrolmentWorld::start();
    let (alice, bob, mallory) = three_parties(&w);
    let dir = directory(&w);
    runtime().block_on(async {
        // YAK (the default): the same session on both sides, then application data.
        let mut server = EchoServer::start(&bob, dir.clone(), options(6)).await;
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut session = milagro_tls::connect(tcp, &alice.identity, bob.bc.digest(), dir.clone(), &options(6))
            .await
            .unwrap();
        assert_eq!(session.established().protocol(), Protocol::YakV1);
        assert_eq!(session.peer().birth_certificate().digest(), bob.bc.digest());
        assert_eq!(session.peer().anchor().depth(), 6);
        session.write_all(b"ping").await.unwrap();
        let mut echo = Vec::new();
        session.read_to_end(&mut echo).await.unwrap();
        assert_eq!(echo, b"ping");
        let served = server.next().await.outcome.unwrap();
        assert_eq!(&served, session.established().session_id().as_bytes());

        // ECDH is refused by a server that accepts only YAK, and agreed by one that
        // accepts it.
        let ecdh = Options {
            protocol: Protocol::EcdhV1,
            ..options(6)
        };
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let refused = milagro_tls::connect(tcp, &alice.identity, bob.bc.digest(), dir.clone(), &ecdh).await;
        assert!(
            matches!(&refused, Err(TlsError::RefusedByPeer(why)) if why.contains("not accepted")),
            "{:?}",
            refused.err()
        );
        assert!(matches!(server.next().await.outcome, Err(TlsError::Protocol(Protocol::EcdhV1))));
        let both = Options {
            accepted: vec![Protocol::YakV1, Protocol::EcdhV1],
            ..options(6)
        };
        let mut lenient = EchoServer::start(&bob, dir.clone(), both).await;
        let tcp = TcpStream::connect(lenient.addr).await.unwrap();
        let session = milagro_tls::connect(tcp, &alice.identity, bob.bc.digest(), dir.clone(), &ecdh)
            .await
            .unwrap();
        assert_eq!(session.established().protocol(), Protocol::EcdhV1);
        let id = *session.established().session_id().as_bytes();
        drop(session);
        assert_eq!(lenient.next().await.outcome.unwrap(), id);

        // Mallory has a valid anchor of her own, but Alice asked for Bob.
        let mut impostor = EchoServer::start(&mallory, dir.clone(), options(6)).await;
        let tcp = TcpStream::connect(impostor.addr).await.unwrap();
        let refused = milagro_tls::connect(tcp, &alice.identity, bob.bc.digest(), dir.clone(), &options(6)).await;
        assert!(
            matches!(&refused, Err(TlsError::Refused(Refusal::UnexpectedPeer { expected, found }))
                if *expected == bob.bc.digest() && *found == mallory.bc.digest()),
            "{:?}",
            refused.err()
        );
        assert!(impostor.next().await.outcome.is_err());

        // Depth is checked on both sides: Alice wants more than 6, then Bob does.
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let refused = milagro_tls::connect(tcp, &alice.identity, bob.bc.digest(), dir.clone(), &options(7)).await;
        assert!(matches!(
            refused,
            Err(TlsError::Refused(Refusal::Unconfirmed { depth: 6, required: 7 }))
        ));
        let _ = server.next().await;
        let mut strict = EchoServer::start(&bob, dir.clone(), options(7)).await;
        let tcp = TcpStream::connect(strict.addr).await.unwrap();
        let refused = milagro_tls::connect(tcp, &alice.identity, bob.bc.digest(), dir.clone(), &options(6)).await;
        assert!(
            matches!(&refused, Err(TlsError::RefusedByPeer(why)) if why.contains("6 confirmations, 7 required")),
            "{:?}",
            refused.err()
        );
        assert!(matches!(
            strict.next().await.outcome,
            Err(TlsError::Refused(Refusal::Unconfirmed { .. }))
        ));
    });
}

#[test]
fn unconfirmed_reorged_and_superseded_peers_are_refused() {
    let w = EnrolmentWorld::start();
    let alice = TlsParty::broadcast(&w, Role::Pat, "alice");
    w.mine(1);
    let bob = TlsParty::broadcast(&w, Role::Dta, "bob");
    let dir = directory(&w);
    let rt = runtime();
    let connect = |server: std::net::SocketAddr| {
        let (alice, bob_digest, dir) = (alice.identity.clone(), bob.bc.digest(), dir.clone());
        async move {
            let tcp = TcpStream::connect(server).await.unwrap();
            milagro_tls::connect(tcp, &alice, bob_digest, dir, &options(1)).await
        }
    };
    let mut server = rt.block_on(EchoServer::start(&bob, dir.clone(), options(1)));

    // Bob's anchor is only in the mempool.
    let refused = rt.block_on(connect(server.addr));
    assert!(
        matches!(&refused, Err(TlsError::Refused(Refusal::Anchor(_)))),
        "{:?}",
        refused.err()
    );
    let _ = rt.block_on(server.next());

    // Confirmed: accepted.
    w.mine(1);
    let bobs_block = w.node().rpc.tip().unwrap().hash;
    rt.block_on(connect(server.addr)).unwrap();
    rt.block_on(server.next()).outcome.unwrap();

    // Reorged away: the block is invalidated and a longer chain without Bob's anchor
    // is mined (his transaction is kept out of it by a negative priority); the TBS
    // rolls its index back.
    let bob_txid = serde_json::json!(bob.identity.party().party().anchor().txid().to_string());
    let rpc = &w.node().rpc;
    let _: serde_json::Value = rpc
        .call(
            "invalidateblock",
            &[serde_json::json!(bobs_block.to_string())],
        )
        .unwrap();
    let _: bool = rpc
        .call(
            "prioritisetransaction",
            &[
                bob_txid.clone(),
                serde_json::json!(0),
                serde_json::json!(-100_000_000),
            ],
        )
        .unwrap();
    w.mine(2);
    let refused = rt.block_on(connect(server.addr));
    assert!(
        matches!(&refused, Err(TlsError::Refused(Refusal::Anchor(_)))),
        "{:?}",
        refused.err()
    );
    let _ = rt.block_on(server.next());

    // Mined again on the new chain: accepted again.
    let _: bool = rpc
        .call(
            "prioritisetransaction",
            &[
                bob_txid,
                serde_json::json!(0),
                serde_json::json!(200_000_000),
            ],
        )
        .unwrap();
    w.mine(1);
    rt.block_on(connect(server.addr)).unwrap();
    rt.block_on(server.next()).outcome.unwrap();

    // Bob's key declares his certificate compromised in a later certificate. The old
    // one, still presented, is superseded.
    let fields = BcFields {
        status: Status::Compromised,
        previous: Some(bob.bc.digest()),
        ..bob.bc.fields().clone()
    };
    let compromised = BirthCertificate::sign(fields, &bob.key).unwrap();
    let notice = TlsParty::anchor(&w, bob.key.clone(), compromised);
    w.mine(1);
    let refused = rt.block_on(connect(server.addr));
    assert!(
        matches!(&refused, Err(TlsError::Refused(Refusal::Superseded(txid)))
            if *txid == notice.identity.party().party().anchor().txid()),
        "{:?}",
        refused.err()
    );
    let _ = rt.block_on(server.next());

    // Presenting the compromised certificate itself is refused by the certificate check.
    let mut canary = rt.block_on(EchoServer::start(&notice, dir.clone(), options(1)));
    let refused = rt.block_on(async {
        let tcp = TcpStream::connect(canary.addr).await.unwrap();
        milagro_tls::connect(
            tcp,
            &alice.identity,
            notice.bc.digest(),
            dir.clone(),
            &options(1),
        )
        .await
    });
    assert!(
        matches!(
            &refused,
            Err(TlsError::Refused(Refusal::Status(Status::Compromised)))
        ),
        "{:?}",
        refused.err()
    );
    let _ = rt.block_on(canary.next());
}

/// The initiator's side by hand, up to its finished message (returned unsent, with the
/// hello it sent).
async fn hello_and_reply<S: AsyncRead + AsyncWrite + Unpin>(
    local: &LocalIdentity,
    channel: &mut Channel<S>,
) -> (yak::Hello, Finished) {
    let (state, hello) = yak::Initiator::start(
        &mut OsRng,
        local.party(),
        &channel.peer.party(),
        &channel.context,
    )
    .unwrap();
    danger::write_kex(&mut channel.stream, &hello.to_bytes())
        .await
        .unwrap();
    let Frame::Kex(reply) = danger::read_frame(&mut channel.stream).await.unwrap() else {
        panic!("a reply")
    };
    let (_, finished) = state
        .finish(&yak::Reply::from_bytes(&reply).unwrap())
        .unwrap();
    (hello, finished)
}

#[test]
fn tampered_proofs_and_transcripts_fail_and_a_replayed_handshake_is_rejected() {
    let w = EnrolmentWorld::start();
    let (alice, bob, _) = three_parties(&w);
    let dir = directory(&w);
    runtime().block_on(async {
        let mut server = EchoServer::start(&bob, dir.clone(), options(6)).await;
        let addr = server.addr;
        let channel = || async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            danger::connect_channel(
                tcp,
                &alice.identity,
                bob.bc.digest(),
                dir.clone(),
                &options(6),
            )
            .await
            .unwrap()
        };

        // An honest session by hand, recording Alice's messages.
        let mut first = channel().await;
        let (hello, finished) = hello_and_reply(&alice.identity, &mut first).await;
        danger::write_kex(&mut first.stream, &finished.to_bytes())
            .await
            .unwrap();
        first.stream.write_all(b"ping").await.unwrap();
        assert!(server.next().await.outcome.is_ok());

        // Replayed in a new TLS session: the proof's challenge binds the old exporter.
        let mut replay = channel().await;
        danger::write_kex(&mut replay.stream, &hello.to_bytes())
            .await
            .unwrap();
        let frame = danger::read_frame(&mut replay.stream).await.unwrap();
        assert!(
            matches!(&frame, Frame::Refusal(why) if why.contains("schnorr proof")),
            "{frame:?}"
        );
        assert!(matches!(
            server.next().await.outcome,
            Err(TlsError::Kex(KexError::BadProof(KexRole::Initiator)))
        ));

        // A tampered proof.
        let mut tampered = channel().await;
        let (_, hello) = yak::Initiator::start(
            &mut OsRng,
            alice.identity.party(),
            &tampered.peer.party(),
            &tampered.context,
        )
        .unwrap();
        let mut bytes = hello.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        danger::write_kex(&mut tampered.stream, &bytes)
            .await
            .unwrap();
        assert!(matches!(
            danger::read_frame(&mut tampered.stream).await.unwrap(),
            Frame::Refusal(_)
        ));
        assert!(matches!(
            server.next().await.outcome,
            Err(TlsError::Kex(KexError::BadProof(KexRole::Initiator))
                | TlsError::Kex(KexError::Malformed { .. }))
        ));

        // A tampered transcript: a valid hello, then a finished tag with one bit flipped.
        let mut flipped = channel().await;
        let (_, finished) = hello_and_reply(&alice.identity, &mut flipped).await;
        let mut bytes = finished.to_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        danger::write_kex(&mut flipped.stream, &bytes)
            .await
            .unwrap();
        assert!(matches!(
            server.next().await.outcome,
            Err(TlsError::Kex(KexError::ConfirmationFailed(
                KexRole::Initiator
            )))
        ));

        // A server that tampers with its reply is caught by the client.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (bob_identity, server_dir) = (bob.identity.clone(), dir.clone());
        let evil = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut channel = danger::accept_channel(tcp, &bob_identity, server_dir, &options(6))
                .await
                .unwrap();
            let Frame::Kex(hello) = danger::read_frame(&mut channel.stream).await.unwrap() else {
                panic!("a hello")
            };
            let hello = yak::Hello::from_bytes(&hello).unwrap();
            let (_, reply) = yak::Responder::respond(
                &mut OsRng,
                bob_identity.party(),
                &channel.peer.party(),
                &channel.context,
                &hello,
            )
            .unwrap();
            let mut bytes = reply.to_bytes();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            danger::write_kex(&mut channel.stream, &bytes)
                .await
                .unwrap();
            danger::read_frame(&mut channel.stream).await
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let refused = milagro_tls::connect(
            tcp,
            &alice.identity,
            bob.bc.digest(),
            dir.clone(),
            &options(6),
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(TlsError::Kex(KexError::ConfirmationFailed(
                    KexRole::Responder
                )))
            ),
            "{:?}",
            refused.err()
        );
        assert!(matches!(evil.await.unwrap(), Ok(Frame::Refusal(_))));
    });
}

#[test]
fn an_actix_web_app_serves_admitted_peers_and_a_hyper_client_talks_to_it() {
    use actix_web::{web, App, HttpRequest, HttpResponse};
    use milagro_tls::http::{peer_of, send, serve_app};

    let w = EnrolmentWorld::start();
    let (alice, bob, mallory) = three_parties(&w);
    let dir = directory(&w);

    // Bob serves an actix-web app over Milagro TLS on its own actix system.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (refusals, refused) = std::sync::mpsc::channel();
    let (bob_identity, server_dir) = (bob.identity.clone(), dir.clone());
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = move || {
                App::new()
                    .route(
                        "/whoami",
                        web::get().to(|req: HttpRequest| async move {
                            let peer = peer_of(&req).expect("every request has an admitted peer");
                            HttpResponse::Ok().json(serde_json::json!({
                                "name": peer.birth_certificate().fields().name,
                                "anchor": peer.anchor().txid().to_string(),
                            }))
                        }),
                    )
                    .route(
                        "/echo",
                        web::post()
                            .to(|body: web::Bytes| async move { HttpResponse::Ok().body(body) }),
                    )
            };
            let report = move |_from, error: TlsError| {
                let _ = refusals.send(error.to_string());
            };
            serve_app(listener, bob_identity, server_dir, options(6), app, report)
                .await
                .unwrap();
        });
    });

    runtime().block_on(async {
        let request = |method: &str, path: &str, body: &'static [u8]| {
            http::Request::builder()
                .method(method)
                .uri(path)
                .header("host", "bob")
                .body(bytes::Bytes::from_static(body))
                .unwrap()
        };
        let session = |who: &TlsParty| {
            let (identity, dir) = (who.identity.clone(), dir.clone());
            let bob_digest = bob.bc.digest();
            async move {
                let tcp = TcpStream::connect(addr).await.unwrap();
                milagro_tls::connect(tcp, &identity, bob_digest, dir, &options(6)).await
            }
        };

        let response = send(
            session(&alice).await.unwrap(),
            request("GET", "/whoami", b""),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        let who: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(who["name"], "alice");
        assert_eq!(
            who["anchor"],
            alice.identity.party().party().anchor().txid().to_string()
        );

        let echoed = send(
            session(&alice).await.unwrap(),
            request("POST", "/echo", b"share request"),
        )
        .await
        .unwrap();
        assert_eq!(echoed.body().as_ref(), b"share request");
        let missing = send(
            session(&alice).await.unwrap(),
            request("GET", "/nothing", b""),
        )
        .await
        .unwrap();
        assert_eq!(missing.status(), 404);

        // Mallory is anchored too and is admitted: the app decides what she may do.
        let response = send(
            session(&mallory).await.unwrap(),
            request("GET", "/whoami", b""),
        )
        .await
        .unwrap();
        let who: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(who["name"], "mallory");
    });

    // A party whose anchor is not confirmed never reaches the app.
    let eve = TlsParty::broadcast(&w, Role::Pat, "eve");
    let refused_by_bob = runtime().block_on(async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        milagro_tls::connect(
            tcp,
            &eve.identity,
            bob.bc.digest(),
            dir.clone(),
            &options(6),
        )
        .await
    });
    assert!(
        matches!(&refused_by_bob, Err(TlsError::RefusedByPeer(why)) if why.contains("anchor")),
        "{:?}",
        refused_by_bob.err()
    );
    let reported = refused
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(reported.contains("peer refused"), "{reported}");
}
