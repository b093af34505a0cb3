//! Attacks on both handshakes: a man in the middle with its own anchor, forged proofs,
//! degenerate points, mismatched transcripts, replays and invalid encodings.

use super::tests::{party, rng, run_ecdh, run_yak, ScriptedRng};
use super::*;

fn context(bytes: &[u8]) -> SessionContext {
    SessionContext::new(bytes).unwrap()
}

#[test]
fn a_man_in_the_middle_with_its_own_valid_anchor_fails() {
    let (alice, bob, mallory) = (party(1), party(2), party(3));
    let ctx = SessionContext::empty();
    let mut rng = rng(1);

    // ECDH. Alice expects Bob; Mallory answers with her own anchor's nonce: her key is
    // x(k_M·R_A), Alice's x(k_A·R_B), so her tag is wrong.
    let alice_side = (&alice, &bob.party(), &ctx);
    let mallory_answers = (&mallory, &alice.party(), &ctx);
    assert_eq!(
        run_ecdh(1, alice_side, mallory_answers).unwrap_err(),
        KexError::ConfirmationFailed(Role::Responder)
    );
    // Bob expects Alice; Mallory starts in Alice's place but cannot compute x(k_A·R_B),
    // so whatever she sends as the finished message fails.
    let (_, hello) = ecdh::Initiator::start(&mut rng, &mallory, &bob.party(), &ctx).unwrap();
    let (bob_state, _) =
        ecdh::Responder::respond(&mut rng, &bob, &alice.party(), &ctx, &hello).unwrap();
    assert_eq!(
        bob_state
            .finish(&Finished::new(Protocol::EcdhV1, &[7; 32]))
            .unwrap_err(),
        KexError::ConfirmationFailed(Role::Initiator)
    );

    // YAK. Alice's hello names Bob as its verifier: an honest Mallory refuses it...
    assert_eq!(
        run_yak(1, alice_side, mallory_answers).unwrap_err(),
        KexError::BadProof(Role::Initiator)
    );
    // ...and a reply proven in Mallory's own name is refused by Alice.
    let (state, hello) = yak::Initiator::start(&mut rng, &alice, &bob.party(), &ctx).unwrap();
    let reply = yak::tests_support::reply_as(
        &mut rng,
        &mallory.party(),
        &alice.party(),
        &ctx,
        &hello,
        None,
    );
    assert_eq!(
        state.finish(&reply).unwrap_err(),
        KexError::BadProof(Role::Responder)
    );
    // Bob expects Alice; a hello Mallory proves in her own name is refused by Bob.
    let mallory_starts = (&mallory, &bob.party(), &ctx);
    let bob_side = (&bob, &alice.party(), &ctx);
    assert_eq!(
        run_yak(1, mallory_starts, bob_side).unwrap_err(),
        KexError::BadProof(Role::Initiator)
    );
}

#[test]
fn a_forger_who_proves_its_own_w_under_the_peers_name_fails_key_confirmation() {
    let (alice, bob) = (party(1), party(2));
    let ctx = SessionContext::empty();
    let mut rng = rng(7);
    let (state, hello) = yak::Initiator::start(&mut rng, &alice, &bob.party(), &ctx).unwrap();
    // Mallory knows her w and can prove it in Bob's name, but cannot compute Z without
    // Bob's k: her tag (here: any 32 bytes) fails.
    let forged =
        yak::tests_support::reply_as(&mut rng, &bob.party(), &alice.party(), &ctx, &hello, None);
    assert_eq!(
        state.finish(&forged).unwrap_err(),
        KexError::ConfirmationFailed(Role::Responder)
    );
    // And the responder never accepts a finished message it did not get from the
    // initiator's key.
    let (bob_state, _) =
        yak::Responder::respond(&mut rng, &bob, &alice.party(), &ctx, &hello).unwrap();
    let guess = Finished::new(Protocol::YakV1, &[0x42; 32]);
    assert_eq!(
        bob_state.finish(&guess).unwrap_err(),
        KexError::ConfirmationFailed(Role::Initiator)
    );
}

#[test]
fn a_peer_w_that_cancels_its_r_is_refused() {
    let (alice, bob) = (party(1), party(2));
    let ctx = SessionContext::empty();
    let mut rng = rng(8);
    let (state, hello) = yak::Initiator::start(&mut rng, &alice, &bob.party(), &ctx).unwrap();
    // Only Bob could do this (w = −k_B), and it would give a known key: refused.
    let minus_k = -*bob.nonce_scalar();
    let reply = yak::tests_support::reply_as(
        &mut rng,
        &bob.party(),
        &alice.party(),
        &ctx,
        &hello,
        Some(minus_k),
    );
    assert!(matches!(
        state.finish(&reply).unwrap_err(),
        KexError::Degenerate(_)
    ));
    // A responder whose own w would be −k refuses too.
    let script = ScriptedRng::new(&[minus_k.to_bytes().into(), [1; 32]]);
    let mut script = script;
    assert!(matches!(
        yak::Responder::respond(&mut script, &bob, &alice.party(), &ctx, &hello).unwrap_err(),
        KexError::Degenerate(_)
    ));
}

#[test]
fn sessions_with_different_transcripts_fail() {
    let (alice, bob) = (party(1), party(2));
    let (one, two) = (context(b"one"), context(b"two"));
    let a = (&alice, &bob.party(), &one);
    let b = (&bob, &alice.party(), &two);
    assert_eq!(
        run_ecdh(1, a, b).unwrap_err(),
        KexError::ConfirmationFailed(Role::Responder)
    );
    assert_eq!(
        run_yak(1, a, b).unwrap_err(),
        KexError::BadProof(Role::Initiator)
    );
    // Bob believes Alice's anchor is another input of the same transaction, same R.
    let misread = Party::new(
        AnchorRef::new(alice.party().anchor().txid(), 99),
        alice.party().nonce_point(),
    );
    let b = (&bob, &misread, &one);
    let a = (&alice, &bob.party(), &one);
    assert_eq!(
        run_ecdh(1, a, b).unwrap_err(),
        KexError::ConfirmationFailed(Role::Responder)
    );
    assert_eq!(
        run_yak(1, a, b).unwrap_err(),
        KexError::BadProof(Role::Initiator)
    );
}

#[test]
fn messages_replayed_from_another_session_fail() {
    let (alice, bob) = (party(1), party(2));
    let ctx = SessionContext::empty();
    let (mut r1, mut r2) = (rng(1), rng(2));

    // YAK session 1, recorded in full.
    let (a1, hello1) = yak::Initiator::start(&mut r1, &alice, &bob.party(), &ctx).unwrap();
    let (b1, reply1) =
        yak::Responder::respond(&mut r1, &bob, &alice.party(), &ctx, &hello1).unwrap();
    let (_, finished1) = a1.finish(&reply1).unwrap();
    b1.finish(&finished1).unwrap();
    // Session 2: the old reply does not prove anything about the new hello...
    let (a2, _) = yak::Initiator::start(&mut r2, &alice, &bob.party(), &ctx).unwrap();
    assert_eq!(
        a2.finish(&reply1).unwrap_err(),
        KexError::BadProof(Role::Responder)
    );
    // ...the old hello is answered, but the old finished message does not confirm...
    let (b2, _) = yak::Responder::respond(&mut r2, &bob, &alice.party(), &ctx, &hello1).unwrap();
    assert_eq!(
        b2.finish(&finished1).unwrap_err(),
        KexError::ConfirmationFailed(Role::Initiator)
    );
    // ...and under a fresh context the old hello is refused at once.
    assert_eq!(
        yak::Responder::respond(&mut r2, &bob, &alice.party(), &context(b"fresh"), &hello1)
            .unwrap_err(),
        KexError::BadProof(Role::Initiator)
    );

    // ECDH: the nonces make the old reply and finished message worthless.
    let (a1, hello1) = ecdh::Initiator::start(&mut r1, &alice, &bob.party(), &ctx).unwrap();
    let (b1, reply1) =
        ecdh::Responder::respond(&mut r1, &bob, &alice.party(), &ctx, &hello1).unwrap();
    let (_, finished1) = a1.finish(&reply1).unwrap();
    b1.finish(&finished1).unwrap();
    let (a2, _) = ecdh::Initiator::start(&mut r2, &alice, &bob.party(), &ctx).unwrap();
    assert_eq!(
        a2.finish(&reply1).unwrap_err(),
        KexError::ConfirmationFailed(Role::Responder)
    );
    let (b2, _) = ecdh::Responder::respond(&mut r2, &bob, &alice.party(), &ctx, &hello1).unwrap();
    assert_eq!(
        b2.finish(&finished1).unwrap_err(),
        KexError::ConfirmationFailed(Role::Initiator)
    );
}

#[test]
fn a_finished_message_of_the_other_protocol_is_refused() {
    let (alice, bob) = (party(1), party(2));
    let ctx = SessionContext::empty();
    let mut rng = rng(3);
    let (_, hello) = ecdh::Initiator::start(&mut rng, &alice, &bob.party(), &ctx).unwrap();
    let (b, _) = ecdh::Responder::respond(&mut rng, &bob, &alice.party(), &ctx, &hello).unwrap();
    let yak_finished = Finished::from_bytes(&[&[0x23u8][..], &[0; 32]].concat()).unwrap();
    assert_eq!(yak_finished.protocol(), Protocol::YakV1);
    assert!(matches!(
        b.finish(&yak_finished),
        Err(KexError::Malformed { .. })
    ));
}

#[test]
fn invalid_and_identity_points_are_refused_before_any_secret_is_used() {
    let mut rng = rng(4);
    let (_, hello) = yak::Initiator::start(
        &mut rng,
        &party(1),
        &party(2).party(),
        &SessionContext::empty(),
    )
    .unwrap();
    let good = hello.to_bytes();
    let mut cases = Vec::new();
    for (start, len) in [(1, 33), (34, 33)] {
        // W, then the proof's V: the identity (no 33-byte encoding), an uncompressed tag,
        // an x with no point on the curve (x = 5).
        let mut zero = good;
        zero[start..start + len].fill(0);
        let mut tag = good;
        tag[start] = 0x04;
        let mut off_curve = good;
        off_curve[start + 1..start + len].fill(0);
        off_curve[start + len - 1] = 5;
        cases.extend([zero, tag, off_curve]);
    }
    let mut big_r = good;
    big_r[67..].fill(0xff);
    cases.push(big_r);
    for case in cases {
        assert!(matches!(
            yak::Hello::from_bytes(&case),
            Err(KexError::Malformed { .. })
        ));
    }
    assert!(yak::Hello::from_bytes(&good[..98]).is_err());
    assert!(yak::Hello::from_bytes(&[&good[..], &[0]].concat()).is_err());
    let mut wrong_type = good;
    wrong_type[0] = 0x11;
    assert!(yak::Hello::from_bytes(&wrong_type).is_err());
    assert!(ecdh::Hello::from_bytes(&good[..33]).is_err());
    assert!(Finished::from_bytes(&[0x13]).is_err());
    assert!(Finished::from_bytes(&[0x14; 33]).is_err());
}
